// GGUF writer: builds version-3 files (metadata + aligned tensor data) that any GGUF reader loads.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "gguf/types.h"
#include "gguf/value.h"

namespace pensieve {

class GgufWriter {
 public:
  // Scalars and strings. Setting a key twice replaces its value.
  void set_u8(std::string_view key, uint8_t v);
  void set_i8(std::string_view key, int8_t v);
  void set_u16(std::string_view key, uint16_t v);
  void set_i16(std::string_view key, int16_t v);
  void set_u32(std::string_view key, uint32_t v);
  void set_i32(std::string_view key, int32_t v);
  void set_u64(std::string_view key, uint64_t v);
  void set_i64(std::string_view key, int64_t v);
  void set_f32(std::string_view key, float v);
  void set_f64(std::string_view key, double v);
  void set_bool(std::string_view key, bool v);
  void set_string(std::string_view key, std::string_view v);
  // Arrays.
  void set_strings(std::string_view key, std::span<const std::string> v);
  void set_f32s(std::string_view key, std::span<const float> v);
  void set_i32s(std::string_view key, std::span<const int32_t> v);
  void set_u32s(std::string_view key, std::span<const uint32_t> v);
  // A value read from another file, copied verbatim (e.g. a vocabulary into a synthetic model).
  void copy(std::string_view key, const GgufValue& value);

  // Tensors, written in the order added. `ne` is in ggml order (ne[0] contiguous).
  // add_tensor keeps a view: `data` must stay valid until write() returns.
  Expected<void> add_tensor(std::string_view name, GgmlType type, std::span<const int64_t> ne,
                            std::span<const uint8_t> data);
  Expected<void> add_tensor_owned(std::string_view name, GgmlType type, std::span<const int64_t> ne,
                                  std::vector<uint8_t> data);

  // Data produced at write time, one tensor at a time (for files larger than memory).
  using TensorFill = std::function<void(std::span<uint8_t> out)>;
  Expected<void> add_tensor_generated(std::string_view name, GgmlType type,
                                      std::span<const int64_t> ne, TensorFill fill);

  void set_alignment(uint32_t alignment);
  Expected<void> write(const std::string& path) const;
  // The whole file in memory (tests, small files).
  std::vector<uint8_t> to_bytes() const;

 private:
  struct Kv {
    std::string key;
    GgufValueType type;
    std::vector<uint8_t> encoded;
  };
  struct Tensor {
    std::string name;
    GgmlType type;
    std::vector<int64_t> ne;
    std::span<const uint8_t> data;
    std::vector<uint8_t> owned;
    TensorFill fill;  // when set, data is produced by fill() at write time
    size_t n_bytes = 0;
  };
  // The bytes of tensor t: its view, or *buffer filled by its generator.
  std::span<const uint8_t> tensor_bytes(const Tensor& t, std::vector<uint8_t>* buffer) const;

  void set_raw(std::string_view key, GgufValueType type, std::vector<uint8_t> encoded);
  Expected<void> check_tensor(std::string_view name, GgmlType type, std::span<const int64_t> ne,
                              size_t n_bytes) const;
  static size_t expected_bytes(GgmlType type, std::span<const int64_t> ne);
  std::vector<uint8_t> header_bytes(std::vector<uint64_t>* offsets) const;

  std::vector<Kv> kvs_;
  std::vector<Tensor> tensors_;
  uint32_t alignment_ = 32;
};

}  // namespace pensieve
