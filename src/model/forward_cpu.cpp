#include "model/forward_cpu.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <numeric>

#include "kernels/ref/ops.h"

namespace pensieve {
namespace {

size_t sz(int64_t n) { return static_cast<size_t>(n); }

constexpr int64_t kBlock = cpu::kKvBlockPositions;
static_assert(kBlock == BatchForward::kKvBlockPositions);

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

int64_t blocks_for(int64_t positions) { return (positions + kBlock - 1) / kBlock; }

LayerRange resolved(const Hparams& hp, LayerRange layers) {
  if (layers.end < 0) layers.end = hp.n_layer;
  PV_CHECK(layers.first >= 0 && layers.first < layers.end && layers.end <= hp.n_layer,
           "forward: layers [{}, {}) of {}", layers.first, layers.end, hp.n_layer);
  return layers;
}

}  // namespace

CpuForward::CpuForward(const Hparams& hp, const ModelWeights& weights, int64_t n_ctx, int n_threads,
                       int64_t max_batch, GgmlType kv_type, int64_t n_blocks, int64_t max_segments,
                       int64_t attention_window, LayerRange layers)
    : hp_(hp),
      w_(weights),
      n_ctx_(n_ctx),
      max_batch_(max_batch),
      n_blocks_(n_blocks > 0 ? n_blocks : blocks_for(n_ctx)),
      max_segments_(std::clamp<int64_t>(max_segments, 1, max_batch)),
      window_(attention_window),
      first_layer_(resolved(hp, layers).first),
      end_layer_(resolved(hp, layers).end),
      kv_type_(effective_kv_type(hp, kv_type)),
      kv_row_bytes_(cpu::kv_bytes(kv_type_, hp.n_embd_kv())),
      block_bytes_(sz(end_layer_ - first_layer_) * 2 * sz(kBlock) * kv_row_bytes_),
      rope_(rope_params(hp, weights, n_ctx)),
      pool_(n_threads),
      workspace_(max_batch, workspace_cols(hp)) {
  PV_CHECK(attention_window >= 0, "forward: attention window {}", attention_window);
  const int64_t n_q = hp.n_head * hp.head_dim;
  kv_pool_.assign(sz(n_blocks_) * block_bytes_, 0);
  own_table_.resize(sz(std::min(n_blocks_, blocks_for(n_ctx))));
  std::iota(own_table_.begin(), own_table_.end(), 0);
  token_segment_.resize(sz(max_batch));
  token_pos_.resize(sz(max_batch));
  segment_start_.resize(sz(max_segments_ + 1));
  segment_jobs_.resize(sz(max_segments_ + 1));
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
  logits_.resize(sz(max_segments_ * hp.n_vocab));
}

CpuForward::MemoryPlan CpuForward::memory_plan(const Hparams& hp, int64_t max_batch, int n_threads,
                                               GgmlType kv_type, int64_t max_segments,
                                               int64_t n_layers) {
  max_segments = std::clamp<int64_t>(max_segments, 1, max_batch);
  MemoryPlan plan;
  plan.kv_bytes_per_position =
      2 * (n_layers < 0 ? hp.n_layer : n_layers) *
      static_cast<int64_t>(cpu::kv_bytes(effective_kv_type(hp, kv_type), hp.n_embd_kv()));
  const int64_t n_q = hp.n_head * hp.head_dim;
  const int64_t floats =
      max_batch * (3 * hp.n_embd + 2 * n_q + 2 * hp.n_embd_kv() + 2 * hp.n_ff + hp.n_rot) +
      static_cast<int64_t>(std::max(1, n_threads)) *
          static_cast<int64_t>(cpu::attention_scratch_floats(attention_rows(hp), hp.head_dim)) +
      max_segments * hp.n_vocab;
  const int64_t index_bytes = max_batch * static_cast<int64_t>(sizeof(int32_t) + sizeof(int64_t)) +
                              2 * (max_segments + 1) * static_cast<int64_t>(sizeof(int64_t));
  plan.scratch_bytes =
      floats * static_cast<int64_t>(sizeof(float)) + index_bytes +
      static_cast<int64_t>(cpu::MatmulWorkspace::bytes_for(max_batch, workspace_cols(hp)));
  return plan;
}

CpuForward::MemoryPlan CpuForward::allocated() const {
  MemoryPlan plan;
  plan.kv_bytes_per_position =
      2 * (end_layer_ - first_layer_) * static_cast<int64_t>(kv_row_bytes_);
  size_t bytes = workspace_.capacity_bytes();
  for (const auto* v : {&x_, &xn_, &q_, &k_, &v_, &attn_, &gate_, &up_, &proj_, &rope_cos_,
                        &rope_sin_, &attn_scratch_, &logits_}) {
    bytes += v->capacity() * sizeof(float);
  }
  bytes += token_segment_.capacity() * sizeof(int32_t) + token_pos_.capacity() * sizeof(int64_t) +
           (segment_start_.capacity() + segment_jobs_.capacity()) * sizeof(int64_t);
  plan.scratch_bytes = static_cast<int64_t>(bytes);
  return plan;
}

uint64_t CpuForward::kv_cache_bytes() const { return kv_pool_.size(); }

int64_t CpuForward::discard_blocks(std::span<const int32_t> blocks) {
  static const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  int64_t released = 0;
  for (const int32_t block : blocks) {
    PV_CHECK(block >= 0 && block < n_blocks_, "discard_blocks: block {} of {}", block, n_blocks_);
    const auto begin = reinterpret_cast<uintptr_t>(kv_pool_.data() + sz(block) * block_bytes_);
    const uintptr_t first = (begin + page - 1) / page * page;
    const uintptr_t last = (begin + block_bytes_) / page * page;
    if (first < last && madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED) == 0) {
      released += static_cast<int64_t>(last - first);
    }
  }
  return released;
}

