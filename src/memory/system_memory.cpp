#include "memory/system_memory.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <string_view>
#include <vector>

namespace pensieve::memory {
namespace {

// v1 writes PAGE_COUNTER_MAX pages (9223372036854771712 with 4 KiB pages) for "no limit".
constexpr int64_t kUnlimitedSentinel = int64_t{1} << 62;
// The files read here are a few KiB; a cap keeps a broken or hostile tree from costing memory.
constexpr size_t kMaxFileBytes = size_t{1} << 20;

// Reads a whole (proc or sysfs) file. nullopt when it does not exist; kIo for other failures.
Expected<std::optional<std::string>> read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return std::optional<std::string>();
    return make_error(ErrorCode::kIo, "memory: cannot open {}: {}", path, std::strerror(errno));
  }
  std::string text;
  char buffer[4096];
  while (text.size() < kMaxFileBytes) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return make_error(ErrorCode::kIo, "memory: cannot read {}: {}", path, std::strerror(err));
    }
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return std::optional<std::string>(std::move(text));
}

// For files that may be absent or unreadable without it being an error (cgroup, PSI): some
// kernels expose /proc/pressure/memory but fail reads with EOPNOTSUPP when PSI is off.
std::optional<std::string> read_optional_file(const std::string& path) {
  auto text = read_file(path);
  if (!text) return std::nullopt;
  return *text;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t' || text.front() == '\n'))
    text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\n'))
    text.remove_suffix(1);
  return text;
}

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    size_t end = text.find('\n');
    lines.push_back(text.substr(0, end));
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return lines;
}

std::optional<int64_t> parse_int64(std::string_view text) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 0) return std::nullopt;
  return value;
}

// The value of "Key:   123 kB" in meminfo or status, in bytes; nullopt when the key is absent.
Expected<std::optional<int64_t>> find_kb_field(std::string_view text, std::string_view key,
                                               const std::string& path) {
  for (std::string_view line : split_lines(text)) {
    if (line.size() <= key.size() || line.substr(0, key.size()) != key || line[key.size()] != ':')
      continue;
    std::string_view value = trim(line.substr(key.size() + 1));
    bool in_kb = value.size() >= 2 && value.substr(value.size() - 2) == "kB";
    if (in_kb) value = trim(value.substr(0, value.size() - 2));
    std::optional<int64_t> number = parse_int64(value);
    if (!number || (in_kb && *number > INT64_MAX / 1024)) {
      return make_error(ErrorCode::kInvalidFormat, "memory: {}: {} has a malformed value '{}'",
                        path, key, trim(line.substr(key.size() + 1)));
    }
    return std::optional<int64_t>(in_kb ? *number * 1024 : *number);
  }
  return std::optional<int64_t>();
}

Expected<int64_t> require_kb_field(std::string_view text, std::string_view key,
                                   const std::string& path) {
  PV_TRY(std::optional<int64_t> value, find_kb_field(text, key, path));
  if (!value) return make_error(ErrorCode::kInvalidFormat, "memory: {} has no {} line", path, key);
  return *value;
}

Expected<void> read_meminfo(const std::string& proc_root, MemorySnapshot& s) {
  const std::string path = proc_root + "/meminfo";
  PV_TRY(std::optional<std::string> text, read_file(path));
  if (!text) return make_error(ErrorCode::kNotFound, "memory: {} does not exist", path);
  PV_TRY(s.total_bytes, require_kb_field(*text, "MemTotal", path));
  PV_TRY(s.available_bytes, require_kb_field(*text, "MemAvailable", path));
  PV_TRY(std::optional<int64_t> swap_total, find_kb_field(*text, "SwapTotal", path));
  PV_TRY(std::optional<int64_t> swap_free, find_kb_field(*text, "SwapFree", path));
  s.swap_total_bytes = swap_total.value_or(0);
  s.swap_free_bytes = swap_free.value_or(0);
  return {};
}

// The process's memory cgroup as /proc/self/cgroup names it.
struct CgroupPath {
  bool v1 = false;
  std::string path;  // "/..." relative to the hierarchy's mount
};

