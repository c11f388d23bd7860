// Text <-> token ids for a model, built from its GGUF tokenizer metadata. Matches llama.cpp's
// tokenizers (and so Hugging Face's) on the ggml vocab test vectors.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "gguf/reader.h"
#include "tokenizer/vocab.h"

namespace pensieve {

class TokenizerModel;
class SpecialSplitter;

struct EncodeOptions {
  // Put the BOS token first (pass add_bos_default() for the model's own preference).
  bool add_bos = false;
  // Text spelling a control token ("<|user|>", "<s>") becomes that token. Only for trusted text
  // such as chat template output; user text keeps the default, which encodes it as plain text.
  bool parse_special = false;
};

// Immutable after from_gguf(), so one instance may serve several threads at once.
class Tokenizer {
 public:
  // Copies what it needs: `file` may be closed afterwards. Fails for vocabularies other than
  // "llama" and "gpt2", an unknown pre-tokenizer, or malformed tokenizer metadata.
  static Expected<std::unique_ptr<Tokenizer>> from_gguf(const GgufFile& file);
  ~Tokenizer();

  // Never fails: bytes that are not valid UTF-8 are kept, as byte tokens (SentencePiece byte
  // fallback, or the byte-level alphabet), so decode() gives them back.
  std::vector<int32_t> encode(std::string_view text, const EncodeOptions& options) const;

  // Concatenated pieces of `ids`. Control and unknown tokens are left out when skip_special.
  // Ids outside the vocabulary are skipped. For SentencePiece vocabularies the space that
  // encode() puts before text at the start and after a special token is removed again. The
  // result can end inside a UTF-8 sequence; use StreamDecoder to print tokens as they come.
  std::string decode(std::span<const int32_t> ids, bool skip_special) const;

  // The bytes token `id` stands for ("▁Hello" gives " Hello", "<0x0A>" a newline, a control
  // token its text); empty for ids outside the vocabulary.
  const std::string& token_piece(int32_t id) const;
  // The token's text as stored in the vocabulary; empty for ids outside it.
  std::string_view token_text(int32_t id) const;
  // The id whose vocabulary text is exactly `text`, or kNoToken.
  int32_t find_token(std::string_view text) const { return vocab_->find(text); }

  int32_t n_vocab() const { return vocab_->size(); }
  bool contains(int32_t id) const { return vocab_->contains(id); }
  // Special ids; kNoToken when the model has none.
  int32_t bos() const { return vocab_->special().bos; }
  int32_t eos() const { return vocab_->special().eos; }
  int32_t eot() const { return vocab_->special().eot; }
  // End of generation: EOS, EOT and the other turn-ending tokens of chat formats.
  bool is_eog(int32_t id) const { return vocab_->is_eog(id); }
  // Control and unknown tokens (what decode(..., skip_special=true) leaves out).
  bool is_control(int32_t id) const { return vocab_->contains(id) && vocab_->is_control(id); }
  bool add_bos_default() const { return add_bos_default_; }
  const Vocab& vocab() const { return *vocab_; }

 private:
  Tokenizer();
  void build_pieces();

  std::unique_ptr<Vocab> vocab_;  // stable address: the model and splitter point at it
  std::unique_ptr<TokenizerModel> model_;
  std::unique_ptr<SpecialSplitter> splitter_;
  std::vector<std::string> pieces_;
  bool add_bos_default_ = false;
  bool strip_space_prefix_ = false;  // SentencePiece with add_space_prefix
};

}  // namespace pensieve
