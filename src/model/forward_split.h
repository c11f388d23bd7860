// A model split over two stages (LayerStage): the front runs the embeddings and layers [0, k),
// the back takes every token's hidden state and runs layers [k, n_layer) and the logits. Both
// address the same block ids of their own pools (each keeps its own layers' K and V), so the
// scheduler sees one BatchForward. This is how a model larger than the GPU runs with its last
// layers there and the rest on the CPU.
#pragma once

#include <memory>
#include <span>

#include "model/forward.h"

namespace pensieve {

class SplitForward : public BatchForward {
 public:
  // front's range must start at layer 0 and end where back's starts; back's must end the model.
  // Both must take the same context, pool, batch and sequence counts.
  SplitForward(std::unique_ptr<LayerStage> front, std::unique_ptr<LayerStage> back);

  Expected<std::span<const float>> eval_batch(std::span<const BatchSegment> segments) override;
  // The back stage picks, draws or selects the best tokens (on the GPU when it is there).
  Expected<std::span<const int32_t>> eval_batch_greedy(
      std::span<const BatchSegment> segments) override;
  Expected<std::span<const int32_t>> eval_batch_drawn(std::span<const BatchSegment> segments,
                                                      std::span<const TokenDraw> draws) override;
  Expected<std::span<const TokenLogit>> eval_batch_best(std::span<const BatchSegment> segments,
                                                        int64_t k,
                                                        std::span<double> exp_sums) override;
  Expected<std::span<const float>> best_step_row(int64_t segment) override {
    return back_->best_step_row(segment);
  }
  // Both stages' pools give back the blocks' memory; returns the bytes of both.
  int64_t discard_blocks(std::span<const int32_t> blocks) override;
  int64_t n_ctx() const override { return back_->n_ctx(); }
  int64_t n_blocks() const override { return back_->n_blocks(); }
  int64_t max_batch() const override { return back_->max_batch(); }
  int64_t max_segments() const override { return back_->max_segments(); }

  LayerStage& front() { return *front_; }
  LayerStage& back() { return *back_; }

 private:
  std::unique_ptr<LayerStage> front_;
  std::unique_ptr<LayerStage> back_;
};

}  // namespace pensieve
