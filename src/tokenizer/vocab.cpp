#include "tokenizer/vocab.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>

#include "core/log.h"

namespace pensieve {
namespace {

// Far beyond any real vocabulary; keeps ids and unit numbering well inside int32.
constexpr uint64_t kMaxTokens = 1u << 26;

bool is_numeric(GgufValueType t) {
  return t != GgufValueType::kString && t != GgufValueType::kArray && t != GgufValueType::kBool;
}

// An optional per-token array: absent is fine, present must be numeric with one entry per token.
Expected<const GgufValue*> token_array(const GgufFile& file, std::string_view key, uint64_t n) {
  const GgufValue* v = file.find(key);
  if (v == nullptr) return static_cast<const GgufValue*>(nullptr);
  if (!v->is_array() || !is_numeric(v->element_type())) {
    return make_error(ErrorCode::kInvalidFormat, "tokenizer: {}: {} is not a numeric array",
                      file.name(), key);
  }
  if (v->size() != n) {
    return make_error(ErrorCode::kInvalidFormat, "tokenizer: {}: {} has {} entries for {} tokens",
                      file.name(), key, v->size(), n);
  }
  return v;
}

Expected<std::optional<bool>> optional_bool(const GgufFile& file, std::string_view key) {
  if (file.find(key) == nullptr) return std::optional<bool>();
  PV_TRY(const bool value, file.get_bool(key));
  return std::optional<bool>(value);
}

TokenType token_type_from(int64_t raw) {
  return raw >= 0 && raw <= 6 ? static_cast<TokenType>(raw) : TokenType::kUndefined;
}

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

Expected<Vocab> Vocab::load(const GgufFile& file) {
  Vocab vocab;
  PV_TRY(const std::string_view model, file.get_string("tokenizer.ggml.model"));
  if (model == "llama") {
    vocab.kind_ = VocabKind::kSpm;
  } else if (model == "gpt2") {
    vocab.kind_ = VocabKind::kBpe;
  } else {
    return make_error(ErrorCode::kUnsupported,
                      "tokenizer: {}: tokenizer model '{}' is not supported (llama and gpt2 are)",
                      file.name(), model);
  }
  vocab.pre_ = std::string(file.get_string_or("tokenizer.ggml.pre", "default"));
  PV_TRY_VOID(vocab.read_tokens(file));
  PV_TRY_VOID(vocab.read_special(file));
  vocab.detect_end_tokens();
  vocab.set_strip_rules(file);
  return vocab;
}

Expected<void> Vocab::read_tokens(const GgufFile& file) {
  PV_TRY(const GgufValue* tokens, file.get_array("tokenizer.ggml.tokens"));
  if (tokens->element_type() != GgufValueType::kString) {
    return make_error(ErrorCode::kInvalidFormat,
                      "tokenizer: {}: tokenizer.ggml.tokens holds {}, expected strings",
                      file.name(), gguf_value_type_name(tokens->element_type()));
  }
  const uint64_t n = tokens->size();
  if (n == 0 || n > kMaxTokens) {
    return make_error(ErrorCode::kInvalidFormat,
                      "tokenizer: {}: tokenizer.ggml.tokens has {} entries (1 to {} allowed)",
                      file.name(), n, kMaxTokens);
  }
  PV_TRY(const GgufValue* scores, token_array(file, "tokenizer.ggml.scores", n));
  PV_TRY(const GgufValue* types, token_array(file, "tokenizer.ggml.token_type", n));
  texts_.resize(n);
  scores_.assign(n, 0.0f);
  types_.assign(n, TokenType::kNormal);
  strip_.assign(n, 0);
  index_.reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    texts_[i] = std::string(tokens->string_at(i));
    if (scores != nullptr) {
      const double s = scores->float_at(i);
      // NaN would break the merge order; treat it as the lowest possible score.
      scores_[i] = std::isnan(s) ? -std::numeric_limits<float>::infinity() : static_cast<float>(s);
    }
    if (types != nullptr) types_[i] = token_type_from(types->int_at(i));
    // Empty texts cannot be matched; later duplicates win, as in llama.cpp.
    if (!texts_[i].empty()) index_[texts_[i]] = static_cast<int32_t>(i);
  }
  return {};
}

Expected<void> Vocab::read_special(const GgufFile& file) {
  if (kind_ == VocabKind::kSpm) {
    special_.bos = 1;
    special_.eos = 2;
    special_.unk = 0;
  } else {
    special_.bos = 11;
    special_.eos = 11;
  }
  const struct {
    const char* key;
    int32_t* id;
  } keys[] = {
      {"tokenizer.ggml.bos_token_id", &special_.bos},
      {"tokenizer.ggml.eos_token_id", &special_.eos},
      {"tokenizer.ggml.eot_token_id", &special_.eot},
      {"tokenizer.ggml.eom_token_id", &special_.eom},
      {"tokenizer.ggml.unknown_token_id", &special_.unk},
      {"tokenizer.ggml.seperator_token_id", &special_.sep},
      {"tokenizer.ggml.padding_token_id", &special_.pad},
  };
  for (const auto& k : keys) {
    if (file.find(k.key) == nullptr) continue;
    PV_TRY(const uint64_t id, file.get_uint(k.key));
    if (id == 0xffffffffu) continue;  // "no such token", as converters write it
    if (id >= texts_.size()) {
      log::warn("tokenizer: {}: {} = {} is not a token id; ignored", file.name(), k.key, id);
      continue;
    }
    *k.id = static_cast<int32_t>(id);
  }
  for (int32_t* id : {&special_.bos, &special_.eos, &special_.unk}) {
    if (!contains(*id)) *id = kNoToken;  // a default that this vocabulary is too small for
  }
  PV_TRY(add_bos_key_, optional_bool(file, "tokenizer.ggml.add_bos_token"));
  PV_TRY(const std::optional<bool> space, optional_bool(file, "tokenizer.ggml.add_space_prefix"));
  add_space_prefix_ = space.value_or(kind_ == VocabKind::kSpm);
  return {};
}

// Chat models mark the end of a turn with tokens that metadata often does not name; find them by
// text (the same list llama.cpp uses) so generation stops there.
void Vocab::detect_end_tokens() {
  static constexpr std::string_view kEotTexts[] = {
      "<|eot_id|>",      "<|im_end|>", "<|end|>", "<end_of_turn>",         "<|endoftext|>",
      "<|end_of_text|>", "<EOT>",      "_<EOT>",  "<｜end▁of▁sentence｜>", "<end_of_utterance>"};
  static constexpr std::string_view kEogTexts[] = {
      "<|eot_id|>", "<|im_end|>",    "<|end|>",         "<|return|>",
      "<|call|>",   "<end_of_turn>", "<|endoftext|>",   "<|eom_id|>",
      "<EOT>",      "_<EOT>",        "<|end_of_text|>", "<end_of_utterance>"};
  if (special_.eot == kNoToken) {
    for (std::string_view t : kEotTexts) {
      if (const int32_t id = find(t); id != kNoToken) {
        special_.eot = id;
        break;
      }
    }
  }
  if (special_.eom == kNoToken) special_.eom = find("<|eom_id|>");
  for (std::string_view t : kEogTexts) {
    if (const int32_t id = find(t); id != kNoToken) {
      eog_.push_back(id);
      types_[id] = TokenType::kControl;  // they are control tokens whatever the file says
    }
  }
  for (int32_t id : {special_.eos, special_.eot, special_.eom}) {
    if (id != kNoToken) eog_.push_back(id);
  }
  std::sort(eog_.begin(), eog_.end());
  eog_.erase(std::unique(eog_.begin(), eog_.end()), eog_.end());
}

// Per-token strip flags are not stored in GGUF. Phi-3's tokenizer strips whitespace after its
// special tokens (rstrip in its tokenizer.json); llama.cpp recognizes it by name, and so do we.
void Vocab::set_strip_rules(const GgufFile& file) {
  const std::string name = lowercase(file.get_string_or("general.name", ""));
  if (name.find("phi-3") == std::string::npos && name.find("phi3") == std::string::npos) return;
  for (int32_t id = 0; id < size(); ++id) {
    if (is_special(id)) strip_[id] |= kRstrip;
  }
  if (const int32_t id = find("</s>"); id != kNoToken) strip_[id] |= kRstrip;
  for (std::string_view t : {"<unk>", "<s>", "<|endoftext|>"}) {
    if (const int32_t id = find(t); id != kNoToken) strip_[id] &= ~kRstrip;
  }
}

bool Vocab::is_control(int32_t id) const {
  const TokenType t = types_[id];
  return t == TokenType::kControl || t == TokenType::kUnknown;
}

bool Vocab::is_special(int32_t id) const {
  return is_control(id) || types_[id] == TokenType::kUserDefined;
}

int32_t Vocab::find(std::string_view text) const {
  const auto it = index_.find(text);
  return it == index_.end() ? kNoToken : it->second;
}

bool Vocab::is_eog(int32_t id) const { return std::binary_search(eog_.begin(), eog_.end(), id); }

}  // namespace pensieve
