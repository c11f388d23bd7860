// Model weights: views into the mapped GGUF file, bound by name and checked against the
// hyperparameters. One file per architecture under arch/ knows its tensor names.
#pragma once

#include <vector>

#include "core/result.h"
#include "gguf/reader.h"
#include "kernels/kernels.h"
#include "model/hparams.h"

namespace pensieve {

struct LayerWeights {
  const float* attn_norm = nullptr;  // [n_embd]
  Matrix wq;                         // [n_head * head_dim, n_embd]   (rows, cols)
  Matrix wk;                         // [n_embd_kv, n_embd]
  Matrix wv;                         // [n_embd_kv, n_embd]
  const float* bq = nullptr;         // [n_head * head_dim]  qwen2 only
  const float* bk = nullptr;         // [n_embd_kv]          qwen2 only
  const float* bv = nullptr;         // [n_embd_kv]          qwen2 only
  Matrix wo;                         // [n_embd, n_head * head_dim]
  const float* ffn_norm = nullptr;   // [n_embd]
  Matrix ffn_gate;                   // [n_ff, n_embd]
  Matrix ffn_up;                     // [n_ff, n_embd]
  Matrix ffn_down;                   // [n_embd, n_ff]
};

struct ModelWeights {
  Matrix token_embd;                   // [n_vocab, n_embd]
  const float* output_norm = nullptr;  // [n_embd]
  Matrix output;                       // [n_vocab, n_embd]; token_embd when tied
  std::vector<LayerWeights> layers;
  // RoPE per-pair frequency factors [n_rot / 2], null where the model has none: llama3's
  // rope_freqs, phi3 LongRoPE's factors for short and long contexts.
  const float* rope_freqs = nullptr;
  const float* rope_factors_short = nullptr;
  const float* rope_factors_long = nullptr;
};

// Finds and checks tensors by name; errors name the file and tensor.
class WeightBinder {
 public:
  explicit WeightBinder(const GgufFile& file) : file_(file) {}

  // A matrix of n_rows x n_cols in a type pensieve can compute with.
  Expected<Matrix> matrix(const std::string& name, int64_t n_rows, int64_t n_cols) const;
  // An F32 vector of n elements (norm weights, biases).
  Expected<const float*> vector(const std::string& name, int64_t n) const;
  bool has(const std::string& name) const { return file_.find_tensor(name) != nullptr; }

 private:
  Expected<const GgufTensorInfo*> find(const std::string& name) const;
  const GgufFile& file_;
};

Expected<ModelWeights> bind_weights(const GgufFile& file, const Hparams& hp);

// Bytes of the matrices one decode step reads (every layer's and the output's; not the
// embedding, of which one row is read): the figure decode bandwidth is measured against.
uint64_t matmul_weight_bytes(const ModelWeights& weights);

// RoPE as the model runs with a context of n_ctx tokens: LongRoPE models switch to their long
// factors when n_ctx exceeds the context they were trained with before scaling.
ref::RopeParams rope_params(const Hparams& hp, const ModelWeights& w, int64_t n_ctx);

// Per architecture (model/arch/*.cpp).
Expected<ModelWeights> bind_llama_weights(const WeightBinder& b, const Hparams& hp);
Expected<ModelWeights> bind_qwen2_weights(const WeightBinder& b, const Hparams& hp);
Expected<ModelWeights> bind_phi3_weights(const WeightBinder& b, const Hparams& hp);

}  // namespace pensieve
