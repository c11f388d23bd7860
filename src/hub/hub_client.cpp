#include "hub/hub_client.h"

#include <cstdlib>

#include <nlohmann/json.hpp>

#include "hub/sha256.h"

namespace pensieve::hub {
namespace {

std::string env_or(const char* name, std::string fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::string(value) : fallback;
}

std::optional<int64_t> parse_size(const std::optional<std::string>& text) {
  if (!text || text->empty()) return std::nullopt;
  char* end = nullptr;
  const long long value = std::strtoll(text->c_str(), &end, 10);
  if (*end != '\0' || value < 0) return std::nullopt;
  return static_cast<int64_t>(value);
}

// W/"abc" or "abc" -> abc.
std::string normalize_etag(std::string etag) {
  if (etag.starts_with("W/")) etag.erase(0, 2);
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  return etag;
}

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.';
}

// A message from the hub, for the end of an error ("": none).
std::string hub_message(const HttpResponse& response) {
  if (auto message = response.header("x-error-message")) return *message;
  nlohmann::json body = nlohmann::json::parse(response.body, nullptr, false);
  if (body.is_object() && body.contains("error") && body["error"].is_string()) {
    return body["error"].get<std::string>();
  }
  return "";
}

}  // namespace

HubOptions hub_options_from_env() {
  HubOptions options;
  options.endpoint =
      env_or("PENSIEVE_HF_ENDPOINT", env_or("HF_ENDPOINT", std::string(kDefaultEndpoint)));
  while (options.endpoint.ends_with('/')) options.endpoint.pop_back();
  options.token = env_or("HF_TOKEN", "");
  return options;
}

HubClient::HubClient(HubOptions options)
    : options_(std::move(options)),
      http_(HttpClientOptions{.bearer_token = options_.token,
                              .user_agent = "pensieve",
                              .connect_timeout_s = 30,
                              .stall_timeout_s = 60,
                              .max_redirects = 10,
                              .max_body_bytes = 32 << 20}) {}

std::string HubClient::resolve_url(const std::string& repo, const std::string& file,
                                   const std::string& revision) const {
  return options_.endpoint + "/" + repo + "/resolve/" + url_encode(revision, false) + "/" +
         url_encode(file, true);
}

Expected<std::vector<RepoFile>> HubClient::list_files(const std::string& repo,
                                                      const std::string& revision) const {
  PV_TRY_VOID(validate_repo_id(repo));
  // ?blobs=true adds each file's size (and LFS hash) to the siblings.
  std::string url = options_.endpoint + "/api/models/" + repo;
  if (revision != "main") url += "/revision/" + url_encode(revision, false);
  url += "?blobs=true";
  HttpRequest request;
  request.url = url;
  request.headers = {"Accept: application/json"};
  PV_TRY(HttpResponse response, http_.send(request));
  if (response.status != 200) {
    return Unexpected<Error>(hub_error(response, repo, "", revision, !options_.token.empty()));
  }
  nlohmann::json body = nlohmann::json::parse(response.body, nullptr, false);
  if (!body.is_object() || !body.contains("siblings") || !body["siblings"].is_array()) {
    return make_error(ErrorCode::kInvalidFormat,
                      "pull: the hub's answer for {} ({}) has no list of files", repo, url);
  }
  std::vector<RepoFile> files;
  for (const nlohmann::json& sibling : body["siblings"]) {
    if (!sibling.is_object() || !sibling.contains("rfilename") ||
        !sibling["rfilename"].is_string()) {
      return make_error(ErrorCode::kInvalidFormat,
                        "pull: the hub's answer for {} lists a file without a name", repo);
    }
    RepoFile file;
    file.path = sibling["rfilename"].get<std::string>();
    if (sibling.contains("size") && sibling["size"].is_number_unsigned()) {
      file.size_bytes = sibling["size"].get<int64_t>();
    }
    files.push_back(std::move(file));
  }
  return files;
}

