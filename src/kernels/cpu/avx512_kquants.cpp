// AVX-512 kernels for the K-quants (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K) against kQ8BlockK activations.
// A 256-element super-block is four chunks of 64 elements in natural order: vpdpbusd multiplies
// unsigned weights with signed activations into int32 sums of 4, two chunks' sums pack exactly
// into int16, and vpdpwssd scales them by their 16-element group scales, summing a whole
// super-block in int32; mins and zero points come back through the activations' 16-element sums.
// A few float operations per super-block and token.
#include <cstring>

#include "kernels/cpu/act_layout.h"
#include "kernels/cpu/avx512_kernels.h"
#include "kernels/cpu/simd_intrinsics.h"
#include "kernels/cpu/tiling.h"

namespace pensieve::cpu::avx512 {
namespace {

constexpr int kPrefetchBytes = 2048;  // decode: how far ahead of the weight stream to prefetch

struct WordIndex {
  alignas(64) uint16_t v[32];
};

// Chunks c and c + 1 give 16 int32 lanes each (lane l: elements 4l..4l+3, all in group l / 4);
// vpackssdw interleaves them per 128-bit lane: word 8L + k is chunk c's lane 4L + k for k < 4 and
// chunk c + 1's lane 4L + k - 4 otherwise. Each word takes its group's scale.
constexpr WordIndex packed_scale_index(int c) {
  WordIndex idx{};
  for (int i = 0; i < 32; ++i) {
    const int lane = i / 8, k = i % 8;
    idx.v[i] = static_cast<uint16_t>(k < 4 ? 4 * c + lane : 4 * (c + 1) + lane);
  }
  return idx;
}
constexpr WordIndex kPackedScales[2] = {packed_scale_index(0), packed_scale_index(2)};

inline float half_to_float(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// One row's super-block, prepared once for all tokens.
struct Prep {
  __m512i sc16;  // 16 int16 scales of the 16-element groups (upper half zero)
  __m512i m16;   // 16 int16 multipliers of the activation group sums (upper half zero)
  float d;       // result = dx * (d * sum(sc * q * x) + dm * sum(m16 * bsums))
  float dm;      // unused where F::kFoldMins (m16 then shares d and joins the integer sum)
};

inline __m512i zext(__m256i v) { return _mm512_zextsi256_si512(v); }

inline __m512i broadcast32(const uint8_t* p) {
  return _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// 2-bit fields of 32 bytes at p for chunk c: shift by 4c' and 4c'+2 for the lower and upper
// 32 lanes, where c' = c % 2 (two chunks per 32 bytes).
inline __m512i two_bit_fields(const uint8_t* p, int c) {
  const int s = 4 * (c % 2);
  const __m512i counts =
      _mm512_mask_blend_epi16(0xFFFF0000u, _mm512_set1_epi16(static_cast<short>(s)),
                              _mm512_set1_epi16(static_cast<short>(s + 2)));
  return _mm512_and_si512(_mm512_srlv_epi16(broadcast32(p), counts), _mm512_set1_epi8(3));
}

// Bit b of each of the 32 bytes at p for the lower lanes, bit b + 1 for the upper lanes.
inline __mmask64 bit_pairs(const uint8_t* p, int b) {
  const __m512i sel =
      _mm512_mask_blend_epi8(0xFFFFFFFF00000000ull, _mm512_set1_epi8(static_cast<char>(1 << b)),
                             _mm512_set1_epi8(static_cast<char>(1 << (b + 1))));
  return _mm512_test_epi8_mask(broadcast32(p), sel);
}

// 8 6-bit scales and 8 6-bit mins packed in 12 bytes (Q4_K, Q5_K), each repeated for the two
// 16-element groups of its 32-element sub-block.
inline void scales_mins_6bit(const uint8_t* p, __m512i* sc16, __m512i* m16) {
  uint32_t u[4] = {load_u32(p), load_u32(p + 4), load_u32(p + 8), 0};
  u[3] = ((u[2] >> 4) & 0x0f0f0f0f) | (((u[1] >> 6) & 0x03030303) << 4);
  const uint32_t mins_lo = u[1] & 0x3f3f3f3f;
  u[1] = (u[2] & 0x0f0f0f0f) | (((u[0] >> 6) & 0x03030303) << 4);
  u[2] = mins_lo;
  u[0] &= 0x3f3f3f3f;
  const __m128i v = _mm_setr_epi32(static_cast<int>(u[0]), static_cast<int>(u[1]),
                                   static_cast<int>(u[2]), static_cast<int>(u[3]));
  *sc16 = zext(_mm256_cvtepu8_epi16(_mm_unpacklo_epi8(v, v)));
  *m16 = zext(_mm256_cvtepu8_epi16(_mm_unpackhi_epi8(v, v)));
}

// Q4_K {f16 d, dmin; u8 scales[12]; u8 qs[128]}: x = d * sc * q - dmin * m.
struct Q4K {
  static constexpr size_t kBlockBytes = 144;
  static constexpr bool kFoldMins = false;
  static Prep prepare(const uint8_t* b) {
    Prep p;
    scales_mins_6bit(b + 4, &p.sc16, &p.m16);
    p.d = half_to_float(b);
    p.dm = -half_to_float(b + 2);
    return p;
  }
  static __m512i quants(const uint8_t* b, int c) {
    __m512i q = broadcast32(b + 16 + 32 * c);
    q = _mm512_mask_srli_epi16(q, 0xFFFF0000u, q, 4);
    return _mm512_and_si512(q, _mm512_set1_epi8(0x0F));
  }
};

// Q5_K {f16 d, dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]}: Q4_K plus a fifth bit from qh.
struct Q5K {
  static constexpr size_t kBlockBytes = 176;
  static constexpr bool kFoldMins = false;
  static Prep prepare(const uint8_t* b) { return Q4K::prepare(b); }
  static __m512i quants(const uint8_t* b, int c) {
    __m512i q = broadcast32(b + 48 + 32 * c);
    q = _mm512_mask_srli_epi16(q, 0xFFFF0000u, q, 4);
    q = _mm512_and_si512(q, _mm512_set1_epi8(0x0F));
    return _mm512_mask_add_epi8(q, bit_pairs(b + 16, 2 * c), q, _mm512_set1_epi8(16));
  }
};

// Q6_K {u8 ql[128]; u8 qh[64]; s8 scales[16]; f16 d}: x = d * sc * (q - 32).
struct Q6K {
  static constexpr size_t kBlockBytes = 210;
  static constexpr bool kFoldMins = true;
  static Prep prepare(const uint8_t* b) {
    Prep p;
    const __m256i sc =
        _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 192)));
    p.sc16 = zext(sc);
    p.m16 = zext(_mm256_sub_epi16(_mm256_setzero_si256(), _mm256_slli_epi16(sc, 5)));
    p.d = half_to_float(b + 208);
    p.dm = 0;
    return p;
  }
  static __m512i quants(const uint8_t* b, int c) {
    const __m512i ql = _mm512_loadu_si512(b + 64 * (c / 2));
    const __m512i lo = c % 2 == 0 ? ql : _mm512_srli_epi16(ql, 4);
    // Bits 2k..2k+1 of qh to bits 4..5: shift left 4, 2 (even chunk) or right 0, 2 (odd).
    const __m512i qh = broadcast32(b + 128 + 32 * (c / 2));
    const __m512i counts = _mm512_mask_blend_epi16(
        0xFFFF0000u, _mm512_set1_epi16(c % 2 == 0 ? 4 : 0), _mm512_set1_epi16(2));
    const __m512i hi = c % 2 == 0 ? _mm512_sllv_epi16(qh, counts) : _mm512_srlv_epi16(qh, counts);
    // (hi & 0x30) | (lo & 0x0f)
    return _mm512_ternarylogic_epi32(hi, _mm512_set1_epi8(0x30),
                                     _mm512_and_si512(lo, _mm512_set1_epi8(0x0F)), 0xEA);
  }
};

// Q3_K {u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d}: x = d * (sc - 32) * (q + 4 h - 4).
struct Q3K {
  static constexpr size_t kBlockBytes = 110;
  static constexpr bool kFoldMins = true;
  static Prep prepare(const uint8_t* b) {
    const uint32_t a0 = load_u32(b + 96), a1 = load_u32(b + 100), t = load_u32(b + 104);
    const uint32_t s0 = (a0 & 0x0f0f0f0f) | (((t >> 0) & 0x03030303) << 4);
    const uint32_t s1 = (a1 & 0x0f0f0f0f) | (((t >> 2) & 0x03030303) << 4);
    const uint32_t s2 = ((a0 >> 4) & 0x0f0f0f0f) | (((t >> 4) & 0x03030303) << 4);
    const uint32_t s3 = ((a1 >> 4) & 0x0f0f0f0f) | (((t >> 6) & 0x03030303) << 4);
    const __m128i v = _mm_setr_epi32(static_cast<int>(s0), static_cast<int>(s1),
                                     static_cast<int>(s2), static_cast<int>(s3));
    const __m256i sc = _mm256_sub_epi16(_mm256_cvtepu8_epi16(v), _mm256_set1_epi16(32));
    Prep p;
    p.sc16 = zext(sc);
    p.m16 = zext(_mm256_sub_epi16(_mm256_setzero_si256(), _mm256_slli_epi16(sc, 2)));
    p.d = half_to_float(b + 108);
    p.dm = 0;
    return p;
  }
  static __m512i quants(const uint8_t* b, int c) {
    const __m512i q = two_bit_fields(b + 32 + 32 * (c / 2), c);
    return _mm512_mask_add_epi8(q, bit_pairs(b, 2 * c), q, _mm512_set1_epi8(4));
  }
};

// Q2_K {u8 scales[16]; u8 qs[64]; f16 d, dmin}: x = d * (sc & 15) * q - dmin * (sc >> 4).
struct Q2K {
  static constexpr size_t kBlockBytes = 84;
  static constexpr bool kFoldMins = false;
  static Prep prepare(const uint8_t* b) {
    const __m256i s = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b)));
    Prep p;
    p.sc16 = zext(_mm256_and_si256(s, _mm256_set1_epi16(0x0F)));
    p.m16 = zext(_mm256_srli_epi16(s, 4));
    p.d = half_to_float(b + 80);
    p.dm = -half_to_float(b + 82);
    return p;
  }
  static __m512i quants(const uint8_t* b, int c) {
    return two_bit_fields(b + 16 + 32 * (c / 2), c);
  }
};

