// The forward pass on one CUDA GPU (kernels/cuda): every weight uploaded to device memory once,
// an F16 KV cache of n_ctx positions per layer, F32 activations on the device; only the last
// token's logits come back to the host. llama, qwen2 (q/k/v biases) and phi3 (fused matrices
// bound as row ranges) share this one pass, as they share the reference's. One-token steps
// replay a captured CUDA graph (the position comes from device memory) with fused matrix-vector
// kernels (8-bit activations for quantized weights); long prompt chunks multiply on the tensor
// cores with F16 operands. As a BatchForward the KV cache is a pool of blocks shared by many
// sequences: one step takes the tokens of several sequences, each attending through its block
// table; a step of one token a sequence replays a graph captured for that many sequences.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"
#include "kernels/kernels.h"
#include "model/forward.h"
#include "model/hparams.h"
#include "model/weights.h"

struct CUstream_st;     // cudaStream_t's target: the header needs no CUDA include path
struct CUgraphExec_st;  // cudaGraphExec_t's

namespace pensieve {

namespace cuda {
class Blas;
}  // namespace cuda

struct CudaForwardOptions {
  int device = 0;                // CUDA device index
  int64_t max_batch = 64;        // prompt tokens one pass carries; longer prompts go in chunks
  int64_t attention_window = 0;  // positions each token attends, its own included; 0 = all
  // Passes of at least this many tokens run their products on the tensor cores (activations and
  // weights rounded to F16, F32 sums; from 16 tokens on attention too, q and softmax weights in
  // F16); shorter ones read each weight row once per 8 tokens.
  int64_t gemm_min_tokens = 8;
  // Passes of at most this many tokens (a batch's decode tokens, short chunks) take the
  // matrix-vector kernels, each weight row read once for all of them.
  int64_t matvec_max_tokens = 4;
  // Longer passes of at most this many tokens (a batch's decode step) multiply quantized
  // weights on the int8 tensor cores from x's 8-bit codes (cuda::gemm_q8); 0: never. At most
  // cuda::kGemmQ8MaxTokens.
  int64_t q8_gemm_max_tokens = 32;
  // Decode steps replay captured CUDA graphs: one-token evals one graph, eval_batch steps of one
  // token a sequence one graph per number of sequences (kMaxBatchGraphs at most).
  bool decode_graph = true;
  // Tensor-core products of at least this many tokens go through cuBLAS when it is installed
  // (cuda::Blas); 0: never.
  int64_t blas_min_tokens = 64;
  // The KV pool for eval_batch: blocks of BatchForward::kKvBlockPositions positions (0: enough
  // for one sequence of n_ctx), and the sequences one step may carry.
  int64_t kv_blocks = 0;
  int64_t max_segments = 1;
  // The layers this pass runs (LayerStage): only their weights and K/V go to the device, and the
  // embedding or the output norm and logits only when the range starts or ends the model.
  LayerRange layers = {};
};

// eval() serves one sequence in the cache's first n_ctx rows, eval_batch() the pool through
// block tables: use one or the other on an instance.
class CudaForward : public Forward, public LayerStage {
 public:
  // Device memory a CudaForward of these settings allocates, known before building one.
  struct MemoryPlan {
    int64_t weights_bytes = 0;  // matrices, norms, biases, RoPE frequencies (tied ones once)
    int64_t kv_bytes = 0;       // K and V of every layer, F16: n_ctx positions or the pool's
    int64_t scratch_bytes = 0;  // activations of max_batch tokens, logits of max_segments
    int64_t total() const { return weights_bytes + kv_bytes + scratch_bytes; }
  };
  static MemoryPlan memory_plan(const Hparams& hp, const ModelWeights& weights, int64_t n_ctx,
                                const CudaForwardOptions& options = {});
  // Device bytes one KV block takes (K and V of n_layers layers; -1: all).
  static int64_t kv_block_bytes(const Hparams& hp, int64_t n_layers = -1);

  // Uploads the weights and allocates the cache. Errors: no usable device (kUnavailable), a
  // weight type or head size the kernels do not handle (kUnsupported), not enough free device
  // memory for memory_plan() (kResourceExhausted; nothing is allocated), a CUDA failure.
  static Expected<std::unique_ptr<CudaForward>> create(const Hparams& hp,
                                                       const ModelWeights& weights, int64_t n_ctx,
                                                       const CudaForwardOptions& options = {});
  ~CudaForward() override;
  CudaForward(const CudaForward&) = delete;
  CudaForward& operator=(const CudaForward&) = delete;