uint64_t CpuForward::weight_bytes_per_token() const { return matmul_weight_bytes(w_); }

void CpuForward::matmul(const Matrix& w, const float* x, int64_t n_tokens, float* y) {
  cpu::matmul(w, x, n_tokens, y, pool_, workspace_);
}

Expected<std::span<const float>> CpuForward::eval(std::span<const int32_t> tokens) {
  if (!whole_model()) return only_part_of_model(layers(), hp_.n_layer);
  const int64_t room = std::min(n_ctx_, static_cast<int64_t>(own_table_.size()) * kBlock);
  PV_TRY_VOID(check_eval(tokens, n_past_, room, hp_.n_vocab));
  for (size_t begin = 0; begin < tokens.size(); begin += sz(max_batch_)) {
    const BatchSegment segment{
        tokens.subspan(begin, std::min(sz(max_batch_), tokens.size() - begin)), n_past_,
        own_table_};
    eval_step(std::span<const BatchSegment>(&segment, 1),
              static_cast<int64_t>(segment.tokens.size()));
    n_past_ += static_cast<int64_t>(segment.tokens.size());
  }
  return std::span<const float>(logits_.data(), sz(hp_.n_vocab));
}

Expected<std::span<const float>> CpuForward::eval_batch(std::span<const BatchSegment> segments) {
  if (!whole_model()) return only_part_of_model(layers(), hp_.n_layer);
  return eval_layers(segments, {});
}

Expected<std::span<const float>> CpuForward::eval_layers(std::span<const BatchSegment> segments,
                                                         std::span<const float> hidden) {
  PV_TRY(const int64_t n_tokens,
         check_batch(segments, {n_ctx_, n_blocks_, hp_.n_vocab, max_batch_, max_segments_}));
  const size_t states = sz(n_tokens * hp_.n_embd);
  const size_t want = first_layer_ == 0 ? 0 : states;
  if (hidden.size() != want) {
    return make_error(ErrorCode::kInvalidArgument,
                      "forward: layers from {} take {} hidden-state values for {} tokens, not {}",
                      first_layer_, want, n_tokens, hidden.size());
  }
  eval_step(segments, n_tokens, hidden);
  if (end_layer_ < hp_.n_layer) return std::span<const float>(x_.data(), states);
  const auto n_segments = static_cast<int64_t>(segments.size());
  return std::span<const float>(logits_.data(), sz(n_segments * hp_.n_vocab));
}

uint8_t* CpuForward::kv_row(std::span<const int32_t> table, int64_t il, int64_t pos) {
  return kv_pool_.data() + sz(table[sz(pos / kBlock)]) * block_bytes_ +
         sz(il - first_layer_) * 2 * sz(kBlock) * kv_row_bytes_ + sz(pos % kBlock) * kv_row_bytes_;
}

