// A vocabulary read from GGUF tokenizer.* metadata: token texts, scores, types and special ids.
// Everything is copied out of the file, so the model file may be unmapped afterwards.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/result.h"
#include "gguf/reader.h"

namespace pensieve {

inline constexpr int32_t kNoToken = -1;

// tokenizer.ggml.token_type values.
enum class TokenType : uint8_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

// tokenizer.ggml.model: "llama" is SentencePiece-style BPE over scores, "gpt2" byte-level BPE.
enum class VocabKind { kSpm, kBpe };

struct SpecialTokens {
  int32_t bos = kNoToken;
  int32_t eos = kNoToken;
  int32_t eot = kNoToken;  // end of turn in chat formats
  int32_t eom = kNoToken;  // end of message (tool calls)
  int32_t unk = kNoToken;
  int32_t sep = kNoToken;
  int32_t pad = kNoToken;
};

class Vocab {
 public:
  static Expected<Vocab> load(const GgufFile& file);

  VocabKind kind() const { return kind_; }
  const std::string& pre() const { return pre_; }  // tokenizer.ggml.pre, "default" when absent
  int32_t size() const { return static_cast<int32_t>(texts_.size()); }
  bool contains(int32_t id) const { return id >= 0 && id < size(); }

  // Per-token data; `id` must satisfy contains(id).
  const std::string& text(int32_t id) const { return texts_[id]; }
  float score(int32_t id) const { return scores_[id]; }
  TokenType type(int32_t id) const { return types_[id]; }
  bool lstrip(int32_t id) const { return (strip_[id] & kLstrip) != 0; }
  bool rstrip(int32_t id) const { return (strip_[id] & kRstrip) != 0; }
  // Control and unknown tokens: matched in text only when asked, left out of decoded text.
  bool is_control(int32_t id) const;
  // Control, unknown and user-defined tokens: the ones split out of text before tokenizing.
  bool is_special(int32_t id) const;

  // The id whose text is exactly `text`, or kNoToken.
  int32_t find(std::string_view text) const;

  const SpecialTokens& special() const { return special_; }
  bool is_eog(int32_t id) const;
  const std::vector<int32_t>& eog_ids() const { return eog_; }
  // tokenizer.ggml.add_bos_token when present (the default depends on the model and pre-tokenizer).
  std::optional<bool> add_bos_key() const { return add_bos_key_; }
  bool add_space_prefix() const { return add_space_prefix_; }

 private:
  static constexpr uint8_t kLstrip = 1;
  static constexpr uint8_t kRstrip = 2;

  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  Expected<void> read_tokens(const GgufFile& file);
  Expected<void> read_special(const GgufFile& file);
  void detect_end_tokens();
  void set_strip_rules(const GgufFile& file);

  VocabKind kind_ = VocabKind::kSpm;
  std::string pre_;
  std::vector<std::string> texts_;
  std::vector<float> scores_;
  std::vector<TokenType> types_;
  std::vector<uint8_t> strip_;
  std::unordered_map<std::string, int32_t, Hash, std::equal_to<>> index_;
  SpecialTokens special_;
  std::vector<int32_t> eog_;  // sorted
  std::optional<bool> add_bos_key_;
  bool add_space_prefix_ = false;
};

}  // namespace pensieve