  // Errors: as CpuForward's, and a CUDA failure while running (kInternal).
  Expected<std::span<const float>> eval(std::span<const int32_t> tokens) override;
  int64_t n_past() const override { return n_past_; }
  int64_t n_ctx() const override { return n_ctx_; }
  void reset() override { n_past_ = 0; }

  // BatchForward. Errors: as CpuForward's, and a CUDA failure while running (kInternal).
  Expected<std::span<const float>> eval_batch(std::span<const BatchSegment> segments) override;
  // Picks on the device (cuda::argmax_rows): one id a segment comes back, not its logits.
  Expected<std::span<const int32_t>> eval_batch_greedy(
      std::span<const BatchSegment> segments) override;
  // Draws on the device (cuda::draw_rows) with the temperatures and uniforms given.
  Expected<std::span<const int32_t>> eval_batch_drawn(std::span<const BatchSegment> segments,
                                                      std::span<const TokenDraw> draws) override;
  // Selects on the device (cuda::best_rows): k pairs a segment come back, not its logits.
  Expected<std::span<const TokenLogit>> eval_batch_best(std::span<const BatchSegment> segments,
                                                        int64_t k,
                                                        std::span<double> exp_sums) override;
  Expected<std::span<const float>> best_step_row(int64_t segment) override;
  // Device memory stays allocated (the pool is sized once, at start): gives back nothing.
  int64_t discard_blocks(std::span<const int32_t> blocks) override;
  int64_t n_blocks() const override { return kv_blocks_; }
  // LayerStage: hidden states go up before the step and come back after it (a range that ends
  // before the model's end), or the logits or picks do.
  Expected<std::span<const float>> eval_layers(std::span<const BatchSegment> segments,
                                               std::span<const float> hidden) override;
  Expected<std::span<const int32_t>> eval_layers_greedy(std::span<const BatchSegment> segments,
                                                        std::span<const float> hidden) override;
  Expected<std::span<const int32_t>> eval_layers_drawn(std::span<const BatchSegment> segments,
                                                       std::span<const float> hidden,
                                                       std::span<const TokenDraw> draws) override;
  Expected<std::span<const TokenLogit>> eval_layers_best(std::span<const BatchSegment> segments,
                                                         std::span<const float> hidden, int64_t k,
                                                         std::span<double> exp_sums) override;
  LayerRange layers() const override { return {first_layer_, end_layer_}; }
  int64_t max_batch() const override { return max_batch_; }
  int64_t max_segments() const override { return max_segments_; }

  // Whether long prompt chunks multiply w on the tensor cores (F16, Q8_0 and Q4_0 weights of a
  // width that is a multiple of 8), and whether they read it as is (F16) or dequantized first.
  static bool gemm_capable(const Matrix& w);
  static bool gemm_direct(const Matrix& w);

  int64_t attention_window() const { return window_; }
  // Whether long prompt products use cuBLAS, and its version or why not, for the log.
  bool uses_blas() const { return blas_ != nullptr; }
  const std::string& blas_note() const { return blas_note_; }

  // Keep-alive: release_weights() frees the weights' device memory (the KV cache and scratch
  // stay); restore_weights() uploads them again from `weights` (the ones create() was given, their
  // host pages resident), before the next eval. Errors: a CUDA failure, or too little free
  // device memory to restore (kResourceExhausted; try again later).
  Expected<void> release_weights();
  Expected<void> restore_weights(const ModelWeights& weights);
  bool weights_on_device() const { return weights_mem_ != nullptr; }
  // Bytes this instance holds on the device, by the plan's parts (tests compare the two).
  MemoryPlan allocated() const { return allocated_; }

 private:
  // Where a pass's tokens sit in the cache: consecutive positions from first_pos (plus
  // *first_pos_dev when set: a captured step serves every position), or, when positions is set,
  // per token through block tables (device arrays, as cuda::PagedKv reads them).
  struct KvPlace {
    int64_t first_pos = 0;
    const int32_t* first_pos_dev = nullptr;
    const int32_t* positions = nullptr;      // [n_tokens]
    const int32_t* table_offsets = nullptr;  // [n_tokens]
    const int32_t* block_tables = nullptr;
  };

