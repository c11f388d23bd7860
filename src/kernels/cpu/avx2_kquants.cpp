// AVX2 kernels for the K-quants (Q2_K..Q6_K) against kQ8BlockK activations. A super-block is
// eight chunks of 32 elements in natural order: vpmaddubsw multiplies unsigned weights with signed
// activations, vpmaddwd applies the 16-element group scales, and the whole super-block sums in
// int32; mins and zero points come back through the activations' 16-element sums.
#include "kernels/cpu/act_layout.h"
#include "kernels/cpu/avx2_kernels.h"
#include "kernels/cpu/avx2_util.h"
#include "kernels/cpu/tiling.h"

namespace pensieve::cpu::avx2 {
namespace {

constexpr int kPrefetchBytes = 2048;  // decode: how far ahead of the weight stream to prefetch

// One row's super-block, prepared once for all tokens.
struct Prep {
  __m256i sc16;  // 16 int16 scales of the 16-element groups
  __m256i m16;   // 16 int16 multipliers of the activation group sums
  float d;       // result = dx * (d * sum(sc * q * x) + dm * sum(m16 * bsums))
  float dm;      // unused where F::kFoldMins (m16 then shares d and joins the integer sum)
};

// Chunk c's 16 pair lanes take the scale of their group: lanes 0-7 group 2c, 8-15 group 2c + 1.
inline __m256i chunk_scales(__m256i sc16, int c) {
  const __m256i half = c < 4 ? _mm256_permute2x128_si256(sc16, sc16, 0x00)
                             : _mm256_permute2x128_si256(sc16, sc16, 0x11);
  const char lo = static_cast<char>(4 * (c % 4));
  const char hi = static_cast<char>(4 * (c % 4) + 2);
  const __m256i shuffle =
      _mm256_setr_epi8(lo, lo + 1, lo, lo + 1, lo, lo + 1, lo, lo + 1, lo, lo + 1, lo, lo + 1, lo,
                       lo + 1, lo, lo + 1, hi, hi + 1, hi, hi + 1, hi, hi + 1, hi, hi + 1, hi,
                       hi + 1, hi, hi + 1, hi, hi + 1, hi, hi + 1);
  return _mm256_shuffle_epi8(half, shuffle);
}

// Byte-wise (v >> shift) & mask for a shift below 8.
inline __m256i field(__m256i v, int shift, int mask) {
  return _mm256_and_si256(_mm256_srli_epi16(v, shift), _mm256_set1_epi8(static_cast<char>(mask)));
}

inline void scales_mins_6bit(const uint8_t* p, Prep* prep) {
  uint32_t u[4] = {load_u32(p), load_u32(p + 4), load_u32(p + 8), 0};
  u[3] = ((u[2] >> 4) & 0x0f0f0f0f) | (((u[1] >> 6) & 0x03030303) << 4);
  const uint32_t mins_lo = u[1] & 0x3f3f3f3f;
  u[1] = (u[2] & 0x0f0f0f0f) | (((u[0] >> 6) & 0x03030303) << 4);
  u[2] = mins_lo;
  u[0] &= 0x3f3f3f3f;
  const __m128i v = _mm_setr_epi32(static_cast<int>(u[0]), static_cast<int>(u[1]),
                                   static_cast<int>(u[2]), static_cast<int>(u[3]));
  prep->sc16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(v, v));
  prep->m16 = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(v, v));
}

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
  static __m256i quants(const uint8_t* b, int c) {
    return field(loadu256(b + 16 + 32 * (c / 2)), 4 * (c % 2), 0x0F);
  }
};

struct Q5K {
  static constexpr size_t kBlockBytes = 176;
  static constexpr bool kFoldMins = false;
  static Prep prepare(const uint8_t* b) { return Q4K::prepare(b); }
  static __m256i quants(const uint8_t* b, int c) {
    const __m256i lo = field(loadu256(b + 48 + 32 * (c / 2)), 4 * (c % 2), 0x0F);
    const __m256i hi = _mm256_slli_epi16(field(loadu256(b + 16), c, 1), 4);
    return _mm256_or_si256(lo, hi);
  }
};

