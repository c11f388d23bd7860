// llama-family tensor layout (Llama 2/3, Mistral, TinyLlama, SmolLM, TinyStories).
#include <string>

#include "model/weights.h"

namespace pensieve {

Expected<ModelWeights> bind_llama_weights(const WeightBinder& b, const Hparams& hp) {
  ModelWeights w;
  const int64_t n_q = hp.n_head * hp.head_dim;
  PV_TRY(w.token_embd, b.matrix("token_embd.weight", hp.n_vocab, hp.n_embd));
  PV_TRY(w.output_norm, b.vector("output_norm.weight", hp.n_embd));
  if (b.has("output.weight")) {
    PV_TRY(w.output, b.matrix("output.weight", hp.n_vocab, hp.n_embd));
  } else {
    w.output = w.token_embd;  // tied embeddings
  }
  if (b.has("rope_freqs.weight")) {  // llama3 RoPE scaling
    PV_TRY(w.rope_freqs, b.vector("rope_freqs.weight", hp.n_rot / 2));
  }
  w.layers.resize(static_cast<size_t>(hp.n_layer));
  for (int64_t il = 0; il < hp.n_layer; ++il) {
    LayerWeights& l = w.layers[static_cast<size_t>(il)];
    const std::string p = "blk." + std::to_string(il) + ".";
    PV_TRY(l.attn_norm, b.vector(p + "attn_norm.weight", hp.n_embd));
    PV_TRY(l.wq, b.matrix(p + "attn_q.weight", n_q, hp.n_embd));
    PV_TRY(l.wk, b.matrix(p + "attn_k.weight", hp.n_embd_kv(), hp.n_embd));
    PV_TRY(l.wv, b.matrix(p + "attn_v.weight", hp.n_embd_kv(), hp.n_embd));
    PV_TRY(l.wo, b.matrix(p + "attn_output.weight", hp.n_embd, n_q));
    PV_TRY(l.ffn_norm, b.vector(p + "ffn_norm.weight", hp.n_embd));
    PV_TRY(l.ffn_gate, b.matrix(p + "ffn_gate.weight", hp.n_ff, hp.n_embd));
    PV_TRY(l.ffn_up, b.matrix(p + "ffn_up.weight", hp.n_ff, hp.n_embd));
    PV_TRY(l.ffn_down, b.matrix(p + "ffn_down.weight", hp.n_embd, hp.n_ff));
  }
  return w;
}

}  // namespace pensieve
