// phi3 tensor layout: fused q/k/v projection (attn_qkv) and fused gate+up (ffn_up, gate rows
// first). The fused matrices are split into row ranges, so the forward pass is llama's.
#include <string>

#include "model/weights.h"

namespace pensieve {
namespace {

// Rows [first, first + n) of m.
Matrix row_range(const Matrix& m, int64_t first, int64_t n) {
  return Matrix{m.type, m.n_cols, n, m.row_bytes, m.row(first)};
}

}  // namespace

Expected<ModelWeights> bind_phi3_weights(const WeightBinder& b, const Hparams& hp) {
  ModelWeights w;
  const int64_t n_q = hp.n_head * hp.head_dim;
  const int64_t n_kv = hp.n_embd_kv();
  PV_TRY(w.token_embd, b.matrix("token_embd.weight", hp.n_vocab, hp.n_embd));
  PV_TRY(w.output_norm, b.vector("output_norm.weight", hp.n_embd));
  if (b.has("output.weight")) {
    PV_TRY(w.output, b.matrix("output.weight", hp.n_vocab, hp.n_embd));
  } else {
    w.output = w.token_embd;
  }
  // LongRoPE (the 128k variants): per-pair factors for short and long contexts.
  if (b.has("rope_factors_long.weight") || b.has("rope_factors_short.weight")) {
    PV_TRY(w.rope_factors_short, b.vector("rope_factors_short.weight", hp.n_rot / 2));
    PV_TRY(w.rope_factors_long, b.vector("rope_factors_long.weight", hp.n_rot / 2));
  }
  w.layers.resize(static_cast<size_t>(hp.n_layer));
  for (int64_t il = 0; il < hp.n_layer; ++il) {
    LayerWeights& l = w.layers[static_cast<size_t>(il)];
    const std::string p = "blk." + std::to_string(il) + ".";
    PV_TRY(l.attn_norm, b.vector(p + "attn_norm.weight", hp.n_embd));
    PV_TRY(Matrix qkv, b.matrix(p + "attn_qkv.weight", n_q + 2 * n_kv, hp.n_embd));
    l.wq = row_range(qkv, 0, n_q);
    l.wk = row_range(qkv, n_q, n_kv);
    l.wv = row_range(qkv, n_q + n_kv, n_kv);
    PV_TRY(l.wo, b.matrix(p + "attn_output.weight", hp.n_embd, n_q));
    PV_TRY(l.ffn_norm, b.vector(p + "ffn_norm.weight", hp.n_embd));
    PV_TRY(Matrix gate_up, b.matrix(p + "ffn_up.weight", 2 * hp.n_ff, hp.n_embd));
    l.ffn_gate = row_range(gate_up, 0, hp.n_ff);
    l.ffn_up = row_range(gate_up, hp.n_ff, hp.n_ff);
    PV_TRY(l.ffn_down, b.matrix(p + "ffn_down.weight", hp.n_embd, hp.n_ff));
  }
  return w;
}

}  // namespace pensieve
