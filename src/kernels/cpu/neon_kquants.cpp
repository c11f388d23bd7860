// NEON kernels for the K-quants (Q2_K..Q6_K) against kQ8BlockK activations. A super-block is
// eight chunks of 32 elements in natural order, each two 16-element groups: widening multiplies
// pair up in int16 (|q| <= 63, |x| <= 127: two products fit), a multiply-accumulate by the group
// scale widens them to int32, and the whole super-block sums in int32. Mins and zero points come
// back through the activations' 16-element sums.
#include <utility>

#include "kernels/cpu/act_layout.h"
#include "kernels/cpu/neon_kernels.h"
#include "kernels/cpu/neon_util.h"
#include "kernels/cpu/tiling.h"

namespace pensieve::cpu::neon {
namespace {

// One row's super-block, prepared once for all tokens.
struct Prep {
  int16_t sc[16];    // scales of the 16-element groups
  int16x8_t m16[2];  // multipliers of the activation group sums
  float d;           // result = dx * (d * sum(sc * q * x) + dm * sum(m16 * bsums))
  float dm;          // unused where F::kFoldMins (m16 then shares d and joins the integer sum)
};

// The 6-bit scales and mins of the eight sub-blocks of Q4_K and Q5_K, each given to both of the
// sub-block's 16-element groups.
inline void scales_mins_6bit(const uint8_t* p, Prep* prep) {
  int16_t mins[16];
  for (int j = 0; j < 8; ++j) {
    int sc = 0, m = 0;
    if (j < 4) {
      sc = p[j] & 63;
      m = p[j + 4] & 63;
    } else {
      sc = (p[j + 4] & 0x0F) | ((p[j - 4] >> 6) << 4);
      m = (p[j + 4] >> 4) | ((p[j] >> 6) << 4);
    }
    prep->sc[2 * j] = prep->sc[2 * j + 1] = static_cast<int16_t>(sc);
    mins[2 * j] = mins[2 * j + 1] = static_cast<int16_t>(m);
  }
  prep->m16[0] = vld1q_s16(mins);
  prep->m16[1] = vld1q_s16(mins + 8);
}

// Chunk kC's quants (elements 32 kC .. 32 kC + 31) as two vectors of 16 unsigned bytes.
struct Q4K {
  static constexpr size_t kBlockBytes = 144;
  static constexpr bool kFoldMins = false;
  static Prep prepare(const uint8_t* b) {
    Prep p;
    scales_mins_6bit(b + 4, &p);
    p.d = half_to_float(b);
    p.dm = -half_to_float(b + 2);
    return p;
  }
  template <int kC>
  static void quants(const uint8_t* b, uint8x16_t* q) {
    for (int h = 0; h < 2; ++h)
      q[h] = field<4 * (kC % 2), 0x0F>(vld1q_u8(b + 16 + 32 * (kC / 2) + 16 * h));
  }
};

struct Q5K {
  static constexpr size_t kBlockBytes = 176;
  static constexpr bool kFoldMins = false;
  static Prep prepare(const uint8_t* b) { return Q4K::prepare(b); }
  template <int kC>
  static void quants(const uint8_t* b, uint8x16_t* q) {
    for (int h = 0; h < 2; ++h) {
      const uint8x16_t lo = field<4 * (kC % 2), 0x0F>(vld1q_u8(b + 48 + 32 * (kC / 2) + 16 * h));
      const uint8x16_t hi = vshlq_n_u8(field<kC, 1>(vld1q_u8(b + 16 + 16 * h)), 4);
      q[h] = vorrq_u8(lo, hi);
    }
  }
};

struct Q6K {
  static constexpr size_t kBlockBytes = 210;
  static constexpr bool kFoldMins = true;
  static Prep prepare(const uint8_t* b) {
    Prep p;
    const int16x8_t sc[2] = {vmovl_s8(vld1_s8(reinterpret_cast<const int8_t*>(b + 192))),
                             vmovl_s8(vld1_s8(reinterpret_cast<const int8_t*>(b + 200)))};
    for (int h = 0; h < 2; ++h) {
      vst1q_s16(p.sc + 8 * h, sc[h]);
      p.m16[h] = vnegq_s16(vshlq_n_s16(sc[h], 5));
    }
    p.d = half_to_float(b + 208);
    p.dm = 0;
    return p;
  }
  template <int kC>
  static void quants(const uint8_t* b, uint8x16_t* q) {
    constexpr int kHalf = kC / 4, kK = kC % 4;
    for (int h = 0; h < 2; ++h) {
      const uint8x16_t lo =
          field<4 * (kK / 2), 0x0F>(vld1q_u8(b + 64 * kHalf + 32 * (kK % 2) + 16 * h));
      const uint8x16_t hi = field<2 * kK, 3>(vld1q_u8(b + 128 + 32 * kHalf + 16 * h));
      q[h] = vorrq_u8(lo, vshlq_n_u8(hi, 4));
    }
  }
};

struct Q3K {
  static constexpr size_t kBlockBytes = 110;
  static constexpr bool kFoldMins = true;
  static Prep prepare(const uint8_t* b) {
    const uint32_t a0 = load_u32(b + 96), a1 = load_u32(b + 100), t = load_u32(b + 104);
    const uint32_t words[4] = {(a0 & 0x0f0f0f0f) | (((t >> 0) & 0x03030303) << 4),
                               (a1 & 0x0f0f0f0f) | (((t >> 2) & 0x03030303) << 4),
                               ((a0 >> 4) & 0x0f0f0f0f) | (((t >> 4) & 0x03030303) << 4),
                               ((a1 >> 4) & 0x0f0f0f0f) | (((t >> 6) & 0x03030303) << 4)};
    uint8_t bytes[16];
    std::memcpy(bytes, words, 16);
    Prep p;
    const uint8x16_t v = vld1q_u8(bytes);
    const int16x8_t sc[2] = {
        vsubq_s16(vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(v))), vdupq_n_s16(32)),
        vsubq_s16(vreinterpretq_s16_u16(vmovl_high_u8(v)), vdupq_n_s16(32))};
    for (int h = 0; h < 2; ++h) {
      vst1q_s16(p.sc + 8 * h, sc[h]);
      p.m16[h] = vnegq_s16(vshlq_n_s16(sc[h], 2));
    }
    p.d = half_to_float(b + 108);
    p.dm = 0;
    return p;
  }
  template <int kC>
  static void quants(const uint8_t* b, uint8x16_t* q) {
    for (int h = 0; h < 2; ++h) {
      const uint8x16_t lo = field<2 * (kC % 4), 3>(vld1q_u8(b + 32 + 32 * (kC / 4) + 16 * h));
      const uint8x16_t hi = vshlq_n_u8(field<kC, 1>(vld1q_u8(b + 16 * h)), 2);
      q[h] = vorrq_u8(lo, hi);
    }
  }
};

