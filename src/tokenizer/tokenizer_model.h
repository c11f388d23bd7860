// The interface each tokenization algorithm implements (SentencePiece-style BPE, byte-level BPE),
// and the per-call cache of words already split, which real text repeats a lot.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace pensieve {

// Bounded by bytes: once full it stops accepting words (the first words of a text are as good a
// sample of its vocabulary as any). Owned by one encode call, so it needs no locking.
class WordCache {
 public:
  static constexpr size_t kDefaultMaxBytes = size_t{4} << 20;
  static constexpr size_t kMaxWordBytes = 128;       // longer words rarely repeat
  static constexpr size_t kEntryOverheadBytes = 64;  // hash node, key string, bucket

  explicit WordCache(size_t max_bytes = kDefaultMaxBytes) : max_bytes_(max_bytes) {}

  // Appends the ids cached for `word` and returns true; false when it is not cached.
  bool lookup(std::string_view word, std::vector<int32_t>* out) const {
    const auto it = map_.find(word);
    if (it == map_.end()) return false;
    out->insert(out->end(), ids_.begin() + it->second.first,
                ids_.begin() + it->second.first + it->second.second);
    return true;
  }
  void insert(std::string_view word, std::span<const int32_t> ids) {
    if (word.size() > kMaxWordBytes) return;
    const size_t cost = word.size() + ids.size() * sizeof(int32_t) + kEntryOverheadBytes;
    if (bytes_ + cost > max_bytes_) return;
    const auto offset = static_cast<uint32_t>(ids_.size());
    const auto count = static_cast<uint32_t>(ids.size());
    if (!map_.try_emplace(std::string(word), offset, count).second) return;
    ids_.insert(ids_.end(), ids.begin(), ids.end());
    bytes_ += cost;
  }
  size_t size_bytes() const { return bytes_; }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, std::pair<uint32_t, uint32_t>, Hash, std::equal_to<>> map_;
  std::vector<int32_t> ids_;
  size_t bytes_ = 0;
  size_t max_bytes_;
};

class TokenizerModel {
 public:
  virtual ~TokenizerModel() = default;
  // Appends the ids of `text`, which holds no special tokens. `after_special` is true at the
  // start of the sequence and right after a special token (SentencePiece adds a space there).
  virtual void encode(std::string_view text, bool after_special, WordCache* cache,
                      std::vector<int32_t>* out) const = 0;
};

}  // namespace pensieve