  // Weight views on the device.
  struct DeviceLayer {
    const float* attn_norm = nullptr;
    Matrix wq, wk, wv;
    const float* bq = nullptr;
    const float* bk = nullptr;
    const float* bv = nullptr;
    Matrix wo;
    const float* ffn_norm = nullptr;
    Matrix ffn_gate, ffn_up, ffn_down;
  };

  CudaForward(const Hparams& hp, int64_t n_ctx, const CudaForwardOptions& options);
  Expected<void> allocate(const ModelWeights& weights);
  Expected<void> upload_weights(const ModelWeights& weights);
  Expected<void> run_graph_step(int32_t token);
  // eval_batch's pass for n sequences of one token each, its inputs uploaded: the graph of that
  // n, captured at its first use.
  Expected<void> run_batch_graph(int64_t n);
  void run_batch(int64_t n_tokens, int64_t n_segments);  // eval_batch's launches
  // Checks the batch, uploads its inputs (the hidden states of a range past layer 0) and
  // launches the step; returns the segment count, and the token count in step_tokens_.
  Expected<int64_t> launch_batch(std::span<const BatchSegment> segments,
                                 std::span<const float> hidden);
  bool whole_model() const { return first_layer_ == 0 && end_layer_ == hp_.n_layer; }
  const DeviceLayer& layer(int64_t il) const {
    return layers_[static_cast<size_t>(il - first_layer_)];
  }
  void drop_graphs();
  Expected<void> read_logits();
  // The picks of the last step's n_segments rows (greedy_dev_), back to the host.
  Expected<std::span<const int32_t>> read_picks(int64_t n_segments);

  // The passes (forward_cuda_layers.cpp).
  void run_chunk(const int32_t* ids, int64_t n_tokens, const KvPlace& place);
  void attention_core(int64_t il, int64_t n_tokens, const KvPlace& place, bool out_q8 = false,
                      bool norm_ends = false);
  void prompt_layer(int64_t il, int64_t n_tokens, const KvPlace& place);
  // The step of a few tokens. weighted: xn_ holds x_ times the layer's attention norm weight
  // (the norm then ends in the attention kernel); returns whether it left that for the next.
  bool decode_layer(int64_t il, int64_t n_tokens, const KvPlace& place, bool weighted);
  // The logits of n rows of x_ (rows[i] on the device) into logits_dev_, [n, n_vocab].
  void logits_of_rows(const int32_t* rows, int64_t n);
  // n rows of x normalized into xn_, and quantized into xq_ when they can be.
  void norm_rows(const float* x, const float* weight, int64_t n);
  void logits_of(const float* x_row);  // [n_embd] -> logits_dev_
  // An input of a layer's products, converted on first use: to F16 (x16_) for the tensor-core
  // tiles, to 8-bit codes (xq_) for gemm_q8.
  struct ProductInput {
    const float* x;  // [n_tokens, width]
    int64_t width;
    const uint16_t* x16 = nullptr;
    bool q8 = false;
  };
  void prompt_matmul(const Matrix& w, ProductInput& in, int64_t n_tokens, float* y,
                     bool accumulate);

  Hparams hp_;
  int64_t n_ctx_;
  int64_t max_batch_;
  int64_t window_;
  int device_;
  int64_t gemm_min_tokens_;
  int64_t matvec_max_tokens_;
  int64_t q8_gemm_max_tokens_;
  bool decode_graph_;
  int64_t blas_min_tokens_;
  std::unique_ptr<cuda::Blas> blas_;  // null: gemm_f16 for every product
  std::string blas_note_;
  int64_t kv_blocks_;
  int64_t max_segments_;
  int64_t first_layer_;  // the range run: [first_layer_, end_layer_)
  int64_t end_layer_;
  int64_t step_tokens_ = 0;  // the last launch_batch's tokens
  int64_t n_past_ = 0;
  CUstream_st* stream_ = nullptr;
  CUgraphExec_st* graph_ = nullptr;  // the decode step, captured at its first use
  // Batched decode steps by number of sequences, the most recently used last.
  static constexpr size_t kMaxBatchGraphs = 8;
  struct BatchGraph {
    int64_t n_segments;
    CUgraphExec_st* exec;
  };
  std::vector<BatchGraph> batch_graphs_;
  MemoryPlan allocated_;
  // Three device allocations: weights, KV cache, scratch.
  uint8_t* weights_mem_ = nullptr;
  uint8_t* kv_mem_ = nullptr;
  uint8_t* scratch_mem_ = nullptr;

