// Bookkeeping for the paged KV cache: which blocks of the fixed pool are free, held by running
// sequences, or kept as a shared prompt prefix (the prefix cache), and which one to reuse next.
// Holds no KV data and takes no locks: the engine thread owns it.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace pensieve {

class KvBlocks {
 public:
  static constexpr int kBlockPositions = 32;
  // The parent of a sequence's first block.
  static constexpr int32_t kNoParent = -1;
  // The chain hash a sequence's first block is hashed after.
  static constexpr uint64_t kRootHash = 0x70656e7369657665ULL;

  using ChainHashFn = uint64_t (*)(uint64_t parent, std::span<const int32_t> tokens);

  // `hash` is replaceable so that tests can force collisions; the index never trusts it alone.
  explicit KvBlocks(int32_t n_blocks, ChainHashFn hash = &KvBlocks::chain_hash);

  // A fresh block for writing (refcount 1): a free one, else the least recently used cached
  // block that nobody references, dropped from the index together with the cached blocks that
  // continue its prefix. nullopt when every block is referenced.
  std::optional<int32_t> allocate();
  // +1 reference to a block that is already referenced.
  void retain(int32_t block);
  // -1 reference. At 0 an indexed block becomes cached (evictable, most recently released
  // last); any other block becomes free.
  void release(int32_t block);
  // Releases a block table back to front, so that a prefix's later blocks are evicted before
  // its earlier ones (which the later ones depend on).
  void release_all(std::span<const int32_t> blocks);

  // A strong 64-bit hash of a parent chain hash and exactly kBlockPositions token ids.
  static uint64_t chain_hash(uint64_t parent, std::span<const int32_t> tokens);

  // Makes `block` (referenced, full, holding `tokens`) shareable as the block that follows
  // `parent` (the caller's previous block, or kNoParent for the first one). Returns the block
  // the caller holds at that position from now on: `block` itself, or an identical block that
  // was already indexed, which is then retained for the caller while `block` is released. The
  // block is not indexed (and `block` is returned) when `parent` is not indexed or, rarely, when
  // its hash collides with a different indexed block.
  int32_t publish(int32_t block, int32_t parent, std::span<const int32_t> tokens);

  // The longest run of indexed blocks whose tokens are the start of `tokens` (whole blocks
  // only), in order, each retained for the caller. With `keep_last` no block covers the last
  // token (the engine must evaluate at least one token to get logits): at most
  // (tokens.size() - 1) / kBlockPositions blocks.
  std::vector<int32_t> match_prefix(std::span<const int32_t> tokens, bool keep_last = true);

  // Drops cached blocks, least recently used first, until at most `max_cached` remain (the
  // memory governor shrinks the prefix cache under pressure). Returns how many became free.
  int32_t evict_cached(int32_t max_cached);

  // n_free() + n_cached() + n_referenced() == n_blocks() always holds.
  int32_t n_blocks() const { return static_cast<int32_t>(refcount_.size()); }
  int32_t n_free() const { return static_cast<int32_t>(free_.size()); }
  // The free blocks (their contents are garbage), e.g. to give their memory back.
  std::span<const int32_t> free_blocks() const { return free_; }
  // Indexed and unreferenced.
  int32_t n_cached() const { return n_cached_; }
  int32_t n_referenced() const { return n_referenced_; }
  int32_t refcount(int32_t block) const;
  bool is_indexed(int32_t block) const;

  // Prefix cache statistics: tokens matched by match_prefix, and tokens it was asked about.
  int64_t hit_tokens() const { return hit_tokens_; }
  int64_t lookup_tokens() const { return lookup_tokens_; }

 private:
  static constexpr int32_t kNone = -1;

  void check_block(int32_t block) const;
  bool holds_tokens(int32_t block, int32_t parent, std::span<const int32_t> tokens) const;
  // Removes `block` and every indexed block continuing its prefix from the index; the
  // unreferenced ones become free. Returns how many became free.
  int32_t unindex_subtree(int32_t block);
  void lru_push_back(int32_t block);
  void lru_unlink(int32_t block);

  ChainHashFn hash_fn_;
  std::vector<int32_t> refcount_;
  std::vector<int32_t> free_;  // a stack
  int32_t n_cached_ = 0;
  int32_t n_referenced_ = 0;

  // The prefix index: chain hash -> block, and per block what it was published as.
  // Chain hash -> block: open addressing with linear probing in arrays sized at construction
  // (at most n_blocks entries in twice as many slots), so indexing never allocates.
  class HashIndex {
   public:
    explicit HashIndex(int32_t n_blocks);
    int32_t find(uint64_t hash) const;  // kNone when absent
    // Inserts hash -> block; returns the block already under `hash` instead, if any.
    int32_t insert(uint64_t hash, int32_t block);
    void erase(uint64_t hash);

   private:
    size_t home(uint64_t hash) const { return static_cast<size_t>(hash) & mask_; }
    size_t slot_of(uint64_t hash) const;  // its slot, or the empty slot where it would go
    size_t mask_;
    std::vector<uint64_t> keys_;
    std::vector<int32_t> blocks_;  // kNone: empty slot
  };
  HashIndex index_;
  std::vector<uint8_t> indexed_;
  std::vector<uint64_t> hash_;
  std::vector<int32_t> tokens_;  // [n_blocks, kBlockPositions]
  std::vector<int32_t> parent_;
  // Indexed children of each indexed block, as an intrusive doubly linked list.
  std::vector<int32_t> first_child_;
  std::vector<int32_t> next_sibling_;
  std::vector<int32_t> prev_sibling_;

  // Cached blocks, least recently used at the head, as an intrusive doubly linked list.
  std::vector<int32_t> lru_prev_;
  std::vector<int32_t> lru_next_;
  int32_t lru_head_ = kNone;
  int32_t lru_tail_ = kNone;

  std::vector<int32_t> scratch_;  // unindex_subtree's work stack

  int64_t hit_tokens_ = 0;
  int64_t lookup_tokens_ = 0;
};

}  // namespace pensieve