Expected<FileMetadata> HubClient::file_metadata(const std::string& repo, const std::string& file,
                                                const std::string& revision) const {
  PV_TRY_VOID(validate_repo_id(repo));
  PV_TRY_VOID(validate_repo_file(file));
  HttpRequest request;
  request.method = "HEAD";
  request.url = resolve_url(repo, file, revision);
  // Identity encoding: the sizes in the headers are the file's, not a compressed stream's.
  request.headers = {"Accept-Encoding: identity"};
  request.redirects = Redirects::kSameOrigin;
  PV_TRY(HttpResponse response, http_.send(request));
  const bool redirect = response.status >= 300 && response.status < 400;
  if (response.status != 200 && !redirect) {
    return Unexpected<Error>(hub_error(response, repo, file, revision, !options_.token.empty()));
  }
  FileMetadata meta;
  meta.url = request.url;
  meta.commit = response.header("x-repo-commit").value_or("");
  auto etag = response.header("x-linked-etag");
  if (!etag) etag = response.header("etag");
  if (etag) {
    std::string normalized = normalize_etag(*etag);
    if (is_sha256_hex(normalized)) {
      for (char& c : normalized) {
        if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
      }
      meta.sha256 = normalized;
    }
  }
  meta.size_bytes = parse_size(response.header("x-linked-size"));
  // A redirect's own Content-Length is its (empty) body's, not the file's.
  if (!meta.size_bytes && !redirect)
    meta.size_bytes = parse_size(response.header("content-length"));
  return meta;
}

Error hub_error(const HttpResponse& response, std::string_view repo, std::string_view file,
                std::string_view revision, bool has_token) {
  const std::string code = response.header("x-error-code").value_or("");
  const std::string message = hub_message(response);
  const std::string suffix = message.empty() ? "" : " (" + message + ")";
  const std::string token_hint = has_token ? "" : "; if it is private or gated, set HF_TOKEN";
  if (code == "RepoNotFound" || (code.empty() && file.empty() && response.status == 404) ||
      (code.empty() && response.status == 401)) {
    return Error{ErrorCode::kNotFound,
                 fmt::format("pull: repository '{}' not found at {} (HTTP {}){}{}", repo,
                             response.url, response.status, token_hint, suffix)};
  }
  if (code == "RevisionNotFound") {
    return Error{ErrorCode::kNotFound,
                 fmt::format("pull: revision '{}' not found in {}{}", revision, repo, suffix)};
  }
  if (code == "EntryNotFound" || (code.empty() && response.status == 404)) {
    return Error{ErrorCode::kNotFound,
                 fmt::format("pull: file '{}' not found in {} at revision {}{}", file, repo,
                             revision, suffix)};
  }
  if (code == "GatedRepo" || response.status == 401 || response.status == 403) {
    return Error{ErrorCode::kInvalidArgument,
                 fmt::format("pull: access to {} denied (HTTP {}): accept its terms on the hub "
                             "and set HF_TOKEN to a token that may read it{}",
                             repo, response.status, suffix)};
  }
  return Error{ErrorCode::kUnavailable,
               fmt::format("pull: HTTP {} from {}{}", response.status, response.url, suffix)};
}

Expected<void> validate_repo_id(std::string_view repo) {
  const size_t slash = repo.find('/');
  auto part_ok = [](std::string_view part) {
    if (part.empty() || part == "." || part == ".." || part.size() > 96) return false;
    for (char c : part) {
      if (!is_name_char(c)) return false;
    }
    return true;
  };
  if (slash == std::string_view::npos || !part_ok(repo.substr(0, slash)) ||
      !part_ok(repo.substr(slash + 1))) {
    return make_error(ErrorCode::kInvalidArgument,
                      "pull: '{}' is not a repository id like owner/name (letters, digits, '-', "
                      "'_', '.')",
                      repo);
  }
  return {};
}

Expected<void> validate_repo_file(std::string_view file) {
  auto bad = [&](std::string_view why) {
    return make_error(ErrorCode::kInvalidArgument, "pull: file name '{}' {}", file, why);
  };
  if (file.empty()) return bad("is empty");
  if (file.front() == '/') return bad("is absolute");
  if (file.find('\\') != std::string_view::npos || file.find('\0') != std::string_view::npos) {
    return bad("has a backslash or a NUL");
  }
  size_t start = 0;
  while (start <= file.size()) {
    size_t end = file.find('/', start);
    if (end == std::string_view::npos) end = file.size();
    const std::string_view part = file.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return bad("has an empty, '.' or '..' part");
    start = end + 1;
  }
  return {};
}

}  // namespace pensieve::hub
