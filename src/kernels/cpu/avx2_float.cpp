// AVX2 kernels for float weights (F32, F16, BF16) against float activations: weights are widened
// to F32 in registers and reused across a tile of tokens.
#include "kernels/cpu/avx2_kernels.h"
#include "kernels/cpu/avx2_util.h"
#include "kernels/cpu/tiling.h"

namespace pensieve::cpu::avx2 {
namespace {

constexpr int kPrefetchBytes = 2048;  // decode: how far ahead of the weight stream to prefetch

struct F32 {
  static constexpr size_t kBytes = 4;
  static __m256 load(const uint8_t* p) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(p));
  }
};

struct F16 {
  static constexpr size_t kBytes = 2;
  static __m256 load(const uint8_t* p) { return _mm256_cvtph_ps(loadu128(p)); }
};

struct BF16 {
  static constexpr size_t kBytes = 2;
  static __m256 load(const uint8_t* p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(loadu128(p)), 16));
  }
};

// Rows [r, r + R) x tokens [t, t + T), all columns, 8 at a time; the last partial group of 8
// goes through zero-padded copies.
template <class F, int R, int T>
void tile(const GemmArgs& a, int64_t r, int64_t t) {
  const uint8_t* rows[R];
  for (int i = 0; i < R; ++i) rows[i] = a.w + static_cast<size_t>(r + i) * a.w_row_bytes;
  const float* x[T];
  for (int j = 0; j < T; ++j) {
    x[j] = reinterpret_cast<const float*>(a.act + static_cast<size_t>(t + j) * a.act_stride);
  }
  __m256 acc[R][T];
  for (int i = 0; i < R; ++i) {
    for (int j = 0; j < T; ++j) acc[i][j] = _mm256_setzero_ps();
  }
  const auto step = [&](const uint8_t* const* w_at, const float* const* x_at)
      __attribute__((always_inline)) {
    __m256 w[R];
#pragma GCC unroll 4
    for (int i = 0; i < R; ++i) w[i] = F::load(w_at[i]);
#pragma GCC unroll 4
    for (int j = 0; j < T; ++j) {
      const __m256 xv = _mm256_loadu_ps(x_at[j]);
#pragma GCC unroll 4
      for (int i = 0; i < R; ++i) acc[i][j] = _mm256_fmadd_ps(w[i], xv, acc[i][j]);
    }
  };
  const int64_t n_full = a.n_cols / 8 * 8;
  for (int64_t k = 0; k < n_full; k += 8) {
    const uint8_t* w_at[R];
    const float* x_at[T];
    for (int i = 0; i < R; ++i) {
      w_at[i] = rows[i] + k * F::kBytes;
      if constexpr (T == 1)
        _mm_prefetch(reinterpret_cast<const char*>(w_at[i]) + kPrefetchBytes, _MM_HINT_T0);
    }
    for (int j = 0; j < T; ++j) x_at[j] = x[j] + k;
    step(w_at, x_at);
  }
  if (n_full < a.n_cols) {
    const size_t n = static_cast<size_t>(a.n_cols - n_full);
    alignas(32) uint8_t w_tail[R][32] = {};
    alignas(32) float x_tail[T][8] = {};
    const uint8_t* w_at[R];
    const float* x_at[T];
    for (int i = 0; i < R; ++i) {
      std::memcpy(w_tail[i], rows[i] + n_full * F::kBytes, n * F::kBytes);
      w_at[i] = w_tail[i];
    }
    for (int j = 0; j < T; ++j) {
      std::memcpy(x_tail[j], x[j] + n_full, n * sizeof(float));
      x_at[j] = x_tail[j];
    }
    step(w_at, x_at);
  }
  for (int i = 0; i < R; ++i) {
    for (int j = 0; j < T; ++j) a.y[(t + j) * a.ldy + r + i] = hsum(acc[i][j]);
  }
}

template <class F>
void gemm(const GemmArgs& a, int64_t r0, int64_t r1, int64_t t0, int64_t t1) {
  auto tiles = [&]<int R, int T>(int64_t r, int64_t t) { tile<F, R, T>(a, r, t); };
  run_tiles<4, 3>(tiles, a.w_row_bytes, r0, r1, t0, t1);
}

}  // namespace

void add_float_kernels(IsaKernels& k) {
  k.types[static_cast<int>(GgmlType::kF32)] = TypeKernel{&gemm<F32>, ActFormat::kF32, 0};
  k.types[static_cast<int>(GgmlType::kF16)] = TypeKernel{&gemm<F16>, ActFormat::kF32, 0};
  k.types[static_cast<int>(GgmlType::kBF16)] = TypeKernel{&gemm<BF16>, ActFormat::kF32, 0};
}

}  // namespace pensieve::cpu::avx2
