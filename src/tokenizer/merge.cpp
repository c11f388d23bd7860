#include "tokenizer/merge.h"

#include <algorithm>

namespace pensieve {

void PairTable::insert(int32_t left, int32_t right, PairEntry entry) {
  if ((n_used_ + 1) * 2 > slots_.size()) grow();
  const uint64_t key = pack(left, right);
  for (size_t i = slot_of(key);; i = (i + 1) & mask_) {
    Slot& s = slots_[i];
    if (s.key == key) return;
    if (s.key == kEmpty) {
      s.key = key;
      s.entry = entry;
      ++n_used_;
      return;
    }
  }
}

void PairTable::grow() {
  std::vector<Slot> old = std::move(slots_);
  const size_t capacity = old.empty() ? 64 : old.size() * 2;
  slots_.assign(capacity, Slot{});
  mask_ = capacity - 1;
  shift_ = 64 - __builtin_ctzll(capacity);
  n_used_ = 0;
  for (const Slot& s : old) {
    if (s.key != kEmpty) {
      insert(static_cast<int32_t>(s.key >> 32), static_cast<int32_t>(s.key & 0xFFFFFFFFu), s.entry);
    }
  }
}

void Merger::push(const PairTable& table, const std::vector<int32_t>& units, int32_t left,
                  int32_t right) {
  if (left < 0 || right < 0) return;
  const int32_t lu = units[left];
  const int32_t ru = units[right];
  if (lu < 0 || ru < 0) return;
  const PairEntry* e = table.find(lu, ru);
  if (e == nullptr) return;
  heap_.push_back({e->priority, left, right, lu, ru, e->merged});
  std::push_heap(heap_.begin(), heap_.end(), Later());
}

void Merger::run(const PairTable& table, std::vector<int32_t>* units) {
  if (units->size() < 2) return;
  if (units->size() <= kShortWord) {
    run_short(table, units);
  } else {
    run_long(table, units);
  }
}

void Merger::run_short(const PairTable& table, std::vector<int32_t>* units) {
  std::vector<int32_t>& u = *units;
  const size_t n = u.size();
  int32_t unit[kShortWord];           // live symbols, in order
  int32_t where[kShortWord];          // their positions in u
  const PairEntry* pair[kShortWord];  // pair[i]: symbols i and i + 1, or null
  auto lookup = [&](size_t i) {
    return unit[i] >= 0 && unit[i + 1] >= 0 ? table.find(unit[i], unit[i + 1]) : nullptr;
  };
  for (size_t i = 0; i < n; ++i) {
    unit[i] = u[i];
    where[i] = static_cast<int32_t>(i);
  }
  size_t m = n;
  for (size_t i = 0; i + 1 < m; ++i) pair[i] = lookup(i);
  while (true) {
    size_t best = m;
    for (size_t i = 0; i + 1 < m; ++i) {
      if (pair[i] != nullptr && (best == m || pair[i]->priority < pair[best]->priority)) best = i;
    }
    if (best == m) break;
    unit[best] = pair[best]->merged;
    for (size_t i = best + 1; i + 1 < m; ++i) {
      unit[i] = unit[i + 1];
      where[i] = where[i + 1];
      pair[i] = pair[i + 1];
    }
    --m;
    if (best > 0) pair[best - 1] = lookup(best - 1);
    if (best + 1 < m) pair[best] = lookup(best);
  }
  std::fill(u.begin(), u.end(), kMergedAway);
  for (size_t i = 0; i < m; ++i) u[where[i]] = unit[i];
}

void Merger::run_long(const PairTable& table, std::vector<int32_t>* units) {
  std::vector<int32_t>& u = *units;
  const auto n = static_cast<int32_t>(u.size());
  next_.resize(n);
  prev_.resize(n);
  for (int32_t i = 0; i < n; ++i) {
    prev_[i] = i - 1;
    next_[i] = i + 1 < n ? i + 1 : -1;
  }
  heap_.clear();
  for (int32_t i = 0; i + 1 < n; ++i) push(table, u, i, i + 1);
  while (!heap_.empty()) {
    std::pop_heap(heap_.begin(), heap_.end(), Later());
    const Candidate c = heap_.back();
    heap_.pop_back();
    if (u[c.left] != c.left_unit || u[c.right] != c.right_unit || next_[c.left] != c.right) {
      continue;  // one side changed since this pair was queued
    }
    u[c.left] = c.merged;
    u[c.right] = kMergedAway;
    const int32_t after = next_[c.right];
    next_[c.left] = after;
    if (after >= 0) prev_[after] = c.left;
    push(table, u, prev_[c.left], c.left);
    push(table, u, c.left, after);
  }
}

}  // namespace pensieve
