// The forward pass on one CUDA GPU (kernels/cuda): every weight uploaded to device memory once,
// an F16 KV cache of n_ctx positions per layer, F32 activations on the device; only the last
// token's logits come back to the host. llama, qwen2 (q/k/v biases) and phi3 (fused matrices
// bound as row ranges) share this one pass, as they share the reference's.
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

struct CUstream_st;  // cudaStream_t's target: the header needs no CUDA include path

namespace pensieve {

struct CudaForwardOptions {
  int device = 0;                // CUDA device index
  int64_t max_batch = 64;        // prompt tokens one pass carries; longer prompts go in chunks
  int64_t attention_window = 0;  // positions each token attends, its own included; 0 = all
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
                                int64_t max_batch = CudaForwardOptions{}.max_batch);

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
  void run_chunk(int64_t n_tokens, int64_t first_pos);
  void attention(int64_t il, int64_t n_tokens, int64_t first_pos);
  void feed_forward(int64_t il, int64_t n_tokens);

  Hparams hp_;
  int64_t n_ctx_;
  int64_t max_batch_;
  int64_t window_;
  int device_;
  int64_t n_past_ = 0;
  CUstream_st* stream_ = nullptr;
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
  std::vector<float> logits_;    // [n_vocab] on the host
};

}  // namespace pensieve
