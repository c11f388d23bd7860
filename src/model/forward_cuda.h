// The forward pass on one CUDA GPU (kernels/cuda): every weight uploaded to device memory once,
// an F16 KV cache of n_ctx positions per layer, F32 activations on the device; only the last
// token's logits come back to the host. llama, qwen2 (q/k/v biases) and phi3 (fused matrices
// bound as row ranges) share this one pass, as they share the reference's. One-token steps
// replay a captured CUDA graph (the position comes from device memory) with fused matrix-vector
// kernels (8-bit activations for quantized weights); long prompt chunks multiply on the tensor
// cores with F16 operands.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/result.h"
#include "kernels/kernels.h"
#include "model/forward.h"
#include "model/hparams.h"
#include "model/weights.h"

struct CUstream_st;     // cudaStream_t's target: the header needs no CUDA include path
struct CUgraphExec_st;  // cudaGraphExec_t's

namespace pensieve {

struct CudaForwardOptions {
  int device = 0;                // CUDA device index
  int64_t max_batch = 64;        // prompt tokens one pass carries; longer prompts go in chunks
  int64_t attention_window = 0;  // positions each token attends, its own included; 0 = all
  // Prompt chunks of at least this many tokens run their products and attention on the tensor
  // cores (activations, weights, q and softmax weights rounded to F16, F32 sums); shorter ones
  // read each weight row once per 8 tokens.
  int64_t gemm_min_tokens = 16;
  bool decode_graph = true;  // one-token evals replay one captured CUDA graph
};

class CudaForward : public Forward {
 public:
  // Device memory a CudaForward of these settings allocates, known before building one.
  struct MemoryPlan {
    int64_t weights_bytes = 0;  // matrices, norms, biases, RoPE frequencies (tied ones once)
    int64_t kv_bytes = 0;       // K and V of every layer, n_ctx positions, F16
    int64_t scratch_bytes = 0;  // activations of max_batch tokens, logits
    int64_t total() const { return weights_bytes + kv_bytes + scratch_bytes; }
  };
  static MemoryPlan memory_plan(const Hparams& hp, const ModelWeights& weights, int64_t n_ctx,
                                int64_t max_batch = CudaForwardOptions{}.max_batch,
                                int64_t gemm_min_tokens = CudaForwardOptions{}.gemm_min_tokens);

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

  // Whether long prompt chunks multiply w on the tensor cores (F16, Q8_0 and Q4_0 weights of a
  // width that is a multiple of 8), and whether they read it as is (F16) or dequantized first.
  static bool gemm_capable(const Matrix& w);
  static bool gemm_direct(const Matrix& w);

  int64_t attention_window() const { return window_; }
  int64_t max_batch() const { return max_batch_; }
  // Bytes this instance holds on the device, by the plan's parts (tests compare the two).
  MemoryPlan allocated() const { return allocated_; }

 private:
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
  Expected<void> run_graph_step(int32_t token);
  Expected<void> read_logits();

  // The passes (forward_cuda_layers.cpp). Positions are first_pos, plus *first_pos_dev when
  // set (device memory: a captured step serves every position).
  void run_chunk(const int32_t* ids, int64_t n_tokens, int64_t first_pos,
                 const int32_t* first_pos_dev);
  void attention_core(int64_t il, int64_t n_tokens, int64_t first_pos,
                      const int32_t* first_pos_dev);
  void prompt_layer(int64_t il, int64_t n_tokens, int64_t first_pos);
  void decode_layer(int64_t il, int64_t first_pos, const int32_t* first_pos_dev);
  void norm_one(const float* x, const float* weight);  // xn_ row 0, and xq_ when it can
  void logits_of(const float* x_row);                  // [n_embd] -> logits_dev_
  void prompt_matmul(const Matrix& w, const float* x, const uint16_t* x16, int64_t n_tokens,
                     float* y, bool accumulate);

  Hparams hp_;
  int64_t n_ctx_;
  int64_t max_batch_;
  int64_t window_;
  int device_;
  int64_t gemm_min_tokens_;
  bool decode_graph_;
  int64_t n_past_ = 0;
  CUstream_st* stream_ = nullptr;
  CUgraphExec_st* graph_ = nullptr;  // the decode step, captured at its first use
  MemoryPlan allocated_;
  // Three device allocations: weights, KV cache, scratch.
  uint8_t* weights_mem_ = nullptr;
  uint8_t* kv_mem_ = nullptr;
  uint8_t* scratch_mem_ = nullptr;

  Matrix token_embd_;
  Matrix output_;
  const float* output_norm_ = nullptr;
  std::vector<DeviceLayer> layers_;
  const double* rope_freqs_ = nullptr;  // [n_rot / 2]
  float rope_attn_factor_ = 1.0f;
  // Layer il's K cache at kv_mem_ + il * 2 * kv_layer_bytes_, its V cache right after.
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
  float* logits_dev_ = nullptr;  // [n_vocab]
  int32_t* step_ = nullptr;      // [2] token id, position: the graph's inputs
  int8_t* xq_qs_ = nullptr;      // [max(n_embd, n_q, n_ff)] 8-bit activations
  float* xq_ds_ = nullptr;       // [max(n_embd, n_q, n_ff) / 32] float2 (d, d * sum)
  uint16_t* x16_ = nullptr;      // [max_batch, max(n_embd, n_q, n_ff)] F16 activations
  uint16_t* w16_ = nullptr;      // [largest layer matrix] dequantized weights
  // Pinned host memory: the step's inputs and the logits.
  int32_t* step_host_ = nullptr;  // [2]
  float* logits_ = nullptr;       // [n_vocab]
};

}  // namespace pensieve
