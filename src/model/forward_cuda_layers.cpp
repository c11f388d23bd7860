// CudaForward's passes: a prompt chunk of n tokens layer by layer (tensor cores for long
// chunks), the step of one token or a few (a batch's decode tokens) with fused kernels (norm and
// 8-bit quantization in one, q/k/v in one launch, for one token the RoPE and cache write inside
// attention and, when q/k/v read x itself, the end of the attention norm there too, the residual
// added by the projections, SwiGLU inside the gate/up product), and the logits of one row.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <initializer_list>

#include "core/check.h"
#include "kernels/cuda/ops.h"
#include "model/forward_cuda.h"

namespace pensieve {
namespace {

size_t sz(int64_t n) { return static_cast<size_t>(n); }

// Prompt attention takes the tensor cores from this many tokens on.
constexpr int64_t kAttentionTcMinTokens = 16;

bool quantized(const Matrix& w) { return cuda::matvec_reads_q8(w.type); }

bool same_shape_group(std::initializer_list<const Matrix*> w) {
  for (const Matrix* m : w) {
    if (m->type != (*w.begin())->type || m->n_cols != (*w.begin())->n_cols) return false;
  }
  return true;
}

}  // namespace

bool CudaForward::gemm_capable(const Matrix& w) {
  return w.n_cols % 8 == 0 && (w.type == GgmlType::kF16 || cuda::dequantize_f16_supported(w.type));
}

bool CudaForward::gemm_direct(const Matrix& w) {
  return w.type == GgmlType::kF16 && w.n_cols % 8 == 0;
}

// From the embeddings of ids, or past layer 0 from the hidden states already in x_.
void CudaForward::run_chunk(const int32_t* ids, int64_t n, const KvPlace& place) {
  if (first_layer_ == 0) cuda::get_rows(token_embd_, ids, n, x_, stream_);  // x: [n, n_embd]
  bool weighted = false;  // xn_ holds x_ times the attention norm's weight (decode_layer)
  for (int64_t il = first_layer_; il < end_layer_; ++il) {
    if (n <= matvec_max_tokens_) {
      weighted = decode_layer(il, n, place, weighted);
    } else {
      prompt_layer(il, n, place);
    }
  }
}

// RoPE, the cache write and attention for q_, k_, v_ into attn_ (and with out_q8 its 8-bit codes
// into xq_). With norm_ends (one token), q_, k_ and v_ are the products of x_ times the norm's
// weight, and the attention kernel ends the norm.
void CudaForward::attention_core(int64_t il, int64_t n, const KvPlace& place, bool out_q8,
                                 bool norm_ends) {
  const DeviceLayer& l = layer(il);
  const size_t slot = sz(il - first_layer_);  // the layer's place in the cache
  auto* k_cache = reinterpret_cast<uint16_t*>(kv_mem_ + slot * 2 * kv_layer_bytes_);
  auto* v_cache = reinterpret_cast<uint16_t*>(kv_mem_ + (slot * 2 + 1) * kv_layer_bytes_);
  cuda::RopeKvJob rope;
  rope.q = q_;
  rope.k = k_;
  rope.v = v_;
  rope.bq = l.bq;
  rope.bk = l.bk;
  rope.bv = l.bv;
  rope.k_cache = k_cache;
  rope.v_cache = v_cache;
  const cuda::PagedKv paged{place.positions, place.table_offsets, place.block_tables,
                            kKvBlockPositions};
  rope.n_tokens = n;
  rope.first_pos = place.first_pos;
  rope.first_pos_dev = place.first_pos_dev;
  rope.paged = paged;
  rope.n_head = hp_.n_head;
  rope.n_head_kv = hp_.n_head_kv;
  rope.head_dim = hp_.head_dim;
  rope.n_rot = hp_.n_rot;
  rope.half_split = hp_.rope_style == ref::RopeStyle::kHalfSplit;
  rope.freqs = rope_freqs_;
  rope.attn_factor = rope_attn_factor_;
  cuda::AttentionJob a;
  // One token: the attention kernel does the RoPE and the cache write itself.
  a.fuse_rope = n == 1;
  if (a.fuse_rope) {
    a.rope = rope;
    if (norm_ends) a.norm = {x_, hp_.n_embd, hp_.rms_eps};
  } else {
    cuda::rope_store_kv(rope, stream_);
  }
  a.q = q_;
  a.out = attn_;  // [n, n_head * head_dim]
  a.k_cache = k_cache;
  a.v_cache = v_cache;
  a.n_tokens = n;
  a.first_pos = place.first_pos;
  a.first_pos_dev = place.first_pos_dev;
  a.paged = paged;
  a.n_head = hp_.n_head;
  a.n_head_kv = hp_.n_head_kv;
  a.head_dim = hp_.head_dim;
  a.scale = 1.0f / std::sqrt(static_cast<float>(hp_.head_dim));
  a.window = window_;
  a.tensor_cores = n >= std::max<int64_t>(gemm_min_tokens_, kAttentionTcMinTokens);
  a.partials = attn_partials_;
  a.counters = attn_counters_;
  if (out_q8) a.out_q8 = {xq_qs_, reinterpret_cast<float2*>(xq_ds_)};
  cuda::attention(a, stream_);
}

// y = x W^T for n tokens, or y += x W^T. Quantized W on the int8 tensor cores for steps of up
// to q8_gemm_max_tokens_ tokens. Else on the F16 tensor cores when the chunk is long enough and W
// allows it: through cuBLAS from blas_min_tokens_ on, when it is there, with W as is or
// dequantized into w16_ first; otherwise quantized W is decoded inside the tiles.
void CudaForward::prompt_matmul(const Matrix& w, ProductInput& in, int64_t n, float* y,
                                bool accumulate) {
  if (n <= q8_gemm_max_tokens_ && cuda::gemm_q8_supported(w)) {
    const cuda::Q8Act xq{xq_qs_, reinterpret_cast<float2*>(xq_ds_)};
    if (!in.q8) {
      cuda::quantize_q8_by_block(in.x, n, in.width, xq, stream_);
      in.q8 = true;
    }
    cuda::gemm_q8(w, xq, n, y, accumulate, stream_);
    return;
  }
  // From gemm_min_tokens_ on, max_batch_ is too: the F16 scratch exists.
  if (n >= gemm_min_tokens_ && gemm_capable(w)) {
    if (in.x16 == nullptr) {
      cuda::to_f16(in.x, n * in.width, x16_, stream_);
      in.x16 = x16_;
    }
    const bool blas = blas_ != nullptr && n >= blas_min_tokens_;
    if (!blas && cuda::gemm_quantized_supported(w.type)) {
      cuda::gemm_quantized(in.x16, w, n, y, accumulate, stream_, split_k_, split_k_floats_);
      return;
    }
    const uint16_t* b = reinterpret_cast<const uint16_t*>(w.data);
    if (!gemm_direct(w)) {
      cuda::dequantize_f16(w, w16_, stream_);
      b = w16_;
    }
    if (blas && blas_->gemm_f16(in.x16, b, n, w.n_rows, w.n_cols, y, accumulate)) return;
    cuda::gemm_f16(in.x16, b, n, w.n_rows, w.n_cols, y, accumulate, stream_, split_k_,
                   split_k_floats_);
    return;
  }
  if (!accumulate) {
    cuda::matmul(w, in.x, n, y, stream_);
    return;
  }
  cuda::matmul(w, in.x, n, proj_, stream_);
  cuda::add(y, proj_, n * w.n_rows, y, stream_);
}

void CudaForward::prompt_layer(int64_t il, int64_t n, const KvPlace& place) {
  const DeviceLayer& l = layer(il);
  const int64_t n_q = hp_.n_head * hp_.head_dim;
  cuda::rms_norm(x_, l.attn_norm, n, hp_.n_embd, hp_.rms_eps, xn_, stream_);
  ProductInput xn{xn_, hp_.n_embd};
  prompt_matmul(l.wq, xn, n, q_, false);  // [n, n_head * head_dim]
  prompt_matmul(l.wk, xn, n, k_, false);  // [n, n_embd_kv]
  prompt_matmul(l.wv, xn, n, v_, false);  // [n, n_embd_kv]
  attention_core(il, n, place);
  ProductInput attn{attn_, n_q};
  prompt_matmul(l.wo, attn, n, x_, true);  // x += [n, n_embd]

  cuda::rms_norm(x_, l.ffn_norm, n, hp_.n_embd, hp_.rms_eps, xn_, stream_);
  ProductInput ffn{xn_, hp_.n_embd};
  prompt_matmul(l.ffn_gate, ffn, n, gate_, false);  // [n, n_ff]
  prompt_matmul(l.ffn_up, ffn, n, up_, false);      // [n, n_ff]
  cuda::swiglu(gate_, up_, n * hp_.n_ff, gate_, stream_);
  ProductInput gate{gate_, hp_.n_ff};
  prompt_matmul(l.ffn_down, gate, n, x_, true);  // x += [n, n_embd]
}

void CudaForward::norm_rows(const float* x, const float* weight, int64_t n) {
  const cuda::Q8Act xq{xq_qs_, reinterpret_cast<float2*>(xq_ds_)};
  if (n == 1 && hp_.n_embd % 32 == 0 && hp_.n_embd <= cuda::kRmsNormQ8MaxWidth) {
    cuda::rms_norm_q8(x, weight, hp_.n_embd, hp_.rms_eps, xn_, xq, stream_);
    return;
  }
  cuda::rms_norm(x, weight, n, hp_.n_embd, hp_.rms_eps, xn_, stream_);
  if (hp_.n_embd % 32 == 0) cuda::quantize_q8(xn_, n, hp_.n_embd, xq, stream_);
}

namespace {

// One launch for each set of matrices of one type and width (q and k share one when v is of
// another type). x is quantized already when quantized weights read it. SwiGLU's gate and up are
// one set. A residual product (one matrix) can also write its new values times norm_weight.
void matvec_group(std::initializer_list<const Matrix*> w, std::initializer_list<float*> y,
                  const float* x, cuda::Q8Act xq, cuda::MatvecOut out, int64_t n_tokens,
                  cudaStream_t stream, const float* norm_weight = nullptr,
                  float* weighted = nullptr) {
  const size_t n = w.size();
  PV_CHECK(n <= cuda::kMaxMatvecs, "{} matrices for one matvec group", n);
  bool launched[cuda::kMaxMatvecs] = {};
  for (size_t i = 0; i < n; ++i) {
    if (launched[i]) continue;
    cuda::MatvecJob job;
    job.x = x;
    job.xq = xq;
    job.out = out;
    job.n_tokens = n_tokens;
    job.norm_out.weight = norm_weight;
    job.norm_out.weighted = weighted;
    job.n_w = 0;
    const Matrix* first = w.begin()[i];
    for (size_t j = i; j < n; ++j) {
      const Matrix* m = w.begin()[j];
      if (launched[j] || m->type != first->type || m->n_cols != first->n_cols) continue;
      job.w[job.n_w] = m;
      job.y[job.n_w] = y.begin()[j];
      ++job.n_w;
      launched[j] = true;
    }
    cuda::matvec(job, stream);
  }
}

}  // namespace

// One token's layer can leave its attention norm to the attention kernel when q, k and v read x
// itself: the products read x_ times the norm's weight, which the layer before wrote into xn_
// with its residual (weighted); returns whether it did so for the next layer.
bool CudaForward::decode_layer(int64_t il, int64_t n, const KvPlace& place, bool weighted) {
  const DeviceLayer& l = layer(il);
  const cuda::Q8Act xq{xq_qs_, reinterpret_cast<float2*>(xq_ds_)};
  const int64_t n_q = hp_.n_head * hp_.head_dim;
  if (!weighted) norm_rows(x_, l.attn_norm, n);
  matvec_group({&l.wq, &l.wk, &l.wv}, {q_, k_, v_}, xn_, xq, cuda::MatvecOut::kStore, n, stream_);
  // The attention kernel writes its output's 8-bit codes for a quantized wo itself.
  const bool wo_q8 = quantized(l.wo);
  const bool attn_q8 = wo_q8 && hp_.head_dim % 32 == 0;
  attention_core(il, n, place, attn_q8, weighted);
  if (wo_q8 && !attn_q8) cuda::quantize_q8(attn_, n, n_q, xq, stream_);
  matvec_group({&l.wo}, {x_}, attn_, xq, cuda::MatvecOut::kAdd, n, stream_);  // x += wo attn

  norm_rows(x_, l.ffn_norm, n);
  if (same_shape_group({&l.ffn_gate, &l.ffn_up}) && l.ffn_gate.n_rows == l.ffn_up.n_rows) {
    matvec_group({&l.ffn_gate, &l.ffn_up}, {gate_, nullptr}, xn_, xq, cuda::MatvecOut::kSwiglu, n,
                 stream_);
  } else {
    matvec_group({&l.ffn_gate, &l.ffn_up}, {gate_, up_}, xn_, xq, cuda::MatvecOut::kStore, n,
                 stream_);
    cuda::swiglu(gate_, up_, n * hp_.n_ff, gate_, stream_);
  }
  if (quantized(l.ffn_down)) cuda::quantize_q8(gate_, n, hp_.n_ff, xq, stream_);
  // x += down, and for the next layer x times its attention norm's weight when that can end in
  // its attention kernel.
  const DeviceLayer* next = il + 1 < end_layer_ ? &layer(il + 1) : nullptr;
  const bool next_weighted = n == 1 && next != nullptr && !quantized(next->wq) &&
                             !quantized(next->wk) && !quantized(next->wv);
  matvec_group({&l.ffn_down}, {x_}, gate_, xq, cuda::MatvecOut::kAdd, n, stream_,
               next_weighted ? next->attn_norm : nullptr, next_weighted ? xn_ : nullptr);
  return next_weighted;
}

void CudaForward::logits_of(const float* x_row) {
  norm_rows(x_row, output_norm_, 1);
  matvec_group({&output_}, {logits_dev_}, xn_, {xq_qs_, reinterpret_cast<float2*>(xq_ds_)},
               cuda::MatvecOut::kStore, 1, stream_);  // [n_vocab]
}

void CudaForward::logits_of_rows(const int32_t* rows, int64_t n) {
  // x_ as a matrix of F32 rows: gather the wanted ones into proj_, [n, n_embd].
  const Matrix x_rows{GgmlType::kF32, hp_.n_embd, max_batch_, sz(hp_.n_embd) * sizeof(float),
                      reinterpret_cast<const uint8_t*>(x_)};
  cuda::get_rows(x_rows, rows, n, proj_, stream_);
  // Groups of rows that read the output matrix once: matvec_max_tokens of them with the
  // one-token product, or up to q8_gemm_max_tokens_ on the int8 tensor cores.
  const cuda::Q8Act xq{xq_qs_, reinterpret_cast<float2*>(xq_ds_)};
  const bool int8 = n > matvec_max_tokens_ && q8_gemm_max_tokens_ > matvec_max_tokens_ &&
                    cuda::gemm_q8_supported(output_);
  const int64_t group = int8 ? q8_gemm_max_tokens_ : matvec_max_tokens_;
  for (int64_t first = 0; first < n; first += group) {
    const int64_t count = std::min(group, n - first);
    float* logits = logits_dev_ + first * hp_.n_vocab;  // [count, n_vocab]
    if (int8) {
      cuda::rms_norm(proj_ + first * hp_.n_embd, output_norm_, count, hp_.n_embd, hp_.rms_eps, xn_,
                     stream_);
      cuda::quantize_q8_by_block(xn_, count, hp_.n_embd, xq, stream_);
      cuda::gemm_q8(output_, xq, count, logits, false, stream_);
    } else {
      norm_rows(proj_ + first * hp_.n_embd, output_norm_, count);
      matvec_group({&output_}, {logits}, xn_, xq, cuda::MatvecOut::kStore, count, stream_);
    }
  }
}

}  // namespace pensieve
