// qwen2 tensor layout: llama's, plus biases on the q/k/v projections.
#include <string>

#include "model/weights.h"

namespace pensieve {

Expected<ModelWeights> bind_qwen2_weights(const WeightBinder& b, const Hparams& hp) {
  PV_TRY(ModelWeights w, bind_llama_weights(b, hp));
  const int64_t n_q = hp.n_head * hp.head_dim;
  for (int64_t il = 0; il < hp.n_layer; ++il) {
    LayerWeights& l = w.layers[static_cast<size_t>(il)];
    const std::string p = "blk." + std::to_string(il) + ".";
    PV_TRY(l.bq, b.vector(p + "attn_q.bias", n_q));
    PV_TRY(l.bk, b.vector(p + "attn_k.bias", hp.n_embd_kv()));
    PV_TRY(l.bv, b.vector(p + "attn_v.bias", hp.n_embd_kv()));
  }
  return w;
}

}  // namespace pensieve
