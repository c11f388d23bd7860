// The CUDA kernels of the forward pass, one op per .cu file. Every pointer is a device pointer
// (Matrix::data too); each op is enqueued on `stream` and returns at once, so launch and
// execution errors surface at the caller's next synchronization.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <string>

#include "kernels/kernels.h"

namespace pensieve::cuda {

// Weight types matmul(), matvec() and get_rows() read: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K
// and Q6_K.
bool matrix_type_supported(GgmlType type);
// Whether matvec() multiplies rows of this type with the 8-bit codes of x (MatvecJob::xq) rather
// than x itself.
bool matvec_reads_q8(GgmlType type);
// Whether dequantize_f16() reads rows of this type (the tensor cores then multiply them).
bool dequantize_f16_supported(GgmlType type);

// The device layout of weight rows. Q8_0 and Q4_0 rows hold the codes of every block first (32
// or 16 bytes a block), then every block's F16 scale, in the GGUF row's size: so a row that
// starts 16-byte aligned has every block's codes 16-byte aligned. Every other type keeps its GGUF
// layout. Every op that takes a Matrix reads it in this layout.
bool device_layout_differs(GgmlType type);
// Rearranges n_rows GGUF rows of `type` at `data` (device memory) into the device layout, in
// place. Rows of Q8_0 and Q4_0 must start 2-byte aligned and take at most kMaxLayoutRowBytes.
inline constexpr size_t kMaxLayoutRowBytes = 96 * 1024;
void to_device_layout(GgmlType type, uint8_t* data, size_t row_bytes, int64_t n_rows,
                      int64_t n_cols, cudaStream_t stream);

// out[r] = x[r] / sqrt(mean(x[r]^2) + eps) * weight                    x, out: [n_rows, n]
void rms_norm(const float* x, const float* weight, int64_t n_rows, int64_t n, float eps, float* out,
              cudaStream_t stream);

// out[i] = a[i] + b[i]; out may be a or b.                                  a, b, out: [n]
void add(const float* a, const float* b, int64_t n, float* out, cudaStream_t stream);

// out[i] = silu(gate[i]) * up[i]; out may be gate or up.                gate, up, out: [n]
void swiglu(const float* gate, const float* up, int64_t n, float* out, cudaStream_t stream);

// out[r] = the index of row r's largest value, the lowest of equal ones; -1 if the row holds a
// value that is not finite.                                     x: [n_rows, n_cols]; out: [n_rows]
void argmax_rows(const float* x, int64_t n_rows, int64_t n_cols, int32_t* out, cudaStream_t stream);

// out[r] = row r's token as draws[2r] (a temperature) and draws[2r + 1] (a uniform in [0, 1))
// say: argmax_rows's pick at temperature 0, else the draw sampling::draw_token makes (up to the
// last bits of the exponentials; -infinity is probability 0, NaN and +infinity give -1).
//                                  x: [n_rows, n_cols]; draws: [n_rows, 2]; out: [n_rows]
void draw_rows(const float* x, int64_t n_rows, int64_t n_cols, const double* draws, int32_t* out,
               cudaStream_t stream);

// Row r's k best values as (index, value bits) pairs, the largest first, the lower index first
// among equal values (sampling::best_tokens); index -1 first when the row holds a value that is
// not finite. k in [1, min(kBestRowsMax, n_cols)].   x: [n_rows, n_cols]; out: [n_rows, k, 2]
// With exp_sums ([n_rows], or null), also each row's sum of exp(value - its largest value), the
// float exponentials added in double (Candidates::softmax's denominator, in another order); 0
// for a row that is not finite.
inline constexpr int64_t kBestRowsMax = 256;
void best_rows(const float* x, int64_t n_rows, int64_t n_cols, int64_t k, int32_t* out,
               double* exp_sums, cudaStream_t stream);

// Embedding lookup: row ids[t] of w as F32 for each t.            ids: [n_ids], out: [n_ids,
// w.n_cols] Ids must lie in [0, w.n_rows). Quantized rows must start 2-byte aligned.
void get_rows(const Matrix& w, const int32_t* ids, int64_t n_ids, float* out, cudaStream_t stream);

// y[t] = W x[t] for every token (y = x W^T), F32 accumulation of the dequantized weights.
// x: [n_tokens, w.n_cols], 16-byte aligned; y: [n_tokens, w.n_rows]. Quantized rows must start
// 2-byte aligned (every row of a GGUF tensor does). Tokens go through in tiles of kMatmulTile;
// each weight row is read once per tile.
inline constexpr int64_t kMatmulTile = 8;
void matmul(const Matrix& w, const float* x, int64_t n_tokens, float* y, cudaStream_t stream);

// Each RoPE pair's angle per position, as ref::rope_angles computes it:
// base^(-2i/n_rot) * freq_scale / factors[i] (factors may be null: all 1).  freqs: [n_rot / 2]
void rope_frequencies(int64_t n_rot, float freq_base, float freq_scale, const float* factors,
                      double* freqs);

// Where tokens sit in a paged cache: token t is at position positions[t] of its sequence, whose
// position p is cache row table[p / block_positions] * block_positions + p % block_positions,
// table = block_tables + table_offsets[t]. All device memory.
struct PagedKv {
  const int32_t* positions = nullptr;      // [n_tokens]
  const int32_t* table_offsets = nullptr;  // [n_tokens]
  const int32_t* block_tables = nullptr;
  int64_t block_positions = 0;
};
// Per token t at position first_pos + t (or as `paged` says): adds the biases (when set) to q, k
// and v, rotates the first n_rot dims of every q and k head (ref::rope_rotate, with cos and sin of
// pos * freqs[i] times attn_factor), writes q back in place and k, v into the F16 cache rows
// first_pos + t.
struct RopeKvJob {
  float* q = nullptr;           // [n_tokens, n_head * head_dim]
  const float* k = nullptr;     // [n_tokens, n_head_kv * head_dim]
  const float* v = nullptr;     // [n_tokens, n_head_kv * head_dim]
  const float* bq = nullptr;    // [n_head * head_dim] or null
  const float* bk = nullptr;    // [n_head_kv * head_dim] or null
  const float* bv = nullptr;    // [n_head_kv * head_dim] or null
  uint16_t* k_cache = nullptr;  // [n_ctx, n_head_kv * head_dim] F16 bits, one layer
  uint16_t* v_cache = nullptr;  // [n_ctx, n_head_kv * head_dim]
  int64_t n_tokens = 0;
  int64_t first_pos = 0;
  const int32_t* first_pos_dev = nullptr;  // device; when set, added to first_pos (graph replays)
  PagedKv paged;  // when paged.positions is set, positions and cache rows come from it
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;
  int64_t n_rot = 0;              // even, <= head_dim
  bool half_split = false;        // pairs (i, i + n_rot/2) (neox) instead of (2i, 2i+1)
  const double* freqs = nullptr;  // [n_rot / 2], rope_frequencies()
  float attn_factor = 1.0f;
};
void rope_store_kv(const RopeKvJob& job, cudaStream_t stream);

// Activations quantized to 8 bits in blocks of 32, as Q8_0 quantizes (d = max|x| / 127, codes
// rounded to nearest), with each block's scale and scale * sum of codes apart from the codes.
struct Q8Act {
  int8_t* qs = nullptr;  // [n_rows, n] codes, 16-byte aligned
  float2* ds = nullptr;  // [n_rows, n / 32] (d, d * sum(qs))
};

// Causal attention with an online softmax, one query row per (token, head): token t at position
// p = first_pos + t (or paged.positions[t]) attends positions [0, p] of its sequence, or with a
// window W > 0 only [max(0, p - W + 1), p]. Query head h reads KV head h / (n_head / n_head_kv)
// (GQA).
inline constexpr int64_t kMaxHeadDim = 256;
struct AttentionJob {
  const float* q = nullptr;  // [n_tokens, n_head * head_dim]
  float* out = nullptr;      // [n_tokens, n_head * head_dim]
  // [>= first_pos + n_tokens, n_head_kv * head_dim] F16, 16-byte aligned
  const uint16_t* k_cache = nullptr;
  const uint16_t* v_cache = nullptr;
  int64_t n_tokens = 0;
  int64_t first_pos = 0;
  const int32_t* first_pos_dev = nullptr;  // device; when set, added to first_pos (graph replays)
  PagedKv paged;  // when paged.positions is set: each token's position and rows (F32 kernel)
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;  // even, <= kMaxHeadDim
  float scale = 1.0f;    // applied to q.k, usually 1/sqrt(head_dim)
  int64_t window = 0;    // positions each token attends, its own included; 0 = all
  // Several tokens of head size 64 or 128 on the tensor cores: q (scaled) and the softmax
  // weights rounded to F16, F32 sums. Otherwise, and for one token, F32 throughout.
  bool tensor_cores = false;
  // Workspace for few query rows (decoding): each row's positions split over several thread
  // blocks, whose partial results are merged in split order (the same result whichever block
  // ends last). Null: one block per row. counters start zeroed and are left so.
  float* partials = nullptr;     // [kAttentionPartialFloats]
  unsigned* counters = nullptr;  // [kAttentionSplitBlocks]
  // When set, out is also written quantized, as quantize_q8 would (head_dim a multiple of 32).
  Q8Act out_q8;
  // One token (n_tokens == 1) whose q, k and v are the products' raw rows (rope.q, rope.k,
  // rope.v; q above is then unused): the kernel does rope_store_kv's work itself (biases, RoPE,
  // the token's k and v rows into the cache) instead of a launch before it. rope's cache, head
  // counts, head_dim and position must be the job's own.
  bool fuse_rope = false;
  RopeKvJob rope;
  // With fuse_rope, the layer's RMSNorm may end here: q, k and v are then the products of the
  // residual times the norm's weight (MatvecJob::norm_out), and the kernel scales them by
  // 1 / sqrt(mean(x^2) + eps) of the residual x before the biases and the RoPE, which saves the
  // norm's launch. x null: q, k and v are the products of the normalized residual.
  struct {
    const float* x = nullptr;  // [n], 16-byte aligned
    int64_t n = 0;
    float eps = 0.0f;
  } norm;
};
inline constexpr int64_t kAttentionSplitBlocks = 512;  // thread blocks the splits aim at
inline constexpr int64_t kAttentionPartialFloats = kAttentionSplitBlocks * (kMaxHeadDim + 2);
void attention(const AttentionJob& job, cudaStream_t stream);

// x quantized row by row; n a multiple of 32.                                 x: [n_rows, n]
void quantize_q8(const float* x, int64_t n_rows, int64_t n, Q8Act out, cudaStream_t stream);
// The same blocks laid out block by block for gemm_q8: block j of row r at j * stride + r, with
// the stride n_rows rounded up to 8 (q8_token_stride), so one block of 8 consecutive rows is
// 256 contiguous bytes of codes. `out` holds n / 32 x stride blocks.
inline int64_t q8_token_stride(int64_t n_rows) { return (n_rows + 7) / 8 * 8; }
void quantize_q8_by_block(const float* x, int64_t n_rows, int64_t n, Q8Act out,
                          cudaStream_t stream);

// rms_norm of one row, written as F32 to `out` and quantized to `q` (n a multiple of 32, at
// most kRmsNormQ8MaxWidth).
inline constexpr int64_t kRmsNormQ8MaxWidth = 16384;
void rms_norm_q8(const float* x, const float* weight, int64_t n, float eps, float* out, Q8Act q,
                 cudaStream_t stream);

// One token's products with up to three matrices of one type and width in one launch (the
// decode step): y_i = W_i x. F32, F16 and BF16 rows multiply x in F32; the quantized rows (Q8_0,
// Q4_0, Q4_K, Q5_K, Q6_K: matvec_reads_q8) multiply the 8-bit codes of x (xq, __dp4a) and scale
// per block of 32 (Q6_K: per 16). kAdd adds to y (the residual); kSwiglu takes w[0] as the gate
// and w[1] as the up matrix and writes silu(w[0] x) * (w[1] x) to y[0].
enum class MatvecOut { kStore, kAdd, kSwiglu };
inline constexpr int kMaxMatvecs = 3;
struct MatvecJob {
  const Matrix* w[kMaxMatvecs] = {};  // w[0..n_w), all of w[0]'s type and width
  float* y[kMaxMatvecs] = {};         // [w[i]->n_rows]
  int n_w = 1;
  const float* x = nullptr;  // [n_tokens, n_cols], F32, F16 and BF16 weights; 16-byte aligned
  Q8Act xq;                  // x quantized, weights that matvec_reads_q8
  MatvecOut out = MatvecOut::kStore;
  int64_t n_tokens = 1;  // rows of x (and xq); y[i] is then [n_tokens, w[i]->n_rows]
  // kAdd of one matrix: also the new y times `weight` into `weighted` ([n_tokens, n_rows]), the
  // input of the next products when the attention kernel ends their norm (AttentionJob::norm).
  struct {
    const float* weight = nullptr;  // [n_rows]
    float* weighted = nullptr;      // null: not written
  } norm_out;
};
void matvec(const MatvecJob& job, cudaStream_t stream);

// A batch's step of a few tokens on the int8 tensor cores: y = x W^T (y += x W^T with
// accumulate) from the 8-bit codes of x (laid out by quantize_q8_by_block), for up to
// kGemmQ8MaxTokens tokens, each weight row read once for all of them. Rows of Q6_K, and 16-byte
// aligned rows of Q8_0, Q4_0, Q4_K and Q5_K, of a width that is a multiple of 64
// (gemm_q8_supported). Sums are per block of 32 as matvec's, in another order. x: [n_tokens,
// w.n_cols], y: [n_tokens, w.n_rows]
inline constexpr int64_t kGemmQ8MaxTokens = 32;
bool gemm_q8_supported(const Matrix& w);
void gemm_q8(const Matrix& w, const Q8Act& x, int64_t n_tokens, float* y, bool accumulate,
             cudaStream_t stream);

// Prompt-sized products on the tensor cores: F16 operands, F32 accumulation.
// x converted to F16 bits.                                                          x, out: [n]
void to_f16(const float* x, int64_t n, uint16_t* out, cudaStream_t stream);
// Every row of w as F16 bits, densely packed.                        out: [w.n_rows, w.n_cols]
void dequantize_f16(const Matrix& w, uint16_t* out, cudaStream_t stream);
// c = a b^T (c += a b^T with accumulate). k a multiple of 8, a and b 16-byte aligned.
// a: [m, k] F16, b: [n, k] F16, c: [m, n] F32
// With a workspace of at least splits x m x n floats, few-token products split k over more
// thread blocks (up to 16 splits; the partial sums are added in a fixed order).
void gemm_f16(const uint16_t* a, const uint16_t* b, int64_t m, int64_t n, int64_t k, float* c,
              bool accumulate, cudaStream_t stream, float* workspace = nullptr,
              int64_t workspace_floats = 0);

// Whether gemm_quantized() reads rows of this type: Q8_0, Q4_0, Q4_K, Q5_K and Q6_K.
bool gemm_quantized_supported(GgmlType type);
// c = a w^T (c += a w^T with accumulate) with w's blocks decoded to F16 inside the tiles: the
// same sums, bit for bit, as dequantize_f16() followed by gemm_f16(), without the F16 copy of w.
// a: [m, w.n_cols] F16, 16-byte aligned; c: [m, w.n_rows] F32; workspace as for gemm_f16().
void gemm_quantized(const uint16_t* a, const Matrix& w, int64_t m, float* c, bool accumulate,
                    cudaStream_t stream, float* workspace = nullptr, int64_t workspace_floats = 0);

// cuBLAS, loaded at run time (libcublas.so.13, from the CUDA toolkit or driver packages) where it
// is installed: it multiplies long prompt chunks on the tensor cores, as gemm_f16 does (F16
// operands, F32 sums, deterministic), faster. Without it gemm_f16 serves every product, and
// binaries still need nothing but the driver.
inline constexpr size_t kBlasWorkspaceBytes = size_t{32} << 20;
class Blas {
 public:
  // A handle on the current device that enqueues on `stream` and takes no memory while running
  // but `workspace` (device memory of kBlasWorkspaceBytes). Null when cuBLAS is not installed or
  // does not start; *why says what happened.
  static std::unique_ptr<Blas> create(cudaStream_t stream, void* workspace, std::string* why);
  ~Blas();
  Blas(const Blas&) = delete;
  Blas& operator=(const Blas&) = delete;

  // c = a b^T, or c += a b^T with accumulate, with gemm_f16's shapes and layouts; dimensions up
  // to 2^31 - 1. False when cuBLAS refused the call (nothing was enqueued).
  bool gemm_f16(const uint16_t* a, const uint16_t* b, int64_t m, int64_t n, int64_t k, float* c,
                bool accumulate) const;
  int version() const { return version_; }

  struct Library;  // the loaded entry points (blas.cpp)

 private:
  Blas() = default;
  const Library* lib_ = nullptr;
  void* handle_ = nullptr;  // cublasHandle_t
  int version_ = 0;
};

}  // namespace pensieve::cuda
