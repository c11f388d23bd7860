#include "gguf/mmap_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace pensieve {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;

size_t page_size() { return static_cast<size_t>(::sysconf(_SC_PAGESIZE)); }

MmapFile::Identity identity_of(const struct stat& st) {
  return {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
          static_cast<int64_t>(st.st_size),
          static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
}

// size bytes of anonymous memory at a 2 MiB-aligned address, with huge pages requested.
void* map_huge_anonymous(size_t size, size_t* mapped_bytes) {
  const size_t rounded = (size + kHugePage - 1) / kHugePage * kHugePage;
  void* reserved = ::mmap(nullptr, rounded + kHugePage, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (reserved == MAP_FAILED) return MAP_FAILED;
  const auto base = reinterpret_cast<uintptr_t>(reserved);
  const uintptr_t aligned = (base + kHugePage - 1) / kHugePage * kHugePage;
  if (aligned > base) ::munmap(reserved, aligned - base);
  const uintptr_t tail = base + rounded + kHugePage - (aligned + rounded);
  if (tail > 0) ::munmap(reinterpret_cast<void*>(aligned + rounded), tail);
  ::madvise(reinterpret_cast<void*>(aligned), rounded, MADV_HUGEPAGE);
  *mapped_bytes = rounded;
  return reinterpret_cast<void*>(aligned);
}

// Reads bytes [begin, end) of the file to dst + begin; the page cache copy is dropped as it goes,
// so the file is not held twice.
Expected<void> read_range(int fd, const std::string& path, uint8_t* dst, size_t begin, size_t end) {
  constexpr size_t kChunk = size_t{64} << 20;
  for (size_t done = begin; done < end;) {
    const ssize_t n =
        ::pread(fd, dst + done, std::min(kChunk, end - done), static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return make_error(ErrorCode::kIo, "gguf: {}: cannot read at byte {}: {}", path, done,
                        n == 0 ? "unexpected end of file" : std::strerror(errno));
    }
    ::posix_fadvise(fd, static_cast<off_t>(done), n, POSIX_FADV_DONTNEED);
    done += static_cast<size_t>(n);
  }
  return {};
}

}  // namespace

Expected<MmapFile> MmapFile::open(const std::string& path, Mode mode) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const ErrorCode code = errno == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo;
    return make_error(code, "gguf: {}: cannot open: {}", path, std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return make_error(ErrorCode::kIo, "gguf: {}: cannot stat: {}", path, std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return make_error(ErrorCode::kInvalidArgument, "gguf: {}: not a regular file", path);
  }
  MmapFile file;
  file.path_ = path;
  file.mode_ = mode;
  file.identity_ = identity_of(st);
  file.size_ = static_cast<size_t>(st.st_size);
  if (file.size_ > 0) {
    void* map = MAP_FAILED;
    if (mode == Mode::kResident) {
      map = map_huge_anonymous(file.size_, &file.mapped_bytes_);
    } else {
      map = ::mmap(nullptr, file.size_, PROT_READ, MAP_PRIVATE, fd, 0);
      file.mapped_bytes_ = file.size_;
    }
    if (map == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      return make_error(ErrorCode::kIo, "gguf: {}: cannot map {} bytes: {}", path, file.size_,
                        std::strerror(err));
    }
    file.data_ = static_cast<const uint8_t*>(map);
    if (mode == Mode::kResident) {
      auto read = read_range(fd, path, static_cast<uint8_t*>(map), 0, file.size_);
      if (!read) {
        ::close(fd);
        return Unexpected<Error>(read.error());
      }
      ::mprotect(map, file.mapped_bytes_, PROT_READ);
    }
  }
  ::close(fd);  // a mapping keeps the file alive
  return file;
}

MmapFile::MmapFile(MmapFile&& other) noexcept
    : path_(std::move(other.path_)),
      mode_(other.mode_),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      mapped_bytes_(std::exchange(other.mapped_bytes_, 0)),
      identity_(other.identity_) {}

MmapFile& MmapFile::operator=(MmapFile&& other) noexcept {
  if (this != &other) {
    unmap();
    path_ = std::move(other.path_);
    mode_ = other.mode_;
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mapped_bytes_ = std::exchange(other.mapped_bytes_, 0);
    identity_ = other.identity_;
  }
  return *this;
}

MmapFile::~MmapFile() { unmap(); }

void MmapFile::unmap() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), mapped_bytes_);
  data_ = nullptr;
  size_ = 0;
  mapped_bytes_ = 0;
}

Expected<void> MmapFile::page_range(size_t offset, size_t length, size_t* begin,
                                    size_t* end) const {
  if (offset > size_ || length > size_ - offset) {
    return make_error(ErrorCode::kInvalidArgument,
                      "gguf: {}: {} bytes from offset {} do not fit in the file's {} bytes", path_,
                      length, offset, size_);
  }
  const size_t page = page_size();
  *begin = (offset + page - 1) / page * page;
  // Past the end of the file the last page holds nothing of anyone's, so it can go too.
  *end =
      offset + length == size_ ? (size_ + page - 1) / page * page : (offset + length) / page * page;
  *end = std::min(*end, mapped_bytes_);
  if (*end < *begin) *end = *begin;
  return {};
}

Expected<void> MmapFile::release_pages(size_t offset, size_t length) {
  size_t begin = 0, end = 0;
  PV_TRY_VOID(page_range(offset, length, &begin, &end));
  if (begin == end) return {};
  if (::madvise(const_cast<uint8_t*>(data_) + begin, end - begin, MADV_DONTNEED) != 0) {
    return make_error(ErrorCode::kIo, "gguf: {}: cannot release {} bytes of memory: {}", path_,
                      end - begin, std::strerror(errno));
  }
  return {};
}

bool MmapFile::same_file_on_disk() const {
  struct stat st {};
  return ::stat(path_.c_str(), &st) == 0 && identity_of(st) == identity_;
}

Expected<void> MmapFile::restore_pages(size_t offset, size_t length) {
  size_t begin = 0, end = 0;
  PV_TRY_VOID(page_range(offset, length, &begin, &end));
  if (begin == end) return {};
  const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return make_error(ErrorCode::kIo, "gguf: {}: cannot open to restore its pages: {}", path_,
                      std::strerror(errno));
  }
  // Checked on the descriptor read from, so a file swapped in after the check is not read.
  struct stat st {};
  if (::fstat(fd, &st) != 0 || identity_of(st) != identity_) {
    ::close(fd);
    return make_error(ErrorCode::kInvalidFormat,
                      "gguf: {}: the file changed on disk since it was loaded", path_);
  }
  uint8_t* const data = const_cast<uint8_t*>(data_);
  Expected<void> done;
  if (mode_ == Mode::kResident) {
    if (::mprotect(data, mapped_bytes_, PROT_READ | PROT_WRITE) != 0) {
      done = make_error(ErrorCode::kIo, "gguf: {}: cannot make its memory writable: {}", path_,
                        std::strerror(errno));
    } else {
      done = read_range(fd, path_, data, begin, std::min(end, size_));
      ::mprotect(data, mapped_bytes_, PROT_READ);
    }
  } else {
    // Fault the pages in now, so the first token after a restore is not slowed by page faults.
    ::madvise(data + begin, end - begin, MADV_WILLNEED);
    const size_t page = page_size();
    uint8_t sum = 0;
    for (size_t at = begin; at < std::min(end, size_); at += page) {
      sum += *static_cast<const volatile uint8_t*>(data + at);
    }
    (void)sum;
  }
  ::close(fd);
  return done;
}

}  // namespace pensieve
