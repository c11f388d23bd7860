// Byte-level BPE for "gpt2" vocabularies (GPT-2, Llama 3, Qwen2, DeepSeek, Falcon, StarCoder):
// text is split by the pre-tokenizer's regexes, each byte of a piece becomes its GPT-2 alphabet
// character, and pairs merge in the order of tokenizer.ggml.merges (earlier first).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "gguf/reader.h"
#include "tokenizer/merge.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/tokenizer_model.h"
#include "tokenizer/vocab.h"

namespace pensieve {

class BpeModel final : public TokenizerModel {
 public:
  // Reads tokenizer.ggml.merges; fails for an unknown tokenizer.ggml.pre.
  static Expected<std::unique_ptr<BpeModel>> create(const Vocab& vocab, const GgufFile& file);

  void encode(std::string_view text, bool after_special, WordCache* cache,
              std::vector<int32_t>* out) const override;

  const PreTokenizer& pre_tokenizer() const { return pre_; }

 private:
  BpeModel(const Vocab& vocab, PreTokenizer pre);
  Expected<void> read_merges(const GgufFile& file);
  void encode_word(std::string_view word, Merger* merger, std::vector<int32_t>* units,
                   std::vector<int32_t>* out) const;

  const Vocab& vocab_;
  PreTokenizer pre_;
  PairTable pairs_;
  std::array<int32_t, 256> byte_tokens_;  // the token of each byte's alphabet character
};

}  // namespace pensieve
