#include "sampling/stop_strings.h"

#include <algorithm>

namespace pensieve {

StopMatcher::StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {
  std::erase_if(stops_, [](const std::string& s) { return s.empty(); });
  // pending_ holds at most a stop string's prefix plus one token's text: sized once here, so
  // feed() does not allocate in the token loop.
  size_t longest = 0;
  for (const std::string& stop : stops_) longest = std::max(longest, stop.size());
  pending_.reserve(longest + 256);
}

bool StopMatcher::feed(std::string_view text, std::string* emit) {
  if (stopped()) return true;
  pending_.append(text);
  size_t first = std::string::npos;
  for (size_t i = 0; i < stops_.size(); ++i) {
    const size_t at = pending_.find(stops_[i]);
    if (at < first) {
      first = at;
      matched_ = static_cast<int>(i);
    }
  }
  if (first != std::string::npos) {
    emit->append(pending_, 0, first);
    pending_.clear();
    return true;
  }
  const size_t hold = held_back_length();
  emit->append(pending_, 0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return false;
}

void StopMatcher::flush(std::string* emit) {
  if (!stopped()) emit->append(pending_);
  pending_.clear();
}

std::string_view StopMatcher::matched() const {
  return matched_ < 0 ? std::string_view() : std::string_view(stops_[matched_]);
}

size_t StopMatcher::held_back_length() const {
  size_t best = 0;
  for (const std::string& stop : stops_) {
    const size_t max_len = std::min(stop.size() - 1, pending_.size());
    for (size_t len = max_len; len > best; --len) {
      if (std::string_view(pending_).substr(pending_.size() - len) ==
          std::string_view(stop).substr(0, len)) {
        best = len;
        break;
      }
    }
  }
  return best;
}

}  // namespace pensieve
