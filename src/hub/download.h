// Resumable, verified download of one hub file: bytes go to "<dest>.part" (resumed with a Range
// request when it exists), are hashed while written, checked against the hub's LFS sha256 and
// the GGUF magic, then renamed into place.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "core/result.h"
#include "hub/hub_client.h"

namespace pensieve::hub {

struct DownloadProgress {
  int64_t done_bytes = 0;              // in the part file, resumed bytes included
  std::optional<int64_t> total_bytes;  // when known
  int64_t resumed_from_bytes = 0;      // what the part held when this transfer began
};

struct DownloadOptions {
  int retries = 2;            // transfers resumed after an interruption, within one call
  int retry_delay_ms = 1000;  // times the attempt number
  std::function<void(const DownloadProgress&)> on_progress;  // called per chunk received
};

struct DownloadResult {
  std::string path;
  int64_t size_bytes = 0;
  std::string sha256;              // of the file (empty when already_present)
  bool verified = false;           // the hub gave a sha256 and it matched
  std::string commit;              // X-Repo-Commit
  int64_t resumed_from_bytes = 0;  // bytes a previous run had left in the part file
  bool already_present = false;    // `dest` had the hub's size: nothing was downloaded
};

// Downloads `file` of `repo` at `revision` to `dest_path` (its directory is created).
// Errors start with "pull: ": the hub's answers (not found, denied), an interrupted transfer
// (the part file stays; running again resumes it), a sha256 mismatch or a file that is not GGUF
// (the part file is deleted), a part file another pull holds.
Expected<DownloadResult> download_file(const HubClient& hub, const std::string& repo,
                                       const std::string& file, const std::string& revision,
                                       const std::string& dest_path,
                                       const DownloadOptions& options);

// "bytes 100-199/1000" -> {100, 1000}; "bytes */1000" -> {-1, 1000}; total -1 when "*".
struct ContentRange {
  int64_t start = -1;
  int64_t total = -1;
};
std::optional<ContentRange> parse_content_range(std::string_view text);

}  // namespace pensieve::hub
