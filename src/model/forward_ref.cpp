#include "model/forward_ref.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "kernels/ref/ops.h"

namespace pensieve {

ReferenceForward::ReferenceForward(const Hparams& hp, const ModelWeights& weights, int64_t n_ctx,
                                   int64_t attention_window)
    : hp_(hp),
      w_(weights),
      n_ctx_(n_ctx),
      window_(attention_window),
      rope_(rope_params(hp, weights, n_ctx)) {
  PV_CHECK(attention_window >= 0, "forward: attention window {}", attention_window);
  const auto n_kv = static_cast<size_t>(n_ctx * hp.n_embd_kv());
  k_cache_.assign(static_cast<size_t>(hp.n_layer), std::vector<float>(n_kv));
  v_cache_.assign(static_cast<size_t>(hp.n_layer), std::vector<float>(n_kv));
  const auto n_q = static_cast<size_t>(hp.n_head * hp.head_dim);
  x_.resize(static_cast<size_t>(hp.n_embd));
  xn_.resize(x_.size());
  q_.resize(n_q);
  attn_.resize(n_q);
  scores_.resize(static_cast<size_t>(n_ctx));
  gate_.resize(static_cast<size_t>(hp.n_ff));
  up_.resize(gate_.size());
  const auto widest = static_cast<size_t>(std::max({hp.n_embd, hp.n_ff, hp.n_head * hp.head_dim}));
  proj_.resize(widest);
  scratch_.resize(widest);
  logits_.resize(static_cast<size_t>(hp.n_vocab));
  rope_scratch_.resize(static_cast<size_t>(hp.n_rot));
}

Expected<std::span<const float>> ReferenceForward::step(int32_t token) {
  if (token < 0 || token >= hp_.n_vocab) {
    return make_error(ErrorCode::kInvalidArgument, "forward: token id {} is outside [0, {})", token,
                      hp_.n_vocab);
  }
  if (n_past_ >= n_ctx_) {
    return make_error(ErrorCode::kOutOfRange, "forward: the context of {} tokens is full", n_ctx_);
  }
  ref::matrix_row(w_.token_embd, token, x_.data());  // x: [n_embd]
  for (int64_t il = 0; il < hp_.n_layer; ++il) {
    attention(il);
    feed_forward(il);
  }
  ref::rms_norm(x_.data(), w_.output_norm, hp_.n_embd, hp_.rms_eps, xn_.data());
  ref::matvec(w_.output, xn_.data(), logits_.data(), scratch_.data());  // [n_vocab]
  ++n_past_;
  return std::span<const float>(logits_);
}

Expected<std::span<const float>> ReferenceForward::eval(std::span<const int32_t> tokens) {
  PV_TRY_VOID(check_eval(tokens, n_past_, n_ctx_, hp_.n_vocab));
  std::span<const float> logits;
  for (int32_t t : tokens) {
    PV_TRY(logits, step(t));
  }
  return logits;
}

void ReferenceForward::attention(int64_t il) {
  const LayerWeights& l = w_.layers[static_cast<size_t>(il)];
  const int64_t hd = hp_.head_dim;
  const int64_t n_kv = hp_.n_embd_kv();
  const int64_t group = hp_.n_head / hp_.n_head_kv;  // query heads per KV head (GQA)
  float* k = k_cache_[static_cast<size_t>(il)].data() + n_past_ * n_kv;  // [n_embd_kv]
  float* v = v_cache_[static_cast<size_t>(il)].data() + n_past_ * n_kv;  // [n_embd_kv]

  ref::rms_norm(x_.data(), l.attn_norm, hp_.n_embd, hp_.rms_eps, xn_.data());
  ref::matvec(l.wq, xn_.data(), q_.data(), scratch_.data());  // q: [n_head * hd]
  ref::matvec(l.wk, xn_.data(), k, scratch_.data());
  ref::matvec(l.wv, xn_.data(), v, scratch_.data());
  for (int64_t i = 0; l.bq != nullptr && i < hp_.n_head * hd; ++i) q_[i] += l.bq[i];
  for (int64_t i = 0; l.bk != nullptr && i < n_kv; ++i) k[i] += l.bk[i];
  for (int64_t i = 0; l.bv != nullptr && i < n_kv; ++i) v[i] += l.bv[i];
  for (int64_t h = 0; h < hp_.n_head; ++h) {
    ref::rope(rope_, n_past_, q_.data() + h * hd, rope_scratch_.data());
  }
  for (int64_t h = 0; h < hp_.n_head_kv; ++h) {
    ref::rope(rope_, n_past_, k + h * hd, rope_scratch_.data());
  }

  const float* k_all = k_cache_[static_cast<size_t>(il)].data();  // [n_past + 1, n_embd_kv]
  const float* v_all = v_cache_[static_cast<size_t>(il)].data();
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  // The positions attended: the last window_ of them, or all.
  const int64_t begin = window_ > 0 ? std::max<int64_t>(0, n_past_ - window_ + 1) : 0;
  for (int64_t h = 0; h < hp_.n_head; ++h) {
    const float* qh = q_.data() + h * hd;
    const int64_t kv_off = (h / group) * hd;
    for (int64_t t = begin; t <= n_past_; ++t) {
      float dot = 0;
      for (int64_t d = 0; d < hd; ++d) dot += qh[d] * k_all[t * n_kv + kv_off + d];
      scores_[t - begin] = dot * scale;
    }
    ref::softmax(scores_.data(), n_past_ + 1 - begin);
    float* out = attn_.data() + h * hd;  // [hd]
    std::fill(out, out + hd, 0.0f);
    for (int64_t t = begin; t <= n_past_; ++t) {
      for (int64_t d = 0; d < hd; ++d) out[d] += scores_[t - begin] * v_all[t * n_kv + kv_off + d];
    }
  }
  ref::matvec(l.wo, attn_.data(), proj_.data(), scratch_.data());  // [n_embd]
  for (int64_t i = 0; i < hp_.n_embd; ++i) x_[i] += proj_[i];
}

void ReferenceForward::feed_forward(int64_t il) {
  const LayerWeights& l = w_.layers[static_cast<size_t>(il)];
  ref::rms_norm(x_.data(), l.ffn_norm, hp_.n_embd, hp_.rms_eps, xn_.data());
  ref::matvec(l.ffn_gate, xn_.data(), gate_.data(), scratch_.data());  // [n_ff]
  ref::matvec(l.ffn_up, xn_.data(), up_.data(), scratch_.data());      // [n_ff]
  ref::swiglu(gate_.data(), up_.data(), hp_.n_ff, gate_.data());
  ref::matvec(l.ffn_down, gate_.data(), proj_.data(), scratch_.data());  // [n_embd]
  for (int64_t i = 0; i < hp_.n_embd; ++i) x_[i] += proj_[i];
}

}  // namespace pensieve
