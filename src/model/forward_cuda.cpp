#include "model/forward_cuda.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>

#include "kernels/cuda/ops.h"
#include "model/cuda_status.h"

namespace pensieve {
namespace {

size_t sz(int64_t n) { return static_cast<size_t>(n); }

// Every part of an allocation starts 256-byte aligned (float4 loads, 2-byte quant rows).
constexpr size_t kAlign = 256;
size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

double mib(size_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

size_t matrix_bytes(const Matrix& m) { return m.row_bytes * sz(m.n_rows); }

struct NamedMatrix {
  std::string name;
  const Matrix* m;
};

// The layer range of the options, its end resolved.
LayerRange resolved(const Hparams& hp, LayerRange layers) {
  if (layers.end < 0) layers.end = hp.n_layer;
  return layers;
}

// Every matrix a pass over `layers` reads, named as in the GGUF file (phi3's row ranges by their
// role): the embeddings when the range starts the model, the output matrix when it ends it.
std::vector<NamedMatrix> named_matrices(const ModelWeights& w, LayerRange layers) {
  std::vector<NamedMatrix> out;
  if (layers.first == 0) out.push_back({"token_embd", &w.token_embd});
  if (layers.end == static_cast<int64_t>(w.layers.size())) out.push_back({"output", &w.output});
  for (size_t il = sz(layers.first); il < sz(layers.end); ++il) {
    const LayerWeights& l = w.layers[il];
    const std::string p = "blk." + std::to_string(il) + ".";
    for (const auto& [name, m] :
         {std::pair{"attn_q", &l.wq}, std::pair{"attn_k", &l.wk}, std::pair{"attn_v", &l.wv},
          std::pair{"attn_output", &l.wo}, std::pair{"ffn_gate", &l.ffn_gate},
          std::pair{"ffn_up", &l.ffn_up}, std::pair{"ffn_down", &l.ffn_down}}) {
      out.push_back({p + name, m});
    }
  }
  return out;
}

// Every tensor to upload, by host address and size; the ones several views share (tied
// embeddings) appear once, at their largest size.
std::map<const void*, size_t> host_tensors(const Hparams& hp, const ModelWeights& w,
                                           LayerRange layers) {
  std::map<const void*, size_t> bytes;
  auto add = [&bytes](const void* data, size_t n) {
    if (data != nullptr) bytes[data] = std::max(bytes[data], n);
  };
  for (const NamedMatrix& nm : named_matrices(w, layers)) add(nm.m->data, matrix_bytes(*nm.m));
  const size_t embd = sz(hp.n_embd) * sizeof(float);
  const size_t n_q = sz(hp.n_head * hp.head_dim) * sizeof(float);
  const size_t n_kv = sz(hp.n_embd_kv()) * sizeof(float);
  if (layers.end == hp.n_layer) add(w.output_norm, embd);
  for (int64_t il = layers.first; il < layers.end; ++il) {
    const LayerWeights& l = w.layers[sz(il)];
    add(l.attn_norm, embd);
    add(l.ffn_norm, embd);
    add(l.bq, n_q);
    add(l.bk, n_kv);
    add(l.bv, n_kv);
  }
  return bytes;
}

struct WeightLayout {
  std::map<const void*, size_t> offsets;  // host address -> offset in the device allocation
  std::map<const void*, size_t> bytes;
  size_t freqs_offset = 0;  // RoPE frequencies, [n_rot / 2] doubles
  size_t total = 0;
};

WeightLayout layout_weights(const Hparams& hp, const ModelWeights& w, LayerRange layers) {
  WeightLayout layout;
  layout.bytes = host_tensors(hp, w, layers);
  for (const auto& [data, n] : layout.bytes) {
    layout.offsets[data] = layout.total;
    layout.total += align_up(n);
  }
  layout.freqs_offset = layout.total;
  layout.total += align_up(sz(hp.n_rot / 2) * sizeof(double));
  return layout;
}

// Offsets of the activation buffers in the scratch allocation.
struct ScratchLayout {
  size_t ids, x, xn, q, k, v, attn, gate, up, proj, logits, step, xq_qs, xq_ds, x16, w16;
  size_t batch_ints, greedy, draws, best, exp_sums, split_k, attn_partials, attn_counters, blas;
  size_t total;
};

// The tensor cores' split-k workspace: 8 partial products of up to 64 tokens.
int64_t split_k_floats(const Hparams& hp, int64_t max_batch) {
  const int64_t widest = std::max({hp.n_embd, hp.n_head * hp.head_dim, hp.n_ff});
  return 8 * std::min<int64_t>(max_batch, 64) * widest;
}

int64_t resolved_kv_blocks(int64_t n_ctx, const CudaForwardOptions& o) {
  const int64_t per_sequence =
      (n_ctx + BatchForward::kKvBlockPositions - 1) / BatchForward::kKvBlockPositions;
  return o.kv_blocks > 0 ? o.kv_blocks : per_sequence;
}

// eval_batch's int32 inputs: ids, positions and table offsets per token, the last row of each
// segment, and each segment's block table (at most one sequence of n_ctx).
int64_t batch_ints(int64_t n_ctx, const CudaForwardOptions& o) {
  const int64_t per_sequence =
      (n_ctx + BatchForward::kKvBlockPositions - 1) / BatchForward::kKvBlockPositions;
  return 3 * o.max_batch + o.max_segments + o.max_segments * per_sequence;
}

// Elements of the largest layer matrix that the tensor cores read dequantized.
int64_t dequantized_elements(const ModelWeights& w, LayerRange layers) {
  int64_t most = 0;
  for (int64_t il = layers.first; il < layers.end; ++il) {
    const LayerWeights& l = w.layers[sz(il)];
    for (const Matrix* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_gate, &l.ffn_up, &l.ffn_down}) {
      if (CudaForward::gemm_capable(*m) && !CudaForward::gemm_direct(*m)) {
        most = std::max(most, m->n_rows * m->n_cols);
      }
    }
  }
  return most;
}

ScratchLayout layout_scratch(const Hparams& hp, const ModelWeights& w, int64_t n_ctx,
                             const CudaForwardOptions& o) {
  const int64_t max_batch = o.max_batch;
  size_t at = 0;
  auto take = [&at](int64_t n, size_t element_bytes) {
    const size_t offset = at;
    at += align_up(sz(n) * element_bytes);
    return offset;
  };
  const int64_t n_q = hp.n_head * hp.head_dim;
  ScratchLayout s{};
  s.ids = take(max_batch, sizeof(int32_t));
  s.x = take(max_batch * hp.n_embd, sizeof(float));
  s.xn = take(max_batch * hp.n_embd, sizeof(float));
  s.q = take(max_batch * n_q, sizeof(float));
  s.k = take(max_batch * hp.n_embd_kv(), sizeof(float));
  s.v = take(max_batch * hp.n_embd_kv(), sizeof(float));
  s.attn = take(max_batch * n_q, sizeof(float));
  s.gate = take(max_batch * hp.n_ff, sizeof(float));
  s.up = take(max_batch * hp.n_ff, sizeof(float));
  s.proj = take(max_batch * hp.n_embd, sizeof(float));
  s.logits = take(o.max_segments * hp.n_vocab, sizeof(float));
  s.step = take(2, sizeof(int32_t));
  const int64_t widest = std::max({hp.n_embd, n_q, hp.n_ff});
  // gemm_q8 reads rows in groups of 8 (cuda::q8_token_stride).
  const int64_t q8_rows = cuda::q8_token_stride(
      std::clamp<int64_t>(std::max(o.matvec_max_tokens, o.q8_gemm_max_tokens), 1, max_batch));
  s.xq_qs = take(q8_rows * widest, sizeof(int8_t));
  s.xq_ds = take(q8_rows * widest / 32 * 2, sizeof(float));
  const bool gemm = max_batch >= o.gemm_min_tokens;
  s.x16 = take(gemm ? max_batch * widest : 0, sizeof(uint16_t));
  s.w16 = take(gemm ? dequantized_elements(w, resolved(hp, o.layers)) : 0, sizeof(uint16_t));
  s.batch_ints = take(batch_ints(n_ctx, o), sizeof(int32_t));
  s.greedy = take(o.max_segments, sizeof(int32_t));
  s.draws = take(2 * o.max_segments, sizeof(double));
  s.best = take(2 * o.max_segments * BatchForward::kMaxBestTokens, sizeof(int32_t));
  s.exp_sums = take(o.max_segments, sizeof(double));
  s.split_k = take(gemm ? split_k_floats(hp, max_batch) : 0, sizeof(float));
  s.attn_partials = take(cuda::kAttentionPartialFloats, sizeof(float));
  s.attn_counters = take(cuda::kAttentionSplitBlocks, sizeof(unsigned));
  const bool blas = gemm && o.blas_min_tokens > 0 && max_batch >= o.blas_min_tokens;
  s.blas = take(blas ? static_cast<int64_t>(cuda::kBlasWorkspaceBytes) : 0, 1);
  s.total = at;
  return s;
}

// One layer's K (or V) rows: n_ctx for eval(), the pool's blocks for eval_batch().
size_t kv_layer_bytes(const Hparams& hp, int64_t n_ctx, const CudaForwardOptions& o) {
  const int64_t rows =
      std::max(n_ctx, resolved_kv_blocks(n_ctx, o) * BatchForward::kKvBlockPositions);
  return sz(rows) * sz(hp.n_embd_kv()) * sizeof(uint16_t);
}

// What the kernels cannot compute with, before any device work.
Expected<void> check_supported(const Hparams& hp, const ModelWeights& w, LayerRange layers) {
  if (layers.first < 0 || layers.first >= layers.end || layers.end > hp.n_layer) {
    return make_error(ErrorCode::kInvalidArgument, "cuda: layers [{}, {}) of {}", layers.first,
                      layers.end, hp.n_layer);
  }
  if (hp.head_dim % 2 != 0 || hp.head_dim > cuda::kMaxHeadDim) {
    return make_error(ErrorCode::kUnsupported,
                      "cuda: head size {} is not supported (even sizes up to {})", hp.head_dim,
                      cuda::kMaxHeadDim);
  }
  if (hp.n_rot <= 0 || hp.n_rot % 2 != 0 || hp.n_rot > hp.head_dim) {
    return make_error(ErrorCode::kUnsupported, "cuda: RoPE over {} of {} head dims", hp.n_rot,
                      hp.head_dim);
  }
  for (const NamedMatrix& nm : named_matrices(w, layers)) {
    if (!cuda::matrix_type_supported(nm.m->type)) {
      return make_error(ErrorCode::kUnsupported,
                        "cuda: tensor '{}' has type {}; the CUDA backend computes with F32, F16, "
                        "BF16, Q8_0, Q4_0, Q4_K, Q5_K and Q6_K weights",
                        nm.name, ggml_type_name(nm.m->type));
    }
    if (cuda::device_layout_differs(nm.m->type) && nm.m->row_bytes > cuda::kMaxLayoutRowBytes) {
      return make_error(ErrorCode::kUnsupported,
                        "cuda: tensor '{}' has rows of {} bytes; the CUDA backend takes {} rows "
                        "of at most {} bytes",
                        nm.name, nm.m->row_bytes, ggml_type_name(nm.m->type),
                        cuda::kMaxLayoutRowBytes);
    }
  }
  return {};
}

}  // namespace

CudaForward::MemoryPlan CudaForward::memory_plan(const Hparams& hp, const ModelWeights& weights,
                                                 int64_t n_ctx, const CudaForwardOptions& options) {
  const LayerRange layers = resolved(hp, options.layers);
  MemoryPlan plan;
  plan.weights_bytes = static_cast<int64_t>(layout_weights(hp, weights, layers).total);
  plan.kv_bytes = static_cast<int64_t>(2 * sz(layers.end - layers.first) *
                                       align_up(kv_layer_bytes(hp, n_ctx, options)));
  plan.scratch_bytes = static_cast<int64_t>(layout_scratch(hp, weights, n_ctx, options).total);
  return plan;
}

int64_t CudaForward::kv_block_bytes(const Hparams& hp, int64_t n_layers) {
  return 2 * (n_layers < 0 ? hp.n_layer : n_layers) * BatchForward::kKvBlockPositions *
         hp.n_embd_kv() * static_cast<int64_t>(sizeof(uint16_t));
}

Expected<std::unique_ptr<CudaForward>> CudaForward::create(const Hparams& hp,
                                                           const ModelWeights& weights,
                                                           int64_t n_ctx,
                                                           const CudaForwardOptions& options) {
  if (n_ctx <= 0 || options.max_batch <= 0 || options.attention_window < 0 ||
      options.gemm_min_tokens < 2 || options.matvec_max_tokens < 1 || options.kv_blocks < 0 ||
      options.max_segments <= 0 || options.max_segments > options.max_batch ||
      options.q8_gemm_max_tokens < 0 || options.q8_gemm_max_tokens > cuda::kGemmQ8MaxTokens) {
    return make_error(ErrorCode::kInvalidArgument,
                      "cuda: context {}, batch {}, attention window {}, KV blocks {} and "
                      "sequences per step {} must be positive (the window and blocks may be 0, "
                      "the sequences at most the batch), the tensor core threshold {} at least 2, "
                      "the int8 product's token limit {} in 0..{}",
                      n_ctx, options.max_batch, options.attention_window, options.kv_blocks,
                      options.max_segments, options.gemm_min_tokens, options.q8_gemm_max_tokens,
                      cuda::kGemmQ8MaxTokens);
  }
  PV_TRY_VOID(check_supported(hp, weights, resolved(hp, options.layers)));
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    return make_error(ErrorCode::kUnavailable, "cuda: no usable CUDA device ({})",
                      err != cudaSuccess ? cudaGetErrorString(err) : "none found");
  }
  if (options.device < 0 || options.device >= count) {
    return make_error(ErrorCode::kInvalidArgument, "cuda: device {} does not exist ({} found)",
                      options.device, count);
  }
  PV_TRY_VOID(cuda_ok(cudaSetDevice(options.device), "selecting the device"));
  const MemoryPlan plan = memory_plan(hp, weights, n_ctx, options);
  size_t free_bytes = 0;
  size_t total_bytes = 0;
  PV_TRY_VOID(cuda_ok(cudaMemGetInfo(&free_bytes, &total_bytes), "reading free device memory"));
  if (static_cast<size_t>(plan.total()) > free_bytes) {
    return make_error(ErrorCode::kResourceExhausted,
                      "cuda: the model needs {:.1f} MiB of GPU memory (weights {:.1f}, KV cache "
                      "for {} positions {:.1f}, activations {:.1f}) but device {} has {:.1f} MiB "
                      "free of {:.1f}",
                      mib(sz(plan.total())), mib(sz(plan.weights_bytes)),
                      std::max(n_ctx, resolved_kv_blocks(n_ctx, options) * kKvBlockPositions),
                      mib(sz(plan.kv_bytes)), mib(sz(plan.scratch_bytes)), options.device,
                      mib(free_bytes), mib(total_bytes));
  }
  std::unique_ptr<CudaForward> fwd(new CudaForward(hp, n_ctx, options));
  PV_TRY_VOID(fwd->allocate(weights));
  return fwd;
}

