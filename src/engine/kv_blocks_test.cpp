// KvBlocks: allocation and reference counts, the prefix index (matching, duplicates, hash
// collisions), LRU eviction, and a long random run checked against a naive reference model.
#include "engine/kv_blocks.h"

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include <gtest/gtest.h>

namespace pensieve {
namespace {

constexpr int kB = KvBlocks::kBlockPositions;

void expect_counts_add_up(const KvBlocks& kv) {
  EXPECT_EQ(kv.n_free() + kv.n_cached() + kv.n_referenced(), kv.n_blocks());
}

// `n_blocks` blocks' worth of tokens, different for every `seed`.
std::vector<int32_t> prompt(int n_blocks, int32_t seed, int extra = 0) {
  std::vector<int32_t> tokens(n_blocks * kB + extra);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = seed * 100000 + static_cast<int32_t>(i);
  return tokens;
}

std::span<const int32_t> block_of(const std::vector<int32_t>& tokens, size_t i) {
  return std::span<const int32_t>(tokens).subspan(i * kB, kB);
}

// Allocates and publishes the full blocks of `tokens`, as a sequence that evaluated them would.
std::vector<int32_t> fill(KvBlocks& kv, const std::vector<int32_t>& tokens) {
  std::vector<int32_t> table;
  for (size_t i = 0; i < tokens.size() / kB; ++i) {
    const std::optional<int32_t> block = kv.allocate();
    EXPECT_TRUE(block.has_value());
    if (!block) break;
    const int32_t parent = i == 0 ? KvBlocks::kNoParent : table.back();
    table.push_back(kv.publish(*block, parent, block_of(tokens, i)));
  }
  return table;
}

TEST(KvBlocks, AllocatesUntilExhausted) {
  KvBlocks kv(4);
  std::set<int32_t> seen;
  for (int i = 0; i < 4; ++i) {
    const std::optional<int32_t> block = kv.allocate();
    ASSERT_TRUE(block.has_value());
    EXPECT_EQ(kv.refcount(*block), 1);
    seen.insert(*block);
    expect_counts_add_up(kv);
  }
  EXPECT_EQ(seen.size(), 4u);
  EXPECT_FALSE(kv.allocate().has_value());
  EXPECT_EQ(kv.n_free(), 0);
  EXPECT_EQ(kv.n_referenced(), 4);
}

TEST(KvBlocks, ReleaseReturnsBlockToFreeList) {
  KvBlocks kv(2);
  const int32_t a = *kv.allocate();
  const int32_t b = *kv.allocate();
  EXPECT_FALSE(kv.allocate().has_value());
  kv.release(a);
  EXPECT_EQ(kv.n_free(), 1);
  EXPECT_EQ(kv.n_cached(), 0);
  expect_counts_add_up(kv);
  EXPECT_EQ(kv.allocate(), a);
  kv.release(a);
  kv.release(b);
  EXPECT_EQ(kv.n_free(), 2);
  EXPECT_EQ(kv.n_referenced(), 0);
}

TEST(KvBlocks, RefcountsCountReferences) {
  KvBlocks kv(3);
  const int32_t a = *kv.allocate();
  kv.retain(a);
  kv.retain(a);
  EXPECT_EQ(kv.refcount(a), 3);
  EXPECT_EQ(kv.n_referenced(), 1);
  kv.release(a);
  kv.release(a);
  EXPECT_EQ(kv.refcount(a), 1);
  EXPECT_EQ(kv.n_free(), 2);
  kv.release(a);
  EXPECT_EQ(kv.refcount(a), 0);
  EXPECT_EQ(kv.n_free(), 3);
}

TEST(KvBlocks, MatchReturnsPublishedBlocksRetained) {
  KvBlocks kv(8);
  const std::vector<int32_t> tokens = prompt(3, 1, 5);
  const std::vector<int32_t> table = fill(kv, tokens);
  ASSERT_EQ(table.size(), 3u);
  kv.release_all(table);
  EXPECT_EQ(kv.n_cached(), 3);
  expect_counts_add_up(kv);

  const std::vector<int32_t> matched = kv.match_prefix(tokens);
  EXPECT_EQ(matched, table);
  for (int32_t block : matched) EXPECT_EQ(kv.refcount(block), 1);
  EXPECT_EQ(kv.n_cached(), 0);
  EXPECT_EQ(kv.n_referenced(), 3);
  // A second sequence with the same prefix shares the same blocks.
  EXPECT_EQ(kv.match_prefix(tokens), table);
  for (int32_t block : table) EXPECT_EQ(kv.refcount(block), 2);
  expect_counts_add_up(kv);
}

TEST(KvBlocks, DifferentTokenStopsMatchAtThatBlock) {
  for (size_t k = 0; k < 4; ++k) {
    for (size_t offset : {size_t{0}, size_t{17}, size_t{kB - 1}}) {
      KvBlocks kv(8);
      const std::vector<int32_t> tokens = prompt(4, 2, 1);
      const std::vector<int32_t> table = fill(kv, tokens);
      kv.release_all(table);
      std::vector<int32_t> other = tokens;
      other[k * kB + offset] += 1;
      const std::vector<int32_t> matched = kv.match_prefix(other);
      EXPECT_EQ(matched, std::vector<int32_t>(table.begin(), table.begin() + k))
          << "changed token " << k * kB + offset;
      kv.release_all(matched);
      expect_counts_add_up(kv);
    }
  }
}

TEST(KvBlocks, KeepLastNeverMatchesTheBlockWithTheLastToken) {
  KvBlocks kv(8);
  const std::vector<int32_t> tokens = prompt(3, 3);
  kv.release_all(fill(kv, tokens));
  const auto n_matched = [&](size_t n_tokens, bool keep_last) {
    const std::vector<int32_t> matched =
        kv.match_prefix(std::span<const int32_t>(tokens).first(n_tokens), keep_last);
    kv.release_all(matched);
    return matched.size();
  };
  EXPECT_EQ(n_matched(0, true), 0u);
  EXPECT_EQ(n_matched(1, true), 0u);
  EXPECT_EQ(n_matched(32, true), 0u);
  EXPECT_EQ(n_matched(32, false), 1u);
  EXPECT_EQ(n_matched(33, true), 1u);
  EXPECT_EQ(n_matched(64, true), 1u);
  EXPECT_EQ(n_matched(64, false), 2u);
  EXPECT_EQ(n_matched(95, true), 2u);
  EXPECT_EQ(n_matched(96, true), 2u);
  EXPECT_EQ(n_matched(96, false), 3u);
  expect_counts_add_up(kv);
}

TEST(KvBlocks, AllocateEvictsLeastRecentlyUsedCachedBlock) {
  KvBlocks kv(3);
  const std::vector<int32_t> a = prompt(1, 4);
  const std::vector<int32_t> b = prompt(1, 5);
  const std::vector<int32_t> c = prompt(1, 6);
  const std::vector<int32_t> ta = fill(kv, a);
  const std::vector<int32_t> tb = fill(kv, b);
  const std::vector<int32_t> tc = fill(kv, c);
  kv.release_all(tb);
  kv.release_all(ta);
  kv.release_all(tc);
  EXPECT_EQ(kv.n_cached(), 3);
  // Touch b: now a is the least recently used.
  kv.release_all(kv.match_prefix(b, false));

  EXPECT_EQ(kv.allocate(), ta[0]);
  EXPECT_FALSE(kv.is_indexed(ta[0]));
  EXPECT_TRUE(kv.match_prefix(a, false).empty());
  EXPECT_EQ(kv.n_cached(), 2);
  expect_counts_add_up(kv);
  EXPECT_EQ(kv.allocate(), tc[0]);
  EXPECT_EQ(kv.match_prefix(b, false), tb);
}

TEST(KvBlocks, ReferencedCachedBlockIsNeverEvicted) {
  KvBlocks kv(2);
  const std::vector<int32_t> tokens = prompt(1, 7);
  const std::vector<int32_t> table = fill(kv, tokens);  // still referenced
  ASSERT_TRUE(kv.is_indexed(table[0]));
  const int32_t other = *kv.allocate();
  EXPECT_FALSE(kv.allocate().has_value());
  EXPECT_EQ(kv.evict_cached(0), 0);
  EXPECT_TRUE(kv.is_indexed(table[0]));
  kv.release(other);
  EXPECT_EQ(kv.allocate(), other);
  EXPECT_EQ(kv.refcount(table[0]), 1);
  kv.release_all(table);
  EXPECT_EQ(kv.n_cached(), 1);
  EXPECT_EQ(kv.allocate(), table[0]);  // now it may go
  expect_counts_add_up(kv);
}

TEST(KvBlocks, EvictCachedShrinksToLimit) {
  KvBlocks kv(8);
  for (int32_t seed = 10; seed < 15; ++seed) kv.release_all(fill(kv, prompt(1, seed)));
  EXPECT_EQ(kv.n_cached(), 5);
  EXPECT_EQ(kv.evict_cached(7), 0);
  EXPECT_EQ(kv.evict_cached(2), 3);
  EXPECT_EQ(kv.n_cached(), 2);
  EXPECT_EQ(kv.n_free(), 6);
  // The three oldest went.
  for (int32_t seed = 10; seed < 13; ++seed)
    EXPECT_TRUE(kv.match_prefix(prompt(1, seed), false).empty());
  EXPECT_EQ(kv.match_prefix(prompt(1, 14), false).size(), 1u);
  EXPECT_EQ(kv.evict_cached(0), 1);
  expect_counts_add_up(kv);
}

TEST(KvBlocks, EvictingAPrefixFreesItsContinuations) {
  KvBlocks kv(8);
  const std::vector<int32_t> tokens = prompt(3, 16);
  const std::vector<int32_t> table = fill(kv, tokens);
  // Front to back leaves the first block least recently used.
  for (int32_t block : table) kv.release(block);
  EXPECT_EQ(kv.evict_cached(2), 3);  // its continuations can never match again
  EXPECT_EQ(kv.n_cached(), 0);
  EXPECT_EQ(kv.n_free(), 8);
}

TEST(KvBlocks, PublishOfDuplicateReturnsExistingBlock) {
  KvBlocks kv(4);
  const std::vector<int32_t> tokens = prompt(2, 17);
  const std::vector<int32_t> first = fill(kv, tokens);
  // A second sequence computed the same prefix without matching it (e.g. concurrently).
  const int32_t mine = *kv.allocate();
  EXPECT_EQ(kv.publish(mine, KvBlocks::kNoParent, block_of(tokens, 0)), first[0]);
  EXPECT_EQ(kv.refcount(first[0]), 2);
  EXPECT_EQ(kv.refcount(mine), 0);
  EXPECT_FALSE(kv.is_indexed(mine));
  EXPECT_EQ(kv.n_free(), 2);
  // Duplicates of cached (unreferenced) blocks are retained too.
  kv.release_all(first);
  const int32_t mine2 = *kv.allocate();
  EXPECT_EQ(kv.publish(mine2, first[0], block_of(tokens, 1)), first[1]);
  EXPECT_EQ(kv.refcount(first[1]), 1);
  EXPECT_EQ(kv.n_cached(), 0);
  expect_counts_add_up(kv);
}

TEST(KvBlocks, UnindexedParentIsNotShared) {
  KvBlocks kv(4);
  const std::vector<int32_t> tokens = prompt(2, 18);
  const int32_t parent = *kv.allocate();  // never published
  const int32_t child = *kv.allocate();
  EXPECT_EQ(kv.publish(child, parent, block_of(tokens, 1)), child);
  EXPECT_FALSE(kv.is_indexed(child));
}

uint64_t constant_hash(uint64_t, std::span<const int32_t>) { return 42; }
uint64_t hash_ignoring_parent(uint64_t, std::span<const int32_t> tokens) {
  return KvBlocks::chain_hash(0, tokens);
}

TEST(KvBlocks, EqualHashesWithDifferentTokensDoNotMatch) {
  KvBlocks kv(4, &constant_hash);
  const std::vector<int32_t> a = prompt(1, 19);
  const std::vector<int32_t> b = prompt(1, 20);
  const std::vector<int32_t> ta = fill(kv, a);
  const std::vector<int32_t> tb = fill(kv, b);
  EXPECT_TRUE(kv.is_indexed(ta[0]));
  EXPECT_FALSE(kv.is_indexed(tb[0]));  // its hash is taken
  kv.release_all(ta);
  kv.release_all(tb);
  EXPECT_TRUE(kv.match_prefix(b, false).empty());
  EXPECT_EQ(kv.match_prefix(a, false), ta);
}

TEST(KvBlocks, SameTokensAfterDifferentPrefixDoNotMatch) {
  KvBlocks kv(4, &hash_ignoring_parent);
  std::vector<int32_t> tokens = prompt(2, 21);
  const std::vector<int32_t> table = fill(kv, tokens);
  kv.release_all(table);
  // Block 1's tokens at position 0 hash like block 1 but follow a different (empty) prefix.
  const std::vector<int32_t> moved(tokens.begin() + kB, tokens.end());
  EXPECT_TRUE(kv.match_prefix(moved, false).empty());
  EXPECT_EQ(kv.match_prefix(tokens, false), table);
}

TEST(KvBlocks, CountsHitAndLookupTokens) {
  KvBlocks kv(4);
  const std::vector<int32_t> tokens = prompt(2, 22, 10);
  kv.release_all(fill(kv, tokens));
  kv.release_all(kv.match_prefix(tokens));
  kv.release_all(kv.match_prefix(prompt(2, 23)));
  EXPECT_EQ(kv.hit_tokens(), 64);
  EXPECT_EQ(kv.lookup_tokens(), 74 + 64);
}

TEST(KvBlocks, ChainHashDependsOnParentAndEveryToken) {
  const std::vector<int32_t> tokens = prompt(1, 24);
  const uint64_t h = KvBlocks::chain_hash(KvBlocks::kRootHash, tokens);
  EXPECT_NE(KvBlocks::chain_hash(KvBlocks::kRootHash + 1, tokens), h);
  std::set<uint64_t> seen{h};
  for (size_t i = 0; i < tokens.size(); ++i) {
    std::vector<int32_t> other = tokens;
    other[i] ^= 1;
    seen.insert(KvBlocks::chain_hash(KvBlocks::kRootHash, other));
  }
  EXPECT_EQ(seen.size(), tokens.size() + 1);
  // Swapping two tokens changes it too.
  std::vector<int32_t> swapped = tokens;
  std::swap(swapped[0], swapped[1]);
  EXPECT_NE(KvBlocks::chain_hash(KvBlocks::kRootHash, swapped), h);
}

TEST(KvBlocksDeathTest, MisuseAborts) {
  KvBlocks kv(2);
  EXPECT_DEATH(kv.release(0), "which nobody references");
  EXPECT_DEATH(kv.retain(1), "which nobody references");
  EXPECT_DEATH(kv.refcount(2), "outside the pool");
  EXPECT_DEATH(kv.release(-1), "outside the pool");
  const int32_t block = *kv.allocate();
  EXPECT_DEATH(kv.publish(block, KvBlocks::kNoParent, prompt(1, 25, 1)), "not 32");
}

// The semantics of KvBlocks, naively: each indexed block stands for the whole token prefix it
// ends, looked up by value; linear scans instead of links.
class ReferenceBlocks {
 public:
  explicit ReferenceBlocks(int32_t n) : refcount(n, 0) {
    for (int32_t b = 0; b < n; ++b) free.insert(b);
  }

