#include "model/forward_split.h"

#include "core/check.h"

namespace pensieve {

SplitForward::SplitForward(std::unique_ptr<LayerStage> front, std::unique_ptr<LayerStage> back)
    : front_(std::move(front)), back_(std::move(back)) {
  const LayerRange f = front_->layers();
  const LayerRange b = back_->layers();
  PV_CHECK(f.first == 0 && f.end == b.first, "split: layers [{}, {}) then [{}, {})", f.first, f.end,
           b.first, b.end);
  PV_CHECK(front_->n_ctx() == back_->n_ctx() && front_->n_blocks() == back_->n_blocks() &&
               front_->max_batch() == back_->max_batch() &&
               front_->max_segments() == back_->max_segments(),
           "split: the stages' limits differ");
}

Expected<std::span<const float>> SplitForward::eval_batch(std::span<const BatchSegment> segments) {
  PV_TRY(std::span<const float> hidden, front_->eval_layers(segments, {}));
  return back_->eval_layers(segments, hidden);
}

Expected<std::span<const int32_t>> SplitForward::eval_batch_greedy(
    std::span<const BatchSegment> segments) {
  PV_TRY(std::span<const float> hidden, front_->eval_layers(segments, {}));
  return back_->eval_layers_greedy(segments, hidden);
}

Expected<std::span<const int32_t>> SplitForward::eval_batch_drawn(
    std::span<const BatchSegment> segments, std::span<const TokenDraw> draws) {
  PV_TRY_VOID(check_draws(segments, draws));
  PV_TRY(std::span<const float> hidden, front_->eval_layers(segments, {}));
  return back_->eval_layers_drawn(segments, hidden, draws);
}

Expected<std::span<const TokenLogit>> SplitForward::eval_batch_best(
    std::span<const BatchSegment> segments, int64_t k, std::span<double> exp_sums) {
  PV_TRY(std::span<const float> hidden, front_->eval_layers(segments, {}));
  return back_->eval_layers_best(segments, hidden, k, exp_sums);
}

int64_t SplitForward::discard_blocks(std::span<const int32_t> blocks) {
  return front_->discard_blocks(blocks) + back_->discard_blocks(blocks);
}

}  // namespace pensieve
