// AVX-512 VNNI kernel for Q4_0 with one weight row per lane: sixteen rows go at a time, their
// blocks transposed so that a 512-bit register holds the same four quants of all sixteen rows,
// and each token's activations are broadcast four bytes at a time. A block's integer dot product
// is exact, and every output is then one float chain over the row's blocks,
//   y = fma(float(sum_b), d_w * d_x, y), block after block,
// whatever the number of tokens, threads or neighbouring rows: decoding alone and decoding in a
// batch give the same bits. Each float operation covers sixteen rows, so a batch of tokens costs
// far less per token than the one-row kernels in avx512_legacy.cpp, which spend four lanes of
// float work per block and row.
#include "kernels/cpu/act_layout.h"
#include "kernels/cpu/avx512_kernels.h"
#include "kernels/cpu/simd_intrinsics.h"

namespace pensieve::cpu::avx512 {
namespace {

constexpr int kRows = 16;        // rows per group: one per lane
constexpr int kTokens = 8;       // tokens sharing one unpacking of a group's blocks
constexpr int kBlockBytes = 18;  // Q4_0: {f16 d; u8 qs[16]}, x = d * (q - 8)
constexpr int kZeroPoint = 8;

// One Q4_0 block of sixteen rows, transposed: lo[k] lane p = quants 4k..4k+3 of row p (low
// nibbles, elements 4k..4k+3), hi[k] = the high nibbles (elements 16 + 4k..16 + 4k + 3).
struct Group {
  __m512i lo[4];
  __m512i hi[4];
  __m512 d;  // lane p: d of row p
};

// rows[p]: start of row p's block (rows past the matrix repeat its last row; their lanes are
// computed and dropped).
inline __m128i loadu128(const uint8_t* p) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
}

inline Group load_group(const uint8_t* const* rows, int64_t block, __m512i d_index,
                        const uint8_t* base) {
  const size_t at = static_cast<size_t>(block) * kBlockBytes;
  // z[m] 128-bit lane j: row 4j + m's 16 quant bytes.
  __m512i z[4];
  for (int m = 0; m < 4; ++m) {
    __m512i v = _mm512_castsi128_si512(loadu128(rows[m] + at + 2));
    v = _mm512_inserti32x4(v, loadu128(rows[4 + m] + at + 2), 1);
    v = _mm512_inserti32x4(v, loadu128(rows[8 + m] + at + 2), 2);
    z[m] = _mm512_inserti32x4(v, loadu128(rows[12 + m] + at + 2), 3);
  }
  // 4x4 transposes of 32-bit words inside each 128-bit lane: u[k] lane 4j + m = word k of z[m]
  // lane j = quant bytes 4k..4k+3 of row 4j + m.
  const __m512i t0 = _mm512_unpacklo_epi32(z[0], z[1]);
  const __m512i t1 = _mm512_unpackhi_epi32(z[0], z[1]);
  const __m512i t2 = _mm512_unpacklo_epi32(z[2], z[3]);
  const __m512i t3 = _mm512_unpackhi_epi32(z[2], z[3]);
  const __m512i u[4] = {_mm512_unpacklo_epi64(t0, t2), _mm512_unpackhi_epi64(t0, t2),
                        _mm512_unpacklo_epi64(t1, t3), _mm512_unpackhi_epi64(t1, t3)};
  const __m512i nibble = _mm512_set1_epi8(0x0F);
  Group g;
  for (int k = 0; k < 4; ++k) {
    g.lo[k] = _mm512_and_si512(u[k], nibble);
    g.hi[k] = _mm512_and_si512(_mm512_srli_epi16(u[k], 4), nibble);
  }
  // d sits in the low half of the 32-bit word at each block's start.
  const __m512i words = _mm512_i32gather_epi32(d_index, base + at, 1);
  g.d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(words));
  return g;
}

