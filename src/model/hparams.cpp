#include "model/hparams.h"

namespace pensieve {
namespace {

struct ArchInfo {
  std::string_view name;
  Arch arch;
  ref::RopeStyle rope_style;
};

// llama GGUFs store q/k permuted for adjacent-pair RoPE; qwen2 and phi3 keep the neox layout.
constexpr ArchInfo kArchs[] = {
    {"llama", Arch::kLlama, ref::RopeStyle::kAdjacentPairs},
    {"qwen2", Arch::kQwen2, ref::RopeStyle::kHalfSplit},
    {"phi3", Arch::kPhi3, ref::RopeStyle::kHalfSplit},
};

// Linear scaling ("linear" type, or the older scale_linear key) changes freq_scale; llama3 and
// LongRoPE scaling come as per-pair factor tensors (model/weights.h) plus the keys read here.
Expected<void> read_rope_scaling(const GgufFile& file, const std::string& a, Hparams* hp) {
  const std::string_view type = file.get_string_or(a + "rope.scaling.type", "");
  double linear = file.get_float_or(a + "rope.scale_linear", 1.0);
  if (type == "linear") {
    linear = file.get_float_or(a + "rope.scaling.factor", 1.0);
  } else if (!type.empty() && type != "none") {
    return make_error(ErrorCode::kUnsupported,
                      "model: {}: RoPE scaling type '{}' is not supported (supported: linear, "
                      "llama3 and LongRoPE factor tensors)",
                      file.name(), type);
  }
  if (!(linear > 0)) {
    return make_error(ErrorCode::kInvalidFormat,
                      "model: {}: RoPE scaling factor {} is not positive", file.name(), linear);
  }
  hp->rope_freq_scale = static_cast<float>(1.0 / linear);
  const double attn_factor = file.get_float_or(a + "rope.scaling.attn_factor", 1.0);
  if (!(attn_factor > 0 && attn_factor < 100)) {
    return make_error(ErrorCode::kInvalidFormat,
                      "model: {}: rope.scaling.attn_factor {} is out of range", file.name(),
                      attn_factor);
  }
  hp->rope_attn_factor = static_cast<float>(attn_factor);
  hp->n_ctx_orig = static_cast<int64_t>(file.get_uint_or(a + "rope.scaling.original_context_length",
                                                         static_cast<uint64_t>(hp->n_ctx_train)));
  return {};
}

}  // namespace

std::string_view supported_architectures() { return "llama, qwen2, phi3"; }

Expected<Hparams> read_hparams(const GgufFile& file) {
  PV_TRY(std::string_view arch_name, file.get_string("general.architecture"));
  const ArchInfo* info = nullptr;
  for (const ArchInfo& a : kArchs) {
    if (a.name == arch_name) info = &a;
  }
  if (info == nullptr) {
    return make_error(ErrorCode::kUnsupported,
                      "model: {}: architecture '{}' is not supported (supported: {})", file.name(),
                      arch_name, supported_architectures());
  }
  Hparams hp;
  hp.arch = info->arch;
  hp.arch_name = std::string(arch_name);
  hp.rope_style = info->rope_style;
  const std::string a = hp.arch_name + ".";
  auto get = [&](const std::string& key, int64_t* out) -> Expected<void> {
    PV_TRY(uint64_t v, file.get_uint(a + key));
    if (v == 0 || v > (uint64_t{1} << 40)) {
      return make_error(ErrorCode::kInvalidFormat, "model: {}: '{}{}' = {} is out of range",
                        file.name(), a, key, v);
    }
    *out = static_cast<int64_t>(v);
    return {};
  };
  PV_TRY_VOID(get("context_length", &hp.n_ctx_train));
  PV_TRY_VOID(get("embedding_length", &hp.n_embd));
  PV_TRY_VOID(get("block_count", &hp.n_layer));
  PV_TRY_VOID(get("feed_forward_length", &hp.n_ff));
  PV_TRY_VOID(get("attention.head_count", &hp.n_head));
  hp.n_head_kv = static_cast<int64_t>(file.get_uint_or(a + "attention.head_count_kv", hp.n_head));
  if (hp.n_embd % hp.n_head != 0 || hp.n_head_kv == 0 || hp.n_head % hp.n_head_kv != 0) {
    return make_error(ErrorCode::kInvalidFormat,
                      "model: {}: {} heads, {} KV heads and width {} do not divide evenly",
                      file.name(), hp.n_head, hp.n_head_kv, hp.n_embd);
  }
  hp.head_dim = static_cast<int64_t>(
      file.get_uint_or(a + "attention.key_length", static_cast<uint64_t>(hp.n_embd / hp.n_head)));
  hp.n_rot = static_cast<int64_t>(
      file.get_uint_or(a + "rope.dimension_count", static_cast<uint64_t>(hp.head_dim)));
  if (hp.n_rot > hp.head_dim || hp.n_rot % 2 != 0) {
    return make_error(ErrorCode::kInvalidFormat,
                      "model: {}: rope.dimension_count {} does not fit head size {}", file.name(),
                      hp.n_rot, hp.head_dim);
  }
  hp.rms_eps = static_cast<float>(file.get_float_or(a + "attention.layer_norm_rms_epsilon", 1e-5));
  hp.rope_freq_base = static_cast<float>(file.get_float_or(a + "rope.freq_base", 10000.0));
  PV_TRY_VOID(read_rope_scaling(file, a, &hp));
  const GgufValue* tokens = file.find("tokenizer.ggml.tokens");
  hp.n_vocab = static_cast<int64_t>(
      file.get_uint_or(a + "vocab_size", tokens != nullptr ? tokens->size() : 0));
  return hp;
}

}  // namespace pensieve
