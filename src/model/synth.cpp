#include "model/synth.h"

#include <cmath>
#include <cstring>
#include <functional>
#include <vector>

#include "core/half.h"
#include "gguf/reader.h"
#include "gguf/writer.h"

namespace pensieve {
namespace {

// Shapes from the models' published configurations. The tiny-* presets are small models for
// tests, one per architecture.
constexpr SynthRope kPlain = SynthRope::kPlain;
constexpr SynthPreset kPresets[] = {
    {"tinyllama-1.1b", "llama", 2048, 5632, 22, 32, 4, 2048, 10000.0f, 1e-5f, false,
     "ggml-vocab-llama-spm.gguf", "", kPlain, 0},
    {"llama-7b", "llama", 4096, 11008, 32, 32, 32, 4096, 10000.0f, 1e-5f, false,
     "ggml-vocab-llama-spm.gguf", "", kPlain, 0},
    {"llama-3.2-1b", "llama", 2048, 8192, 16, 32, 8, 131072, 500000.0f, 1e-5f, true,
     "ggml-vocab-gpt-2.gguf",
     "gpt-2's byte-level BPE vocabulary (50257) stands in for Llama 3's (128256)",
     SynthRope::kLlama3, 8192},
    {"phi-3-mini-4k", "phi3", 3072, 8192, 32, 32, 32, 4096, 10000.0f, 1e-5f, false,
     "ggml-vocab-phi-3.gguf", "", kPlain, 0},
    {"phi-3-mini-128k", "phi3", 3072, 8192, 32, 32, 32, 131072, 10000.0f, 1e-5f, false,
     "ggml-vocab-phi-3.gguf", "LongRoPE factors are synthetic (smooth ramps), not the trained ones",
     SynthRope::kLongRope, 4096},
    {"qwen2.5-0.5b", "qwen2", 896, 4864, 24, 14, 2, 32768, 1000000.0f, 1e-6f, true,
     "ggml-vocab-gpt-2.gguf",
     "gpt-2's byte-level BPE vocabulary (50257) stands in for Qwen2's (151936)", kPlain, 0},
    {"smollm2-135m", "llama", 576, 1536, 30, 9, 3, 8192, 100000.0f, 1e-5f, true,
     "ggml-vocab-starcoder.gguf",
     "starcoder's vocabulary (49152 tokens, the same size) stands in for SmolLM2's", kPlain, 0},
    {"tiny-llama", "llama", 256, 512, 2, 4, 2, 256, 10000.0f, 1e-5f, false,
     "ggml-vocab-llama-spm.gguf", "", kPlain, 0},
    {"tiny-llama3", "llama", 256, 512, 2, 4, 2, 256, 500000.0f, 1e-5f, true,
     "ggml-vocab-llama-spm.gguf", "", SynthRope::kLlama3, 32},
    {"tiny-qwen2", "qwen2", 256, 512, 2, 4, 2, 256, 1000000.0f, 1e-6f, true,
     "ggml-vocab-gpt-2.gguf", "gpt-2's vocabulary stands in for Qwen2's", kPlain, 0},
    {"tiny-phi3", "phi3", 256, 512, 2, 4, 4, 256, 10000.0f, 1e-5f, false, "ggml-vocab-phi-3.gguf",
     "", kPlain, 0},
    {"tiny-phi3-128k", "phi3", 256, 512, 2, 4, 4, 256, 10000.0f, 1e-5f, false,
     "ggml-vocab-phi-3.gguf", "", SynthRope::kLongRope, 64},
};

uint64_t splitmix64(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t hash_name(std::string_view name, uint64_t seed) {
  uint64_t h = 1469598103934665603ull ^ seed;
  for (char c : name) h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ull;
  return h;
}

// Uniform values in [-scale, scale], deterministic per (seed, tensor name), written as `type`.
GgufWriter::TensorFill random_fill(std::string_view name, uint64_t seed, float scale,
                                   GgmlType type) {
  return [state0 = hash_name(name, seed), scale, type](std::span<uint8_t> out) {
    uint64_t state = state0;
    const size_t width = type == GgmlType::kF32 ? 4 : 2;
    for (size_t i = 0; i + width <= out.size(); i += width) {
      const float u = static_cast<float>(splitmix64(&state) >> 40) * 0x1.0p-24f;  // [0, 1)
      const float v = (2.0f * u - 1.0f) * scale;
      if (type == GgmlType::kF32) {
        std::memcpy(&out[i], &v, 4);
      } else {
        const uint16_t h = type == GgmlType::kF16 ? f32_to_f16(v) : f32_to_bf16(v);
        std::memcpy(&out[i], &h, 2);
      }
    }
  };
}

// Norm weights near 1 so activations keep a sensible scale through the layers.
GgufWriter::TensorFill norm_fill(std::string_view name, uint64_t seed) {
  auto noise = random_fill(name, seed, 0.1f, GgmlType::kF32);
  return [noise](std::span<uint8_t> out) {
    noise(out);
    for (size_t i = 0; i + 4 <= out.size(); i += 4) {
      float v;
      std::memcpy(&v, &out[i], 4);
      v += 1.0f;
      std::memcpy(&out[i], &v, 4);
    }
  };
}

void write_hparams(GgufWriter& w, const SynthPreset& p, int64_t n_vocab, GgmlType type) {
  const std::string a = std::string(p.arch) + ".";
  w.set_string("general.architecture", p.arch);
  w.set_string("general.name", std::string("synthetic ") + std::string(p.name));
  w.set_u32(a + "context_length", static_cast<uint32_t>(p.n_ctx));
  w.set_u32(a + "embedding_length", static_cast<uint32_t>(p.n_embd));
  w.set_u32(a + "feed_forward_length", static_cast<uint32_t>(p.n_ff));
  w.set_u32(a + "block_count", static_cast<uint32_t>(p.n_layer));
  w.set_u32(a + "attention.head_count", static_cast<uint32_t>(p.n_head));
  w.set_u32(a + "attention.head_count_kv", static_cast<uint32_t>(p.n_head_kv));
  w.set_u32(a + "rope.dimension_count", static_cast<uint32_t>(p.n_embd / p.n_head));
  w.set_f32(a + "rope.freq_base", p.rope_freq_base);
  w.set_f32(a + "attention.layer_norm_rms_epsilon", p.rms_eps);
  w.set_u32(a + "vocab_size", static_cast<uint32_t>(n_vocab));
  if (p.rope == SynthRope::kLongRope) {
    const double ratio = static_cast<double>(p.n_ctx) / static_cast<double>(p.n_ctx_orig);
    const double attn_factor = std::sqrt(1 + std::log(ratio) / std::log(p.n_ctx_orig));
    w.set_f32(a + "rope.scaling.attn_factor", static_cast<float>(attn_factor));
    w.set_u32(a + "rope.scaling.original_context_length", static_cast<uint32_t>(p.n_ctx_orig));
  }
  // general.file_type: 0 all F32, 1 mostly F16, 32 mostly BF16 (llama_ftype ids).
  w.set_u32("general.file_type", type == GgmlType::kF32 ? 0 : type == GgmlType::kF16 ? 1 : 32);
  w.set_u32("general.quantization_version", 2);
}

Expected<void> add_matrix(GgufWriter& w, const std::string& name, int64_t n_rows, int64_t n_cols,
                          const SynthOptions& o) {
  const int64_t ne[] = {n_cols, n_rows};
  const float scale = 1.0f / std::sqrt(static_cast<float>(n_cols));
  return w.add_tensor_generated(name, o.type, ne, random_fill(name, o.seed, scale, o.type));
}

Expected<void> add_norm(GgufWriter& w, const std::string& name, int64_t n, uint64_t seed) {
  const int64_t ne[] = {n};
  return w.add_tensor_generated(name, GgmlType::kF32, ne, norm_fill(name, seed));
}

Expected<void> add_vector(GgufWriter& w, const std::string& name, int64_t n, uint64_t seed) {
  const int64_t ne[] = {n};
  return w.add_tensor_generated(name, GgmlType::kF32, ne,
                                random_fill(name, seed, 0.1f, GgmlType::kF32));
}

// llama3 scaling as Meta defines it (factor 32 for 3.2, low/high frequency factors 1 and 4):
// short wavelengths keep their frequency, long ones are divided by the factor, and a smooth
// blend joins them.
std::vector<float> llama3_rope_factors(const SynthPreset& p) {
  const int64_t n_rot = p.n_embd / p.n_head;
  const double factor = 32, low_freq_factor = 1, high_freq_factor = 4;
  const auto orig = static_cast<double>(p.n_ctx_orig);
  std::vector<float> factors(static_cast<size_t>(n_rot / 2));
  for (size_t i = 0; i < factors.size(); ++i) {
    const double freq = std::pow(p.rope_freq_base, -2.0 * static_cast<double>(i) / n_rot);
    const double wavelen = 2 * M_PI / freq;
    if (wavelen < orig / high_freq_factor) {
      factors[i] = 1.0f;
    } else if (wavelen > orig / low_freq_factor) {
      factors[i] = static_cast<float>(factor);
    } else {
      const double smooth =
          (orig / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
      factors[i] = static_cast<float>(1.0 / ((1 - smooth) / factor + smooth));
    }
  }
  return factors;
}

// Stand-ins for LongRoPE's searched factors: smooth ramps over the pairs, near 1 for short
// contexts and growing towards the context ratio for long ones.
std::vector<float> longrope_factors(const SynthPreset& p, bool long_context) {
  const int64_t half = p.n_embd / p.n_head / 2;
  const double ratio = static_cast<double>(p.n_ctx) / static_cast<double>(p.n_ctx_orig);
  std::vector<float> factors(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    const double x = static_cast<double>(i) / static_cast<double>(half - 1);
    factors[static_cast<size_t>(i)] =
        static_cast<float>(long_context ? 1 + (ratio - 1) * x * x * x : 1 + 0.5 * x * x);
  }
  return factors;
}

Expected<void> add_rope_tensors(GgufWriter& w, const SynthPreset& p) {
  auto add = [&w](const std::string& name, std::vector<float> values) {
    const int64_t ne[] = {std::ssize(values)};
    std::vector<uint8_t> bytes(values.size() * sizeof(float));
    std::memcpy(bytes.data(), values.data(), bytes.size());
    return w.add_tensor_owned(name, GgmlType::kF32, ne, std::move(bytes));
  };
  if (p.rope == SynthRope::kLlama3) {
    PV_TRY_VOID(add("rope_freqs.weight", llama3_rope_factors(p)));
  } else if (p.rope == SynthRope::kLongRope) {
    PV_TRY_VOID(add("rope_factors_long.weight", longrope_factors(p, true)));
    PV_TRY_VOID(add("rope_factors_short.weight", longrope_factors(p, false)));
  }
  return {};
}

Expected<void> add_tensors(GgufWriter& w, const SynthPreset& p, int64_t n_vocab,
                           const SynthOptions& o) {
  const int64_t n_embd = p.n_embd;
  const int64_t n_q = p.n_embd;
  const int64_t n_kv = p.n_embd / p.n_head * p.n_head_kv;
  const bool phi3 = p.arch == "phi3";
  PV_TRY_VOID(add_matrix(w, "token_embd.weight", n_vocab, n_embd, o));
  PV_TRY_VOID(add_norm(w, "output_norm.weight", n_embd, o.seed));
  PV_TRY_VOID(add_rope_tensors(w, p));
  if (!p.tied_embeddings) PV_TRY_VOID(add_matrix(w, "output.weight", n_vocab, n_embd, o));
  for (int64_t il = 0; il < p.n_layer; ++il) {
    const std::string b = "blk." + std::to_string(il) + ".";
    PV_TRY_VOID(add_norm(w, b + "attn_norm.weight", n_embd, o.seed));
    if (phi3) {
      PV_TRY_VOID(add_matrix(w, b + "attn_qkv.weight", n_q + 2 * n_kv, n_embd, o));
    } else {
      PV_TRY_VOID(add_matrix(w, b + "attn_q.weight", n_q, n_embd, o));
      PV_TRY_VOID(add_matrix(w, b + "attn_k.weight", n_kv, n_embd, o));
      PV_TRY_VOID(add_matrix(w, b + "attn_v.weight", n_kv, n_embd, o));
    }
    if (p.arch == "qwen2") {
      PV_TRY_VOID(add_vector(w, b + "attn_q.bias", n_q, o.seed));
      PV_TRY_VOID(add_vector(w, b + "attn_k.bias", n_kv, o.seed));
      PV_TRY_VOID(add_vector(w, b + "attn_v.bias", n_kv, o.seed));
    }
    PV_TRY_VOID(add_matrix(w, b + "attn_output.weight", n_embd, n_q, o));
    PV_TRY_VOID(add_norm(w, b + "ffn_norm.weight", n_embd, o.seed));
    if (phi3) {
      PV_TRY_VOID(add_matrix(w, b + "ffn_up.weight", 2 * p.n_ff, n_embd, o));
    } else {
      PV_TRY_VOID(add_matrix(w, b + "ffn_gate.weight", p.n_ff, n_embd, o));
      PV_TRY_VOID(add_matrix(w, b + "ffn_up.weight", p.n_ff, n_embd, o));
    }
    PV_TRY_VOID(add_matrix(w, b + "ffn_down.weight", n_embd, p.n_ff, o));
  }
  return {};
}

}  // namespace

std::span<const SynthPreset> synth_presets() { return kPresets; }

const SynthPreset* find_synth_preset(std::string_view name) {
  for (const SynthPreset& p : kPresets) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

Expected<void> synth_model(const SynthOptions& o) {
  const SynthPreset* p = find_synth_preset(o.preset);
  if (p == nullptr) {
    std::string names;
    for (const SynthPreset& q : kPresets)
      names += (names.empty() ? "" : ", ") + std::string(q.name);
    return make_error(ErrorCode::kInvalidArgument, "synth: unknown preset '{}' (presets: {})",
                      o.preset, names);
  }
  if (o.type != GgmlType::kF32 && o.type != GgmlType::kF16 && o.type != GgmlType::kBF16) {
    return make_error(ErrorCode::kInvalidArgument,
                      "synth: weights are written as F32, F16 or BF16; use `pensieve quantize` "
                      "for {}",
                      ggml_type_name(o.type));
  }
  const std::string vocab_path =
      o.vocab_path.empty() ? o.shared_dir + "/vocab/" + std::string(p->vocab) : o.vocab_path;
  PV_TRY(auto vocab, GgufFile::open(vocab_path));
  PV_TRY(const GgufValue* tokens, vocab->get_array("tokenizer.ggml.tokens"));
  const auto n_vocab = static_cast<int64_t>(tokens->size());
  GgufWriter w;
  write_hparams(w, *p, n_vocab, o.type);
  for (const GgufKv& kv : vocab->metadata()) {
    if (kv.key.starts_with("tokenizer.")) w.copy(kv.key, kv.value);
  }
  PV_TRY_VOID(add_tensors(w, *p, n_vocab, o));
  return w.write(o.output_path);
}

}  // namespace pensieve
