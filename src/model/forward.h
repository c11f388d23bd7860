// The forward-pass interface the generation loop drives: the scalar reference and the fast
// CPU path (and later other backends) implement it.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/result.h"
#include "sampling/candidates.h"

namespace pensieve {

class Forward {
 public:
  virtual ~Forward() = default;

  // Feeds tokens at positions n_past().. and returns the logits [n_vocab] after the last one.
  // Errors: a token id out of range, or tokens that do not fit in the context.
  virtual Expected<std::span<const float>> eval(std::span<const int32_t> tokens) = 0;
  virtual int64_t n_past() const = 0;
  virtual int64_t n_ctx() const = 0;
  // Forgets the sequence (the KV cache is reused from position 0).
  virtual void reset() = 0;
};

// eval()'s checks, the messages every backend gives: at least one token, all of them in [0,
// n_vocab), and room for them after n_past within `room` positions.
Expected<void> check_eval(std::span<const int32_t> tokens, int64_t n_past, int64_t room,
                          int64_t n_vocab);

// One sequence's part of a batch: `tokens` go in at positions first_pos.., whose K and V are
// written into (and attention reads through) the blocks of `block_table` (one block id per
// kKvBlockPositions positions; it must cover first_pos + tokens.size() positions).
struct BatchSegment {
  std::span<const int32_t> tokens;
  int64_t first_pos = 0;
  std::span<const int32_t> block_table;
};

// How a step's next token is picked where the logits are: temperature 0 is greedy_pick; above 0
// it is drawn from softmax(logits / temperature) with `uniform` in [0, 1)
// (sampling::draw_token).
struct TokenDraw {
  float temperature = 0.0f;
  double uniform = 0.0;
};

// The forward pass over a paged KV cache that the batching scheduler drives: a pool of
// n_blocks() blocks of kKvBlockPositions positions, several sequences per step.
class BatchForward {
 public:
  static constexpr int64_t kKvBlockPositions = 32;
  virtual ~BatchForward() = default;

  // At most max_segments() segments of at least one token, at most max_batch() tokens in all.
  // Returns the logits after each segment's last token, [n_segments, n_vocab], valid until the
  // next call.
  virtual Expected<std::span<const float>> eval_batch(std::span<const BatchSegment> segments) = 0;
  // The same step, but only the greedy pick after each segment's last token comes back
  // (greedy_pick of its logits), [n_segments], valid until the next call. This default picks
  // from eval_batch()'s logits; a GPU backend picks on the device and sends back only the ids.
  virtual Expected<std::span<const int32_t>> eval_batch_greedy(
      std::span<const BatchSegment> segments);
  // The same step with each segment's token picked as draws[i] says (one a segment), [n_segments],
  // valid until the next call. This default picks from eval_batch()'s logits; a GPU backend draws
  // on the device.
  virtual Expected<std::span<const int32_t>> eval_batch_drawn(
      std::span<const BatchSegment> segments, std::span<const TokenDraw> draws);
  // The same step with only the k best tokens after each segment's last token coming back
  // (best_tokens(): the highest logit first, id -1 first when a logit is not finite),
  // [n_segments, k], valid until the next call; k in [1, min(kMaxBestTokens, n_vocab)]. A
  // top-k sampler needs no more (Sampler::best_needed). With exp_sums ([n_segments], or empty)
  // each row's exp_sum() too, for a top-p or min-p over the row. This default takes them from
  // eval_batch()'s logits; a GPU backend selects and sums on the device.
  static constexpr int64_t kMaxBestTokens = 256;
  virtual Expected<std::span<const TokenLogit>> eval_batch_best(
      std::span<const BatchSegment> segments, int64_t k, std::span<double> exp_sums);
  // After eval_batch_best: segment i's whole row of logits, for a sampler its best tokens did not
  // decide (a flat top-p), valid until the next call. A GPU backend copies the step's rows at
  // the first call.
  virtual Expected<std::span<const float>> best_step_row(int64_t segment);
  // The blocks' contents are no longer needed: their memory may go back to the system (it is
  // there again, zeroed, when a block is next written). Returns the bytes given back.
  virtual int64_t discard_blocks(std::span<const int32_t> blocks) = 0;
  virtual int64_t n_ctx() const = 0;
  virtual int64_t n_blocks() const = 0;
  virtual int64_t max_batch() const = 0;
  virtual int64_t max_segments() const = 0;

