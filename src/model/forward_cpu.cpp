#include "model/forward_cpu.h"

#include <algorithm>
#include <atomic>
#include <cmath>

#include "kernels/ref/ops.h"

namespace pensieve {
namespace {

size_t sz(int64_t n) { return static_cast<size_t>(n); }

// Query rows (heads x tokens) per attention job: they share each K/V block the job converts.
// A job holds at least one token's whole GQA group.
int64_t attention_rows(const Hparams& hp) {
  return std::max<int64_t>(64, hp.n_head / hp.n_head_kv);
}

GgmlType effective_kv_type(const Hparams& hp, GgmlType kv_type) {
  return kv_type == GgmlType::kQ8_0 && hp.head_dim % 32 != 0 ? GgmlType::kF16 : kv_type;
}

int64_t workspace_cols(const Hparams& hp) {
  return std::max({hp.n_embd, hp.n_ff, hp.n_head * hp.head_dim});
}

}  // namespace

CpuForward::CpuForward(const Hparams& hp, const ModelWeights& weights, int64_t n_ctx, int n_threads,
                       int64_t max_batch, GgmlType kv_type)
    : hp_(hp),
      w_(weights),
      n_ctx_(n_ctx),
      max_batch_(max_batch),
      kv_type_(effective_kv_type(hp, kv_type)),
      kv_row_bytes_(cpu::kv_bytes(kv_type_, hp.n_embd_kv())),
      rope_(rope_params(hp, weights, n_ctx)),
      pool_(n_threads),
      workspace_(max_batch, workspace_cols(hp)) {
  const int64_t n_q = hp.n_head * hp.head_dim;
  k_cache_.assign(sz(hp.n_layer), std::vector<uint8_t>(sz(n_ctx) * kv_row_bytes_));
  v_cache_.assign(sz(hp.n_layer), std::vector<uint8_t>(sz(n_ctx) * kv_row_bytes_));
  x_.resize(sz(max_batch * hp.n_embd));
  xn_.resize(x_.size());
  proj_.resize(x_.size());
  q_.resize(sz(max_batch * n_q));
  attn_.resize(q_.size());
  k_.resize(sz(max_batch * hp.n_embd_kv()));
  v_.resize(k_.size());
  gate_.resize(sz(max_batch * hp.n_ff));
  up_.resize(gate_.size());
  rope_cos_.resize(sz(max_batch * hp.n_rot / 2));
  rope_sin_.resize(rope_cos_.size());
  attn_scratch_.resize(sz(pool_.n_threads()) *
                       cpu::attention_scratch_floats(attention_rows(hp), hp.head_dim));
  logits_.resize(sz(hp.n_vocab));
}

CpuForward::MemoryPlan CpuForward::memory_plan(const Hparams& hp, int64_t max_batch, int n_threads,
                                               GgmlType kv_type) {
  MemoryPlan plan;
  plan.kv_bytes_per_position =
      2 * hp.n_layer *
      static_cast<int64_t>(cpu::kv_bytes(effective_kv_type(hp, kv_type), hp.n_embd_kv()));
  const int64_t n_q = hp.n_head * hp.head_dim;
  const int64_t floats =
      max_batch * (3 * hp.n_embd + 2 * n_q + 2 * hp.n_embd_kv() + 2 * hp.n_ff + hp.n_rot) +
      static_cast<int64_t>(std::max(1, n_threads)) *
          static_cast<int64_t>(cpu::attention_scratch_floats(attention_rows(hp), hp.head_dim)) +
      hp.n_vocab;
  plan.scratch_bytes =
      floats * static_cast<int64_t>(sizeof(float)) +
      static_cast<int64_t>(cpu::MatmulWorkspace::bytes_for(max_batch, workspace_cols(hp)));
  return plan;
}

CpuForward::MemoryPlan CpuForward::allocated() const {
  MemoryPlan plan;
  plan.kv_bytes_per_position = 2 * hp_.n_layer * static_cast<int64_t>(kv_row_bytes_);
  size_t bytes = workspace_.capacity_bytes();
  for (const auto* v : {&x_, &xn_, &q_, &k_, &v_, &attn_, &gate_, &up_, &proj_, &rope_cos_,
                        &rope_sin_, &attn_scratch_, &logits_}) {
    bytes += v->capacity() * sizeof(float);
  }
  plan.scratch_bytes = static_cast<int64_t>(bytes);
  return plan;
}

uint64_t CpuForward::kv_cache_bytes() const {
  return 2 * static_cast<uint64_t>(hp_.n_layer) * static_cast<uint64_t>(n_ctx_) * kv_row_bytes_;
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
  const int64_t half_rot = hp_.n_rot / 2;
  for (int64_t t = 0; t < n; ++t) {
    ref::matrix_row(w_.token_embd, tokens[sz(t)], x_.data() + t * hp_.n_embd);  // [n, n_embd]
    ref::rope_angles(rope_, n_past_ + t, rope_cos_.data() + t * half_rot,
                     rope_sin_.data() + t * half_rot);  // shared by every layer and head
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
  for (int64_t t = 0; t < n; ++t) {
    ref::rms_norm(x_.data() + t * hp_.n_embd, l.attn_norm, hp_.n_embd, hp_.rms_eps,
                  xn_.data() + t * hp_.n_embd);
  }
  const cpu::MatmulTarget qkv[] = {{&l.wq, q_.data()},   // [n, n_q]
                                   {&l.wk, k_.data()},   // [n, n_kv]
                                   {&l.wv, v_.data()}};  // [n, n_kv]
  cpu::matmul_many(qkv, xn_.data(), n, pool_, workspace_);
  store_kv(il, n);
  attend(il, n);
  matmul(l.wo, attn_.data(), n, proj_.data());  // [n, n_embd]
  for (int64_t i = 0; i < n * hp_.n_embd; ++i) x_[sz(i)] += proj_[sz(i)];
}

// Biases and RoPE on the chunk's q and k, then k and v into the cache at their positions.
void CpuForward::store_kv(int64_t il, int64_t n) {
  const LayerWeights& l = w_.layers[sz(il)];
  const int64_t hd = hp_.head_dim;
  const int64_t n_q = hp_.n_head * hd;
  const int64_t n_kv = hp_.n_embd_kv();
  const int64_t half_rot = hp_.n_rot / 2;
  for (int64_t t = 0; t < n; ++t) {
    float* q = q_.data() + t * n_q;
    float* k = k_.data() + t * n_kv;
    float* v = v_.data() + t * n_kv;
    for (int64_t i = 0; l.bq != nullptr && i < n_q; ++i) q[i] += l.bq[i];
    for (int64_t i = 0; l.bk != nullptr && i < n_kv; ++i) k[i] += l.bk[i];
    for (int64_t i = 0; l.bv != nullptr && i < n_kv; ++i) v[i] += l.bv[i];
    const float* cos = rope_cos_.data() + t * half_rot;
    const float* sin = rope_sin_.data() + t * half_rot;
    for (int64_t h = 0; h < hp_.n_head; ++h) ref::rope_rotate(rope_, cos, sin, q + h * hd);
    for (int64_t h = 0; h < hp_.n_head_kv; ++h) ref::rope_rotate(rope_, cos, sin, k + h * hd);
    const size_t row = sz(n_past_ + t) * kv_row_bytes_;
    cpu::kv_store(kv_type_, k, n_kv, k_cache_[sz(il)].data() + row);
    cpu::kv_store(kv_type_, v, n_kv, v_cache_[sz(il)].data() + row);
  }
}

// Causal attention of the chunk over the cache. Jobs are (KV head, run of tokens): the query
// heads of a GQA group read each converted K/V block together.
void CpuForward::attend(int64_t il, int64_t n) {
  const int64_t hd = hp_.head_dim;
  const int64_t group = hp_.n_head / hp_.n_head_kv;
  const int64_t tokens_per_job = attention_rows(hp_) / group;
  const int64_t token_runs = (n + tokens_per_job - 1) / tokens_per_job;
  const int64_t n_jobs = hp_.n_head_kv * token_runs;
  const size_t head_bytes = cpu::kv_bytes(kv_type_, hd);
  const size_t scratch_floats = cpu::attention_scratch_floats(attention_rows(hp_), hd);
  std::atomic<int64_t> next{0};
  pool_.run([&](int thread, int) {
    float* scratch = attn_scratch_.data() + sz(thread) * scratch_floats;
    for (int64_t job = next.fetch_add(1); job < n_jobs; job = next.fetch_add(1)) {
      const int64_t g = job % hp_.n_head_kv;
      const int64_t t0 = job / hp_.n_head_kv * tokens_per_job;
      cpu::AttentionJob a;
      a.q = q_.data() + t0 * hp_.n_head * hd + g * group * hd;
      a.out = attn_.data() + t0 * hp_.n_head * hd + g * group * hd;
      a.token_stride = hp_.n_head * hd;
      a.group = group;
      a.n_tokens = std::min(tokens_per_job, n - t0);
      a.first_pos = n_past_ + t0;
      a.k = k_cache_[sz(il)].data() + sz(g) * head_bytes;
      a.v = v_cache_[sz(il)].data() + sz(g) * head_bytes;
      a.kv_stride = kv_row_bytes_;
      a.kv_type = kv_type_;
      a.head_dim = hd;
      a.scale = 1.0f / std::sqrt(static_cast<float>(hd));
      cpu::attention(a, scratch);
    }
  });
}

void CpuForward::feed_forward(int64_t il, int64_t n) {
  const LayerWeights& l = w_.layers[sz(il)];
  for (int64_t t = 0; t < n; ++t) {
    ref::rms_norm(x_.data() + t * hp_.n_embd, l.ffn_norm, hp_.n_embd, hp_.rms_eps,
                  xn_.data() + t * hp_.n_embd);
  }
  const cpu::MatmulTarget gate_up[] = {{&l.ffn_gate, gate_.data()},  // [n, n_ff]
                                       {&l.ffn_up, up_.data()}};     // [n, n_ff]
  cpu::matmul_many(gate_up, xn_.data(), n, pool_, workspace_);
  ref::swiglu(gate_.data(), up_.data(), n * hp_.n_ff, gate_.data());
  matmul(l.ffn_down, gate_.data(), n, proj_.data());  // [n, n_embd]
  for (int64_t i = 0; i < n * hp_.n_embd; ++i) x_[sz(i)] += proj_[sz(i)];
}

}  // namespace pensieve
