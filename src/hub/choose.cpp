#include "hub/choose.h"

#include <algorithm>
#include <cstdint>

namespace pensieve::hub {
namespace {

std::string to_upper(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

bool all_digits(std::string_view text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool smaller(const RepoFile& a, const RepoFile& b) {
  constexpr int64_t kUnknown = INT64_MAX;
  const int64_t sa = a.size_bytes.value_or(kUnknown);
  const int64_t sb = b.size_bytes.value_or(kUnknown);
  if (sa != sb) return sa < sb;
  return a.path < b.path;
}

}  // namespace

bool is_split_shard(std::string_view path) {
  // NAME-00001-of-00003.gguf: "-" 5 digits "-of-" 5 digits ".gguf".
  const std::string upper = to_upper(path);
  if (!upper.ends_with(".GGUF")) return false;
  std::string_view stem = std::string_view(upper).substr(0, upper.size() - 5);
  if (stem.size() < 15) return false;
  std::string_view tail = stem.substr(stem.size() - 15);  // -00001-OF-00003
  return tail[0] == '-' && all_digits(tail.substr(1, 5)) && tail.substr(6, 4) == "-OF-" &&
         all_digits(tail.substr(10, 5));
}

Expected<GgufChoice> choose_gguf(const std::string& repo, const std::vector<RepoFile>& files) {
  GgufChoice choice;
  std::vector<std::string> skipped;
  for (const RepoFile& file : files) {
    const std::string upper = to_upper(file.path);
    if (!upper.ends_with(".GGUF")) continue;
    if (upper.find("MMPROJ") != std::string::npos || is_split_shard(file.path)) {
      skipped.push_back(file.path);
      continue;
    }
    choice.candidates.push_back(file);
  }
  if (choice.candidates.empty()) {
    if (skipped.empty()) {
      return make_error(ErrorCode::kNotFound, "pull: {} has no .gguf file ({} files)", repo,
                        files.size());
    }
    return make_error(ErrorCode::kNotFound,
                      "pull: {} has no single-file GGUF model: only split shards or vision "
                      "projectors ({}, ...)",
                      repo, skipped.front());
  }
  std::sort(choice.candidates.begin(), choice.candidates.end(),
            [](const RepoFile& a, const RepoFile& b) { return a.path < b.path; });
  for (std::string_view tag : {"Q4_K_M", "Q4_0", ""}) {
    const RepoFile* best = nullptr;
    for (const RepoFile& file : choice.candidates) {
      if (!tag.empty() && to_upper(file.path).find(tag) == std::string::npos) continue;
      if (best == nullptr || smaller(file, *best)) best = &file;
    }
    if (best != nullptr) {
      choice.chosen = *best;
      break;
    }
  }
  return choice;
}

}  // namespace pensieve::hub
