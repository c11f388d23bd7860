// Model hyperparameters read from GGUF metadata, for every supported architecture.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.h"
#include "gguf/reader.h"
#include "kernels/ref/ops.h"

namespace pensieve {

enum class Arch { kLlama, kQwen2, kPhi3 };

struct Hparams {
  Arch arch = Arch::kLlama;
  std::string arch_name;
  int64_t n_vocab = 0;
  int64_t n_ctx_train = 0;
  int64_t n_embd = 0;
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;
  int64_t n_ff = 0;
  int64_t n_rot = 0;  // dims per head that RoPE rotates
  float rms_eps = 1e-5f;
  float rope_freq_base = 10000.0f;
  float rope_freq_scale = 1.0f;   // linear RoPE scaling: positions are multiplied by this
  float rope_attn_factor = 1.0f;  // scales RoPE's cos and sin (phi3 LongRoPE)
  int64_t n_ctx_orig = 0;         // context before RoPE scaling (LongRoPE picks its factors)
  ref::RopeStyle rope_style = ref::RopeStyle::kAdjacentPairs;

  int64_t n_embd_kv() const { return n_head_kv * head_dim; }
};

// "llama, qwen2, phi3": for error messages.
std::string_view supported_architectures();

// Reads and checks the hyperparameters (positive sizes, heads dividing the width, ...).
Expected<Hparams> read_hparams(const GgufFile& file);

}  // namespace pensieve