CudaForward::CudaForward(const Hparams& hp, int64_t n_ctx, const CudaForwardOptions& options)
    : hp_(hp),
      n_ctx_(n_ctx),
      max_batch_(options.max_batch),
      window_(options.attention_window),
      device_(options.device),
      gemm_min_tokens_(options.gemm_min_tokens),
      matvec_max_tokens_(options.matvec_max_tokens),
      q8_gemm_max_tokens_(options.q8_gemm_max_tokens),
      decode_graph_(options.decode_graph),
      blas_min_tokens_(options.blas_min_tokens),
      kv_blocks_(resolved_kv_blocks(n_ctx, options)),
      max_segments_(options.max_segments),
      first_layer_(resolved(hp, options.layers).first),
      end_layer_(resolved(hp, options.layers).end) {}

CudaForward::~CudaForward() {
  cudaSetDevice(device_);
  if (stream_ != nullptr) cudaStreamSynchronize(stream_);
  blas_.reset();
  drop_graphs();
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
  cudaFreeHost(step_host_);
  cudaFreeHost(batch_host_);
  cudaFreeHost(greedy_host_);
  cudaFreeHost(draws_host_);
  cudaFreeHost(best_host_);
  cudaFreeHost(exp_sums_host_);
  cudaFreeHost(logits_);
  cudaFreeHost(hidden_host_);
  cudaFree(weights_mem_);
  cudaFree(kv_mem_);
  cudaFree(scratch_mem_);
}

