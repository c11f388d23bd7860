// The single-sequence generation loop: prompt in, text out through a callback as it is made.
// Used by `pensieve run` and `pensieve bench`; the server's scheduler builds on the same steps.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "model/forward.h"
#include "sampling/sampler.h"
#include "sampling/stop_strings.h"
#include "sampling/token_constraint.h"
#include "tokenizer/stream_decoder.h"
#include "tokenizer/tokenizer.h"

namespace pensieve {

enum class StopReason {
  kEndOfGeneration,  // the model produced an end-of-generation token
  kMaxTokens,        // the requested number of tokens
  kStopString,       // a stop string appeared in the text
  kContextFull,      // the context window ran out before max_tokens
  kCancelled,        // the text callback asked to stop
};

std::string_view stop_reason_name(StopReason reason);

struct GenerateOptions {
  int64_t max_tokens = 128;
  SamplingParams sampling;
  std::vector<std::string> stop_strings;
  // Set from another thread to stop before the next token (StopReason::kCancelled).
  const std::atomic<bool>* cancel = nullptr;
  // Limits what may be generated; the sequence ends (kEndOfGeneration) once the constraint is
  // complete and nothing may follow, or the model picks an end token while it is complete.
  std::shared_ptr<TokenConstraint> constraint;
};

struct GenerateResult {
  StopReason reason = StopReason::kMaxTokens;
  std::vector<int32_t> tokens;  // generated ids (the end-of-generation token excluded)
  std::string stop_string;      // which stop string matched, if any
  int64_t n_prompt = 0;
  int64_t n_cached = 0;   // prompt tokens whose K and V came from the prefix cache
  double prefill_ms = 0;  // evaluating the prompt, up to the first token's logits
  double decode_ms = 0;   // everything after
};

// Returning false from on_text stops generation (StopReason::kCancelled).
using TextCallback = std::function<bool(std::string_view text)>;

// One sequence's generation after its prompt, a step per token: samples from the logits after
// the last evaluated token, turns the token into text (complete UTF-8 only), applies the stop
// strings, and decides when it ends. generate() drives one over a single-sequence Forward; the
// scheduler drives several at once. Everything it appends to is sized at construction, so steps
// allocate nothing.
class Generation {
 public:
  // `room`: positions left in the context when the prompt starts (the prompt must fit).
  Generation(const Tokenizer& tokenizer, std::span<const int32_t> prompt,
             const GenerateOptions& options, int64_t room);

  // Takes the logits after the last evaluated token; hands new text to on_text. Returns the
  // token to evaluate next, or nullopt once generation ended (result().reason says why).
  // Errors: non-finite logits.
  Expected<std::optional<int32_t>> step(std::span<const float> logits, const TextCallback& on_text);
  // Whether this step's token is the logits' greedy_pick (model/forward.h): greedy sampling, no
  // penalties, no constraint on the next token. A backend may then pick it where the logits are
  // (BatchForward::eval_batch_greedy) and hand it to step_picked().
  bool greedy() const;
  // Whether this step's token may be drawn where the logits are (BatchForward::eval_batch_drawn):
  // greedy(), or a draw from the temperature alone (Sampler::draws_only) with no constraint on
  // the next token. next_draw() then gives the draw (taking the sampler's next uniform) for
  // step_picked(); call it once a step.
  bool drawable() const;
  TokenDraw next_draw();
  // step() with the token already picked; -1 (a logit was not finite) is step()'s error.
  Expected<std::optional<int32_t>> step_picked(int32_t token, const TextCallback& on_text);
  // How many of the step's best tokens (BatchForward::eval_batch_best) make the same pick as its
  // whole logits, at most `most`: Sampler::best_needed, or 0 (the whole row is needed) under a
  // constraint on the next token, and for the kRowsAfterShortBest steps after best tokens fell
  // short (step_best read the row).
  int64_t best_needed(int64_t most) const;
  // Whether best_needed() counts on the row's exp_sum() too (Sampler::needs_exp_sum).
  bool needs_exp_sum() const { return sampler_.needs_exp_sum(); }
  static constexpr int kRowsAfterShortBest = 16;
  // step() from the step's best tokens, at least best_needed() of them, and the row's exp_sum()
  // when needs_exp_sum(); `row` brings the whole row when they fall short (a flat top-p). An id
  // of -1 first (a logit was not finite) is step()'s error.
  using RowSource = std::function<Expected<std::span<const float>>()>;
  Expected<std::optional<int32_t>> step_best(std::span<const TokenLogit> best, double exp_sum,
                                             const RowSource& row, const TextCallback& on_text);
  bool finished() const { return finished_; }
  // The prompt and every generated token so far (what the KV cache holds, plus the last token).
  std::span<const int32_t> tokens() const { return history_; }
  int64_t n_prompt() const { return result_.n_prompt; }
  GenerateResult& result() { return result_; }

 private:
  // The checks before a token (finished, max_tokens, cancelled): false once it has ended.
  bool begin_step(const TextCallback& on_text);
  // Appends the token and hands on its text.
  Expected<std::optional<int32_t>> take(int32_t token, const TextCallback& on_text);
  void end(StopReason reason, const TextCallback& on_text);

  const Tokenizer& tokenizer_;
  const GenerateOptions& options_;
  int64_t room_;
  GenerateResult result_;
  std::vector<int32_t> history_;
  Sampler sampler_;
  int rows_before_best_ = 0;  // steps left that take the whole row after best tokens fell short
  StopMatcher stops_;
  StreamDecoder decoder_;
  // With a constraint: which tokens may come next, and the logits masked with it.
  std::vector<uint8_t> mask_;
  std::vector<float> masked_;
  std::string piece_;  // the token's complete text, before the stop strings see it
  std::string text_;   // what the stop strings let out
  std::chrono::steady_clock::time_point started_, first_logits_;
  bool finished_ = false;
};

// Evaluates `prompt` (non-empty; it must fit in the context: no silent truncation), then
// samples up to max_tokens. Errors: prompt too long, non-finite logits, forward failures.
// Buffers are sized before the first token: the token loop itself allocates nothing (beyond
// what on_text does), see engine/token_loop_alloc_test.cpp.
Expected<GenerateResult> generate(Forward& forward, const Tokenizer& tokenizer,
                                  std::span<const int32_t> prompt, const GenerateOptions& options,
                                  const TextCallback& on_text);

}  // namespace pensieve
