#include "hub/download.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include "core/log.h"
#include "hub/sha256.h"

namespace pensieve::hub {
namespace {

namespace fs = std::filesystem;

Unexpected<Error> io_error(std::string_view what, const std::string& path, int err) {
  return make_error(ErrorCode::kIo, "pull: cannot {} {}: {}", what, path, std::strerror(err));
}

// The part file, opened for appending and locked so that two pulls never write it at once.
class PartFile {
 public:
  ~PartFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  PartFile(const PartFile&) = delete;
  PartFile& operator=(const PartFile&) = delete;

  static Expected<std::unique_ptr<PartFile>> open(const std::string& path) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return io_error("create", path, errno);
    std::unique_ptr<PartFile> part(new PartFile(fd, path));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      return make_error(ErrorCode::kUnavailable, "pull: another pull is writing {}", path);
    }
    return part;
  }

  Expected<int64_t> size() const {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return io_error("stat", path_, errno);
    return static_cast<int64_t>(st.st_size);
  }
  Expected<void> truncate() {
    if (::ftruncate(fd_, 0) != 0) return io_error("truncate", path_, errno);
    return {};
  }
  Expected<void> write(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return io_error("write", path_, errno);
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return {};
  }
  Expected<void> sync() {
    if (::fsync(fd_) != 0) return io_error("sync", path_, errno);
    return {};
  }

 private:
  PartFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_ = -1;
  std::string path_;
};

// One download's state across its transfers: the part file, its hash, and how far it got.
struct Transfer {
  PartFile* part = nullptr;
  Sha256 hash;
  int64_t offset = 0;  // bytes in the part file, all of them hashed
  std::optional<int64_t> expected_size;
  DownloadProgress progress;
  const DownloadOptions* options = nullptr;
  std::string file;
  // Per transfer:
  bool started = false;
  std::optional<Error> error;  // why the sink stopped the transfer

  Expected<void> restart() {
    PV_TRY_VOID(part->truncate());
    hash.reset();
    offset = 0;
    progress.resumed_from_bytes = 0;
    return {};
  }

  // Checks the response's first bytes against what was asked for.
  Expected<void> begin(const HttpResponse& head) {
    if (head.status == 206) {
      auto range = parse_content_range(head.header("content-range").value_or(""));
      if (!range || range->start != offset) {
        return make_error(ErrorCode::kInvalidFormat,
                          "pull: the server answered the request for {} from byte {} with "
                          "Content-Range '{}'",
                          file, offset, head.header("content-range").value_or(""));
      }
      if (range->total >= 0 && !expected_size) progress.total_bytes = range->total;
    } else if (head.status == 200) {
      if (offset > 0) {
        log::info("pull: the server sent {} whole instead of resuming; starting over", file);
        PV_TRY_VOID(restart());
      }
      if (!expected_size) {
        if (auto length = head.header("content-length")) {
          int64_t n = 0;
          auto [end, ec] = std::from_chars(length->data(), length->data() + length->size(), n);
          if (ec == std::errc() && end == length->data() + length->size()) progress.total_bytes = n;
        }
      }
    } else {
      return make_error(ErrorCode::kInvalidFormat, "pull: unexpected HTTP {} for {}", head.status,
                        file);
    }
    return {};
  }

  bool sink(const HttpResponse& head, std::string_view chunk) {
    if (!started) {
      started = true;
      if (auto ok = begin(head); !ok) {
        error = ok.error();
        return false;
      }
    }
    if (expected_size && offset + static_cast<int64_t>(chunk.size()) > *expected_size) {
      error = Error{
          ErrorCode::kInvalidFormat,
          fmt::format("pull: the server sent more than the {} bytes of {}", *expected_size, file)};
      return false;
    }
    if (auto ok = part->write(chunk); !ok) {
      error = ok.error();
      return false;
    }
    hash.update(chunk);
    offset += static_cast<int64_t>(chunk.size());
    progress.done_bytes = offset;
    if (options->on_progress) options->on_progress(progress);
    return true;
  }
};

// The first four bytes of a GGUF file.
Expected<void> check_gguf_magic(const std::string& path, const std::string& file) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return io_error("open", path, errno);
  char magic[4] = {0, 0, 0, 0};
  const ssize_t n = ::read(fd, magic, sizeof(magic));
  ::close(fd);
  if (n != 4 || std::memcmp(magic, "GGUF", 4) != 0) {
    std::string shown;
    for (ssize_t i = 0; i < std::max<ssize_t>(n, 0); ++i) {
      shown += fmt::format("{:02x}", static_cast<unsigned char>(magic[i]));
    }
    return make_error(ErrorCode::kInvalidFormat,
                      "pull: {} is not a GGUF file (it begins with bytes '{}', not 'GGUF')", file,
                      shown);
  }
  return {};
}

// One GET from the transfer's offset. Ok: the response ended (2xx, or another status to
// report); error: the transfer broke off (retryable when its code is kUnavailable).
Expected<HttpResponse> fetch(const HubClient& hub, const FileMetadata& meta, Transfer* t) {
  HttpRequest request;
  request.url = meta.url;
  request.headers = {"Accept-Encoding: identity"};
  if (t->offset > 0) request.headers.push_back(fmt::format("Range: bytes={}-", t->offset));
  request.sink = [t](const HttpResponse& head, std::string_view chunk) {
    return t->sink(head, chunk);
  };
  t->started = false;
  t->error.reset();
  t->progress.resumed_from_bytes = t->offset;
  auto response = hub.http().send(request);
  if (t->error) return Unexpected<Error>(*t->error);
  return response;
}