  bool allocate(std::optional<int32_t> got) {
    if (free.empty() && !released_at.empty()) drop(oldest_cached());
    if (free.empty()) return !got.has_value();
    if (!got || free.erase(*got) == 0) return false;
    refcount[*got] = 1;
    return true;
  }
  void retain(int32_t b) { ++refcount[b]; }
  void release(int32_t b) {
    if (--refcount[b] > 0) return;
    if (prefix_of.contains(b)) {
      released_at[b] = clock++;
    } else {
      free.insert(b);
    }
  }
  int32_t publish(int32_t b, int32_t parent, std::span<const int32_t> tokens) {
    if (prefix_of.contains(b)) return b;
    std::vector<int32_t> prefix;
    if (parent != KvBlocks::kNoParent) {
      if (!prefix_of.contains(parent)) return b;
      prefix = prefix_of[parent];
    }
    prefix.insert(prefix.end(), tokens.begin(), tokens.end());
    if (const auto it = block_of.find(prefix); it != block_of.end()) {
      take(it->second);
      release(b);
      return it->second;
    }
    block_of[prefix] = b;
    prefix_of[b] = prefix;
    return b;
  }
  std::vector<int32_t> match(std::span<const int32_t> tokens, bool keep_last) {
    const size_t n =
        keep_last ? (tokens.empty() ? 0 : (tokens.size() - 1) / kB) : tokens.size() / kB;
    std::vector<int32_t> matched;
    for (size_t i = 1; i <= n; ++i) {
      const auto it = block_of.find(std::vector<int32_t>(tokens.begin(), tokens.begin() + i * kB));
      if (it == block_of.end()) break;
      take(it->second);
      matched.push_back(it->second);
    }
    return matched;
  }
  int32_t evict_cached(int32_t max_cached) {
    int32_t n = 0;
    while (static_cast<int32_t>(released_at.size()) > max_cached) n += drop(oldest_cached());
    return n;
  }

