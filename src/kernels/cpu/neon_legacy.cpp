// NEON kernels for the 32-element formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) against kQ8Block32Split
// activations. A weight block unpacks to two signed vectors, elements 0..15 (low nibbles) and
// 16..31 (high nibbles), with the zero point already subtracted, so the activations' integer
// bias is not needed. Widening multiplies pair up in int16 (|q| <= 128, |x| <= 127: two products
// fit) and pairwise adds sum them into the block's four int32 lanes.
#include "kernels/cpu/act_layout.h"
#include "kernels/cpu/neon_kernels.h"
#include "kernels/cpu/neon_util.h"
#include "kernels/cpu/tiling.h"

namespace pensieve::cpu::neon {
namespace {

// One weight block ready for the dot products.
struct Block {
  int8x16_t lo;  // elements 0..15, zero point subtracted
  int8x16_t hi;  // elements 16..31
  float d;
  float m;  // formats with a min only
};

// Format traits: block bytes, zero point, byte offsets of m, qh and qs (d is at 0; -1: none).
template <int kBytes, int kZero, int kM, int kQh, int kQs>
struct Format {
  static constexpr int kBlockBytes = kBytes;
  static constexpr int kZeroPoint = kZero;
  static constexpr bool kHasMin = kM >= 0;
  static constexpr bool kSigned = kQs + 32 == kBytes;  // a signed byte per quant: Q8_0
  static constexpr int kMByte = kM, kQhByte = kQh, kQsByte = kQs;
};

using Q4_0 = Format<18, 8, -1, -1, 2>;  // {f16 d; u8 qs[16]}: x = d * (q - 8)
using Q4_1 = Format<20, 0, 2, -1, 4>;   // {f16 d, m; u8 qs[16]}: x = d * q + m
using Q5_0 = Format<22, 16, -1, 2, 6>;  // {f16 d; u32 qh; u8 qs[16]}: x = d * (q - 16)
using Q5_1 = Format<24, 0, 2, 4, 8>;    // {f16 d, m; u32 qh; u8 qs[16]}: x = d * q + m
using Q8_0 = Format<34, 0, -1, -1, 2>;  // {f16 d; s8 qs[32]}: x = d * q

// Bit j of the low 16 bits as byte j: 16 where set, 0 where clear.
inline uint8x16_t bits_to_sixteens(uint32_t bits) {
  static constexpr uint8_t kBit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
  const uint8x16_t bytes = vcombine_u8(vdup_n_u8(static_cast<uint8_t>(bits & 0xFF)),
                                       vdup_n_u8(static_cast<uint8_t>((bits >> 8) & 0xFF)));
  return vandq_u8(vtstq_u8(bytes, vld1q_u8(kBit)), vdupq_n_u8(16));
}

template <class F>
inline Block load_block(const uint8_t* b) {
  Block w;
  if constexpr (F::kSigned) {
    w.lo = vld1q_s8(reinterpret_cast<const int8_t*>(b + F::kQsByte));
    w.hi = vld1q_s8(reinterpret_cast<const int8_t*>(b + F::kQsByte + 16));
  } else {
    const uint8x16_t v = vld1q_u8(b + F::kQsByte);
    uint8x16_t lo = vandq_u8(v, vdupq_n_u8(0x0F));
    uint8x16_t hi = vshrq_n_u8(v, 4);
    if constexpr (F::kQhByte >= 0) {
      const uint32_t qh = load_u32(b + F::kQhByte);
      lo = vorrq_u8(lo, bits_to_sixteens(qh));
      hi = vorrq_u8(hi, bits_to_sixteens(qh >> 16));
    }
    if constexpr (F::kZeroPoint != 0) {
      lo = vsubq_u8(lo, vdupq_n_u8(F::kZeroPoint));
      hi = vsubq_u8(hi, vdupq_n_u8(F::kZeroPoint));
    }
    w.lo = vreinterpretq_s8_u8(lo);
    w.hi = vreinterpretq_s8_u8(hi);
  }
  w.d = half_to_float(b);
  w.m = F::kHasMin ? half_to_float(b + F::kMByte) : 0.0f;
  return w;
}

// Activations of one token: block b's halves sit in quad b / 4 at 16 * (b % 4) and 64 beyond.
struct ActPtrs {
  const int8_t* qs;
  const float* d4;
  const float* s4;
};

// Four int32 lanes that add up to the block's integer dot product.
inline int32x4_t block_sums(const Block& w, const int8_t* x_lo, const int8_t* x_hi) {
  const int8x16_t xl = vld1q_s8(x_lo);
  const int8x16_t xh = vld1q_s8(x_hi);
  int16x8_t p0 = vmull_s8(vget_low_s8(w.lo), vget_low_s8(xl));
  p0 = vmlal_s8(p0, vget_low_s8(w.hi), vget_low_s8(xh));
  int16x8_t p1 = vmull_high_s8(w.lo, xl);
  p1 = vmlal_high_s8(p1, w.hi, xh);
  return vpadalq_s16(vpaddlq_s16(p0), p1);
}

template <class F>
inline float32x4_t block_dot(const Block& w, const ActPtrs& x, int64_t b, float32x4_t acc) {
  const int64_t base = 128 * (b / 4) + 16 * (b % 4);
  const int32x4_t sum = block_sums(w, x.qs + base, x.qs + base + 64);
  const float32x4_t scale = vmulq_n_f32(vld1q_f32(x.d4 + 4 * b), w.d);
  acc = vfmaq_f32(acc, vcvtq_f32_s32(sum), scale);
  if constexpr (F::kHasMin) acc = vfmaq_n_f32(acc, vld1q_f32(x.s4 + 4 * b), w.m);
  return acc;
}

// Row r x tokens [t, t + T), all columns.
template <class F, int T>
void tile(const GemmArgs& a, const Block32SplitLayout& l, int64_t r, int64_t t) {
  const uint8_t* row = a.w + static_cast<size_t>(r) * a.w_row_bytes;
  ActPtrs x[T];
  for (int j = 0; j < T; ++j) {
    const uint8_t* base = a.act + static_cast<size_t>(t + j) * a.act_stride;
    x[j] = {reinterpret_cast<const int8_t*>(base),
            reinterpret_cast<const float*>(base + l.d4_offset),
            reinterpret_cast<const float*>(base + l.s4_offset)};
  }
  float32x4_t acc[T];
  for (int j = 0; j < T; ++j) acc[j] = vdupq_n_f32(0.0f);
  const int64_t n_blocks = a.n_cols / 32;
  for (int64_t b = 0; b < n_blocks; ++b) {
    const uint8_t* block = row + F::kBlockBytes * b;
    if constexpr (T == 1) __builtin_prefetch(block + kPrefetchBytes);
    const Block w = load_block<F>(block);
#pragma GCC unroll 4
    for (int j = 0; j < T; ++j) acc[j] = block_dot<F>(w, x[j], b, acc[j]);
  }
  for (int j = 0; j < T; ++j) a.y[(t + j) * a.ldy + r] = vaddvq_f32(acc[j]);
}

template <class F>
void gemm(const GemmArgs& a, int64_t r0, int64_t r1, int64_t t0, int64_t t1) {
  const Block32SplitLayout l = block32_split_layout(a.n_cols);
  auto tiles = [&]<int R, int T>(int64_t r, int64_t t) { tile<F, T>(a, l, r, t); };
  run_tiles<1, 4>(tiles, a.w_row_bytes, r0, r1, t0, t1);
}

// The zero point is subtracted from the weights, so the activations carry no integer bias.
template <class F>
void add(IsaKernels& k, GgmlType type) {
  k.types[static_cast<int>(type)] = TypeKernel{&gemm<F>, ActFormat::kQ8Block32Split, 0};
}

}  // namespace

void add_legacy_kernels(IsaKernels& k) {
  add<Q4_0>(k, GgmlType::kQ4_0);
  add<Q4_1>(k, GgmlType::kQ4_1);
  add<Q5_0>(k, GgmlType::kQ5_0);
  add<Q5_1>(k, GgmlType::kQ5_1);
  add<Q8_0>(k, GgmlType::kQ8_0);
}

}  // namespace pensieve::cpu::neon