std::optional<CgroupPath> find_cgroup(std::string_view text) {
  std::optional<CgroupPath> v2;
  for (std::string_view line : split_lines(text)) {
    size_t first = line.find(':');
    size_t second = first == std::string_view::npos ? first : line.find(':', first + 1);
    if (second == std::string_view::npos) continue;
    std::string_view id = line.substr(0, first);
    std::string_view controllers = line.substr(first + 1, second - first - 1);
    std::string path(line.substr(second + 1));
    if (id == "0" && controllers.empty()) {
      v2 = CgroupPath{false, path};
      continue;
    }
    // A v1 line lists its controllers: "4:memory:/x" or "3:cpu,memory:/x".
    while (!controllers.empty()) {
      size_t comma = controllers.find(',');
      if (controllers.substr(0, comma) == "memory") return CgroupPath{true, path};
      if (comma == std::string_view::npos) break;
      controllers.remove_prefix(comma + 1);
    }
  }
  return v2;  // hybrid systems: the v1 memory controller, when present, is the one enforcing
}

// The levels from the cgroup up to the hierarchy's root: "/a/b" -> {"/a/b", "/a", ""}. The walk
// finds limits set on a parent (a systemd slice) and, where the path is not visible in this mount
// (a container with a private cgroup mount), the mount's root, which is then the container's own.
std::vector<std::string> levels_of(std::string_view path) {
  std::vector<std::string> levels;
  // A path outside this namespace's view ("/../x") or not absolute: only the mount's root.
  bool escapes = path.empty() || path[0] != '/' || path.find("/../") != std::string_view::npos ||
                 (path.size() >= 3 && path.substr(path.size() - 3) == "/..");
  if (!escapes) {
    while (!path.empty() && path.back() == '/') path.remove_suffix(1);
    while (!path.empty()) {
      levels.emplace_back(path);
      path = path.substr(0, path.rfind('/'));
    }
  }
  levels.emplace_back();
  return levels;
}

// A limit or usage file: nullopt when absent or unlimited ("max", or >= the v1 sentinel).
Expected<std::optional<int64_t>> read_cgroup_value(const std::string& path) {
  std::optional<std::string> text = read_optional_file(path);
  if (!text) return std::optional<int64_t>();
  std::string_view value = trim(*text);
  if (value == "max") return std::optional<int64_t>();
  std::optional<int64_t> number = parse_int64(value);
  if (!number && value.find_first_not_of("0123456789") == std::string_view::npos &&
      !value.empty()) {
    number = INT64_MAX;  // digits past int64: no real limit is that large
  }
  if (!number) {
    return make_error(ErrorCode::kInvalidFormat, "memory: {} holds '{}', not a byte count", path,
                      value);
  }
  if (*number >= kUnlimitedSentinel) return std::optional<int64_t>();
  return number;
}

Expected<void> read_cgroup(const std::string& proc_root, const std::string& cgroup_root,
                           MemorySnapshot& s) {
  std::optional<std::string> self = read_optional_file(proc_root + "/self/cgroup");
  if (!self) return {};
  std::optional<CgroupPath> cgroup = find_cgroup(*self);
  if (!cgroup) return {};
  const std::string base = cgroup->v1 ? cgroup_root + "/memory" : cgroup_root;
  const char* limit_name = cgroup->v1 ? "/memory.limit_in_bytes" : "/memory.max";
  const char* usage_name = cgroup->v1 ? "/memory.usage_in_bytes" : "/memory.current";
  std::optional<int64_t> headroom;  // of the level chosen so far
  for (const std::string& level : levels_of(cgroup->path)) {
    const std::string dir = base + level;
    PV_TRY(std::optional<int64_t> usage, read_cgroup_value(dir + usage_name));
    PV_TRY(std::optional<int64_t> limit, read_cgroup_value(dir + limit_name));
    if (!s.cgroup_usage_bytes && !s.cgroup_limit_bytes) s.cgroup_usage_bytes = usage;
    if (limit) {
      int64_t level_headroom = *limit - usage.value_or(0);
      if (!headroom || level_headroom < *headroom) {
        headroom = level_headroom;
        s.cgroup_limit_bytes = limit;
        s.cgroup_usage_bytes = usage;
      }
    }
    if (!cgroup->v1) {
      PV_TRY(std::optional<int64_t> high, read_cgroup_value(dir + "/memory.high"));
      if (high && (!s.cgroup_high_bytes || *high < *s.cgroup_high_bytes))
        s.cgroup_high_bytes = high;
    }
  }
  return {};
}