// Allocates the KV cache and the scratch, then the weights (upload_weights).
Expected<void> CudaForward::allocate(const ModelWeights& w) {
  const WeightLayout layout = layout_weights(hp_, w, layers());
  CudaForwardOptions o;
  o.layers = layers();
  o.max_batch = max_batch_;
  o.gemm_min_tokens = gemm_min_tokens_;
  o.matvec_max_tokens = matvec_max_tokens_;
  o.q8_gemm_max_tokens = q8_gemm_max_tokens_;
  o.blas_min_tokens = blas_min_tokens_;
  o.kv_blocks = kv_blocks_;
  o.max_segments = max_segments_;
  const ScratchLayout scratch = layout_scratch(hp_, w, n_ctx_, o);
  kv_layer_bytes_ = align_up(kv_layer_bytes(hp_, n_ctx_, o));
  const size_t kv_total = 2 * sz(end_layer_ - first_layer_) * kv_layer_bytes_;
  const char* kAlloc = "allocating device memory";
  PV_TRY_VOID(cuda_ok(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "new stream"));
  PV_TRY_VOID(cuda_ok(cudaMalloc(reinterpret_cast<void**>(&kv_mem_), kv_total), kAlloc));
  PV_TRY_VOID(cuda_ok(cudaMalloc(reinterpret_cast<void**>(&scratch_mem_), scratch.total), kAlloc));
  const char* kPin = "allocating pinned host memory";
  PV_TRY_VOID(
      cuda_ok(cudaMallocHost(reinterpret_cast<void**>(&step_host_), 2 * sizeof(int32_t)), kPin));
  PV_TRY_VOID(cuda_ok(cudaMallocHost(reinterpret_cast<void**>(&batch_host_),
                                     sz(batch_ints(n_ctx_, o)) * sizeof(int32_t)),
                      kPin));
  PV_TRY_VOID(cuda_ok(
      cudaMallocHost(reinterpret_cast<void**>(&greedy_host_), sz(max_segments_) * sizeof(int32_t)),
      kPin));
  PV_TRY_VOID(cuda_ok(cudaMallocHost(reinterpret_cast<void**>(&draws_host_),
                                     sz(2 * max_segments_) * sizeof(double)),
                      kPin));
  PV_TRY_VOID(cuda_ok(cudaMallocHost(reinterpret_cast<void**>(&best_host_),
                                     sz(max_segments_ * kMaxBestTokens) * sizeof(TokenLogit)),
                      kPin));
  PV_TRY_VOID(cuda_ok(
      cudaMallocHost(reinterpret_cast<void**>(&exp_sums_host_), sz(max_segments_) * sizeof(double)),
      kPin));
  PV_TRY_VOID(cuda_ok(cudaMallocHost(reinterpret_cast<void**>(&logits_),
                                     sz(max_segments_ * hp_.n_vocab) * sizeof(float)),
                      kPin));
  if (end_layer_ < hp_.n_layer) {
    PV_TRY_VOID(cuda_ok(cudaMallocHost(reinterpret_cast<void**>(&hidden_host_),
                                       sz(max_batch_ * hp_.n_embd) * sizeof(float)),
                        kPin));
  }
  allocated_ = {static_cast<int64_t>(layout.total), static_cast<int64_t>(kv_total),
                static_cast<int64_t>(scratch.total)};
  PV_TRY_VOID(cuda_ok(cudaMemset(kv_mem_, 0, kv_total), "clearing the KV cache"));
  PV_TRY_VOID(upload_weights(w));

  auto f32 = [&](size_t offset) { return reinterpret_cast<float*>(scratch_mem_ + offset); };
  ids_ = reinterpret_cast<int32_t*>(scratch_mem_ + scratch.ids);
  x_ = f32(scratch.x);
  xn_ = f32(scratch.xn);
  q_ = f32(scratch.q);
  k_ = f32(scratch.k);
  v_ = f32(scratch.v);
  attn_ = f32(scratch.attn);
  gate_ = f32(scratch.gate);
  up_ = f32(scratch.up);
  proj_ = f32(scratch.proj);
  logits_dev_ = f32(scratch.logits);
  step_ = reinterpret_cast<int32_t*>(scratch_mem_ + scratch.step);
  xq_qs_ = reinterpret_cast<int8_t*>(scratch_mem_ + scratch.xq_qs);
  xq_ds_ = f32(scratch.xq_ds);
  x16_ = reinterpret_cast<uint16_t*>(scratch_mem_ + scratch.x16);
  w16_ = reinterpret_cast<uint16_t*>(scratch_mem_ + scratch.w16);
  batch_ints_ = reinterpret_cast<int32_t*>(scratch_mem_ + scratch.batch_ints);
  greedy_dev_ = reinterpret_cast<int32_t*>(scratch_mem_ + scratch.greedy);
  draws_dev_ = reinterpret_cast<double*>(scratch_mem_ + scratch.draws);
  best_dev_ = reinterpret_cast<int32_t*>(scratch_mem_ + scratch.best);
  exp_sums_dev_ = reinterpret_cast<double*>(scratch_mem_ + scratch.exp_sums);
  split_k_ = f32(scratch.split_k);
  attn_partials_ = f32(scratch.attn_partials);
  attn_counters_ = reinterpret_cast<unsigned*>(scratch_mem_ + scratch.attn_counters);
  PV_TRY_VOID(cuda_ok(cudaMemsetAsync(attn_counters_, 0,
                                      sz(cuda::kAttentionSplitBlocks) * sizeof(unsigned), stream_),
                      "clearing the attention counters"));
  split_k_floats_ = max_batch_ >= gemm_min_tokens_ ? split_k_floats(hp_, max_batch_) : 0;
  if (scratch.total - scratch.blas >= cuda::kBlasWorkspaceBytes) {  // the workspace was laid out
    blas_workspace_ = scratch_mem_ + scratch.blas;
    blas_ = cuda::Blas::create(stream_, blas_workspace_, &blas_note_);
    if (blas_ != nullptr) blas_note_ = "cuBLAS " + std::to_string(blas_->version());
  } else {
    blas_note_ = "not used for these settings";
  }
  return {};
}

