#include "memory/registry.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <limits>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/duration.h"
#include "core/log.h"
#include "memory/system_memory.h"

namespace pensieve::memory {
namespace {

using nlohmann::json;

// Entry files are a few hundred bytes; a cap keeps a stray large file from costing memory.
constexpr size_t kMaxEntryBytes = 64 * 1024;
constexpr std::string_view kSuffix = ".json";

// The whole file, up to max_bytes (kInvalidFormat past it); kNotFound when it does not exist.
// *identity, when given, receives the opened file's device and inode.
Expected<std::string> read_small_file(const std::string& path, size_t max_bytes,
                                      struct stat* identity = nullptr) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    const int err = errno;
    return make_error(err == ENOENT || err == ESRCH ? ErrorCode::kNotFound : ErrorCode::kIo,
                      "registry: cannot open {}: {}", path, std::strerror(err));
  }
  if (identity != nullptr && ::fstat(fd, identity) != 0) identity->st_ino = 0;
  std::string text;
  char buffer[4096];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      // A process that exits while its stat file is read fails the read with ESRCH.
      return make_error(err == ESRCH ? ErrorCode::kNotFound : ErrorCode::kIo,
                        "registry: cannot read {}: {}", path, std::strerror(err));
    }
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
    if (text.size() > max_bytes) {
      ::close(fd);
      return make_error(ErrorCode::kInvalidFormat, "registry: {} is larger than {} bytes", path,
                        max_bytes);
    }
  }
  ::close(fd);
  return text;
}

std::optional<int64_t> parse_int64(std::string_view text) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// An existing registry directory must not let anyone else plant or swap entries.
Expected<void> check_directory(const std::string& dir) {
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) {
    return make_error(errno == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
                      "registry: cannot stat {}: {}", dir, std::strerror(errno));
  }
  if (S_ISLNK(st.st_mode)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "registry: {} is a symbolic link; the runtime directory must be a real one",
                      dir);
  }
  if (!S_ISDIR(st.st_mode)) {
    return make_error(ErrorCode::kInvalidArgument, "registry: {} is not a directory", dir);
  }
  if (st.st_uid != ::geteuid()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "registry: {} is owned by uid {}, not by this user (uid {})", dir, st.st_uid,
                      ::geteuid());
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "registry: {} is writable by other users (mode {:04o}); chmod 700 it", dir,
                      st.st_mode & 07777);
  }
  return {};
}

// Reads an integer field within [lo, hi]; false when missing, not an integer, or out of range.
bool get_int(const json& object, const char* key, int64_t lo, int64_t hi, int64_t* out) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_number_integer()) return false;
  int64_t value = 0;
  if (it->is_number_unsigned()) {
    const uint64_t u = it->get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
    value = static_cast<int64_t>(u);
  } else {
    value = it->get<int64_t>();
  }
  if (value < lo || value > hi) return false;
  *out = value;
  return true;
}

bool get_string(const json& object, const char* key, std::string* out) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_string()) return false;
  *out = it->get<std::string>();
  return true;
}

// An entry file's content; `name` is the file name, whose stem must be the entry's pid.
Expected<InstanceEntry> parse_entry(const std::string& text, std::string_view name,
                                    const std::string& path) {
  const json object = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (object.is_discarded() || !object.is_object()) {
    return make_error(ErrorCode::kInvalidFormat, "registry: {} is not a JSON object", path);
  }
  constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
  InstanceEntry e;
  int64_t pid = 0, port = 0;
  const char* bad = nullptr;
  if (!get_int(object, "pid", 1, std::numeric_limits<int>::max(), &pid))
    bad = "pid";
  else if (!get_int(object, "start_ticks", 0, kInt64Max, &e.start_ticks))
    bad = "start_ticks";
  else if (!get_string(object, "host", &e.host))
    bad = "host";
  else if (!get_int(object, "port", 0, 65535, &port))
    bad = "port";
  else if (!get_string(object, "model", &e.model))
    bad = "model";
  else if (!get_int(object, "budget_bytes", 0, kInt64Max, &e.budget_bytes))
    bad = "budget_bytes";
  else if (!get_string(object, "started_at", &e.started_at))
    bad = "started_at";
  if (bad != nullptr) {
    return make_error(ErrorCode::kInvalidFormat,
                      "registry: {}: field '{}' is missing or has the wrong type or range", path,
                      bad);
  }
  e.pid = static_cast<int>(pid);
  e.port = static_cast<int>(port);
  if (parse_int64(name.substr(0, name.size() - kSuffix.size())) != pid) {
    return make_error(ErrorCode::kInvalidFormat,
                      "registry: {} holds pid {}, not the one it is named for", path, pid);
  }
  return e;
}

