// The fast CPU forward pass: batched prompt processing and decode with the SIMD matrix kernels
// and a thread pool. All buffers are sized at construction; eval() allocates nothing.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/cpu/matmul.h"
#include "model/forward.h"
#include "model/hparams.h"
#include "model/weights.h"

namespace pensieve {

class CpuForward : public Forward {
 public:
  // max_batch: prompt tokens processed per step (longer prompts go in chunks).
  CpuForward(const Hparams& hp, const ModelWeights& weights, int64_t n_ctx, int n_threads,
             int64_t max_batch = 256);

  Expected<std::span<const float>> eval(std::span<const int32_t> tokens) override;
  int64_t n_past() const override { return n_past_; }
  int64_t n_ctx() const override { return n_ctx_; }
  void reset() override { n_past_ = 0; }

  // Bytes of weights one decode step reads (for bandwidth figures).
  uint64_t weight_bytes_per_token() const;

 private:
  void eval_chunk(std::span<const int32_t> tokens);
  void attention(int64_t il, int64_t n_tokens);
  void attend_one(int64_t il, int64_t t, int64_t h, float* scores);
  void feed_forward(int64_t il, int64_t n_tokens);
  void matmul(const Matrix& w, const float* x, int64_t n_tokens, float* y);

  const Hparams& hp_;
  const ModelWeights& w_;
  int64_t n_ctx_;
  int64_t max_batch_;
  int64_t n_past_ = 0;
  ThreadPool pool_;
  cpu::MatmulWorkspace workspace_;
  // KV cache, per layer: [n_ctx, n_embd_kv]
  std::vector<std::vector<float>> k_cache_;
  std::vector<std::vector<float>> v_cache_;
  // Activations of one chunk.
  std::vector<float> x_;       // [max_batch, n_embd] residual stream
  std::vector<float> xn_;      // [max_batch, n_embd]
  std::vector<float> q_;       // [max_batch, n_head * head_dim]
  std::vector<float> k_;       // [max_batch, n_embd_kv]
  std::vector<float> v_;       // [max_batch, n_embd_kv]
  std::vector<float> attn_;    // [max_batch, n_head * head_dim]
  std::vector<float> gate_;    // [max_batch, n_ff]
  std::vector<float> up_;      // [max_batch, n_ff]
  std::vector<float> proj_;    // [max_batch, n_embd]
  std::vector<float> scores_;  // [n_threads, n_ctx]
  std::vector<float> logits_;  // [n_vocab]
};

}  // namespace pensieve
