// NEON kernels for float weights (F32, F16, BF16) against float activations: weights are widened
// to F32 in registers and reused across a tile of tokens. Each output sums 8 columns per step in
// two 4-lane accumulators, so decode has two independent FMA chains.
#include "kernels/cpu/neon_kernels.h"
#include "kernels/cpu/neon_util.h"
#include "kernels/cpu/tiling.h"

namespace pensieve::cpu::neon {
namespace {

constexpr int kStep = 8;  // columns per step

struct F32 {
  static constexpr size_t kBytes = 4;
  static float32x4_t load(const uint8_t* p) { return vld1q_f32(reinterpret_cast<const float*>(p)); }
};

struct F16 {
  static constexpr size_t kBytes = 2;
  static float32x4_t load(const uint8_t* p) {
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(reinterpret_cast<const uint16_t*>(p))));
  }
};

struct BF16 {
  static constexpr size_t kBytes = 2;
  static float32x4_t load(const uint8_t* p) {
    return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(reinterpret_cast<const uint16_t*>(p)), 16));
  }
};

// Rows [r, r + R) x tokens [t, t + T), all columns, kStep at a time; the last partial step goes
// through zero-padded copies.
template <class F, int R, int T>
void tile(const GemmArgs& a, int64_t r, int64_t t) {
  const uint8_t* rows[R];
  for (int i = 0; i < R; ++i) rows[i] = a.w + static_cast<size_t>(r + i) * a.w_row_bytes;
  const float* x[T];
  for (int j = 0; j < T; ++j) {
    x[j] = reinterpret_cast<const float*>(a.act + static_cast<size_t>(t + j) * a.act_stride);
  }
  float32x4_t acc[R][T][2];
  for (int i = 0; i < R; ++i) {
    for (int j = 0; j < T; ++j) acc[i][j][0] = acc[i][j][1] = vdupq_n_f32(0.0f);
  }
  const auto step = [&](const uint8_t* const* w_at, const float* const* x_at)
      __attribute__((always_inline)) {
    float32x4_t w[R][2];
#pragma GCC unroll 4
    for (int i = 0; i < R; ++i) {
      w[i][0] = F::load(w_at[i]);
      w[i][1] = F::load(w_at[i] + 4 * F::kBytes);
    }
#pragma GCC unroll 4
    for (int j = 0; j < T; ++j) {
      const float32x4_t x0 = vld1q_f32(x_at[j]);
      const float32x4_t x1 = vld1q_f32(x_at[j] + 4);
#pragma GCC unroll 4
      for (int i = 0; i < R; ++i) {
        acc[i][j][0] = vfmaq_f32(acc[i][j][0], w[i][0], x0);
        acc[i][j][1] = vfmaq_f32(acc[i][j][1], w[i][1], x1);
      }
    }
  };
  const int64_t n_full = a.n_cols / kStep * kStep;
  for (int64_t k = 0; k < n_full; k += kStep) {
    const uint8_t* w_at[R];
    const float* x_at[T];
    for (int i = 0; i < R; ++i) {
      w_at[i] = rows[i] + k * F::kBytes;
      if constexpr (T == 1) __builtin_prefetch(w_at[i] + kPrefetchBytes);
    }
    for (int j = 0; j < T; ++j) x_at[j] = x[j] + k;
    step(w_at, x_at);
  }
  if (n_full < a.n_cols) {
    const size_t n = static_cast<size_t>(a.n_cols - n_full);
    alignas(16) uint8_t w_tail[R][kStep * 4] = {};
    alignas(16) float x_tail[T][kStep] = {};
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
    for (int j = 0; j < T; ++j) {
      a.y[(t + j) * a.ldy + r + i] = vaddvq_f32(vaddq_f32(acc[i][j][0], acc[i][j][1]));
    }
  }
}

template <class F>
void gemm(const GemmArgs& a, int64_t r0, int64_t r1, int64_t t0, int64_t t1) {
  auto tiles = [&]<int R, int T>(int64_t r, int64_t t) { tile<F, R, T>(a, r, t); };
  run_tiles<2, 3>(tiles, a.w_row_bytes, r0, r1, t0, t1);
}

}  // namespace

void add_float_kernels(IsaKernels& k) {
  k.types[static_cast<int>(GgmlType::kF32)] = TypeKernel{&gemm<F32>, ActFormat::kF32, 0};
  k.types[static_cast<int>(GgmlType::kF16)] = TypeKernel{&gemm<F16>, ActFormat::kF32, 0};
  k.types[static_cast<int>(GgmlType::kBF16)] = TypeKernel{&gemm<BF16>, ActFormat::kF32, 0};
}

}  // namespace pensieve::cpu::neon
