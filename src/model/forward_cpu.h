// The fast CPU forward pass: batched prompt processing and decode with the SIMD matrix kernels
// and a thread pool, over a paged KV cache: a pool of blocks of cpu::kKvBlockPositions positions
// (the K and V of those positions for every layer it runs, in one block), addressed through each
// sequence's block table. eval_batch() runs several sequences' tokens through one matrix product
// per weight; eval() is the single-sequence Forward on blocks of its own; eval_layers() runs a
// range of the layers, one stage of a split model. All buffers are sized at construction; none
// of them allocates.
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

class CpuForward : public Forward, public LayerStage {
 public:
  // max_batch: tokens one step processes (longer prompts go in chunks). kv_type: the cache's
  // element type, F16 (default), Q8_0 (half the memory; needs head sizes that are multiples of 32,
  // else F16 is used) or F32. n_blocks: KV pool blocks; 0 = enough for one sequence of n_ctx.
  // max_segments: sequences one eval_batch() may carry. attention_window: positions each token
  // attends, its own included (a sliding window, for contexts beyond the trained one; the cache
  // still keeps every position); 0 = every earlier position. layers: the range this pass runs
  // (LayerStage; the pool keeps K and V of those layers only, and the other layers' weights are
  // never read).
  CpuForward(const Hparams& hp, const ModelWeights& weights, int64_t n_ctx, int n_threads,
             int64_t max_batch = 256, GgmlType kv_type = GgmlType::kF16, int64_t n_blocks = 0,
             int64_t max_segments = 1, int64_t attention_window = 0, LayerRange layers = {});

  // What a CpuForward of these settings allocates besides its KV pool, known before building
  // one (the memory budget is planned from it). kv_bytes_per_position: K and V of the layers it
  // runs (n_layers; -1: all) for one position.
  struct MemoryPlan {
    int64_t kv_bytes_per_position = 0;
    int64_t scratch_bytes = 0;  // activations, matmul workspace, attention scratch, logits
  };
  static MemoryPlan memory_plan(const Hparams& hp, int64_t max_batch, int n_threads,
                                GgmlType kv_type, int64_t max_segments = 1, int64_t n_layers = -1);
  // The same figures read off this instance's buffers (tests compare the two).
  MemoryPlan allocated() const;

  // Single sequence (Forward), on the pool's first blocks.
  Expected<std::span<const float>> eval(std::span<const int32_t> tokens) override;
  int64_t n_past() const override { return n_past_; }
  int64_t n_ctx() const override { return n_ctx_; }  // both interfaces
  void reset() override { n_past_ = 0; }

  // Several sequences in one step: at most max_segments segments of at least one token, at most
  // max_batch tokens in all. Returns the logits after each segment's last token, [n_segments,
  // n_vocab], valid until the next call. Errors: bad token ids, block tables that do not cover
  // the positions or name blocks outside the pool, too many tokens or segments.
  Expected<std::span<const float>> eval_batch(std::span<const BatchSegment> segments) override;
  // madvise(MADV_DONTNEED) on the whole pages inside each block.
  int64_t discard_blocks(std::span<const int32_t> blocks) override;
  // The layer range's pass (LayerStage).
  Expected<std::span<const float>> eval_layers(std::span<const BatchSegment> segments,
                                               std::span<const float> hidden) override;
  LayerRange layers() const override { return {first_layer_, end_layer_}; }

  // Bytes of weights one decode step reads (for bandwidth figures).
  uint64_t weight_bytes_per_token() const;
  GgmlType kv_type() const { return kv_type_; }
  int64_t attention_window() const { return window_; }
  int64_t n_blocks() const override { return n_blocks_; }
  int64_t max_batch() const override { return max_batch_; }
  int64_t max_segments() const override { return max_segments_; }
  // Bytes of the KV pool.
  uint64_t kv_cache_bytes() const;

 private:
  // Runs the range's layers over the step's tokens: from their embeddings, or from `hidden`
  // when the range starts after layer 0; the logits after each segment's last token when it ends
  // the model.
  void eval_step(std::span<const BatchSegment> segments, int64_t n_tokens,
                 std::span<const float> hidden = {});
  bool whole_model() const { return first_layer_ == 0 && end_layer_ == hp_.n_layer; }
  void attention(int64_t il, int64_t n_tokens);
  void store_kv(int64_t il, int64_t n_tokens);
  void attend(int64_t il);
  void feed_forward(int64_t il, int64_t n_tokens);
  void matmul(const Matrix& w, const float* x, int64_t n_tokens, float* y);
  // Where position `pos` of the sequence with `table` keeps layer il's K (V follows it); il is a
  // model layer in the range.
  uint8_t* kv_row(std::span<const int32_t> table, int64_t il, int64_t pos);

  const Hparams& hp_;
  const ModelWeights& w_;
  int64_t n_ctx_;
  int64_t max_batch_;
  int64_t n_blocks_;
  int64_t max_segments_;
  int64_t window_;
  int64_t first_layer_;  // the range run: [first_layer_, end_layer_)
  int64_t end_layer_;
  int64_t n_past_ = 0;
  GgmlType kv_type_;
  size_t kv_row_bytes_;  // one position of one layer's K (or V): n_embd_kv values
  size_t block_bytes_;   // one block: the range's layers' K and V of kKvBlockPositions positions
  ref::RopeParams rope_;
  ThreadPool pool_;
  cpu::MatmulWorkspace workspace_;
  std::vector<uint8_t> kv_pool_;    // [n_blocks][range layers][K, V][kKvBlockPositions][row]
  std::vector<int32_t> own_table_;  // eval(): blocks 0, 1, 2, ...
  // The current step: its segments, and per token its segment and position.
  std::span<const BatchSegment> step_;
  std::vector<int32_t> token_segment_;  // [max_batch]
  std::vector<int64_t> token_pos_;      // [max_batch]
  std::vector<int64_t> segment_start_;  // [max_segments + 1]: first token row of each segment
  std::vector<int64_t> segment_jobs_;   // [max_segments + 1]: first attention job of each
  // Activations of one step.
  std::vector<float> x_;             // [max_batch, n_embd] residual stream
  std::vector<float> xn_;            // [max_batch, n_embd]
  std::vector<float> q_;             // [max_batch, n_head * head_dim]
  std::vector<float> k_;             // [max_batch, n_embd_kv]
  std::vector<float> v_;             // [max_batch, n_embd_kv]
  std::vector<float> attn_;          // [max_batch, n_head * head_dim]
  std::vector<float> gate_;          // [max_batch, n_ff]
  std::vector<float> up_;            // [max_batch, n_ff]
  std::vector<float> proj_;          // [max_batch, n_embd]
  std::vector<float> rope_cos_;      // [max_batch, n_rot / 2] for the step's positions
  std::vector<float> rope_sin_;      // [max_batch, n_rot / 2]
  std::vector<float> attn_scratch_;  // [n_threads, cpu::attention_scratch_floats()]
  std::vector<float> logits_;        // [max_segments, n_vocab]
};

}  // namespace pensieve
