// TokenMask: which vocabulary tokens may come next under a JsonMatcher state. Built once per
// vocabulary as a byte trie so that tokens sharing a prefix share the matcher work.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "grammar/json_matcher.h"

namespace pensieve {

class TokenMask {
 public:
  // token_texts[id]: the bytes the token appends to the output (empty: never allowed).
  explicit TokenMask(const std::vector<std::string>& token_texts);

  size_t n_tokens() const { return n_tokens_; }
  // (*mask)[id] = 1 for every token whose whole text can be appended to `state`, else 0.
  void allowed(const JsonMatcher& matcher, const JsonMatcher::State& state,
               std::vector<uint8_t>* mask) const;
  // The output may end here (end-of-turn / end-of-tool-call is allowed).
  bool can_end(const JsonMatcher& matcher, const JsonMatcher::State& state) const;

 private:
  struct TrieNode {
    uint32_t first_child = kNone;
    uint32_t next_sibling = kNone;
    uint32_t first_token = kNone;  // tokens whose text ends here, linked through next_token_
    uint32_t subtree_begin = 0;    // tokens ending in this subtree: subtree_tokens_[begin, end)
    uint32_t subtree_end = 0;
    uint8_t byte = 0;
    bool plain = false;  // every byte on every path below (and this one) is a plain string byte
  };
  static constexpr uint32_t kNone = 0xffffffffu;

  struct Walk;
  void index_subtree(uint32_t at);
  void visit(Walk& walk, uint32_t first_child, size_t depth,
             const JsonMatcher::State& parent) const;

  std::vector<TrieNode> nodes_;  // nodes_[0] is the root (the empty prefix)
  std::vector<uint32_t> next_token_;
  std::vector<uint32_t> subtree_tokens_;  // token ids in trie depth-first order
  size_t n_tokens_ = 0;
  size_t max_token_bytes_ = 0;
};

}  // namespace pensieve