// Two chunks' int32 dot products (vpdpbusd: lane l sums elements 4l..4l+3) packed to int16,
// interleaved as packed_scale_index() describes; |lane| <= 4 * 63 * 127 < 2^15, so it is exact.
inline __m512i chunk_pair_dot(__m512i q0, __m512i q1, const int8_t* xq) {
  const __m512i d0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q0, _mm512_load_si512(xq));
  const __m512i d1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q1, _mm512_load_si512(xq + 64));
  return _mm512_packs_epi32(d0, d1);
}

struct ActPtrs {
  const int8_t* qs;
  const float* d;
  const int16_t* bsums;
};

// Rows [r, r + R) x tokens [t, t + T), all columns.
template <class F, int R, int T>
void tile(const GemmArgs& a, const BlockKLayout& l, int64_t r, int64_t t) {
  const uint8_t* rows[R];
  for (int i = 0; i < R; ++i) rows[i] = a.w + static_cast<size_t>(r + i) * a.w_row_bytes;
  ActPtrs x[T];
  for (int j = 0; j < T; ++j) {
    const uint8_t* base = a.act + static_cast<size_t>(t + j) * a.act_stride;
    x[j] = {reinterpret_cast<const int8_t*>(base),
            reinterpret_cast<const float*>(base + l.d_offset),
            reinterpret_cast<const int16_t*>(base + l.bsums_offset)};
  }
  __m512 acc[R][T];
  for (int i = 0; i < R; ++i) {
    for (int j = 0; j < T; ++j) acc[i][j] = _mm512_setzero_ps();
  }
  for (size_t s = 0; s < l.n_super; ++s) {
    Prep prep[R];
    for (int i = 0; i < R; ++i) {
      const uint8_t* b = rows[i] + s * F::kBlockBytes;
      if constexpr (T == 1) {
        for (size_t line = 0; line < F::kBlockBytes; line += 64) {
          _mm_prefetch(reinterpret_cast<const char*>(b) + kPrefetchBytes + line, _MM_HINT_T0);
        }
      }
      prep[i] = F::prepare(b);
    }
    __m512i sum[R][T];
    for (int i = 0; i < R; ++i) {
      for (int j = 0; j < T; ++j) sum[i][j] = _mm512_setzero_si512();
    }
#pragma GCC unroll 2
    for (int c = 0; c < 4; c += 2) {
      const __m512i idx = _mm512_load_si512(kPackedScales[c / 2].v);
#pragma GCC unroll 4
      for (int i = 0; i < R; ++i) {
        const uint8_t* b = rows[i] + s * F::kBlockBytes;
        const __m512i q0 = F::quants(b, c);
        const __m512i q1 = F::quants(b, c + 1);
        const __m512i sc = _mm512_permutexvar_epi16(idx, prep[i].sc16);
#pragma GCC unroll 8
        for (int j = 0; j < T; ++j) {
          const int8_t* xq = x[j].qs + 256 * s + 64 * c;
          sum[i][j] = _mm512_dpwssd_epi32(sum[i][j], chunk_pair_dot(q0, q1, xq), sc);
        }
      }
    }
    // acc += dx * (d * sum + dm * mins); with kFoldMins the zero point joins the integer sum.
#pragma GCC unroll 8
    for (int j = 0; j < T; ++j) {
      const __m512i bsums =
          zext(_mm256_load_si256(reinterpret_cast<const __m256i*>(x[j].bsums + 16 * s)));
      const __m512 dx = _mm512_set1_ps(x[j].d[s]);
#pragma GCC unroll 4
      for (int i = 0; i < R; ++i) {
        __m512 v;
        if constexpr (F::kFoldMins) {
          sum[i][j] = _mm512_dpwssd_epi32(sum[i][j], prep[i].m16, bsums);
          v = _mm512_mul_ps(_mm512_cvtepi32_ps(sum[i][j]), _mm512_set1_ps(prep[i].d));
        } else {
          const __m512 mins = _mm512_cvtepi32_ps(_mm512_madd_epi16(prep[i].m16, bsums));
          v = _mm512_mul_ps(_mm512_cvtepi32_ps(sum[i][j]), _mm512_set1_ps(prep[i].d));
          v = _mm512_fmadd_ps(mins, _mm512_set1_ps(prep[i].dm), v);
        }
        acc[i][j] = _mm512_fmadd_ps(v, dx, acc[i][j]);
      }
    }
  }
  for (int i = 0; i < R; ++i) {
    for (int j = 0; j < T; ++j) a.y[(t + j) * a.ldy + r + i] = _mm512_reduce_add_ps(acc[i][j]);
  }
}

template <class F>
void gemm(const GemmArgs& a, int64_t r0, int64_t r1, int64_t t0, int64_t t1) {
  const BlockKLayout l = block_k_layout(a.n_cols);
  auto tiles = [&]<int R, int T>(int64_t r, int64_t t) { tile<F, R, T>(a, l, r, t); };
  run_tiles<1, 8>(tiles, a.w_row_bytes, r0, r1, t0, t1);
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

}  // namespace pensieve::cpu::avx512