struct Q2K {
  static constexpr size_t kBlockBytes = 84;
  static constexpr bool kFoldMins = false;
  static Prep prepare(const uint8_t* b) {
    const uint8x16_t s = vld1q_u8(b);
    const uint8x16_t sc = vandq_u8(s, vdupq_n_u8(0x0F));
    const uint8x16_t m = vshrq_n_u8(s, 4);
    Prep p;
    vst1q_s16(p.sc, vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(sc))));
    vst1q_s16(p.sc + 8, vreinterpretq_s16_u16(vmovl_high_u8(sc)));
    p.m16[0] = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(m)));
    p.m16[1] = vreinterpretq_s16_u16(vmovl_high_u8(m));
    p.d = half_to_float(b + 80);
    p.dm = -half_to_float(b + 82);
    return p;
  }
  template <int kC>
  static void quants(const uint8_t* b, uint8x16_t* q) {
    for (int h = 0; h < 2; ++h)
      q[h] = field<2 * (kC % 4), 3>(vld1q_u8(b + 16 + 32 * (kC / 4) + 16 * h));
  }
};

// Adds chunk kC of a super-block, times its group scales, to the integer sums of T tokens;
// x[j] is token j's super-block.
template <class F, int T, int kC>
inline void chunk(const uint8_t* b, const Prep& p, const int8_t* const* x, int32x4_t* sum) {
  uint8x16_t qu[2];
  F::template quants<kC>(b, qu);
  const int8x16_t q0 = vreinterpretq_s8_u8(qu[0]);
  const int8x16_t q1 = vreinterpretq_s8_u8(qu[1]);
  const int16_t sc0 = p.sc[2 * kC], sc1 = p.sc[2 * kC + 1];
#pragma GCC unroll 4
  for (int j = 0; j < T; ++j) {
    const int8x16_t x0 = vld1q_s8(x[j] + 32 * kC);
    const int8x16_t x1 = vld1q_s8(x[j] + 32 * kC + 16);
    const int16x8_t p0 = vmlal_high_s8(vmull_s8(vget_low_s8(q0), vget_low_s8(x0)), q0, x0);
    const int16x8_t p1 = vmlal_high_s8(vmull_s8(vget_low_s8(q1), vget_low_s8(x1)), q1, x1);
    sum[j] = vmlal_high_n_s16(vmlal_n_s16(sum[j], vget_low_s16(p0), sc0), p0, sc0);
    sum[j] = vmlal_high_n_s16(vmlal_n_s16(sum[j], vget_low_s16(p1), sc1), p1, sc1);
  }
}

