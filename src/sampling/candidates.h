// The token candidates a sampler chain narrows down: ids with logits, later probabilities.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace pensieve {

struct TokenCandidate {
  int32_t id;
  float logit;
  float prob;  // valid after softmax()
};

class Candidates {
 public:
  explicit Candidates(int64_t n_vocab) { items_.reserve(static_cast<size_t>(n_vocab)); }

  // Resets to every token of `logits` (no allocation once reserved).
  void assign(std::span<const float> logits);
  // Sorts by logit, highest first (stable by id for ties, so results are deterministic).
  void sort_descending();
  // Fills prob with softmax(logit); keeps order.
  void softmax();
  void truncate(size_t n) { items_.resize(n); }

  std::vector<TokenCandidate>& items() { return items_; }
  const std::vector<TokenCandidate>& items() const { return items_; }
  size_t size() const { return items_.size(); }
  bool sorted() const { return sorted_; }

 private:
  std::vector<TokenCandidate> items_;
  bool sorted_ = false;
};

}  // namespace pensieve