// Allocates the weights' region, uploads them and points the device views at them.
Expected<void> CudaForward::upload_weights(const ModelWeights& w) {
  const WeightLayout layout = layout_weights(hp_, w, layers());
  PV_TRY_VOID(cuda_ok(cudaMalloc(reinterpret_cast<void**>(&weights_mem_), layout.total),
                      "allocating device memory for the weights"));
  for (const auto& [data, bytes] : layout.bytes) {
    PV_TRY_VOID(cuda_ok(
        cudaMemcpy(weights_mem_ + layout.offsets.at(data), data, bytes, cudaMemcpyHostToDevice),
        "uploading weights"));
  }
  // Q8_0 and Q4_0 rows into the device layout, each uploaded tensor once.
  std::set<const void*> rearranged;
  for (const NamedMatrix& nm : named_matrices(w, layers())) {
    const Matrix& m = *nm.m;
    if (m.data == nullptr || !cuda::device_layout_differs(m.type)) continue;
    if (!rearranged.insert(m.data).second) continue;
    const size_t n_rows = layout.bytes.at(m.data) / m.row_bytes;
    cuda::to_device_layout(m.type, weights_mem_ + layout.offsets.at(m.data), m.row_bytes,
                           static_cast<int64_t>(n_rows), m.n_cols, stream_);
  }
  PV_TRY_VOID(cuda_ok(cudaGetLastError(), "rearranging the weights"));
  PV_TRY_VOID(cuda_ok(cudaStreamSynchronize(stream_), "rearranging the weights"));
  std::vector<double> freqs(sz(hp_.n_rot / 2));
  const ref::RopeParams rope = rope_params(hp_, w, n_ctx_);
  cuda::rope_frequencies(rope.n_rot, rope.freq_base, rope.freq_scale, rope.freq_factors,
                         freqs.data());
  rope_attn_factor_ = rope.attn_factor;
  PV_TRY_VOID(cuda_ok(cudaMemcpy(weights_mem_ + layout.freqs_offset, freqs.data(),
                                 freqs.size() * sizeof(double), cudaMemcpyHostToDevice),
                      "uploading RoPE frequencies"));

  // Tensors outside the range (the embeddings past layer 0, the output before the end) have no
  // device copy.
  auto device = [&](const void* host) -> const uint8_t* {
    const auto at = layout.offsets.find(host);
    return at == layout.offsets.end() ? nullptr : weights_mem_ + at->second;
  };
  auto vec = [&](const float* host) { return reinterpret_cast<const float*>(device(host)); };
  auto mat = [&](const Matrix& m) {
    return Matrix{m.type, m.n_cols, m.n_rows, m.row_bytes, device(m.data)};
  };
  token_embd_ = mat(w.token_embd);
  output_ = mat(w.output);
  output_norm_ = vec(w.output_norm);
  rope_freqs_ = reinterpret_cast<const double*>(weights_mem_ + layout.freqs_offset);
  layers_.clear();
  for (int64_t il = first_layer_; il < end_layer_; ++il) {
    const LayerWeights& l = w.layers[sz(il)];
    layers_.push_back({vec(l.attn_norm), mat(l.wq), mat(l.wk), mat(l.wv), vec(l.bq), vec(l.bk),
                       vec(l.bv), mat(l.wo), vec(l.ffn_norm), mat(l.ffn_gate), mat(l.ffn_up),
                       mat(l.ffn_down)});
  }
  return {};
}

