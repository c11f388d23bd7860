#include "sampling/candidates.h"

#include <algorithm>
#include <cmath>

namespace pensieve {

void Candidates::assign(std::span<const float> logits) {
  items_.resize(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) {
    items_[i] = TokenCandidate{static_cast<int32_t>(i), logits[i], 0.0f};
  }
  sorted_prefix_ = 0;
}

void Candidates::assign_best(std::span<const TokenLogit> best) {
  items_.resize(best.size());
  for (size_t i = 0; i < best.size(); ++i) items_[i] = {best[i].id, best[i].logit, 0.0f};
  sorted_prefix_ = best.size();
}

namespace {

template <class T>
bool better(const T& a, const T& b) {
  return a.logit != b.logit ? a.logit > b.logit : a.id < b.id;
}

}  // namespace

// `out` holds a heap of the k best seen so far, the worst of them on top, which each better token
// replaces; then it is sorted. No allocation: this runs every step on a CPU.
void best_tokens(std::span<const float> logits, size_t k, std::span<TokenLogit> out) {
  const std::span<TokenLogit> heap = out.first(k);
  size_t filled = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    if (!std::isfinite(logits[i])) {
      out[0] = {-1, logits[i]};
      return;
    }
    const TokenLogit token{static_cast<int32_t>(i), logits[i]};
    if (filled < k) {
      heap[filled++] = token;
      std::push_heap(heap.begin(), heap.begin() + static_cast<std::ptrdiff_t>(filled),
                     better<TokenLogit>);
    } else if (better(token, heap[0])) {
      std::pop_heap(heap.begin(), heap.end(), better<TokenLogit>);
      heap[k - 1] = token;
      std::push_heap(heap.begin(), heap.end(), better<TokenLogit>);
    }
  }
  std::sort_heap(heap.begin(), heap.end(), better<TokenLogit>);
}

double exp_sum(std::span<const float> logits, float top) {
  double sum = 0;
  for (float logit : logits) sum += std::exp(logit - top);
  return sum;
}

void Candidates::sort_descending() { sort_prefix(items_.size()); }

void Candidates::sort_prefix(size_t n) {
  n = std::min(n, items_.size());
  if (n <= sorted_prefix_) return;
  const auto end = items_.begin() + static_cast<std::ptrdiff_t>(n);
  // A few: a heap-based partial sort (most candidates fail one comparison with the heap's top).
  // More: the n best to the front (linear on average), then sorted.
  constexpr size_t kHeapMost = 256;
  if (n <= kHeapMost && n < items_.size()) {
    std::partial_sort(items_.begin(), end, items_.end(), better<TokenCandidate>);
  } else {
    if (n < items_.size())
      std::nth_element(items_.begin(), end, items_.end(), better<TokenCandidate>);
    std::sort(items_.begin(), end, better<TokenCandidate>);
  }
  sorted_prefix_ = n;
}

void Candidates::softmax() {
  if (items_.empty()) return;
  float max = items_[0].logit;
  for (const TokenCandidate& c : items_) max = std::max(max, c.logit);
  double sum = 0;
  for (TokenCandidate& c : items_) {
    c.prob = std::exp(c.logit - max);
    sum += c.prob;
  }
  for (TokenCandidate& c : items_) c.prob = static_cast<float>(c.prob / sum);
}

}  // namespace pensieve