std::string to_text(const InstanceEntry& e) {
  json object = {{"pid", e.pid},
                 {"start_ticks", e.start_ticks},
                 {"host", e.host},
                 {"port", e.port},
                 {"model", e.model},
                 {"budget_bytes", e.budget_bytes},
                 {"started_at", e.started_at}};
  // Model paths need not be UTF-8; replace what JSON cannot hold rather than throw.
  return object.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

Expected<void> write_file_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  ::unlink(tmp.c_str());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    return make_error(ErrorCode::kIo, "registry: cannot create {}: {}", tmp, std::strerror(errno));
  }
  size_t written = 0;
  while (written < text.size()) {
    ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return make_error(ErrorCode::kIo, "registry: cannot write {}: {}", tmp, std::strerror(err));
    }
    written += static_cast<size_t>(n);
  }
  if (::close(fd) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return make_error(ErrorCode::kIo, "registry: cannot write {}: {}", path, std::strerror(err));
  }
  return {};
}

// Removes a stale entry file unless it was replaced since it was read (a new process with the
// same pid registered in between).
void remove_if_unchanged(const std::string& path, const struct stat& read_identity) {
  struct stat now {};
  if (::lstat(path.c_str(), &now) != 0) return;
  if (now.st_ino != read_identity.st_ino || now.st_dev != read_identity.st_dev) return;
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    log::warn("registry: cannot remove stale entry {}: {}", path, std::strerror(errno));
  }
}

}  // namespace

std::string default_runtime_dir() {
  const char* own = std::getenv("PENSIEVE_RUNTIME_DIR");
  if (own != nullptr && *own != '\0') return own;
  const char* xdg = std::getenv("XDG_RUNTIME_DIR");
  if (xdg != nullptr && *xdg != '\0') return std::string(xdg) + "/pensieve";
  return "/tmp/pensieve-" + std::to_string(::getuid());
}

InstanceRegistry::InstanceRegistry(std::string dir) : dir_(std::move(dir)) {
  while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
}

InstanceRegistry::~InstanceRegistry() { unregister(); }

Expected<void> InstanceRegistry::register_self(InstanceEntry entry) {
  if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST) {
    return make_error(ErrorCode::kIo, "registry: cannot create {}: {}", dir_, std::strerror(errno));
  }
  PV_TRY_VOID(check_directory(dir_));
  entry.pid = static_cast<int>(::getpid());
  PV_TRY(entry.start_ticks, process_start_ticks(entry.pid));
  if (entry.started_at.empty()) entry.started_at = format_rfc3339_utc(std::time(nullptr));
  const std::string path = dir_ + "/" + std::to_string(entry.pid) + std::string(kSuffix);
  PV_TRY_VOID(write_file_atomically(path, to_text(entry)));
  registered_path_ = path;
  return {};
}

void InstanceRegistry::unregister() {
  if (registered_path_.empty()) return;
  if (::unlink(registered_path_.c_str()) != 0 && errno != ENOENT) {
    log::warn("registry: cannot remove {}: {}", registered_path_, std::strerror(errno));
  }
  registered_path_.clear();
}

