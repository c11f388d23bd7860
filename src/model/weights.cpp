#include "model/weights.h"

#include "kernels/ref/quants.h"

namespace pensieve {

Expected<const GgufTensorInfo*> WeightBinder::find(const std::string& name) const {
  const GgufTensorInfo* t = file_.find_tensor(name);
  if (t == nullptr) {
    return make_error(ErrorCode::kInvalidFormat, "model: {}: tensor '{}' is missing", file_.name(),
                      name);
  }
  return t;
}

Expected<Matrix> WeightBinder::matrix(const std::string& name, int64_t n_rows,
                                      int64_t n_cols) const {
  PV_TRY(const GgufTensorInfo* t, find(name));
  if (t->n_dims > 2 || t->ne[0] != n_cols || t->ne[1] != n_rows) {
    return make_error(ErrorCode::kInvalidFormat,
                      "model: {}: tensor '{}' has shape {}, expected [{}, {}]", file_.name(), name,
                      t->shape_string(), n_cols, n_rows);
  }
  if (!ref::can_dequantize(t->type)) {
    return make_error(ErrorCode::kUnsupported,
                      "model: {}: tensor '{}' has type {}, which pensieve cannot compute with",
                      file_.name(), name, ggml_type_name(t->type));
  }
  const GgmlTypeTraits& traits = ggml_type_traits(t->type);
  return Matrix{t->type, n_cols, n_rows, ggml_row_bytes(traits, n_cols), t->data};
}

Expected<const float*> WeightBinder::vector(const std::string& name, int64_t n) const {
  PV_TRY(const GgufTensorInfo* t, find(name));
  if (t->n_dims != 1 || t->ne[0] != n) {
    return make_error(ErrorCode::kInvalidFormat,
                      "model: {}: tensor '{}' has shape {}, expected [{}]", file_.name(), name,
                      t->shape_string(), n);
  }
  if (t->type != GgmlType::kF32) {
    return make_error(ErrorCode::kUnsupported, "model: {}: tensor '{}' has type {}, expected F32",
                      file_.name(), name, ggml_type_name(t->type));
  }
  return reinterpret_cast<const float*>(t->data);
}

ref::RopeParams rope_params(const Hparams& hp, const ModelWeights& w, int64_t n_ctx) {
  ref::RopeParams p;
  p.n_rot = hp.n_rot;
  p.freq_base = hp.rope_freq_base;
  p.freq_scale = hp.rope_freq_scale;
  p.style = hp.rope_style;
  p.attn_factor = hp.rope_attn_factor;
  if (w.rope_freqs != nullptr) {
    p.freq_factors = w.rope_freqs;
  } else if (w.rope_factors_long != nullptr) {
    p.freq_factors = n_ctx > hp.n_ctx_orig ? w.rope_factors_long : w.rope_factors_short;
  }
  return p;
}

Expected<ModelWeights> bind_weights(const GgufFile& file, const Hparams& hp) {
  WeightBinder binder(file);
  switch (hp.arch) {
    case Arch::kLlama:
      return bind_llama_weights(binder, hp);
    case Arch::kQwen2:
      return bind_qwen2_weights(binder, hp);
    case Arch::kPhi3:
      return bind_phi3_weights(binder, hp);
  }
  PV_CHECK(false, "unhandled architecture");
  __builtin_unreachable();
}

uint64_t matmul_weight_bytes(const ModelWeights& w) {
  auto bytes = [](const Matrix& m) { return static_cast<uint64_t>(m.row_bytes) * m.n_rows; };
  uint64_t total = bytes(w.output);
  for (const LayerWeights& l : w.layers) {
    total += bytes(l.wq) + bytes(l.wk) + bytes(l.wv) + bytes(l.wo) + bytes(l.ffn_gate) +
             bytes(l.ffn_up) + bytes(l.ffn_down);
  }
  return total;
}

}  // namespace pensieve
