#include "tokenizer/stream_decoder.h"

#include "tokenizer/unicode.h"

namespace pensieve {
void StreamDecoder::push(int32_t id, std::string* out) {
  if (!tokenizer_.contains(id) || (skip_special_ && tokenizer_.is_control(id))) return;
  pending_.append(tokenizer_.token_piece(id));
  const size_t complete = utf8_complete_prefix(pending_);
  utf8_append_sanitized(std::string_view(pending_).substr(0, complete), out);
  pending_.erase(0, complete);
}

void StreamDecoder::flush(std::string* out) {
  utf8_append_sanitized(pending_, out);
  pending_.clear();
}

std::string StreamDecoder::push(int32_t id) {
  std::string out;
  push(id, &out);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out;
  flush(&out);
  return out;
}

}  // namespace pensieve