struct Q6K {
  static constexpr size_t kBlockBytes = 210;
  static constexpr bool kFoldMins = true;
  static Prep prepare(const uint8_t* b) {
    Prep p;
    p.sc16 = _mm256_cvtepi8_epi16(loadu128(b + 192));
    p.m16 = _mm256_sub_epi16(_mm256_setzero_si256(), _mm256_slli_epi16(p.sc16, 5));
    p.d = half_to_float(b + 208);
    p.dm = 0;
    return p;
  }
  static __m256i quants(const uint8_t* b, int c) {
    const int h = c / 4, k = c % 4;
    const __m256i lo = field(loadu256(b + 64 * h + 32 * (k % 2)), 4 * (k / 2), 0x0F);
    const __m256i hi = field(loadu256(b + 128 + 32 * h), 2 * k, 3);
    return _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
  }
};

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
    Prep p;
    p.sc16 = _mm256_sub_epi16(_mm256_cvtepu8_epi16(v), _mm256_set1_epi16(32));
    p.m16 = _mm256_sub_epi16(_mm256_setzero_si256(), _mm256_slli_epi16(p.sc16, 2));
    p.d = half_to_float(b + 108);
    p.dm = 0;
    return p;
  }
  static __m256i quants(const uint8_t* b, int c) {
    const __m256i lo = field(loadu256(b + 32 + 32 * (c / 4)), 2 * (c % 4), 3);
    const __m256i hi = _mm256_slli_epi16(field(loadu256(b), c, 1), 2);
    return _mm256_or_si256(lo, hi);
  }
};

struct Q2K {
  static constexpr size_t kBlockBytes = 84;
  static constexpr bool kFoldMins = false;
  static Prep prepare(const uint8_t* b) {
    const __m256i s = _mm256_cvtepu8_epi16(loadu128(b));
    Prep p;
    p.sc16 = _mm256_and_si256(s, _mm256_set1_epi16(0x0F));
    p.m16 = _mm256_srli_epi16(s, 4);
    p.d = half_to_float(b + 80);
    p.dm = -half_to_float(b + 82);
    return p;
  }
  static __m256i quants(const uint8_t* b, int c) {
    return field(loadu256(b + 16 + 32 * (c / 4)), 2 * (c % 4), 3);
  }
};

// Row r x tokens [t, t + T), all columns.
template <class F, int T>
void tile(const GemmArgs& a, const BlockKLayout& l, int64_t r, int64_t t) {
  const uint8_t* row = a.w + static_cast<size_t>(r) * a.w_row_bytes;
  const uint8_t* x[T];
  for (int j = 0; j < T; ++j) x[j] = a.act + static_cast<size_t>(t + j) * a.act_stride;
  __m256 acc[T];
  for (int j = 0; j < T; ++j) acc[j] = _mm256_setzero_ps();
  for (size_t s = 0; s < l.n_super; ++s) {
    const uint8_t* b = row + s * F::kBlockBytes;
    if constexpr (T == 1) {
      for (size_t line = 0; line < F::kBlockBytes; line += 64) {
        _mm_prefetch(reinterpret_cast<const char*>(b) + kPrefetchBytes + line, _MM_HINT_T0);
      }
    }
    const Prep prep = F::prepare(b);
    __m256i sum[T];
    for (int j = 0; j < T; ++j) sum[j] = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int c = 0; c < 8; ++c) {
      const __m256i q = F::quants(b, c);
      const __m256i sc = chunk_scales(prep.sc16, c);
#pragma GCC unroll 4
      for (int j = 0; j < T; ++j) {
        const __m256i xq =
            _mm256_load_si256(reinterpret_cast<const __m256i*>(x[j] + 256 * s + 32 * c));
        sum[j] = _mm256_add_epi32(sum[j], _mm256_madd_epi16(_mm256_maddubs_epi16(q, xq), sc));
      }
    }
#pragma GCC unroll 4
    for (int j = 0; j < T; ++j) {
      const __m256i bsums =
          _mm256_load_si256(reinterpret_cast<const __m256i*>(x[j] + l.bsums_offset + 32 * s));
      const float dx = reinterpret_cast<const float*>(x[j] + l.d_offset)[s];
      const __m256i mins = _mm256_madd_epi16(prep.m16, bsums);
      if constexpr (F::kFoldMins) {
        sum[j] = _mm256_add_epi32(sum[j], mins);
      } else {
        acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(mins), _mm256_set1_ps(prep.dm * dx), acc[j]);
      }
      acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum[j]), _mm256_set1_ps(prep.d * dx), acc[j]);
    }
  }
  for (int j = 0; j < T; ++j) a.y[(t + j) * a.ldy + r] = hsum(acc[j]);
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

}  // namespace pensieve::cpu::avx2
