// A whole file in memory, read-only, in one of two ways:
//   kMapped:   a memory map of the file (pages come and go with the page cache);
//   kResident: the file read once into anonymous memory backed by transparent huge pages where
//              the kernel allows. Decode walks every weight once per token: with 4 KiB file
//              pages that walk is limited by TLB misses, with 2 MiB pages by memory bandwidth.
//              The memory is resident for the model's lifetime, which is what a budget wants.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "core/result.h"

namespace pensieve {

class MmapFile {
 public:
  enum class Mode { kMapped, kResident };
  static Expected<MmapFile> open(const std::string& path, Mode mode = Mode::kMapped);

  MmapFile() = default;
  MmapFile(MmapFile&& other) noexcept;
  MmapFile& operator=(MmapFile&& other) noexcept;
  MmapFile(const MmapFile&) = delete;
  MmapFile& operator=(const MmapFile&) = delete;
  ~MmapFile();

  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }
  Mode mode() const { return mode_; }

 private:
  void release();

  std::string path_;
  Mode mode_ = Mode::kMapped;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t mapped_bytes_ = 0;  // what release() unmaps, from data_
};

}  // namespace pensieve