Expected<void> CudaForward::release_weights() {
  if (weights_mem_ == nullptr) return {};
  PV_TRY_VOID(cuda_ok(cudaSetDevice(device_), "selecting the device"));
  PV_TRY_VOID(cuda_ok(cudaStreamSynchronize(stream_), "finishing the last step"));
  drop_graphs();  // they hold the old weight addresses
  const cudaError_t freed = cudaFree(weights_mem_);
  weights_mem_ = nullptr;
  return cuda_ok(freed, "freeing the weights");
}

Expected<void> CudaForward::restore_weights(const ModelWeights& weights) {
  if (weights_mem_ != nullptr) return {};
  PV_TRY_VOID(cuda_ok(cudaSetDevice(device_), "selecting the device"));
  size_t free_bytes = 0;
  size_t total_bytes = 0;
  PV_TRY_VOID(cuda_ok(cudaMemGetInfo(&free_bytes, &total_bytes), "reading free device memory"));
  if (static_cast<size_t>(allocated_.weights_bytes) > free_bytes) {
    return make_error(ErrorCode::kResourceExhausted,
                      "cuda: the weights need {:.1f} MiB of GPU memory again but {:.1f} MiB is "
                      "free now",
                      mib(sz(allocated_.weights_bytes)), mib(free_bytes));
  }
  return upload_weights(weights);
}

}  // namespace pensieve