// Transfers until the part holds the whole file (as far as the server says).
Expected<void> transfer_all(const HubClient& hub, const FileMetadata& meta, const std::string& repo,
                            const std::string& revision, Transfer* t) {
  const int attempts = std::max(0, t->options->retries) + 1;
  for (int attempt = 1;; ++attempt) {
    if (t->expected_size && t->offset == *t->expected_size) return {};
    auto response = fetch(hub, meta, t);
    if (!response) {
      if (response.error().code != ErrorCode::kUnavailable) {
        return Unexpected<Error>(response.error());
      }
      if (attempt >= attempts) {
        return make_error(ErrorCode::kUnavailable,
                          "pull: download of {} interrupted at {} bytes: {}. The partial file "
                          "is kept: run the same command again to resume",
                          t->file, t->offset, response.error().message);
      }
      log::warn("pull: download of {} interrupted at {} bytes ({}); resuming", t->file, t->offset,
                response.error().message);
      std::this_thread::sleep_for(std::chrono::milliseconds(t->options->retry_delay_ms * attempt));
      continue;
    }
    if (response->status == 416 && t->offset > 0) {
      // The range starts at or past the end: complete when the server's size is ours.
      auto range = parse_content_range(response->header("content-range").value_or(""));
      if (range && range->total == t->offset) return {};
      PV_TRY_VOID(t->restart());
      if (attempt < attempts) continue;
    }
    if (response->status < 200 || response->status >= 300) {
      // The hub's own answers have its error headers; a CDN's (an expired link, say) do not.
      if (HttpClient::origin_of(response->url) != HttpClient::origin_of(hub.options().endpoint)) {
        return make_error(ErrorCode::kUnavailable, "pull: HTTP {} from {} while downloading {}",
                          response->status, response->url, t->file);
      }
      return Unexpected<Error>(
          hub_error(*response, repo, t->file, revision, !hub.options().token.empty()));
    }
    if (!t->started && response->status == 200 && t->offset > 0) PV_TRY_VOID(t->restart());
    return {};
  }
}

}  // namespace

std::optional<ContentRange> parse_content_range(std::string_view text) {
  auto number = [](std::string_view s) -> std::optional<int64_t> {
    int64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || s.empty() || v < 0) return std::nullopt;
    return v;
  };
  if (!text.starts_with("bytes ")) return std::nullopt;
  text.remove_prefix(6);
  const size_t slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  ContentRange range;
  const std::string_view span = text.substr(0, slash);
  const std::string_view total = text.substr(slash + 1);
  if (total != "*") {
    auto t = number(total);
    if (!t) return std::nullopt;
    range.total = *t;
  }
  if (span != "*") {
    const size_t dash = span.find('-');
    if (dash == std::string_view::npos) return std::nullopt;
    auto start = number(span.substr(0, dash));
    auto end = number(span.substr(dash + 1));
    if (!start || !end || *end < *start) return std::nullopt;
    range.start = *start;
  }
  return range;
}

Expected<DownloadResult> download_file(const HubClient& hub, const std::string& repo,
                                       const std::string& file, const std::string& revision,
                                       const std::string& dest_path,
                                       const DownloadOptions& options) {
  PV_TRY(FileMetadata meta, hub.file_metadata(repo, file, revision));
  DownloadResult result;
  result.path = dest_path;
  result.commit = meta.commit;
  std::error_code ec;
  const auto present = fs::file_size(dest_path, ec);
  if (!ec && meta.size_bytes && static_cast<int64_t>(present) == *meta.size_bytes) {
    result.size_bytes = *meta.size_bytes;
    result.already_present = true;
    return result;
  }
  fs::create_directories(fs::path(dest_path).parent_path(), ec);
  if (ec) return io_error("create the directory of", dest_path, ec.value());
  const std::string part_path = dest_path + ".part";
  PV_TRY(auto part, PartFile::open(part_path));
  Transfer t;
  t.part = part.get();
  t.expected_size = meta.size_bytes;
  t.progress.total_bytes = meta.size_bytes;
  t.options = &options;
  t.file = file;
  PV_TRY(t.offset, part->size());
  if (t.expected_size && t.offset > *t.expected_size) PV_TRY_VOID(t.restart());
  if (t.offset > 0) PV_TRY_VOID(hash_file_prefix(part_path, t.offset, &t.hash));
  result.resumed_from_bytes = t.offset;
  PV_TRY_VOID(transfer_all(hub, meta, repo, revision, &t));
  if (t.expected_size && t.offset != *t.expected_size) {
    return make_error(ErrorCode::kUnavailable,
                      "pull: download of {} ended at {} of {} bytes; run the same command again "
                      "to resume",
                      file, t.offset, *t.expected_size);
  }
  PV_TRY_VOID(part->sync());
  result.sha256 = t.hash.hex_digest();
  result.size_bytes = t.offset;
  if (meta.sha256 && result.sha256 != *meta.sha256) {
    ::unlink(part_path.c_str());
    return make_error(ErrorCode::kInvalidFormat,
                      "pull: sha256 mismatch for {}: expected {}, got {} (the download was "
                      "deleted; run the command again)",
                      file, *meta.sha256, result.sha256);
  }
  result.verified = meta.sha256.has_value();
  if (auto magic = check_gguf_magic(part_path, file); !magic) {
    ::unlink(part_path.c_str());
    return Unexpected<Error>(magic.error());
  }
  if (::rename(part_path.c_str(), dest_path.c_str()) != 0) {
    return io_error("rename the download to", dest_path, errno);
  }
  return result;
}

}  // namespace pensieve::hub
