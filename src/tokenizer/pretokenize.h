// Regex pre-tokenizers of byte-level BPE vocabularies, chosen by tokenizer.ggml.pre. Each pattern
// of a list splits every piece the previous one left: matches and the text between them both
// become pieces, and BPE merges never cross a piece boundary.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace pensieve {

class PreTokenizer {
 public:
  // The pre-tokenizer llama.cpp and Hugging Face use for `name` (tokenizer.ggml.pre); an error
  // naming it when it is not known.
  static Expected<PreTokenizer> for_name(std::string_view name);
  // Patterns are PCRE2 syntax, compiled as UTF-8 with Unicode properties (\p{L}, \s, ...).
  static Expected<PreTokenizer> from_patterns(const std::vector<std::string>& patterns);

  PreTokenizer(PreTokenizer&&) noexcept;
  PreTokenizer& operator=(PreTokenizer&&) noexcept;
  ~PreTokenizer();

  // Appends the pieces of `text`, in order; together they cover it exactly. Bytes that are not
  // valid UTF-8 never match a pattern and end up in the pieces between matches.
  void split(std::string_view text, std::vector<std::string_view>* pieces) const;

  // Whether a whole piece that is already a token is taken as is, before any merge (Llama 3).
  bool ignore_merges() const { return ignore_merges_; }
  // Whether the model family expects a BOS token when the file does not say.
  bool add_bos() const { return add_bos_; }

 private:
  struct Regex;
  PreTokenizer();

  std::vector<std::unique_ptr<Regex>> regexes_;
  bool ignore_merges_ = false;
  bool add_bos_ = false;
};

// Every tokenizer.ggml.pre value for_name() accepts.
std::vector<std::string_view> known_pre_tokenizers();

}  // namespace pensieve
