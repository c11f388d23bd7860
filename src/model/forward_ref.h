// The scalar reference forward pass (F32 activations, weights dequantized row by row): readable
// top to bottom, and the oracle every fast path is tested against.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/result.h"
#include "model/forward.h"
#include "model/hparams.h"
#include "model/weights.h"

namespace pensieve {

class ReferenceForward : public Forward {
 public:
  // attention_window: positions each token attends, its own included (a sliding window, for
  // contexts beyond the trained one); 0 = every earlier position.
  ReferenceForward(const Hparams& hp, const ModelWeights& weights, int64_t n_ctx,
                   int64_t attention_window = 0);

  // Feeds one token at position n_past() and returns the next-token logits [n_vocab].
  // Errors: token id out of range, or the context is full.
  Expected<std::span<const float>> step(int32_t token);

  Expected<std::span<const float>> eval(std::span<const int32_t> tokens) override;
  int64_t n_past() const override { return n_past_; }
  int64_t n_ctx() const override { return n_ctx_; }
  void reset() override { n_past_ = 0; }
  int64_t attention_window() const { return window_; }

 private:
  void attention(int64_t il);
  void feed_forward(int64_t il);

  const Hparams& hp_;
  const ModelWeights& w_;
  int64_t n_ctx_;
  int64_t window_;
  int64_t n_past_ = 0;
  ref::RopeParams rope_;
  // KV cache, per layer: [n_ctx, n_embd_kv]
  std::vector<std::vector<float>> k_cache_;
  std::vector<std::vector<float>> v_cache_;
  // Activations of the current token.
  std::vector<float> x_;             // [n_embd] residual stream
  std::vector<float> xn_;            // [n_embd] normalized
  std::vector<float> q_;             // [n_head * head_dim]
  std::vector<float> attn_;          // [n_head * head_dim]
  std::vector<float> scores_;        // [n_ctx]
  std::vector<float> gate_;          // [n_ff]
  std::vector<float> up_;            // [n_ff]
  std::vector<float> proj_;          // [max(n_embd, n_ff)]
  std::vector<float> scratch_;       // [max row length] dequantized weight row
  std::vector<float> logits_;        // [n_vocab]
  std::vector<float> rope_scratch_;  // [n_rot]
};

}  // namespace pensieve