inline __m512i broadcast32(const int8_t* p) {
  int32_t v;
  __builtin_memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// acc += this block's contribution for one token (activations in kQ8Block32Split).
inline __m512 block_dot(const Group& g, const int8_t* qs, const float* d4, const int32_t* bias4,
                        int64_t block, __m512 acc) {
  const int8_t* lo = qs + 128 * (block / 4) + 16 * (block % 4);
  const int8_t* hi = lo + 64;
  // Two chains of four, each exact; the zero point comes back through the activations' bias.
  __m512i s_lo = _mm512_set1_epi32(bias4[4 * block]);
  __m512i s_hi = _mm512_setzero_si512();
  for (int k = 0; k < 4; ++k) {
    s_lo = _mm512_dpbusd_epi32(s_lo, g.lo[k], broadcast32(lo + 4 * k));
    s_hi = _mm512_dpbusd_epi32(s_hi, g.hi[k], broadcast32(hi + 4 * k));
  }
  const __m512 sum = _mm512_cvtepi32_ps(_mm512_add_epi32(s_lo, s_hi));
  return _mm512_fmadd_ps(sum, _mm512_mul_ps(g.d, _mm512_set1_ps(d4[4 * block])), acc);
}

// Sixteen rows are sixteen streams through memory, more than the hardware prefetchers follow:
// while one group is computed, the next group's rows (n_next of them, from `next`) are
// prefetched a few lines per block, so they arrive in time for decoding.
// Spreads the lines evenly over the blocks without dividing (Bresenham).
class Prefetch {
 public:
  Prefetch() = default;
  Prefetch(const uint8_t* next, int n_next, size_t row_bytes, int64_t n_blocks)
      : row_(next),
        row_bytes_(row_bytes),
        lines_per_row_(static_cast<int64_t>((row_bytes + 63) / 64)),
        rows_left_(n_next),
        total_(n_next * lines_per_row_),
        n_blocks_(n_blocks) {}

  // Called once per block.
  void step() {
    for (error_ += total_; error_ >= n_blocks_ && rows_left_ > 0; error_ -= n_blocks_) {
      _mm_prefetch(reinterpret_cast<const char*>(row_ + 64 * line_), _MM_HINT_T0);
      if (++line_ == lines_per_row_) {
        line_ = 0;
        row_ += row_bytes_;
        --rows_left_;
      }
    }
  }

 private:
  const uint8_t* row_ = nullptr;
  size_t row_bytes_ = 0;
  int64_t lines_per_row_ = 0;
  int64_t rows_left_ = 0;
  int64_t total_ = 0;
  int64_t n_blocks_ = 1;
  int64_t error_ = 0;
  int64_t line_ = 0;
};

// Rows [r, r + n_rows) (n_rows <= 16) x tokens [t, t + T).
template <int T>
void tile(const GemmArgs& a, const Block32SplitLayout& l, int64_t r, int n_rows, int64_t t,
          Prefetch prefetch) {
  const uint8_t* rows[kRows];
  for (int p = 0; p < kRows; ++p) {
    rows[p] = a.w + static_cast<size_t>(r + (p < n_rows ? p : n_rows - 1)) * a.w_row_bytes;
  }
  __m512i d_index;
  {
    alignas(64) int32_t offsets[kRows];
    for (int p = 0; p < kRows; ++p) offsets[p] = static_cast<int32_t>(rows[p] - rows[0]);
    d_index = _mm512_load_si512(offsets);
  }
  const int8_t* qs[T];
  const float* d4[T];
  const int32_t* bias4[T];
  __m512 acc[T];
  for (int j = 0; j < T; ++j) {
    const uint8_t* base = a.act + static_cast<size_t>(t + j) * a.act_stride;
    qs[j] = reinterpret_cast<const int8_t*>(base);
    d4[j] = reinterpret_cast<const float*>(base + l.d4_offset);
    bias4[j] = reinterpret_cast<const int32_t*>(base + l.bias4_offset);
    acc[j] = _mm512_setzero_ps();
  }
  const int64_t n_blocks = a.n_cols / 32;
  for (int64_t b = 0; b < n_blocks; ++b) {
    prefetch.step();
    const Group g = load_group(rows, b, d_index, rows[0]);
#pragma GCC unroll 8
    for (int j = 0; j < T; ++j) acc[j] = block_dot(g, qs[j], d4[j], bias4[j], b, acc[j]);
  }
  const __mmask16 valid = static_cast<__mmask16>((1u << n_rows) - 1);
  for (int j = 0; j < T; ++j) _mm512_mask_storeu_ps(a.y + (t + j) * a.ldy + r, valid, acc[j]);
}

template <int T>
void tokens_tile(const GemmArgs& a, const Block32SplitLayout& l, int64_t r, int n_rows, int64_t t,
                 int64_t n, const Prefetch& prefetch) {
  if constexpr (T > 1) {
    if (n < T) return tokens_tile<T - 1>(a, l, r, n_rows, t, n, prefetch);
  }
  tile<T>(a, l, r, n_rows, t, prefetch);
}

void gemm_q4_0(const GemmArgs& a, int64_t r0, int64_t r1, int64_t t0, int64_t t1) {
  const Block32SplitLayout l = block32_split_layout(a.n_cols);
  for (int64_t r = r0; r < r1; r += kRows) {
    const int n_rows = static_cast<int>(r1 - r < kRows ? r1 - r : kRows);
    const int64_t next = r + kRows;
    const Prefetch none;
    const Prefetch ahead(a.w + static_cast<size_t>(next) * a.w_row_bytes,
                         static_cast<int>(r1 - next < kRows ? r1 - next : kRows), a.w_row_bytes,
                         a.n_cols / 32);
    for (int64_t t = t0; t < t1; t += kTokens) {
      // The first token tile brings the next group in; later ones find it in the cache.
      tokens_tile<kTokens>(a, l, r, n_rows, t, t1 - t < kTokens ? t1 - t : kTokens,
                           t == t0 && next < r1 ? ahead : none);
    }
  }
}

}  // namespace

void add_row_lane_kernels(IsaKernels& k) {
  k.types[static_cast<int>(GgmlType::kQ4_0)] =
      TypeKernel{&gemm_q4_0, ActFormat::kQ8Block32Split, kZeroPoint};
}

}  // namespace pensieve::cpu::avx512