void CpuForward::eval_step(std::span<const BatchSegment> segments, int64_t n,
                           std::span<const float> hidden) {
  step_ = segments;
  const int64_t half_rot = hp_.n_rot / 2;
  const int64_t group = hp_.n_head / hp_.n_head_kv;
  const int64_t tokens_per_job = attention_rows(hp_) / group;
  int64_t row = 0;
  int64_t jobs = 0;
  for (size_t s = 0; s < segments.size(); ++s) {
    const BatchSegment& segment = segments[s];
    segment_start_[s] = row;
    segment_jobs_[s] = jobs;
    const auto n_s = static_cast<int64_t>(segment.tokens.size());
    for (int64_t t = 0; t < n_s; ++t, ++row) {
      token_segment_[sz(row)] = static_cast<int32_t>(s);
      token_pos_[sz(row)] = segment.first_pos + t;
      if (first_layer_ == 0) {
        ref::matrix_row(w_.token_embd, segment.tokens[sz(t)], x_.data() + row * hp_.n_embd);
      }
      ref::rope_angles(rope_, segment.first_pos + t, rope_cos_.data() + row * half_rot,
                       rope_sin_.data() + row * half_rot);  // shared by every layer and head
    }
    jobs += hp_.n_head_kv * ((n_s + tokens_per_job - 1) / tokens_per_job);
  }
  segment_start_[segments.size()] = row;
  segment_jobs_[segments.size()] = jobs;
  if (first_layer_ > 0) std::copy(hidden.begin(), hidden.end(), x_.begin());
  for (int64_t il = first_layer_; il < end_layer_; ++il) {
    attention(il, n);
    feed_forward(il, n);
  }
  if (end_layer_ < hp_.n_layer) return;  // the next stage takes x_
  // Only each segment's last token's logits are needed.
  const auto n_segments = static_cast<int64_t>(segments.size());
  for (int64_t s = 0; s < n_segments; ++s) {
    const float* last = x_.data() + (segment_start_[sz(s + 1)] - 1) * hp_.n_embd;
    ref::rms_norm(last, w_.output_norm, hp_.n_embd, hp_.rms_eps, xn_.data() + s * hp_.n_embd);
  }
  matmul(w_.output, xn_.data(), n_segments, logits_.data());  // [n_segments, n_vocab]
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
  attend(il);
  matmul(l.wo, attn_.data(), n, proj_.data());  // [n, n_embd]
  for (int64_t i = 0; i < n * hp_.n_embd; ++i) x_[sz(i)] += proj_[sz(i)];
}

// Biases and RoPE on the step's q and k, then k and v into each sequence's blocks at their
// positions.
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
    uint8_t* k_row = kv_row(step_[sz(token_segment_[sz(t)])].block_table, il, token_pos_[sz(t)]);
    cpu::kv_store(kv_type_, k, n_kv, k_row);
    cpu::kv_store(kv_type_, v, n_kv, k_row + sz(kBlock) * kv_row_bytes_);
  }
}

// Causal attention of each segment over its own positions (the last window_ of them, when set).
// Jobs are (segment, KV head, run of tokens): the query heads of a GQA group read each converted
// K/V block together.
void CpuForward::attend(int64_t il) {
  const int64_t hd = hp_.head_dim;
  const int64_t group = hp_.n_head / hp_.n_head_kv;
  const int64_t tokens_per_job = attention_rows(hp_) / group;
  const size_t n_segments = step_.size();
  const int64_t n_jobs = segment_jobs_[n_segments];
  const size_t head_bytes = cpu::kv_bytes(kv_type_, hd);
  const size_t scratch_floats = cpu::attention_scratch_floats(attention_rows(hp_), hd);
  const uint8_t* layer_k = kv_pool_.data() + sz(il - first_layer_) * 2 * sz(kBlock) * kv_row_bytes_;
  std::atomic<int64_t> next{0};
  pool_.run([&](int thread, int) {
    float* scratch = attn_scratch_.data() + sz(thread) * scratch_floats;
    size_t s = 0;
    for (int64_t job = next.fetch_add(1); job < n_jobs; job = next.fetch_add(1)) {
      while (job >= segment_jobs_[s + 1]) ++s;  // jobs are taken in increasing order
      const BatchSegment& segment = step_[s];
      const int64_t local = job - segment_jobs_[s];
      const int64_t g = local % hp_.n_head_kv;
      const int64_t t0 = local / hp_.n_head_kv * tokens_per_job;
      const int64_t row = segment_start_[s] + t0;
      cpu::AttentionJob a;
      a.q = q_.data() + row * hp_.n_head * hd + g * group * hd;
      a.out = attn_.data() + row * hp_.n_head * hd + g * group * hd;
      a.token_stride = hp_.n_head * hd;
      a.group = group;
      a.n_tokens = std::min(tokens_per_job, static_cast<int64_t>(segment.tokens.size()) - t0);
      a.first_pos = segment.first_pos + t0;
      a.k = layer_k + sz(g) * head_bytes;
      a.v = a.k + sz(kBlock) * kv_row_bytes_;
      a.kv_stride = kv_row_bytes_;
      a.block_table = segment.block_table.data();
      a.block_stride = block_bytes_;
      a.kv_type = kv_type_;
      a.head_dim = hd;
      a.scale = 1.0f / std::sqrt(static_cast<float>(hd));
      a.window = window_;
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
