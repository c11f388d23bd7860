// Splits text around special tokens before the tokenizer model sees it, as llama.cpp and Hugging
// Face's added-tokens pass do: longest token texts first, each occurrence becomes its id.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace pensieve {

// Raw text (token == kNoToken) or one special token (text is its occurrence in the input).
struct Fragment {
  std::string_view text;
  int32_t token = kNoToken;
};

class SpecialSplitter {
 public:
  explicit SpecialSplitter(const Vocab& vocab);

  // User-defined tokens are always split out; control and unknown tokens only with
  // parse_special (otherwise "<s>" in user text stays text). Whitespace next to a token with
  // lstrip/rstrip is dropped. Empty text gives no fragments.
  std::vector<Fragment> split(std::string_view text, bool parse_special) const;

 private:
  // Indices into by_length_ of the candidate tokens that occur somewhere in `text`.
  std::vector<uint32_t> present(std::string_view text, bool parse_special) const;
  void split_on(int32_t id, std::vector<Fragment>* fragments) const;

  const Vocab& vocab_;
  std::vector<int32_t> by_length_;  // special tokens, longest text first
  // Indices into by_length_ by first byte: all of them, and the user-defined ones only.
  std::array<std::vector<uint32_t>, 256> all_by_first_byte_;
  std::array<std::vector<uint32_t>, 256> user_by_first_byte_;
  bool has_user_defined_ = false;
};

}  // namespace pensieve
