// A whole file in memory, read-only, in one of two ways:
//   kMapped:   a memory map of the file (pages come and go with the page cache);
//   kResident: the file read once into anonymous memory backed by transparent huge pages where
//              the kernel allows. Decode walks every weight once per token: with 4 KiB file
//              pages that walk is limited by TLB misses, with 2 MiB pages by memory bandwidth.
//              The memory is resident for the model's lifetime, which is what a budget wants.
// A byte range can give its memory back and later be restored in place (keep-alive unloading):
// the addresses stay valid throughout, so pointers into bytes() never dangle.
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
  // What tells the file on disk from another one at the same path.
  struct Identity {
    uint64_t device = 0;
    uint64_t inode = 0;
    int64_t size = 0;
    int64_t mtime_ns = 0;
    bool operator==(const Identity&) const = default;
  };

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

  // Gives back the memory of the whole pages inside [offset, offset + length) (a range that
  // ends at the end of the file includes its last, partial page). kMapped drops this process's
  // mappings of those pages (the page cache may keep them); kResident frees them, and until
  // restore_pages() they read as zeros. Bytes outside those pages are untouched. Errors: a
  // range past the end of the file, or the kernel refusing.
  Expected<void> release_pages(size_t offset, size_t length);
  // Makes the pages release_pages(offset, length) gave back resident again, at the same
  // addresses: kResident reads them back from the file, kMapped faults them in. Fails, changing
  // nothing, when the file on disk is no longer the one opened (see same_file_on_disk()).
  Expected<void> restore_pages(size_t offset, size_t length);
  // Whether the path still names the file opened: same device, inode, size and modification
  // time. False when it cannot be read.
  bool same_file_on_disk() const;

 private:
  // The whole pages of [offset, offset + length) as [*begin, *end), checked against the file.
  Expected<void> page_range(size_t offset, size_t length, size_t* begin, size_t* end) const;
  void unmap();

  std::string path_;
  Mode mode_ = Mode::kMapped;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t mapped_bytes_ = 0;  // what unmap() unmaps, from data_
  Identity identity_;        // of the file when opened
};

}  // namespace pensieve