  Matrix token_embd_;
  Matrix output_;
  const float* output_norm_ = nullptr;
  std::vector<DeviceLayer> layers_;     // the range's, from first_layer_
  const double* rope_freqs_ = nullptr;  // [n_rot / 2]
  float rope_attn_factor_ = 1.0f;
  // Layer il's K cache at kv_mem_ + (il - first_layer_) * 2 * kv_layer_bytes_, its V cache
  // right after.
  size_t kv_layer_bytes_ = 0;  // [n_ctx, n_embd_kv] F16

  // Activations of one pass, on the device.
  int32_t* ids_ = nullptr;       // [max_batch]
  float* x_ = nullptr;           // [max_batch, n_embd] residual stream
  float* xn_ = nullptr;          // [max_batch, n_embd]
  float* q_ = nullptr;           // [max_batch, n_head * head_dim]
  float* k_ = nullptr;           // [max_batch, n_embd_kv]
  float* v_ = nullptr;           // [max_batch, n_embd_kv]
  float* attn_ = nullptr;        // [max_batch, n_head * head_dim]
  float* gate_ = nullptr;        // [max_batch, n_ff]
  float* up_ = nullptr;          // [max_batch, n_ff]
  float* proj_ = nullptr;        // [max_batch, n_embd]
  float* logits_dev_ = nullptr;  // [max_segments, n_vocab]
  // eval_batch's inputs, one upload: ids [max_batch], positions [max_batch], table offsets
  // [max_batch], last rows [max_segments], block tables [max_segments * blocks per sequence].
  int32_t* batch_ints_ = nullptr;
  int32_t* greedy_dev_ = nullptr;   // [max_segments] eval_batch_greedy's picks
  double* draws_dev_ = nullptr;     // [max_segments, 2] eval_batch_drawn's temperatures, uniforms
  int32_t* best_dev_ = nullptr;     // [max_segments, kMaxBestTokens, 2] eval_batch_best's pairs
  double* exp_sums_dev_ = nullptr;  // [max_segments] and its rows' sums of exponentials
  int64_t best_segments_ = 0;       // the last eval_batch_best's rows, still in logits_dev_
  bool best_rows_on_host_ = false;  // and copied to logits_ (best_step_row)
  float* split_k_ = nullptr;        // [split_k_floats_] the tensor cores' partial sums
  void* blas_workspace_ = nullptr;  // [cuda::kBlasWorkspaceBytes] when products may use cuBLAS
  // Decode attention's workspace: partial results of split rows, and a counter per row.
  float* attn_partials_ = nullptr;     // [cuda::kAttentionPartialFloats]
  unsigned* attn_counters_ = nullptr;  // [cuda::kAttentionSplitBlocks], zero between launches
  int64_t split_k_floats_ = 0;
  int32_t* step_ = nullptr;  // [2] token id, position: the graph's inputs
  // 8-bit activations of up to min(max_batch, matvec_max_tokens) rows.
  int8_t* xq_qs_ = nullptr;  // [rows, max(n_embd, n_q, n_ff)]
  float* xq_ds_ = nullptr;   // [rows, max(n_embd, n_q, n_ff) / 32] float2 (d, d * sum)
  uint16_t* x16_ = nullptr;  // [max_batch, max(n_embd, n_q, n_ff)] F16 activations
  uint16_t* w16_ = nullptr;  // [largest layer matrix] dequantized weights
  // Pinned host memory: the step's inputs and the logits.
  int32_t* step_host_ = nullptr;     // [2]
  int32_t* batch_host_ = nullptr;    // as batch_ints_
  int32_t* greedy_host_ = nullptr;   // as greedy_dev_
  double* draws_host_ = nullptr;     // as draws_dev_
  TokenLogit* best_host_ = nullptr;  // as best_dev_
  double* exp_sums_host_ = nullptr;  // as exp_sums_dev_
  float* logits_ = nullptr;          // [max_segments, n_vocab]
  float* hidden_host_ = nullptr;     // [max_batch, n_embd] a range's output, before the end
};

}  // namespace pensieve
