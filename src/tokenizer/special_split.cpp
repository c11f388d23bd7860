#include "tokenizer/special_split.h"

#include <algorithm>
#include <cctype>

namespace pensieve {
namespace {

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

}  // namespace

SpecialSplitter::SpecialSplitter(const Vocab& vocab) : vocab_(vocab) {
  for (int32_t id = 0; id < vocab.size(); ++id) {
    // Only the id a text maps to can be produced (duplicates lose, as in Vocab::find).
    if (vocab.is_special(id) && !vocab.text(id).empty() && vocab.find(vocab.text(id)) == id) {
      by_length_.push_back(id);
    }
  }
  std::stable_sort(by_length_.begin(), by_length_.end(), [&](int32_t a, int32_t b) {
    return vocab.text(a).size() > vocab.text(b).size();
  });
  for (uint32_t i = 0; i < by_length_.size(); ++i) {
    const auto first = static_cast<uint8_t>(vocab.text(by_length_[i])[0]);
    all_by_first_byte_[first].push_back(i);
    if (!vocab.is_control(by_length_[i])) {
      user_by_first_byte_[first].push_back(i);
      has_user_defined_ = true;
    }
  }
}

std::vector<uint32_t> SpecialSplitter::present(std::string_view text, bool parse_special) const {
  std::vector<uint32_t> found;
  if (!parse_special && !has_user_defined_) return found;
  const auto& by_first_byte = parse_special ? all_by_first_byte_ : user_by_first_byte_;
  std::vector<bool> seen(by_length_.size(), false);
  for (size_t pos = 0; pos < text.size(); ++pos) {
    for (const uint32_t i : by_first_byte[static_cast<uint8_t>(text[pos])]) {
      if (!seen[i] && text.substr(pos).starts_with(vocab_.text(by_length_[i]))) seen[i] = true;
    }
  }
  for (uint32_t i = 0; i < seen.size(); ++i) {
    if (seen[i]) found.push_back(i);
  }
  return found;
}

void SpecialSplitter::split_on(int32_t id, std::vector<Fragment>* fragments) const {
  const std::string_view token = vocab_.text(id);
  std::vector<Fragment> out;
  out.reserve(fragments->size() + 2);
  for (const Fragment& f : *fragments) {
    if (f.token != kNoToken) {
      out.push_back(f);
      continue;
    }
    std::string_view rest = f.text;
    while (!rest.empty()) {
      const size_t at = rest.find(token);
      if (at == std::string_view::npos) {
        out.push_back({rest, kNoToken});
        break;
      }
      std::string_view left = rest.substr(0, at);
      if (vocab_.lstrip(id)) {
        while (!left.empty() && is_space(left.back())) left.remove_suffix(1);
      }
      if (!left.empty()) out.push_back({left, kNoToken});
      out.push_back({rest.substr(at, token.size()), id});
      rest.remove_prefix(at + token.size());
      if (vocab_.rstrip(id)) {
        while (!rest.empty() && is_space(rest.front())) rest.remove_prefix(1);
      }
    }
  }
  *fragments = std::move(out);
}

std::vector<Fragment> SpecialSplitter::split(std::string_view text, bool parse_special) const {
  std::vector<Fragment> fragments;
  if (text.empty()) return fragments;
  fragments.push_back({text, kNoToken});
  if (by_length_.empty()) return fragments;
  for (const uint32_t i : present(text, parse_special)) split_on(by_length_[i], &fragments);
  return fragments;
}

}  // namespace pensieve
