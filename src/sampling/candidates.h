// The token candidates a sampler chain narrows down: ids with logits, later probabilities.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

namespace pensieve {

struct TokenCandidate {
  int32_t id;
  float logit;
  float prob;  // valid after softmax()
};

// A token and its logit: one of a row's best, as best_tokens() lists them.
struct TokenLogit {
  int32_t id;
  float logit;
};

// The k best tokens of logits (k at most its size), as Candidates::sort_prefix orders them: the
// highest logit first, the lower id first among equal logits. If a logit is not finite, out[0].id
// is -1 instead. out: [k]
void best_tokens(std::span<const float> logits, size_t k, std::span<TokenLogit> out);
// The sum of exp(logit - top) over logits, top their largest: Candidates::softmax's denominator,
// each exponential a float added in double in id order.
double exp_sum(std::span<const float> logits, float top);

class Candidates {
 public:
  explicit Candidates(int64_t n_vocab) { items_.reserve(static_cast<size_t>(n_vocab)); }

  // Resets to every token of `logits` (no allocation once reserved).
  void assign(std::span<const float> logits);
  // Resets to a row's best tokens, in best_tokens()'s order: they count as sorted.
  void assign_best(std::span<const TokenLogit> best);
  // Sorts by logit, highest first, the lower id first among equal logits (a total order, so
  // results are deterministic).
  void sort_descending();
  // The same order for the first n items only: they become the n best, sorted (the rest are
  // left in no particular order). O(size + n log n): a top-k of a vocabulary sorts k, not all.
  void sort_prefix(size_t n);
  // Fills prob with softmax(logit), the sum taken in the current order; keeps order.
  void softmax();
  void truncate(size_t n) {
    items_.resize(n);
    sorted_prefix_ = std::min(sorted_prefix_, n);
  }

  std::vector<TokenCandidate>& items() { return items_; }
  const std::vector<TokenCandidate>& items() const { return items_; }
  size_t size() const { return items_.size(); }
  bool sorted() const { return sorted_prefix_ >= items_.size(); }

 private:
  std::vector<TokenCandidate> items_;
  size_t sorted_prefix_ = 0;  // items [0, sorted_prefix_) are the best, in order
};

}  // namespace pensieve