 protected:
  // greedy_pick of each of n_segments rows of logits, into greedy_.
  std::span<const int32_t> greedy_picks(std::span<const float> logits, size_t n_segments);
  // Each row's pick as draws[row] says (pick_token), into greedy_.
  std::span<const int32_t> drawn_picks(std::span<const float> logits,
                                       std::span<const TokenDraw> draws);
  // The k best tokens of each of n_segments rows of logits, into best_, with each row's
  // exp_sum() into exp_sums when it is not empty; the logits are kept for best_step_row().
  std::span<const TokenLogit> best_rows(std::span<const float> logits, size_t n_segments, int64_t k,
                                        std::span<double> exp_sums);
  std::vector<int32_t> greedy_;         // eval_batch_greedy's and eval_batch_drawn's picks
  std::vector<TokenLogit> best_;        // eval_batch_best's
  std::span<const float> best_logits_;  // the rows they came from, [best_segments_, n_vocab]
  size_t best_segments_ = 0;
};

// Which of a model's layers a pass runs: [first, end), end -1 for the last. A model can be split
// over two backends (SplitForward): the first runs layers [0, k), the other [k, n_layer).
struct LayerRange {
  int64_t first = 0;
  int64_t end = -1;
};

// A BatchForward that runs a range of the layers, one stage of a split model. A range that starts
// at layer 0 begins from the token embeddings, one that starts later from the hidden states of
// the stage before; a range that ends the model gives each segment's logits (as eval_batch does),
// one that ends before gives every token's hidden state. eval_batch() needs the whole model.
class LayerStage : public BatchForward {
 public:
  // The segments as eval_batch takes them; `hidden` is the stage before's output, [n_tokens,
  // n_embd], empty for a range from layer 0. Returns [n_tokens, n_embd] hidden states, or
  // [n_segments, n_vocab] logits at the model's end, valid until the next call. Errors: those of
  // eval_batch, and a `hidden` of the wrong size.
  virtual Expected<std::span<const float>> eval_layers(std::span<const BatchSegment> segments,
                                                       std::span<const float> hidden) = 0;
  // The same pass for a range that ends the model, with only each segment's greedy pick coming
  // back (as eval_batch_greedy). This default picks from eval_layers()'s logits.
  virtual Expected<std::span<const int32_t>> eval_layers_greedy(
      std::span<const BatchSegment> segments, std::span<const float> hidden);
  // And with each segment's token picked as draws[i] says (as eval_batch_drawn).
  virtual Expected<std::span<const int32_t>> eval_layers_drawn(
      std::span<const BatchSegment> segments, std::span<const float> hidden,
      std::span<const TokenDraw> draws);
  // And with each segment's k best tokens coming back (as eval_batch_best).
  virtual Expected<std::span<const TokenLogit>> eval_layers_best(
      std::span<const BatchSegment> segments, std::span<const float> hidden, int64_t k,
      std::span<double> exp_sums);
  virtual LayerRange layers() const = 0;  // end resolved
};

// The error of a call that needs the whole model made to a stage that runs only `layers`.
Unexpected<Error> only_part_of_model(LayerRange layers, int64_t n_layer);

// The index of the largest logit, the lowest of equal ones; -1 if a logit is not finite (the
// step's output is then unusable, as Generation::step finds it).
int32_t greedy_pick(std::span<const float> logits);
// greedy_pick, or sampling::draw_token when draw.temperature > 0.
int32_t pick_token(std::span<const float> logits, TokenDraw draw);

// What a BatchForward accepts; check_batch() returns the batch's token count, or the first
// reason the segments do not fit (the messages both backends give).
struct BatchLimits {
  int64_t n_ctx = 0;
  int64_t n_blocks = 0;
  int64_t n_vocab = 0;
  int64_t max_batch = 0;
  int64_t max_segments = 0;
};
Expected<int64_t> check_batch(std::span<const BatchSegment> segments, const BatchLimits& limits);
// One draw a segment, or an error that says how many came.
Expected<void> check_draws(std::span<const BatchSegment> segments,
                           std::span<const TokenDraw> draws);
// A k that eval_batch_best takes, or an error that says why not.
Expected<void> check_best_count(int64_t k, int64_t n_vocab);

}  // namespace pensieve
