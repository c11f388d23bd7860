#include "tokenizer/tokenizer.h"

#include "tokenizer/bpe.h"
#include "tokenizer/special_split.h"
#include "tokenizer/spm.h"
#include "tokenizer/unicode.h"

namespace pensieve {
namespace {

// "<0x0A>" -> 0x0A; -1 when the text does not have that form.
int parse_byte_token(std::string_view text) {
  if (text.size() != 6 || !text.starts_with("<0x") || text.back() != '>') return -1;
  int value = 0;
  for (const char c : text.substr(3, 2)) {
    int digit = -1;
    if (c >= '0' && c <= '9') digit = c - '0';
    if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
    if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

std::string spm_piece(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text.substr(i).starts_with("\xE2\x96\x81")) {
      out.push_back(' ');
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

// Maps each GPT-2 alphabet character back to its byte; other text is kept as it is.
std::string byte_level_piece(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const Utf8Char c = utf8_next(text.substr(i));
    const int byte = c.status == Utf8Char::kValid ? unicode_to_byte(c.cp) : -1;
    if (byte >= 0) {
      out.push_back(static_cast<char>(byte));
    } else {
      out.append(text.substr(i, c.length));
    }
    i += c.length;
  }
  return out;
}

const std::string& empty_string() {
  static const std::string empty;
  return empty;
}

}  // namespace

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;

Expected<std::unique_ptr<Tokenizer>> Tokenizer::from_gguf(const GgufFile& file) {
  PV_TRY(Vocab vocab, Vocab::load(file));
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  t->vocab_ = std::make_unique<Vocab>(std::move(vocab));
  const Vocab& v = *t->vocab_;
  bool family_bos = true;
  if (v.kind() == VocabKind::kSpm) {
    t->model_ = std::make_unique<SpmModel>(v);
    t->strip_space_prefix_ = v.add_space_prefix();
  } else {
    PV_TRY(std::unique_ptr<BpeModel> bpe, BpeModel::create(v, file));
    family_bos = bpe->pre_tokenizer().add_bos();
    t->model_ = std::move(bpe);
  }
  t->add_bos_default_ = v.add_bos_key().value_or(family_bos) && v.special().bos != kNoToken;
  t->splitter_ = std::make_unique<SpecialSplitter>(v);
  t->build_pieces();
  return t;
}

// What each token prints as, computed once (as llama.cpp's piece cache): special tokens print
// their text, unused and undefined ones nothing.
void Tokenizer::build_pieces() {
  const Vocab& v = *vocab_;
  pieces_.resize(v.size());
  for (int32_t id = 0; id < v.size(); ++id) {
    const std::string& text = v.text(id);
    const TokenType type = v.type(id);
    if (v.is_special(id)) {
      pieces_[id] = text;
    } else if (type == TokenType::kUnused || type == TokenType::kUndefined) {
      pieces_[id].clear();
    } else if (v.kind() == VocabKind::kBpe) {
      pieces_[id] = byte_level_piece(text);
    } else if (const int byte = parse_byte_token(text); type == TokenType::kByte && byte >= 0) {
      pieces_[id] = std::string(1, static_cast<char>(byte));
    } else {
      pieces_[id] = spm_piece(text);
    }
  }
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  if (options.add_bos && bos() != kNoToken) out.push_back(bos());
  WordCache cache;
  bool after_special = true;  // the start of the text counts as following a special token
  for (const Fragment& f : splitter_->split(text, options.parse_special)) {
    if (f.token != kNoToken) {
      out.push_back(f.token);
      after_special = true;
    } else {
      model_->encode(f.text, after_special, &cache, &out);
      after_special = false;
    }
  }
  return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string out;
  bool after_special = true;
  for (const int32_t id : ids) {
    if (!vocab_->contains(id)) continue;
    if (vocab_->is_special(id)) {
      after_special = true;
      if (!(skip_special && vocab_->is_control(id))) out.append(pieces_[id]);
      continue;
    }
    std::string_view piece = pieces_[id];
    if (after_special && strip_space_prefix_ && piece.starts_with(' ')) piece.remove_prefix(1);
    out.append(piece);
    after_special = false;
  }
  return out;
}

const std::string& Tokenizer::token_piece(int32_t id) const {
  return vocab_->contains(id) ? pieces_[id] : empty_string();
}

std::string_view Tokenizer::token_text(int32_t id) const {
  return vocab_->contains(id) ? std::string_view(vocab_->text(id)) : std::string_view();
}

}  // namespace pensieve
