// The Hugging Face hub's public HTTP API, as much of it as `pensieve pull` needs: a repository's
// file list (GET /api/models/{repo}) and a file's metadata and download URL
// (HEAD /{repo}/resolve/{revision}/{file}: X-Repo-Commit, X-Linked-Etag, X-Linked-Size).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "hub/http_client.h"

namespace pensieve::hub {

inline constexpr std::string_view kDefaultEndpoint = "https://huggingface.co";

struct HubOptions {
  std::string endpoint = std::string(kDefaultEndpoint);  // no trailing '/'
  std::string token;                                     // empty: anonymous
};

// PENSIEVE_HF_ENDPOINT, else HF_ENDPOINT, else huggingface.co; HF_TOKEN as the token.
HubOptions hub_options_from_env();

struct RepoFile {
  std::string path;                   // "Q4_K_M/model.gguf"
  std::optional<int64_t> size_bytes;  // when the hub says
};

struct FileMetadata {
  std::string url;                    // the resolve URL (downloads start there)
  std::string commit;                 // X-Repo-Commit, "" when absent
  std::optional<std::string> sha256;  // LFS files: the content's hash (lowercase hex)
  std::optional<int64_t> size_bytes;  // X-Linked-Size, else Content-Length
};

class HubClient {
 public:
  explicit HubClient(HubOptions options);

  const HubOptions& options() const { return options_; }
  const HttpClient& http() const { return http_; }

  // Every file of the model repository at `revision`.
  Expected<std::vector<RepoFile>> list_files(const std::string& repo,
                                             const std::string& revision) const;
  // A file's metadata from a HEAD of its resolve URL (redirects within the hub are followed,
  // the one to the CDN is not: its headers carry the LFS metadata).
  Expected<FileMetadata> file_metadata(const std::string& repo, const std::string& file,
                                       const std::string& revision) const;

  std::string resolve_url(const std::string& repo, const std::string& file,
                          const std::string& revision) const;

 private:
  HubOptions options_;
  HttpClient http_;
};

// An operator-readable error for a hub answer that is not a success, from its status and the
// hub's X-Error-Code / X-Error-Message headers: "pull: repository 'a/b' not found on ...".
Error hub_error(const HttpResponse& response, std::string_view repo, std::string_view file,
                std::string_view revision, bool has_token);

// "owner/name" with letters, digits, '-', '_', '.' (not "." or ".." parts).
Expected<void> validate_repo_id(std::string_view repo);
// A relative path inside a repository: no empty, "." or ".." parts, no leading '/', no '\\'.
Expected<void> validate_repo_file(std::string_view file);

}  // namespace pensieve::hub
