#include "tokenizer/spm.h"

#include <cstdio>

#include "tokenizer/unicode.h"

namespace pensieve {
namespace {

constexpr uint32_t kSpaceMark = 0x2581;  // U+2581 LOWER ONE EIGHTH BLOCK stands for a space
constexpr std::string_view kSpaceMarkUtf8 = "\xE2\x96\x81";

// Code points of `s` and their byte offsets; false when `s` is not valid UTF-8.
bool decode_all(std::string_view s, std::vector<uint32_t>* cps, std::vector<size_t>* offsets) {
  cps->clear();
  offsets->clear();
  for (size_t i = 0; i < s.size();) {
    const Utf8Char c = utf8_next(s.substr(i));
    if (c.status != Utf8Char::kValid) return false;
    cps->push_back(c.cp);
    offsets->push_back(i);
    i += c.length;
  }
  return true;
}

}  // namespace

SpmModel::SpmModel(const Vocab& vocab) : vocab_(vocab), next_virtual_unit_(vocab.size()) {
  ascii_units_.fill(-1);
  for (int32_t id = 0; id < vocab.size(); ++id) {
    const std::string& t = vocab.text(id);
    if (t.empty()) continue;
    const Utf8Char c = utf8_next(t);
    if (c.status != Utf8Char::kValid || c.length != t.size() || vocab.find(t) != id) continue;
    if (c.cp < 128) {
      ascii_units_[c.cp] = id;
    } else {
      char_units_[c.cp] = id;
    }
  }
  build_pairs();
  for (int b = 0; b < 256; ++b) {
    char hex[8];
    std::snprintf(hex, sizeof(hex), "<0x%02X>", b);
    int32_t id = vocab.find(hex);
    if (id == kNoToken) id = vocab.find(std::string(1, static_cast<char>(b)));
    byte_tokens_[b] = id != kNoToken ? id : vocab.special().unk;
  }
}

int32_t SpmModel::char_unit(uint32_t cp) const {
  if (cp < 128) return ascii_units_[cp];
  const auto it = char_units_.find(cp);
  return it == char_units_.end() ? -1 : it->second;
}

int32_t SpmModel::add_char_unit(uint32_t cp) {
  const int32_t unit = char_unit(cp);
  if (unit >= 0) return unit;
  const int32_t created = next_virtual_unit_++;
  if (cp < 128) {
    ascii_units_[cp] = created;
  } else {
    char_units_[cp] = created;
  }
  return created;
}

// Every way a token splits into two parts that can be symbols (tokens, or single characters)
// becomes a pair that merges into it, with priority -score so that high scores merge first.
void SpmModel::build_pairs() {
  std::vector<uint32_t> cps;
  std::vector<size_t> offsets;
  for (int32_t id = 0; id < vocab_.size(); ++id) {
    const std::string_view text = vocab_.text(id);
    if (text.empty() || vocab_.find(text) != id || !decode_all(text, &cps, &offsets)) continue;
    const size_t n = cps.size();
    for (size_t j = 0; j + 1 < n; ++j) {
      if (cps[j + 1] == kSpaceMark && cps[j] != kSpaceMark) joins_space_.insert(cps[j]);
    }
    for (size_t k = 1; k < n; ++k) {
      const int32_t left = k == 1 ? add_char_unit(cps[0]) : vocab_.find(text.substr(0, offsets[k]));
      const int32_t right =
          k + 1 == n ? add_char_unit(cps[k]) : vocab_.find(text.substr(offsets[k]));
      if (left < 0 || right < 0) continue;
      pairs_.insert(left, right, PairEntry{id, -vocab_.score(id)});
    }
  }
}

bool SpmModel::splits_before_space(uint32_t cp) const {
  return cp != kSpaceMark && !joins_space_.contains(cp);
}

void SpmModel::encode(std::string_view text, bool after_special, WordCache* cache,
                      std::vector<int32_t>* out) const {
  std::string escaped;
  escaped.reserve(text.size() + text.size() / 4 + kSpaceMarkUtf8.size());
  if (after_special && vocab_.add_space_prefix()) escaped.append(kSpaceMarkUtf8);
  for (const char c : text) {
    if (c == ' ') {
      escaped.append(kSpaceMarkUtf8);
    } else {
      escaped.push_back(c);
    }
  }
  // Cut before each U+2581 that no token can join to the character before it: merges never
  // cross such a cut, so each piece tokenizes on its own and can be cached.
  Merger merger;
  const std::string_view all = escaped;
  auto emit = [&](std::string_view word) {
    if (word.empty() || cache->lookup(word, out)) return;
    const size_t before = out->size();
    encode_word(word, &merger, out);
    cache->insert(word, std::span<const int32_t>(out->data() + before, out->size() - before));
  };
  size_t start = 0;
  bool prev_valid = false;
  uint32_t prev_cp = 0;
  for (size_t i = 0; i < all.size();) {
    const Utf8Char c = utf8_next(all.substr(i));
    const bool valid = c.status == Utf8Char::kValid;
    if (valid && c.cp == kSpaceMark && i > start && (!prev_valid || splits_before_space(prev_cp))) {
      emit(all.substr(start, i - start));
      start = i;
    }
    prev_valid = valid;
    prev_cp = c.cp;
    i += c.length;
  }
  emit(all.substr(start));
}

void SpmModel::encode_word(std::string_view word, Merger* merger, std::vector<int32_t>* out) const {
  std::vector<int32_t> units;
  std::vector<uint32_t> starts;
  units.reserve(word.size());
  starts.reserve(word.size() + 1);
  for (size_t i = 0; i < word.size();) {
    const Utf8Char c = utf8_next(word.substr(i));
    units.push_back(c.status == Utf8Char::kValid ? char_unit(c.cp) : -1);
    starts.push_back(static_cast<uint32_t>(i));
    i += c.length;
  }
  starts.push_back(static_cast<uint32_t>(word.size()));
  merger->run(pairs_, &units);
  for (size_t k = 0; k < units.size(); ++k) {
    const int32_t u = units[k];
    if (u == kMergedAway) continue;
    if (u >= 0 && u < vocab_.size()) {
      out->push_back(u);
    } else {  // a character without a token of its own: never merged, so its bytes are its own
      append_bytes(word.substr(starts[k], starts[k + 1] - starts[k]), out);
    }
  }
}

void SpmModel::append_bytes(std::string_view bytes, std::vector<int32_t>* out) const {
  for (const char b : bytes) {
    const int32_t id = byte_tokens_[static_cast<uint8_t>(b)];
    if (id != kNoToken) out->push_back(id);
  }
}

}  // namespace pensieve
