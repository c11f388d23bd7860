#include "tokenizer/bpe.h"

#include <string>

#include "core/log.h"
#include "tokenizer/unicode.h"

namespace pensieve {

BpeModel::BpeModel(const Vocab& vocab, PreTokenizer pre) : vocab_(vocab), pre_(std::move(pre)) {
  for (int b = 0; b < 256; ++b) {
    std::string ch;
    utf8_append(byte_to_unicode(static_cast<uint8_t>(b)), &ch);
    byte_tokens_[b] = vocab.find(ch);
  }
}

Expected<std::unique_ptr<BpeModel>> BpeModel::create(const Vocab& vocab, const GgufFile& file) {
  auto pre = PreTokenizer::for_name(vocab.pre());
  if (!pre) {
    return make_error(pre.error().code, "tokenizer: {}: unknown pre-tokenizer '{}' ({})",
                      file.name(), vocab.pre(), "tokenizer.ggml.pre");
  }
  std::unique_ptr<BpeModel> model(new BpeModel(vocab, std::move(pre).value()));
  PV_TRY_VOID(model->read_merges(file));
  return model;
}

// Each merge "left right" becomes a pair of token ids with its rank as priority. A merge whose
// parts or result are not tokens could only matter for a broken vocabulary; it is skipped.
Expected<void> BpeModel::read_merges(const GgufFile& file) {
  PV_TRY(const GgufValue* merges, file.get_array("tokenizer.ggml.merges"));
  if (merges->element_type() != GgufValueType::kString) {
    return make_error(ErrorCode::kInvalidFormat,
                      "tokenizer: {}: tokenizer.ggml.merges holds {}, expected strings",
                      file.name(), gguf_value_type_name(merges->element_type()));
  }
  if (merges->size() >= (uint64_t{1} << 24)) {  // ranks must stay exact as float priorities
    return make_error(ErrorCode::kInvalidFormat, "tokenizer: {}: {} merges is too many",
                      file.name(), merges->size());
  }
  size_t n_skipped = 0;
  std::string joined;
  for (uint64_t rank = 0; rank < merges->size(); ++rank) {
    const std::string_view m = merges->string_at(rank);
    const size_t space = m.find(' ', 1);  // from 1: the left part may itself be a space
    if (space == std::string_view::npos) {
      ++n_skipped;
      continue;
    }
    const std::string_view left = m.substr(0, space);
    const std::string_view right = m.substr(space + 1);
    joined.assign(left).append(right);
    const int32_t lu = vocab_.find(left);
    const int32_t ru = vocab_.find(right);
    const int32_t merged = vocab_.find(joined);
    if (lu == kNoToken || ru == kNoToken || merged == kNoToken) {
      ++n_skipped;
      continue;
    }
    pairs_.insert(lu, ru, PairEntry{merged, static_cast<float>(rank)});
  }
  if (n_skipped != 0) {
    log::warn("tokenizer: {}: skipped {} of {} merges that do not join two tokens into one",
              file.name(), n_skipped, merges->size());
  }
  return {};
}

void BpeModel::encode(std::string_view text, bool /*after_special*/, WordCache* cache,
                      std::vector<int32_t>* out) const {
  std::vector<std::string_view> words;
  pre_.split(text, &words);
  Merger merger;
  std::vector<int32_t> units;
  for (const std::string_view word : words) {
    if (cache->lookup(word, out)) continue;
    const size_t before = out->size();
    encode_word(word, &merger, &units, out);
    cache->insert(word, std::span<const int32_t>(out->data() + before, out->size() - before));
  }
}

void BpeModel::encode_word(std::string_view word, Merger* merger, std::vector<int32_t>* units,
                           std::vector<int32_t>* out) const {
  if (pre_.ignore_merges()) {  // a piece that is a token is taken whole
    std::string encoded;
    for (const char c : word) utf8_append(byte_to_unicode(static_cast<uint8_t>(c)), &encoded);
    if (const int32_t id = vocab_.find(encoded); id != kNoToken) {
      out->push_back(id);
      return;
    }
  }
  units->clear();
  for (const char c : word) units->push_back(byte_tokens_[static_cast<uint8_t>(c)]);
  merger->run(pairs_, units);
  for (const int32_t u : *units) {
    // A byte without a token (only in a broken vocabulary) is dropped, as llama.cpp does.
    if (u >= 0) out->push_back(u);
  }
}

}  // namespace pensieve
