// libFuzzer target: tokenizing any bytes (valid UTF-8 or not, special-token text or not) with
// a SentencePiece-style and a byte-level BPE vocabulary never crashes, yields ids inside the
// vocabulary, and decodes back without error.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string_view>

#include "gguf/reader.h"
#include "tokenizer/stream_decoder.h"
#include "tokenizer/tokenizer.h"

namespace {

std::unique_ptr<pensieve::Tokenizer> load(const char* name) {
  const std::string path = std::string(PENSIEVE_SHARED_DIR) + "/vocab/" + name;
  auto file = pensieve::GgufFile::open(path);
  if (!file) {
    std::fprintf(stderr, "%s\n", file.error().message.c_str());
    std::abort();
  }
  auto tokenizer = pensieve::Tokenizer::from_gguf(**file);
  if (!tokenizer) {
    std::fprintf(stderr, "%s\n", tokenizer.error().message.c_str());
    std::abort();
  }
  return std::move(tokenizer).value();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto spm = load("ggml-vocab-phi-3.gguf");
  static const auto bpe = load("ggml-vocab-gpt-2.gguf");
  if (size == 0) return 0;
  const pensieve::Tokenizer& tok = (data[0] & 1) ? *spm : *bpe;
  const pensieve::EncodeOptions options{.add_bos = (data[0] & 2) != 0,
                                        .parse_special = (data[0] & 4) != 0};
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::vector<int32_t> ids = tok.encode(text, options);
  for (int32_t id : ids) {
    if (!tok.contains(id)) std::abort();
  }
  std::string decoded = tok.decode(ids, /*skip_special=*/false);
  pensieve::StreamDecoder stream(tok);
  for (int32_t id : ids) decoded += stream.push(id);
  decoded += stream.flush();
  return 0;
}
