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

// Reads the file into memory; the page cache copy is dropped as it goes, so the file is not held
// twice.
Expected<void> read_all(int fd, const std::string& path, uint8_t* dst, size_t size) {
  constexpr size_t kChunk = size_t{64} << 20;
  for (size_t done = 0; done < size;) {
    const ssize_t n =
        ::pread(fd, dst + done, std::min(kChunk, size - done), static_cast<off_t>(done));
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
      auto read = read_all(fd, path, static_cast<uint8_t*>(map), file.size_);
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
      mapped_bytes_(std::exchange(other.mapped_bytes_, 0)) {}

MmapFile& MmapFile::operator=(MmapFile&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    mode_ = other.mode_;
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mapped_bytes_ = std::exchange(other.mapped_bytes_, 0);
  }
  return *this;
}

MmapFile::~MmapFile() { release(); }

void MmapFile::release() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), mapped_bytes_);
  data_ = nullptr;
  size_ = 0;
  mapped_bytes_ = 0;
}

}  // namespace pensieve
