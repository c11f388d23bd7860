#include "server/request_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "server/json_fields.h"

namespace pensieve::server {
namespace {

std::string to_lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// "2026-01-02T03:04:05.678Z" (iso) or "20260102T030405.678Z" (compact, for file names).
std::string utc_time(std::chrono::system_clock::time_point when, bool compact) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(when.time_since_epoch());
  const std::time_t seconds = static_cast<std::time_t>(ms.count() / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[32];
  std::strftime(text, sizeof(text), compact ? "%Y%m%dT%H%M%S" : "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03d}Z", text, static_cast<int>(ms.count() % 1000));
}

// Writes all of `text` to a new file at `path` (mode 0600); false with errno set on failure.
bool write_private_file(const std::string& path, std::string_view text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int saved = errno;
      ::close(fd);
      errno = saved;
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return ::close(fd) == 0;
}

}  // namespace

bool logged_route(std::string_view path) {
  return path == "/v1/messages" || path == "/v1/messages/count_tokens" ||
         path == "/v1/chat/completions";
}

bool secret_header(std::string_view name) {
  const std::string lower = to_lower(name);
  for (std::string_view word : {"key", "token", "secret", "auth", "password", "cookie"}) {
    if (lower.find(word) != std::string::npos) return true;
  }
  return false;
}

std::string request_log_name(std::chrono::system_clock::time_point received,
                             std::string_view request_id, std::string_view path) {
  std::string route(path.starts_with("/v1/") ? path.substr(4) : path);
  for (char& c : route) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  // "messages/count_tokens" -> "count_tokens": the last segment names the route well enough.
  if (route.starts_with("messages_") && route.size() > 9) route = route.substr(9);
  return fmt::format("{}-{}-{}.json", utc_time(received, true), request_id, route);
}

std::string request_log_text(std::chrono::system_clock::time_point received,
                             const HttpRequest& request, std::string_view request_id,
                             const HttpResponse& response) {
  Json headers = Json::object();
  for (const auto& [name, value] : request.headers) {
    if (!secret_header(name)) headers[to_lower(name)] = value;
  }
  Json query = Json::object();
  for (const auto& [name, value] : request.params) query[name] = value;
  Json entry = {{"received_at", utc_time(received, false)},
                {"request_id", request_id},
                {"method", request.method},
                {"path", request.path},
                {"query", std::move(query)},
                {"headers", std::move(headers)},
                {"status", response.status}};
  if (response.status >= 400) {
    Json error = Json::parse(response.body, nullptr, false);
    entry["error"] = error.is_discarded() ? Json(response.body) : std::move(error);
  }
  entry["body_bytes"] = request.body.size();
  Json body = Json::parse(request.body, nullptr, false);
  entry["body"] = body.is_discarded() ? Json(request.body) : std::move(body);
  // Invalid UTF-8 in a body is replaced rather than thrown on: the log must never fail a request.
  return entry.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

Expected<std::string> write_request_log(const std::string& dir, const HttpRequest& request,
                                        std::string_view request_id, const HttpResponse& response) {
  const auto received = std::chrono::system_clock::now();
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    std::filesystem::create_directories(dir, ec);
    if (ec) {
      return make_error(ErrorCode::kIo, "request log: cannot create directory '{}': {}", dir,
                        ec.message());
    }
    // Prompts can be private: the directory is its owner's alone.
    std::filesystem::permissions(dir, std::filesystem::perms::owner_all, ec);
  }
  const std::string path =
      (std::filesystem::path(dir) / request_log_name(received, request_id, request.path)).string();
  const std::string text = request_log_text(received, request, request_id, response);
  // Written under a temporary name and renamed, so a reader never sees half a file.
  const std::string partial = path + ".part";
  if (!write_private_file(partial, text)) {
    const std::string why = std::strerror(errno);
    ::unlink(partial.c_str());
    return make_error(ErrorCode::kIo, "request log: cannot write '{}': {}", partial, why);
  }
  if (::rename(partial.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(partial.c_str());
    return make_error(ErrorCode::kIo, "request log: cannot rename '{}': {}", partial, why);
  }
  return path;
}

}  // namespace pensieve::server
