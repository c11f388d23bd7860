#include "model/forward_cpu.h"

#include <algorithm>
#include <cmath>

#include "kernels/ref/ops.h"

namespace pensieve {
namespace {

size_t sz(int64_t n) { return static_cast<size_t>(n); }

}  // namespace

CpuForward::CpuForward(const Hparams& hp, const ModelWeights& weights, int64_t n_ctx, int n_threads,
                       int64_t max_batch)
    : hp_(hp),
      w_(weights),
      n_ctx_(n_ctx),
      max_batch_(max_batch),
      pool_(n_threads),
      workspace_(max_batch, std::max({hp.n_embd, hp.n_ff, hp.n_head * hp.head_dim})) {
  const int64_t n_q = hp.n_head * hp.head_dim;
  k_cache_.assign(sz(hp.n_layer), std::vector<float>(sz(n_ctx * hp.n_embd_kv())));
  v_cache_.assign(sz(hp.n_layer), std::vector<float>(sz(n_ctx * hp.n_embd_kv())));
  x_.resize(sz(max_batch * hp.n_embd));
  xn_.resize(x_.size());
  proj_.resize(x_.size());
  q_.resize(sz(max_batch * n_q));
  attn_.resize(q_.size());
  k_.resize(sz(max_batch * hp.n_embd_kv()));
  v_.resize(k_.size());
  gate_.resize(sz(max_batch * hp.n_ff));
  up_.resize(gate_.size());
  scores_.resize(sz(pool_.n_threads() * n_ctx));
  logits_.resize(sz(hp.n_vocab));
}

uint64_t CpuForward::weight_bytes_per_token() const {
  auto bytes = [](const Matrix& m) { return static_cast<uint64_t>(m.row_bytes) * m.n_rows; };
  uint64_t total = bytes(w_.output);
  for (const LayerWeights& l : w_.layers) {
    total += bytes(l.wq) + bytes(l.wk) + bytes(l.wv) + bytes(l.wo) + bytes(l.ffn_gate) +
             bytes(l.ffn_up) + bytes(l.ffn_down);
  }
  return total;
}

void CpuForward::matmul(const Matrix& w, const float* x, int64_t n_tokens, float* y) {
  cpu::matmul(w, x, n_tokens, y, pool_, workspace_);
}

Expected<std::span<const float>> CpuForward::eval(std::span<const int32_t> tokens) {
  if (tokens.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "forward: no tokens to evaluate");
  }
  if (n_past_ + static_cast<int64_t>(tokens.size()) > n_ctx_) {
    return make_error(ErrorCode::kOutOfRange,
                      "forward: {} tokens do not fit: {} of the context's {} are used",
                      tokens.size(), n_past_, n_ctx_);
  }
  for (int32_t t : tokens) {
    if (t < 0 || t >= hp_.n_vocab) {
      return make_error(ErrorCode::kInvalidArgument, "forward: token id {} is outside [0, {})", t,
                        hp_.n_vocab);
    }
  }
  for (size_t begin = 0; begin < tokens.size(); begin += sz(max_batch_)) {
    eval_chunk(tokens.subspan(begin, std::min(sz(max_batch_), tokens.size() - begin)));
  }
  return std::span<const float>(logits_);
}

void CpuForward::eval_chunk(std::span<const int32_t> tokens) {
  const auto n = static_cast<int64_t>(tokens.size());
  for (int64_t t = 0; t < n; ++t) {
    ref::matrix_row(w_.token_embd, tokens[sz(t)], x_.data() + t * hp_.n_embd);  // [n, n_embd]
  }
  for (int64_t il = 0; il < hp_.n_layer; ++il) {
    attention(il, n);
    feed_forward(il, n);
  }
  // Only the last token's logits are needed.
  const float* last = x_.data() + (n - 1) * hp_.n_embd;
  ref::rms_norm(last, w_.output_norm, hp_.n_embd, hp_.rms_eps, xn_.data());
  matmul(w_.output, xn_.data(), 1, logits_.data());  // [n_vocab]
  n_past_ += n;
}

