// Turns generated token ids into text as they arrive: only complete UTF-8 is returned, so a
// character whose bytes span several tokens (emoji, CJK under byte fallback) is never cut.
#pragma once

#include <cstdint>
#include <string>

#include "tokenizer/tokenizer.h"

namespace pensieve {

class StreamDecoder {
 public:
  // Control tokens (EOS, "<|end|>") print nothing when skip_special. Pieces are taken as they
  // are: the first piece keeps its leading space, unlike Tokenizer::decode.
  explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special = true)
      : tokenizer_(tokenizer), skip_special_(skip_special) {
    pending_.reserve(256);  // longer than any piece of a real vocabulary: no growth per token
  }

  // Text that became complete with token `id`; holds back at most 3 bytes of an unfinished
  // character. Bytes that cannot be UTF-8 come out as U+FFFD. Unknown ids add nothing.
  std::string push(int32_t id);
  // The rest at the end of the stream; an unfinished character becomes U+FFFD. Resets.
  std::string flush();
  // The same, appending to *out: with a reused buffer the token loop allocates nothing.
  void push(int32_t id, std::string* out);
  void flush(std::string* out);
  void reset() { pending_.clear(); }
  size_t pending_bytes() const { return pending_.size(); }

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_;
  std::string pending_;
};

}  // namespace pensieve
