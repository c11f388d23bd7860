#include "engine/kv_blocks.h"

#include <algorithm>
#include <cstring>

#include "core/check.h"

namespace pensieve {
namespace {

constexpr uint64_t kPrime1 = 0x9e3779b185ebca87ULL;
constexpr uint64_t kPrime2 = 0xc2b2ae3d27d4eb4fULL;

uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

// MurmurHash3's 64-bit finalizer: every input bit reaches every output bit.
uint64_t avalanche(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

}  // namespace

KvBlocks::KvBlocks(int32_t n_blocks, ChainHashFn hash)
    : hash_fn_(hash),
      refcount_(n_blocks, 0),
      index_(n_blocks),
      indexed_(n_blocks, 0),
      hash_(n_blocks, 0),
      tokens_(static_cast<size_t>(n_blocks) * kBlockPositions, 0),
      parent_(n_blocks, kNone),
      first_child_(n_blocks, kNone),
      next_sibling_(n_blocks, kNone),
      prev_sibling_(n_blocks, kNone),
      lru_prev_(n_blocks, kNone),
      lru_next_(n_blocks, kNone) {
  PV_CHECK(n_blocks > 0, "kv blocks: the pool needs at least one block, got {}", n_blocks);
  PV_CHECK(hash != nullptr, "kv blocks: no chain hash function");
  free_.reserve(n_blocks);
  // Popped from the back: block 0 is handed out first.
  for (int32_t b = n_blocks - 1; b >= 0; --b) free_.push_back(b);
  scratch_.reserve(n_blocks);
}

void KvBlocks::check_block(int32_t block) const {
  PV_CHECK(block >= 0 && block < n_blocks(), "kv blocks: block {} is outside the pool of {}", block,
           n_blocks());
}

int32_t KvBlocks::refcount(int32_t block) const {
  check_block(block);
  return refcount_[block];
}

bool KvBlocks::is_indexed(int32_t block) const {
  check_block(block);
  return indexed_[block] != 0;
}

std::optional<int32_t> KvBlocks::allocate() {
  if (free_.empty()) {
    if (lru_head_ == kNone) return std::nullopt;
    unindex_subtree(lru_head_);
  }
  const int32_t block = free_.back();
  free_.pop_back();
  refcount_[block] = 1;
  ++n_referenced_;
  return block;
}

void KvBlocks::retain(int32_t block) {
  check_block(block);
  PV_CHECK(refcount_[block] > 0, "kv blocks: retain of block {}, which nobody references", block);
  ++refcount_[block];
}

void KvBlocks::release(int32_t block) {
  check_block(block);
  PV_CHECK(refcount_[block] > 0, "kv blocks: release of block {}, which nobody references", block);
  if (--refcount_[block] > 0) return;
  --n_referenced_;
  if (indexed_[block]) {
    lru_push_back(block);
    ++n_cached_;
  } else {
    free_.push_back(block);
  }
}

void KvBlocks::release_all(std::span<const int32_t> blocks) {
  for (auto it = blocks.rbegin(); it != blocks.rend(); ++it) release(*it);
}

uint64_t KvBlocks::chain_hash(uint64_t parent, std::span<const int32_t> tokens) {
  PV_CHECK(tokens.size() == kBlockPositions, "kv blocks: a block holds {} tokens, not {}",
           kBlockPositions, tokens.size());
  // xxHash64-style rounds over pairs of token ids, seeded by the mixed parent hash.
  uint64_t h = avalanche(parent + kPrime2);
  for (size_t i = 0; i < tokens.size(); i += 2) {
    const uint64_t word = static_cast<uint64_t>(static_cast<uint32_t>(tokens[i])) |
                          static_cast<uint64_t>(static_cast<uint32_t>(tokens[i + 1])) << 32;
    h ^= rotl(word * kPrime2, 31) * kPrime1;
    h = rotl(h, 27) * kPrime1 + kPrime2;
  }
  return avalanche(h ^ tokens.size());
}

bool KvBlocks::holds_tokens(int32_t block, int32_t parent, std::span<const int32_t> tokens) const {
  const int32_t* stored = tokens_.data() + static_cast<size_t>(block) * kBlockPositions;
  return parent_[block] == parent && std::equal(tokens.begin(), tokens.end(), stored);
}

int32_t KvBlocks::publish(int32_t block, int32_t parent, std::span<const int32_t> tokens) {
  check_block(block);
  PV_CHECK(refcount_[block] > 0, "kv blocks: publish of block {}, which nobody references", block);
  PV_CHECK(tokens.size() == kBlockPositions,
           "kv blocks: publish of block {} with {} tokens, not {}", block, tokens.size(),
           kBlockPositions);
  if (indexed_[block]) return block;
  uint64_t parent_hash = kRootHash;
  if (parent != kNoParent) {
    check_block(parent);
    // Only an indexed parent can be reached by match_prefix, so its children cannot either.
    if (!indexed_[parent]) return block;
    parent_hash = hash_[parent];
  }
  const uint64_t hash = hash_fn_(parent_hash, tokens);
  const int32_t existing = index_.insert(hash, block);
  if (existing != block) {
    // A different block under the same hash is a collision: keep the first, share neither.
    if (!holds_tokens(existing, parent, tokens)) return block;
    if (refcount_[existing] == 0) {
      lru_unlink(existing);
      --n_cached_;
      ++n_referenced_;
    }
    ++refcount_[existing];
    release(block);
    return existing;
  }
  indexed_[block] = 1;
  hash_[block] = hash;
  std::copy(tokens.begin(), tokens.end(),
            tokens_.begin() + static_cast<ptrdiff_t>(block) * kBlockPositions);
  parent_[block] = parent;
  prev_sibling_[block] = kNone;
  next_sibling_[block] = kNone;
  first_child_[block] = kNone;
  if (parent != kNoParent) {
    next_sibling_[block] = first_child_[parent];
    if (first_child_[parent] != kNone) prev_sibling_[first_child_[parent]] = block;
    first_child_[parent] = block;
  }
  return block;
}

std::vector<int32_t> KvBlocks::match_prefix(std::span<const int32_t> tokens, bool keep_last) {
  lookup_tokens_ += static_cast<int64_t>(tokens.size());
  size_t n_max = tokens.size() / kBlockPositions;
  if (keep_last) n_max = tokens.empty() ? 0 : (tokens.size() - 1) / kBlockPositions;
  std::vector<int32_t> matched;
  int32_t parent = kNoParent;
  uint64_t parent_hash = kRootHash;
  for (size_t i = 0; i < n_max; ++i) {
    const auto block_tokens = tokens.subspan(i * kBlockPositions, kBlockPositions);
    const uint64_t hash = hash_fn_(parent_hash, block_tokens);
    const int32_t block = index_.find(hash);
    if (block == kNone || !holds_tokens(block, parent, block_tokens)) break;
    if (refcount_[block] == 0) {
      lru_unlink(block);
      --n_cached_;
      ++n_referenced_;
    }
    ++refcount_[block];
    matched.push_back(block);
    parent = block;
    parent_hash = hash;
  }
  hit_tokens_ += static_cast<int64_t>(matched.size()) * kBlockPositions;
  return matched;
}

int32_t KvBlocks::evict_cached(int32_t max_cached) {
  PV_CHECK(max_cached >= 0, "kv blocks: cannot keep {} cached blocks", max_cached);
  int32_t n_dropped = 0;
  while (n_cached_ > max_cached) n_dropped += unindex_subtree(lru_head_);
  return n_dropped;
}

int32_t KvBlocks::unindex_subtree(int32_t block) {
  // Detach the subtree's root from its parent's children; the rest goes with it.
  const int32_t parent = parent_[block];
  if (parent != kNoParent) {
    if (prev_sibling_[block] != kNone) {
      next_sibling_[prev_sibling_[block]] = next_sibling_[block];
    } else {
      first_child_[parent] = next_sibling_[block];
    }
    if (next_sibling_[block] != kNone) prev_sibling_[next_sibling_[block]] = prev_sibling_[block];
  }
  int32_t n_freed = 0;
  scratch_.clear();
  scratch_.push_back(block);
  while (!scratch_.empty()) {
    const int32_t b = scratch_.back();
    scratch_.pop_back();
    for (int32_t c = first_child_[b]; c != kNone; c = next_sibling_[c]) scratch_.push_back(c);
    index_.erase(hash_[b]);
    indexed_[b] = 0;
    parent_[b] = kNone;
    first_child_[b] = kNone;
    next_sibling_[b] = kNone;
    prev_sibling_[b] = kNone;
    if (refcount_[b] == 0) {
      lru_unlink(b);
      --n_cached_;
      free_.push_back(b);
      ++n_freed;
    }
  }
  return n_freed;
}

void KvBlocks::lru_push_back(int32_t block) {
  lru_prev_[block] = lru_tail_;
  lru_next_[block] = kNone;
  if (lru_tail_ != kNone) {
    lru_next_[lru_tail_] = block;
  } else {
    lru_head_ = block;
  }
  lru_tail_ = block;
}

void KvBlocks::lru_unlink(int32_t block) {
  const int32_t prev = lru_prev_[block];
  const int32_t next = lru_next_[block];
  if (prev != kNone) {
    lru_next_[prev] = next;
  } else {
    lru_head_ = next;
  }
  if (next != kNone) {
    lru_prev_[next] = prev;
  } else {
    lru_tail_ = prev;
  }
  lru_prev_[block] = kNone;
  lru_next_[block] = kNone;
}

KvBlocks::HashIndex::HashIndex(int32_t n_blocks) {
  size_t capacity = 16;
  while (capacity < 2 * static_cast<size_t>(std::max(n_blocks, 1))) capacity *= 2;
  mask_ = capacity - 1;
  keys_.assign(capacity, 0);
  blocks_.assign(capacity, kNone);
}

size_t KvBlocks::HashIndex::slot_of(uint64_t hash) const {
  size_t i = home(hash);
  while (blocks_[i] != kNone && keys_[i] != hash) i = (i + 1) & mask_;
  return i;
}

int32_t KvBlocks::HashIndex::find(uint64_t hash) const { return blocks_[slot_of(hash)]; }

int32_t KvBlocks::HashIndex::insert(uint64_t hash, int32_t block) {
  const size_t i = slot_of(hash);
  if (blocks_[i] != kNone) return blocks_[i];
  keys_[i] = hash;
  blocks_[i] = block;
  return block;
}

void KvBlocks::HashIndex::erase(uint64_t hash) {
  size_t i = slot_of(hash);
  if (blocks_[i] == kNone) return;
  // Backward-shift deletion: move later entries of the probe run into the hole when their home
  // slot does not lie (cyclically) between the hole and them.
  for (size_t j = (i + 1) & mask_; blocks_[j] != kNone; j = (j + 1) & mask_) {
    const size_t k = home(keys_[j]);
    const bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
    if (stays) continue;
    keys_[i] = keys_[j];
    blocks_[i] = blocks_[j];
    i = j;
  }
  blocks_[i] = kNone;
}

}  // namespace pensieve