void CpuForward::attention(int64_t il, int64_t n) {
  const LayerWeights& l = w_.layers[sz(il)];
  const int64_t hd = hp_.head_dim;
  const int64_t n_q = hp_.n_head * hd;
  const int64_t n_kv = hp_.n_embd_kv();
  for (int64_t t = 0; t < n; ++t) {
    ref::rms_norm(x_.data() + t * hp_.n_embd, l.attn_norm, hp_.n_embd, hp_.rms_eps,
                  xn_.data() + t * hp_.n_embd);
  }
  matmul(l.wq, xn_.data(), n, q_.data());  // [n, n_q]
  matmul(l.wk, xn_.data(), n, k_.data());  // [n, n_kv]
  matmul(l.wv, xn_.data(), n, v_.data());  // [n, n_kv]
  float* k_cache = k_cache_[sz(il)].data();
  float* v_cache = v_cache_[sz(il)].data();
  for (int64_t t = 0; t < n; ++t) {
    float* q = q_.data() + t * n_q;
    float* k = k_.data() + t * n_kv;
    float* v = v_.data() + t * n_kv;
    for (int64_t i = 0; l.bq != nullptr && i < n_q; ++i) q[i] += l.bq[i];
    for (int64_t i = 0; l.bk != nullptr && i < n_kv; ++i) k[i] += l.bk[i];
    for (int64_t i = 0; l.bv != nullptr && i < n_kv; ++i) v[i] += l.bv[i];
    const int64_t pos = n_past_ + t;
    for (int64_t h = 0; h < hp_.n_head; ++h) {
      ref::rope(q + h * hd, hd, hp_.n_rot, pos, hp_.rope_freq_base, hp_.rope_freq_scale,
                hp_.rope_style);
    }
    for (int64_t h = 0; h < hp_.n_head_kv; ++h) {
      ref::rope(k + h * hd, hd, hp_.n_rot, pos, hp_.rope_freq_base, hp_.rope_freq_scale,
                hp_.rope_style);
    }
    std::copy(k, k + n_kv, k_cache + pos * n_kv);
    std::copy(v, v + n_kv, v_cache + pos * n_kv);
  }
  // Every (token, head) pair is independent: spread them over the pool.
  pool_.run([&](int thread, int n_threads) {
    float* scores = scores_.data() + thread * n_ctx_;
    for (int64_t job = thread; job < n * hp_.n_head; job += n_threads) {
      attend_one(il, job / hp_.n_head, job % hp_.n_head, scores);
    }
  });
  matmul(l.wo, attn_.data(), n, proj_.data());  // [n, n_embd]
  for (int64_t i = 0; i < n * hp_.n_embd; ++i) x_[sz(i)] += proj_[sz(i)];
}

// Causal attention of chunk token t, head h, over positions 0..n_past + t.
void CpuForward::attend_one(int64_t il, int64_t t, int64_t h, float* scores) {
  const int64_t hd = hp_.head_dim;
  const int64_t n_kv = hp_.n_embd_kv();
  const int64_t kv_off = (h / (hp_.n_head / hp_.n_head_kv)) * hd;
  const int64_t n_pos = n_past_ + t + 1;
  const float* q = q_.data() + t * hp_.n_head * hd + h * hd;
  const float* k_cache = k_cache_[sz(il)].data() + kv_off;
  const float* v_cache = v_cache_[sz(il)].data() + kv_off;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  float max = -INFINITY;
  for (int64_t p = 0; p < n_pos; ++p) {
    const float* k = k_cache + p * n_kv;
    float dot = 0;
    for (int64_t d = 0; d < hd; ++d) dot += q[d] * k[d];
    scores[p] = dot * scale;
    max = std::max(max, scores[p]);
  }
  float sum = 0;
  for (int64_t p = 0; p < n_pos; ++p) {
    scores[p] = std::exp(scores[p] - max);
    sum += scores[p];
  }
  float* out = attn_.data() + t * hp_.n_head * hd + h * hd;
  std::fill(out, out + hd, 0.0f);
  for (int64_t p = 0; p < n_pos; ++p) {
    const float* v = v_cache + p * n_kv;
    const float weight = scores[p] / sum;
    for (int64_t d = 0; d < hd; ++d) out[d] += weight * v[d];
  }
}

void CpuForward::feed_forward(int64_t il, int64_t n) {
  const LayerWeights& l = w_.layers[sz(il)];
  for (int64_t t = 0; t < n; ++t) {
    ref::rms_norm(x_.data() + t * hp_.n_embd, l.ffn_norm, hp_.n_embd, hp_.rms_eps,
                  xn_.data() + t * hp_.n_embd);
  }
  matmul(l.ffn_gate, xn_.data(), n, gate_.data());  // [n, n_ff]
  matmul(l.ffn_up, xn_.data(), n, up_.data());      // [n, n_ff]
  ref::swiglu(gate_.data(), up_.data(), n * hp_.n_ff, gate_.data());
  matmul(l.ffn_down, gate_.data(), n, proj_.data());  // [n, n_embd]
  for (int64_t i = 0; i < n * hp_.n_embd; ++i) x_[sz(i)] += proj_[sz(i)];
}

}  // namespace pensieve
