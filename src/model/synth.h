// Random-weight GGUF models with the exact tensor names, shapes and metadata of real models,
// for performance and memory work at real sizes (the only real weights here are tiny).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/result.h"
#include "gguf/types.h"

namespace pensieve {

// How a preset scales RoPE beyond its original context: llama3 writes per-pair factors as
// rope_freqs.weight; phi3 LongRoPE writes short and long factors plus an attention factor.
enum class SynthRope { kPlain, kLlama3, kLongRope };

struct SynthPreset {
  std::string_view name;
  std::string_view arch;  // llama, qwen2, phi3
  int64_t n_embd;
  int64_t n_ff;
  int64_t n_layer;
  int64_t n_head;
  int64_t n_head_kv;
  int64_t n_ctx;
  float rope_freq_base;
  float rms_eps;
  bool tied_embeddings;
  std::string_view vocab;  // default vocabulary file under ../shared/vocab
  std::string_view note;   // what stands in for the real vocabulary, if anything
  SynthRope rope = SynthRope::kPlain;
  int64_t n_ctx_orig = 0;  // the context RoPE scaling extends (kLlama3, kLongRope)
};

std::span<const SynthPreset> synth_presets();
const SynthPreset* find_synth_preset(std::string_view name);

struct SynthOptions {
  std::string preset;
  std::string output_path;
  std::string vocab_path;  // empty: the preset's default under shared_dir/vocab
  std::string shared_dir = "../shared";
  GgmlType type = GgmlType::kF16;  // F32, F16 or BF16 for the matrices; norms stay F32
  uint64_t seed = 1;
};

Expected<void> synth_model(const SynthOptions& options);

}  // namespace pensieve
