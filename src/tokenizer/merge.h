// The merge loop shared by both BPE flavours: symbols are integer units (token ids, or ids for
// characters that are not tokens); an adjacent pair found in a PairTable becomes one unit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace pensieve {

// A merge: the unit the pair becomes, and its priority (lower merges first).
struct PairEntry {
  int32_t merged = -1;
  float priority = 0.0f;
};

// Open-addressing hash table from (left unit, right unit) to PairEntry. Built once, then read-only.
class PairTable {
 public:
  // Adds a pair; the first entry for a pair wins (a merge listed twice keeps its best rank).
  void insert(int32_t left, int32_t right, PairEntry entry);
  const PairEntry* find(int32_t left, int32_t right) const {
    if (slots_.empty()) return nullptr;
    const uint64_t key = pack(left, right);
    for (size_t i = slot_of(key);; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.key == key) return &s.entry;
      if (s.key == kEmpty) return nullptr;
    }
  }
  size_t size() const { return n_used_; }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  struct Slot {
    uint64_t key = kEmpty;
    PairEntry entry;
  };
  static uint64_t pack(int32_t left, int32_t right) {
    return (uint64_t{static_cast<uint32_t>(left)} << 32) | static_cast<uint32_t>(right);
  }
  size_t slot_of(uint64_t key) const {
    return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_);
  }
  void grow();

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  int shift_ = 64;
  size_t n_used_ = 0;
};

// Unit value of a symbol that was merged into its left neighbour.
inline constexpr int32_t kMergedAway = INT32_MIN;

// Repeatedly merges the adjacent pair with the lowest priority (the leftmost one on ties) until
// no adjacent pair is in the table. Units below zero never merge. Holds scratch buffers, so one
// Merger serves many words without allocating.
class Merger {
 public:
  // On return, units[i] is kMergedAway for symbols merged into a left neighbour; the others, in
  // order, are the result.
  void run(const PairTable& table, std::vector<int32_t>* units);

 private:
  struct Candidate {
    float priority;
    int32_t left;  // positions of the two symbols
    int32_t right;
    int32_t left_unit;  // their units when queued; a change means the candidate is stale
    int32_t right_unit;
    int32_t merged;
  };
  // Min-heap order for std::push_heap: lowest priority first, then leftmost.
  struct Later {
    bool operator()(const Candidate& a, const Candidate& b) const {
      return a.priority > b.priority || (a.priority == b.priority && a.left > b.left);
    }
  };
  void push(const PairTable& table, const std::vector<int32_t>& units, int32_t left, int32_t right);
  // Words are mostly short: there a scan for the best pair beats a heap of candidates.
  void run_short(const PairTable& table, std::vector<int32_t>* units);
  void run_long(const PairTable& table, std::vector<int32_t>* units);

  static constexpr size_t kShortWord = 24;

  std::vector<int32_t> next_;
  std::vector<int32_t> prev_;
  std::vector<Candidate> heap_;
};

}  // namespace pensieve
