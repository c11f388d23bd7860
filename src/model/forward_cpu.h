// The fast CPU forward pass: batched prompt processing and decode with the SIMD matrix kernels
// and a thread pool. All buffers are sized at construction; eval() allocates nothing.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/matmul.h"
#include "model/forward.h"
#include "model/hparams.h"
#include "model/weights.h"

namespace pensieve {

class CpuForward : public Forward {
 public:
  // max_batch: prompt tokens processed per step (longer prompts go in chunks).
  // kv_type: the cache's element type, F16 (default), Q8_0 (half the memory; needs head sizes
  // that are multiples of 32, else F16 is used) or F32.
  CpuForward(const Hparams& hp, const ModelWeights& weights, int64_t n_ctx, int n_threads,
             int64_t max_batch = 256, GgmlType kv_type = GgmlType::kF16);

  // What a CpuForward of these settings allocates, known before building one (the memory
  // budget is planned from it). kv_bytes_per_position: K and V of all layers for one position.
  struct MemoryPlan {
    int64_t kv_bytes_per_position = 0;
    int64_t scratch_bytes = 0;  // activations, matmul workspace, attention scratch, logits
  };
  static MemoryPlan memory_plan(const Hparams& hp, int64_t max_batch, int n_threads,
                                GgmlType kv_type);
  // The same figures read off this instance's buffers (tests compare the two).
  MemoryPlan allocated() const;

  Expected<std::span<const float>> eval(std::span<const int32_t> tokens) override;
  int64_t n_past() const override { return n_past_; }
  int64_t n_ctx() const override { return n_ctx_; }
  void reset() override { n_past_ = 0; }

  // Bytes of weights one decode step reads (for bandwidth figures).
  uint64_t weight_bytes_per_token() const;
  GgmlType kv_type() const { return kv_type_; }
  // Bytes of the KV cache (all layers, the whole context).
  uint64_t kv_cache_bytes() const;

 private:
  void eval_chunk(std::span<const int32_t> tokens);
  void attention(int64_t il, int64_t n_tokens);
  void store_kv(int64_t il, int64_t n_tokens);
  void attend(int64_t il, int64_t n_tokens);
  void feed_forward(int64_t il, int64_t n_tokens);
  void matmul(const Matrix& w, const float* x, int64_t n_tokens, float* y);

  const Hparams& hp_;
  const ModelWeights& w_;
  int64_t n_ctx_;
  int64_t max_batch_;
  int64_t n_past_ = 0;
  GgmlType kv_type_;
  size_t kv_row_bytes_;  // one position of one layer's K (or V): n_embd_kv values
  ref::RopeParams rope_;
  ThreadPool pool_;
  cpu::MatmulWorkspace workspace_;
  // KV cache, per layer: n_ctx rows of kv_row_bytes_
  std::vector<std::vector<uint8_t>> k_cache_;
  std::vector<std::vector<uint8_t>> v_cache_;
  // Activations of one chunk.
  std::vector<float> x_;             // [max_batch, n_embd] residual stream
  std::vector<float> xn_;            // [max_batch, n_embd]
  std::vector<float> q_;             // [max_batch, n_head * head_dim]
  std::vector<float> k_;             // [max_batch, n_embd_kv]
  std::vector<float> v_;             // [max_batch, n_embd_kv]
  std::vector<float> attn_;          // [max_batch, n_head * head_dim]
  std::vector<float> gate_;          // [max_batch, n_ff]
  std::vector<float> up_;            // [max_batch, n_ff]
  std::vector<float> proj_;          // [max_batch, n_embd]
  std::vector<float> rope_cos_;      // [max_batch, n_rot / 2] for the chunk's positions
  std::vector<float> rope_sin_;      // [max_batch, n_rot / 2]
  std::vector<float> attn_scratch_;  // [n_threads, cpu::attention_scratch_floats()]
  std::vector<float> logits_;        // [n_vocab]
};

}  // namespace pensieve
