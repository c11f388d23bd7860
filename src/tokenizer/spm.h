// SentencePiece-style BPE for "llama" vocabularies (Llama 2, Mistral, Phi-3, Baichuan): spaces
// become U+2581, one is prefixed to the text, the adjacent pair whose merged token has the highest
// score merges first, and characters left without a token become <0xNN> byte tokens.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "tokenizer/merge.h"
#include "tokenizer/tokenizer_model.h"
#include "tokenizer/vocab.h"

namespace pensieve {

class SpmModel final : public TokenizerModel {
 public:
  explicit SpmModel(const Vocab& vocab);

  void encode(std::string_view text, bool after_special, WordCache* cache,
              std::vector<int32_t>* out) const override;

 private:
  // Unit of a single character: its token id, an id above the vocabulary for characters that
  // only occur inside tokens, or -1.
  int32_t char_unit(uint32_t cp) const;
  int32_t add_char_unit(uint32_t cp);
  void build_pairs();
  void encode_word(std::string_view word, Merger* merger, std::vector<int32_t>* out) const;
  void append_bytes(std::string_view bytes, std::vector<int32_t>* out) const;
  // True when no token spans the boundary between `cp` and a following U+2581.
  bool splits_before_space(uint32_t cp) const;

  const Vocab& vocab_;
  PairTable pairs_;
  std::array<int32_t, 128> ascii_units_;
  std::unordered_map<uint32_t, int32_t> char_units_;
  int32_t next_virtual_unit_;
  std::array<int32_t, 256> byte_tokens_;
  // Characters that some token has directly before a U+2581 (for Llama-style vocabularies
  // none, which lets each space-led word be split, and cached, on its own).
  std::unordered_set<uint32_t> joins_space_;
};

}  // namespace pensieve