std::vector<InstanceEntry> InstanceRegistry::list() {
  std::vector<InstanceEntry> entries;
  if (auto checked = check_directory(dir_); !checked) {
    if (checked.error().code != ErrorCode::kNotFound) log::warn("{}", checked.error().message);
    return entries;
  }
  DIR* directory = ::opendir(dir_.c_str());
  if (directory == nullptr) {
    log::warn("registry: cannot list {}: {}", dir_, std::strerror(errno));
    return entries;
  }
  while (const dirent* item = ::readdir(directory)) {
    const std::string_view name = item->d_name;
    if (name.size() <= kSuffix.size() || !name.ends_with(kSuffix)) continue;
    const std::string path = dir_ + "/" + std::string(name);
    struct stat identity {};
    auto text = read_small_file(path, kMaxEntryBytes, &identity);
    if (!text) {
      // Gone since readdir (unregistered meanwhile) is not worth a warning.
      if (text.error().code != ErrorCode::kNotFound) log::warn("{}", text.error().message);
      continue;
    }
    auto entry = parse_entry(*text, name, path);
    if (!entry) {
      log::warn("{}; skipping it", entry.error().message);
      continue;
    }
    auto ticks = process_start_ticks(entry->pid);
    const bool gone = !ticks && ticks.error().code == ErrorCode::kNotFound;
    if (gone || (ticks && *ticks != entry->start_ticks)) {
      remove_if_unchanged(path, identity);
      continue;
    }
    entries.push_back(std::move(*entry));
  }
  ::closedir(directory);
  return entries;
}

Expected<int64_t> process_start_ticks(int pid, const std::string& proc_root) {
  if (pid <= 0) {
    return make_error(ErrorCode::kInvalidArgument, "registry: pid {} is not a process id", pid);
  }
  const std::string path = proc_root + "/" + std::to_string(pid) + "/stat";
  PV_TRY(std::string text, read_small_file(path, kMaxEntryBytes));
  // "PID (COMM) STATE ..." where COMM may hold spaces and parentheses: fields 3.. follow the
  // last ')'.
  const size_t paren = text.rfind(')');
  if (paren == std::string::npos) {
    return make_error(ErrorCode::kInvalidFormat, "registry: {} has no '(comm)' field", path);
  }
  std::string_view rest = std::string_view(text).substr(paren + 1);
  constexpr int kFirstField = 3, kStartTimeField = 22;
  int field = kFirstField - 1;
  while (!rest.empty()) {
    const size_t start = rest.find_first_not_of(" \n");
    if (start == std::string_view::npos) break;
    rest.remove_prefix(start);
    const size_t end = rest.find_first_of(" \n");
    const std::string_view token = rest.substr(0, end);
    if (++field == kStartTimeField) {
      std::optional<int64_t> ticks = parse_int64(token);
      if (!ticks || *ticks < 0) {
        return make_error(ErrorCode::kInvalidFormat, "registry: {}: starttime '{}' is not a number",
                          path, token);
      }
      return *ticks;
    }
    if (end == std::string_view::npos) break;
    rest.remove_prefix(end);
  }
  return make_error(ErrorCode::kInvalidFormat, "registry: {} has fewer than {} fields", path,
                    kStartTimeField);
}

int64_t outstanding_bytes(const std::vector<InstanceEntry>& others, const std::string& proc_root) {
  int64_t total = 0;
  for (const InstanceEntry& e : others) {
    auto used = read_process_memory(e.pid, proc_root);
    if (!used) continue;
    const int64_t in_use = used->rss_anon_bytes + used->rss_file_bytes + used->swap_bytes;
    const int64_t grow = std::max<int64_t>(0, e.budget_bytes - in_use);
    total = grow > std::numeric_limits<int64_t>::max() - total ? std::numeric_limits<int64_t>::max()
                                                               : total + grow;
  }
  return total;
}

}  // namespace pensieve::memory
