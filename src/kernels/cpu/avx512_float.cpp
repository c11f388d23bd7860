// AVX-512 kernels for float weights (F32, F16, BF16) against float activations: weights are
// widened to F32 in registers and reused across a tile of tokens.
#include "kernels/cpu/avx512_kernels.h"
#include "kernels/cpu/simd_intrinsics.h"
#include "kernels/cpu/tiling.h"

namespace pensieve::cpu::avx512 {
namespace {

constexpr int kPrefetchBytes = 2048;  // decode: how far ahead of the weight stream to prefetch

struct F32 {
  static constexpr size_t kBytes = 4;
  static __m512 load(const uint8_t* p) { return _mm512_loadu_ps(p); }
  static __m512 load_tail(const uint8_t* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
};

struct F16 {
  static constexpr size_t kBytes = 2;
  static __m512 load(const uint8_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static __m512 load_tail(const uint8_t* p, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
  }
};

struct BF16 {
  static constexpr size_t kBytes = 2;
  static __m512 widen(__m256i h) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  static __m512 load(const uint8_t* p) {
    return widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static __m512 load_tail(const uint8_t* p, __mmask16 m) {
    return widen(_mm256_maskz_loadu_epi16(m, p));
  }
};

// Rows [r, r + R) x tokens [t, t + T), all columns, 16 at a time.
template <class F, int R, int T>
void tile(const GemmArgs& a, int64_t r, int64_t t) {
  const uint8_t* rows[R];
  for (int i = 0; i < R; ++i) rows[i] = a.w + static_cast<size_t>(r + i) * a.w_row_bytes;
  const float* x[T];
  for (int j = 0; j < T; ++j) {
    x[j] = reinterpret_cast<const float*>(a.act + static_cast<size_t>(t + j) * a.act_stride);
  }
  __m512 acc[R][T];
  for (int i = 0; i < R; ++i) {
    for (int j = 0; j < T; ++j) acc[i][j] = _mm512_setzero_ps();
  }
  const int64_t n_full = a.n_cols / 16 * 16;
  const auto step = [&](int64_t k, bool full, __mmask16 m) __attribute__((always_inline)) {
    __m512 w[R];
#pragma GCC unroll 4
    for (int i = 0; i < R; ++i) {
      const uint8_t* at = rows[i] + k * F::kBytes;
      if constexpr (T == 1)
        _mm_prefetch(reinterpret_cast<const char*>(at) + kPrefetchBytes, _MM_HINT_T0);
      w[i] = full ? F::load(at) : F::load_tail(at, m);
    }
#pragma GCC unroll 4
    for (int j = 0; j < T; ++j) {
      const __m512 xv = full ? _mm512_loadu_ps(x[j] + k) : _mm512_maskz_loadu_ps(m, x[j] + k);
#pragma GCC unroll 4
      for (int i = 0; i < R; ++i) acc[i][j] = _mm512_fmadd_ps(w[i], xv, acc[i][j]);
    }
  };
  for (int64_t k = 0; k < n_full; k += 16) step(k, true, 0);
  if (n_full < a.n_cols) {
    step(n_full, false, static_cast<__mmask16>((1u << (a.n_cols - n_full)) - 1));
  }
  for (int i = 0; i < R; ++i) {
    for (int j = 0; j < T; ++j) a.y[(t + j) * a.ldy + r + i] = _mm512_reduce_add_ps(acc[i][j]);
  }
}

template <class F>
void gemm(const GemmArgs& a, int64_t r0, int64_t r1, int64_t t0, int64_t t1) {
  auto tiles = [&]<int R, int T>(int64_t r, int64_t t) { tile<F, R, T>(a, r, t); };
  run_tiles<4, 4>(tiles, a.w_row_bytes, r0, r1, t0, t1);
}

}  // namespace

void add_float_kernels(IsaKernels& k) {
  k.types[static_cast<int>(GgmlType::kF32)] = TypeKernel{&gemm<F32>, ActFormat::kF32, 0};
  k.types[static_cast<int>(GgmlType::kF16)] = TypeKernel{&gemm<F16>, ActFormat::kF32, 0};
  k.types[static_cast<int>(GgmlType::kBF16)] = TypeKernel{&gemm<BF16>, ActFormat::kF32, 0};
}

}  // namespace pensieve::cpu::avx512
