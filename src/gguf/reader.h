// GGUF reader: validates a whole file up front and exposes metadata and tensors in place.
// Every way a file can be malformed yields an Error naming the file, the field and the problem.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/result.h"
#include "gguf/mmap_file.h"
#include "gguf/types.h"
#include "gguf/value.h"

namespace pensieve {

inline constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" little-endian
inline constexpr uint64_t kGgufDefaultAlignment = 32;
inline constexpr int kGgufMaxDims = 4;

struct GgufKv {
  std::string_view key;
  GgufValue value;
};

struct GgufTensorInfo {
  std::string_view name;
  GgmlType type = GgmlType::kF32;
  int n_dims = 0;
  int64_t ne[kGgufMaxDims] = {1, 1, 1, 1};  // ggml order: ne[0] is the contiguous dimension
  uint64_t offset = 0;                      // from the start of the data section
  uint64_t n_elements = 0;
  uint64_t n_bytes = 0;
  const uint8_t* data = nullptr;  // inside the mapped file

  std::span<const uint8_t> bytes() const { return {data, n_bytes}; }
  // "[4096, 32000]" in ggml order.
  std::string shape_string() const;
};

class GgufFile {
 public:
  // Maps and validates `path`.
  static Expected<std::unique_ptr<GgufFile>> open(const std::string& path,
                                                  MmapFile::Mode mode = MmapFile::Mode::kMapped);
  // Validates bytes owned by the caller (they must outlive the result); `name` labels errors.
  static Expected<std::unique_ptr<GgufFile>> parse(std::span<const uint8_t> bytes,
                                                   std::string name);

  const std::string& name() const { return name_; }
  uint32_t version() const { return version_; }
  uint64_t size_bytes() const { return bytes_.size(); }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }

  const std::vector<GgufKv>& metadata() const { return kvs_; }
  const GgufValue* find(std::string_view key) const;

  // Typed access; errors name the file and key ("missing" or "has type X, expected Y").
  Expected<std::string_view> get_string(std::string_view key) const;
  Expected<uint64_t> get_uint(std::string_view key) const;
  Expected<double> get_float(std::string_view key) const;
  Expected<bool> get_bool(std::string_view key) const;
  Expected<const GgufValue*> get_array(std::string_view key) const;
  std::string_view get_string_or(std::string_view key, std::string_view fallback) const;
  uint64_t get_uint_or(std::string_view key, uint64_t fallback) const;
  double get_float_or(std::string_view key, double fallback) const;
  bool get_bool_or(std::string_view key, bool fallback) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const;
  uint64_t tensor_bytes_total() const;

 private:
  friend class GgufParser;
  GgufFile() = default;

  std::string name_;
  MmapFile map_;  // empty when parsed from caller-owned bytes
  std::span<const uint8_t> bytes_;
  uint32_t version_ = 0;
  uint64_t alignment_ = kGgufDefaultAlignment;
  uint64_t data_offset_ = 0;
  std::vector<GgufKv> kvs_;
  std::unordered_map<std::string_view, size_t> kv_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::unordered_map<std::string_view, size_t> tensor_index_;
};

}  // namespace pensieve