// "some avg10=0.00 avg60=0.00 avg300=0.00 total=0" -> 0.00 for the line starting with `kind`.
Expected<std::optional<double>> find_avg10(std::string_view text, std::string_view kind,
                                           const std::string& path) {
  for (std::string_view line : split_lines(text)) {
    if (line.substr(0, kind.size() + 1) != std::string(kind) + " ") continue;
    size_t at = line.find("avg10=");
    double value = -1;
    if (at != std::string_view::npos) {
      std::string_view rest = line.substr(at + 6);
      rest = rest.substr(0, rest.find(' '));
      auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), value);
      if (ec != std::errc() || end != rest.data() + rest.size()) value = -1;
    }
    if (value < 0 || value > 100) {
      return make_error(ErrorCode::kInvalidFormat, "memory: {}: malformed '{}' line '{}'", path,
                        kind, line);
    }
    return std::optional<double>(value);
  }
  return std::optional<double>();
}

Expected<void> read_psi(const std::string& proc_root, MemorySnapshot& s) {
  const std::string path = proc_root + "/pressure/memory";
  std::optional<std::string> text = read_optional_file(path);
  if (!text) return {};
  PV_TRY(s.psi_some_avg10, find_avg10(*text, "some", path));
  PV_TRY(s.psi_full_avg10, find_avg10(*text, "full", path));
  return {};
}

}  // namespace

int64_t MemorySnapshot::usable_bytes() const {
  int64_t usable = available_bytes;
  if (cgroup_limit_bytes) {
    usable = std::min(usable, *cgroup_limit_bytes - cgroup_usage_bytes.value_or(0));
  }
  return std::max<int64_t>(usable, 0);
}

int64_t MemorySnapshot::effective_total_bytes() const {
  if (cgroup_limit_bytes) return std::min(total_bytes, *cgroup_limit_bytes);
  return total_bytes;
}

LinuxMemorySource::LinuxMemorySource(std::string proc_root, std::string cgroup_root)
    : proc_root_(std::move(proc_root)), cgroup_root_(std::move(cgroup_root)) {}

Expected<MemorySnapshot> LinuxMemorySource::read() {
  MemorySnapshot s;
  PV_TRY_VOID(read_meminfo(proc_root_, s));
  PV_TRY_VOID(read_cgroup(proc_root_, cgroup_root_, s));
  PV_TRY_VOID(read_psi(proc_root_, s));
  return s;
}

Expected<ProcessMemory> read_process_memory(int pid, const std::string& proc_root) {
  const std::string path =
      proc_root + "/" + (pid == 0 ? std::string("self") : std::to_string(pid)) + "/status";
  PV_TRY(std::optional<std::string> text, read_file(path));
  if (!text) return make_error(ErrorCode::kNotFound, "memory: {} does not exist", path);
  ProcessMemory m;
  PV_TRY(m.rss_bytes, require_kb_field(*text, "VmRSS", path));
  PV_TRY(m.rss_anon_bytes, require_kb_field(*text, "RssAnon", path));
  PV_TRY(m.rss_file_bytes, require_kb_field(*text, "RssFile", path));
  PV_TRY(m.swap_bytes, require_kb_field(*text, "VmSwap", path));
  return m;
}

FixedMemorySource::FixedMemorySource(MemorySnapshot snapshot) : snapshot_(std::move(snapshot)) {}

void FixedMemorySource::set(MemorySnapshot snapshot) {
  std::lock_guard<std::mutex> lock(mutex_);
  snapshot_ = std::move(snapshot);
}

Expected<MemorySnapshot> FixedMemorySource::read() {
  std::lock_guard<std::mutex> lock(mutex_);
  return snapshot_;
}

}  // namespace pensieve::memory