  std::vector<int32_t> refcount;
  std::set<int32_t> free;
  std::map<int32_t, std::vector<int32_t>> prefix_of;
  std::map<std::vector<int32_t>, int32_t> block_of;
  std::map<int32_t, int64_t> released_at;  // the cached blocks

 private:
  void take(int32_t b) {
    if (refcount[b]++ == 0) released_at.erase(b);
  }
  int32_t oldest_cached() const {
    return std::min_element(released_at.begin(), released_at.end(),
                            [](const auto& x, const auto& y) { return x.second < y.second; })
        ->first;
  }
  // Unindexes `b` and every indexed prefix that extends its prefix; returns how many were freed.
  int32_t drop(int32_t b) {
    const std::vector<int32_t> root = prefix_of.at(b);
    int32_t n = 0;
    for (auto it = prefix_of.begin(); it != prefix_of.end();) {
      if (it->second.size() < root.size() ||
          !std::equal(root.begin(), root.end(), it->second.begin())) {
        ++it;
        continue;
      }
      block_of.erase(it->second);
      if (released_at.erase(it->first) > 0) {
        free.insert(it->first);
        ++n;
      }
      it = prefix_of.erase(it);
    }
    return n;
  }
  int64_t clock = 0;
};

void expect_same(const KvBlocks& kv, const ReferenceBlocks& ref, int step) {
  ASSERT_EQ(kv.n_free(), static_cast<int32_t>(ref.free.size())) << "step " << step;
  ASSERT_EQ(kv.n_cached(), static_cast<int32_t>(ref.released_at.size())) << "step " << step;
  ASSERT_EQ(kv.n_free() + kv.n_cached() + kv.n_referenced(), kv.n_blocks()) << "step " << step;
  for (int32_t b = 0; b < kv.n_blocks(); ++b) {
    ASSERT_EQ(kv.refcount(b), ref.refcount[b]) << "block " << b << " step " << step;
    ASSERT_EQ(kv.is_indexed(b), ref.prefix_of.contains(b)) << "block " << b << " step " << step;
  }
}

TEST(KvBlocks, RandomOperationsMatchReferenceModel) {
  constexpr int32_t kBlocks = 40;
  KvBlocks kv(kBlocks);
  ReferenceBlocks ref(kBlocks);
  std::mt19937 rng(20240611);
  const auto below = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  // Few distinct conversations over a small vocabulary, so prefixes repeat and diverge.
  std::vector<std::vector<int32_t>> bases(3, std::vector<int32_t>(8 * kB));
  for (auto& base : bases)
    for (int32_t& t : base) t = static_cast<int32_t>(below(3));
  std::vector<std::vector<int32_t>> tables;
  std::vector<int32_t> extra_refs;
  int64_t n_matched = 0;

  for (int step = 0; step < 5000; ++step) {
    const size_t op = below(10);
    if (op < 4 && tables.size() < 6) {  // a new sequence: match, allocate, evaluate, publish
      std::vector<int32_t> tokens = bases[below(bases.size())];
      tokens.resize(1 + below(tokens.size()));
      if (below(3) == 0) tokens[below(tokens.size())] = static_cast<int32_t>(below(3));
      const bool keep_last = below(2) == 0;
      std::vector<int32_t> table = kv.match_prefix(tokens, keep_last);
      ASSERT_EQ(table, ref.match(tokens, keep_last)) << "step " << step;
      n_matched += static_cast<int64_t>(table.size());
      const size_t n_needed = (tokens.size() + kB - 1) / kB;
      bool ok = true;
      while (table.size() < n_needed && ok) {
        const std::optional<int32_t> block = kv.allocate();
        ASSERT_TRUE(ref.allocate(block)) << "step " << step;
        if (block) table.push_back(*block);
        ok = block.has_value();
      }
      if (!ok) {  // out of blocks: give up the sequence
        kv.release_all(table);
        for (auto it = table.rbegin(); it != table.rend(); ++it) ref.release(*it);
      } else {
        for (size_t i = 0; i < tokens.size() / kB; ++i) {
          const int32_t parent = i == 0 ? KvBlocks::kNoParent : table[i - 1];
          const int32_t got = kv.publish(table[i], parent, block_of(tokens, i));
          ASSERT_EQ(got, ref.publish(table[i], parent, block_of(tokens, i))) << "step " << step;
          table[i] = got;
        }
        tables.push_back(std::move(table));
      }
    } else if (op < 6 && !tables.empty()) {  // a sequence ends
      const size_t i = below(tables.size());
      if (below(2) == 0) {
        kv.release_all(tables[i]);
        for (auto it = tables[i].rbegin(); it != tables[i].rend(); ++it) ref.release(*it);
      } else {
        for (int32_t b : tables[i]) {
          kv.release(b);
          ref.release(b);
        }
      }
      tables.erase(tables.begin() + static_cast<ptrdiff_t>(i));
    } else if (op == 6 && !tables.empty() && !tables[0].empty()) {
      const int32_t b = tables[0][below(tables[0].size())];
      kv.retain(b);
      ref.retain(b);
      extra_refs.push_back(b);
    } else if (op == 7 && !extra_refs.empty()) {
      kv.release(extra_refs.back());
      ref.release(extra_refs.back());
      extra_refs.pop_back();
    } else if (op == 8) {
      const auto max_cached = static_cast<int32_t>(below(12));
      ASSERT_EQ(kv.evict_cached(max_cached), ref.evict_cached(max_cached)) << "step " << step;
    } else if (op == 9) {  // a block outside any prefix, e.g. a sequence's growing tail
      const std::optional<int32_t> block = kv.allocate();
      ASSERT_TRUE(ref.allocate(block)) << "step " << step;
      if (block) tables.push_back({*block});
    }
    expect_same(kv, ref, step);
  }
  for (const auto& table : tables) kv.release_all(table);
  for (int32_t b : extra_refs) kv.release(b);
  EXPECT_EQ(kv.n_referenced(), 0);
  EXPECT_EQ(kv.n_free() + kv.n_cached(), kBlocks);
  EXPECT_GT(n_matched, 500);  // the run exercised sharing
  EXPECT_GT(kv.hit_tokens(), 0);
}

}  // namespace
}  // namespace pensieve