// Row r x tokens [t, t + T), all columns.
template <class F, int T>
void tile(const GemmArgs& a, const BlockKLayout& l, int64_t r, int64_t t) {
  const uint8_t* row = a.w + static_cast<size_t>(r) * a.w_row_bytes;
  const uint8_t* x[T];
  for (int j = 0; j < T; ++j) x[j] = a.act + static_cast<size_t>(t + j) * a.act_stride;
  float32x4_t acc[T];
  for (int j = 0; j < T; ++j) acc[j] = vdupq_n_f32(0.0f);
  for (size_t s = 0; s < l.n_super; ++s) {
    const uint8_t* b = row + s * F::kBlockBytes;
    if constexpr (T == 1) {
      for (size_t line = 0; line < F::kBlockBytes; line += 64) {
        __builtin_prefetch(b + kPrefetchBytes + line);
      }
    }
    const Prep prep = F::prepare(b);
    const int8_t* xs[T];
    int32x4_t sum[T];
    for (int j = 0; j < T; ++j) {
      xs[j] = reinterpret_cast<const int8_t*>(x[j]) + 256 * s;
      sum[j] = vdupq_n_s32(0);
    }
    [&]<int... kC>(std::integer_sequence<int, kC...>) { (chunk<F, T, kC>(b, prep, xs, sum), ...); }
    (std::make_integer_sequence<int, 8>{});
#pragma GCC unroll 4
    for (int j = 0; j < T; ++j) {
      const auto* bsums = reinterpret_cast<const int16_t*>(x[j] + l.bsums_offset) + 16 * s;
      const int16x8_t bs0 = vld1q_s16(bsums), bs1 = vld1q_s16(bsums + 8);
      int32x4_t mins = vmull_s16(vget_low_s16(prep.m16[0]), vget_low_s16(bs0));
      mins = vmlal_high_s16(mins, prep.m16[0], bs0);
      mins = vmlal_s16(mins, vget_low_s16(prep.m16[1]), vget_low_s16(bs1));
      mins = vmlal_high_s16(mins, prep.m16[1], bs1);
      const float dx = reinterpret_cast<const float*>(x[j] + l.d_offset)[s];
      if constexpr (F::kFoldMins) {
        sum[j] = vaddq_s32(sum[j], mins);
      } else {
        acc[j] = vfmaq_n_f32(acc[j], vcvtq_f32_s32(mins), prep.dm * dx);
      }
      acc[j] = vfmaq_n_f32(acc[j], vcvtq_f32_s32(sum[j]), prep.d * dx);
    }
  }
  for (int j = 0; j < T; ++j) a.y[(t + j) * a.ldy + r] = vaddvq_f32(acc[j]);
}

template <class F>
void gemm(const GemmArgs& a, int64_t r0, int64_t r1, int64_t t0, int64_t t1) {
  const BlockKLayout l = block_k_layout(a.n_cols);
  auto tiles = [&]<int R, int T>(int64_t r, int64_t t) { tile<F, T>(a, l, r, t); };
  run_tiles<1, 4>(tiles, a.w_row_bytes, r0, r1, t0, t1);
}

template <class F>
void add(IsaKernels& k, GgmlType type) {
  k.types[static_cast<int>(type)] = TypeKernel{&gemm<F>, ActFormat::kQ8BlockK, 0};
}

}  // namespace

void add_k_kernels(IsaKernels& k) {
  add<Q2K>(k, GgmlType::kQ2_K);
  add<Q3K>(k, GgmlType::kQ3_K);
  add<Q4K>(k, GgmlType::kQ4_K);
  add<Q5K>(k, GgmlType::kQ5_K);
  add<Q6K>(k, GgmlType::kQ6_K);
}

}  // namespace pensieve::cpu::neon
