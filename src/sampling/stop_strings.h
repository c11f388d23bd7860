// Stop strings over streamed text: text is released only once it cannot be the start of a stop
// string, so a stop string split across tokens is still caught and never shown.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pensieve {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops);

  // Adds generated text. Appends to *emit what is safe to show. Returns true when a stop string
  // completed: *emit then ends right before it, and the matcher is finished.
  bool feed(std::string_view text, std::string* emit);
  // End of generation: releases any held-back text.
  void flush(std::string* emit);

  bool stopped() const { return matched_ >= 0; }
  // The stop string that matched, or empty.
  std::string_view matched() const;

 private:
  // Length of the longest suffix of pending_ that is a proper prefix of some stop string.
  size_t held_back_length() const;

  std::vector<std::string> stops_;
  std::string pending_;
  int matched_ = -1;
};

}  // namespace pensieve
