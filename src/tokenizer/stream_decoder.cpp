#include "tokenizer/stream_decoder.h"

#include "tokenizer/unicode.h"

namespace pensieve {

std::string StreamDecoder::push(int32_t id) {
  if (!tokenizer_.contains(id) || (skip_special_ && tokenizer_.is_control(id))) return {};
  pending_.append(tokenizer_.token_piece(id));
  const size_t complete = utf8_complete_prefix(pending_);
  std::string out = utf8_sanitize(std::string_view(pending_).substr(0, complete));
  pending_.erase(0, complete);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out = utf8_sanitize(pending_);
  pending_.clear();
  return out;
}

}  // namespace pensieve
