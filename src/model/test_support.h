// Shared by the model tests: the greedy goldens of ../shared/models, comparisons of logits, and
// temporary file names unique to the test process.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <span>
#include <sstream>
#include <string>
#include <vector>

namespace pensieve::model_test {

// ../shared/models/README.md: prompt = BOS, argmax, 60 tokens.
inline constexpr const char* kStories260KGreedy =
    "403 407 261 378 432 383 286 261 376 298 315 421 395 317 426 338 401 396 267 337 410 408 419 "
    "292 411 322 265 282 295 433 426 385 328 432 358 394 261 370 432 352 266 268 388 426 338 391 "
    "266 267 337 335 312 432 398 312 286 267 414 270 333 415";
inline constexpr const char* kTinyStoriesQ8Greedy =
    "147 201 282 215 286 598 1662 356 499 826 1363 1145 1652 615 242 1482 951 628 499 826 872 921 "
    "318 385 628 499 826 617 242 198 1047 425 1939 122 1924 1171 94 303 328 229 521 776 115 1139 "
    "312 447 1456 319 115 133 114 100 167 753 1665 361 303 1900 319 960";
// The F16 file differs from Q8_0 in the last token only.
inline constexpr int32_t kTinyStoriesF16LastToken = 467;

inline std::vector<int32_t> parse_ids(const std::string& text) {
  std::istringstream in(text);
  std::vector<int32_t> ids;
  for (int32_t id; in >> id;) ids.push_back(id);
  return ids;
}

// A path in the temporary directory named after `prefix`, this process and `name`.
inline std::string temp_path(const std::string& prefix, const std::string& name) {
  const std::string unique = prefix + "_" + std::to_string(::getpid()) + "_" + name;
  return (std::filesystem::temp_directory_path() / unique).string();
}

// n token ids spread over [1, n_vocab): a prompt whose content does not matter.
inline std::vector<int32_t> spread_prompt(size_t n, int64_t n_vocab) {
  std::vector<int32_t> prompt(n);
  for (size_t i = 0; i < n; ++i) {
    prompt[i] = static_cast<int32_t>(1 + i * 7919 % static_cast<size_t>(n_vocab - 1));
  }
  return prompt;
}

inline int32_t argmax(std::span<const float> v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

// |a - b| / |a| over the whole vector.
inline double relative_rms(std::span<const float> a, std::span<const float> b) {
  double err = 0, ref = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    err += (a[i] - b[i]) * static_cast<double>(a[i] - b[i]);
    ref += a[i] * static_cast<double>(a[i]);
  }
  return std::sqrt(err / ref);
}

// The largest difference as a fraction of the reference's logit range.
inline double max_diff_over_range(std::span<const float> ref, std::span<const float> got) {
  const auto [lo, hi] = std::minmax_element(ref.begin(), ref.end());
  double diff = 0;
  for (size_t i = 0; i < ref.size(); ++i) diff = std::max(diff, std::fabs(double{ref[i]} - got[i]));
  return diff / (*hi - *lo);
}

}  // namespace pensieve::model_test
