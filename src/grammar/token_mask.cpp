// Depth-first walk of the token trie: one matcher step per trie edge, pruning dead subtrees.
#include "grammar/token_mask.h"

#include <algorithm>

namespace pensieve {

TokenMask::TokenMask(const std::vector<std::string>& token_texts)
    : next_token_(token_texts.size(), kNone), n_tokens_(token_texts.size()) {
  nodes_.emplace_back();
  for (size_t id = 0; id < token_texts.size(); ++id) {
    const std::string& text = token_texts[id];
    if (text.empty()) continue;
    max_token_bytes_ = std::max(max_token_bytes_, text.size());
    uint32_t at = 0;
    for (char c : text) {
      const uint8_t b = static_cast<uint8_t>(c);
      uint32_t child = nodes_[at].first_child;
      while (child != kNone && nodes_[child].byte != b) child = nodes_[child].next_sibling;
      if (child == kNone) {
        child = static_cast<uint32_t>(nodes_.size());
        TrieNode node;
        node.byte = b;
        node.next_sibling = nodes_[at].first_child;
        nodes_.push_back(node);
        nodes_[at].first_child = child;
      }
      at = child;
    }
    next_token_[id] = nodes_[at].first_token;
    nodes_[at].first_token = static_cast<uint32_t>(id);
  }
  subtree_tokens_.reserve(token_texts.size());
  index_subtree(0);
}

// Numbers tokens in depth-first order so a whole subtree's tokens form one range.
void TokenMask::index_subtree(uint32_t at) {
  nodes_[at].subtree_begin = static_cast<uint32_t>(subtree_tokens_.size());
  for (uint32_t t = nodes_[at].first_token; t != kNone; t = next_token_[t]) {
    subtree_tokens_.push_back(t);
  }
  bool plain = at != 0 && JsonMatcher::is_plain_string_byte(nodes_[at].byte);
  for (uint32_t c = nodes_[at].first_child; c != kNone; c = nodes_[c].next_sibling) {
    index_subtree(c);
    plain = plain && nodes_[c].plain;
  }
  nodes_[at].plain = plain;
  nodes_[at].subtree_end = static_cast<uint32_t>(subtree_tokens_.size());
}

struct TokenMask::Walk {
  const JsonMatcher& matcher;
  std::vector<uint8_t>& mask;
  std::vector<JsonMatcher::State> levels;  // levels[d]: the state after d bytes of the prefix
  std::vector<JsonMatcher::Frame> work;
};

// levels[depth] receives the state after this trie level's byte; `parent` is the state before
// it. Plain bytes inside a string leave the state unchanged, so they reuse `parent` as is.
void TokenMask::visit(Walk& walk, uint32_t first_child, size_t depth,
                      const JsonMatcher::State& parent) const {
  const bool plain = JsonMatcher::in_plain_string(parent);
  for (uint32_t c = first_child; c != kNone; c = nodes_[c].next_sibling) {
    const TrieNode& node = nodes_[c];
    if (plain && node.plain) {  // the whole subtree stays inside the string
      for (uint32_t i = node.subtree_begin; i < node.subtree_end; ++i) {
        walk.mask[subtree_tokens_[i]] = 1;
      }
      continue;
    }
    const JsonMatcher::State* next = &parent;
    size_t next_depth = depth;
    if (!plain || !JsonMatcher::is_plain_string_byte(node.byte)) {
      if (!walk.matcher.advance_byte(parent, node.byte, walk.levels[depth], walk.work)) continue;
      next = &walk.levels[depth];
      next_depth = depth + 1;
    }
    for (uint32_t t = node.first_token; t != kNone; t = next_token_[t]) walk.mask[t] = 1;
    if (node.first_child != kNone) visit(walk, node.first_child, next_depth, *next);
  }
}

void TokenMask::allowed(const JsonMatcher& matcher, const JsonMatcher::State& state,
                        std::vector<uint8_t>* mask) const {
  mask->assign(n_tokens_, 0);
  if (state.dead()) return;
  Walk walk{matcher, *mask, {}, {}};
  walk.levels.resize(max_token_bytes_ + 1);  // never resized during the walk: parents are refs
  visit(walk, nodes_[0].first_child, 0, state);
}

bool TokenMask::can_end(const JsonMatcher& matcher, const JsonMatcher::State& state) const {
  return matcher.complete(state);
}

}  // namespace pensieve
