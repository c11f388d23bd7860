// AVX2 kernels for the 32-element formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) against kQ8Block32Split
// activations, two blocks per 256-bit vector: one vector holds both blocks' first halves (low
// nibbles), another their second halves, vpmaddubsw multiplies unsigned weights with signed
// activations and each block owns 4 lanes for its float scale. The zero point comes back through
// each activation block's integer bias; Q8_0's signed weights use the sign trick instead.
#include "kernels/cpu/act_layout.h"
#include "kernels/cpu/avx2_kernels.h"
#include "kernels/cpu/avx2_util.h"
#include "kernels/cpu/tiling.h"

namespace pensieve::cpu::avx2 {
namespace {

constexpr int kPrefetchBytes = 2048;  // decode: how far ahead of the weight stream to prefetch

// Two weight blocks ready for the dot products.
struct Pair {
  __m256i lo;  // elements 0..15 of block 0, then of block 1
  __m256i hi;  // elements 16..31
  __m256 d;    // [d0 x4 | d1 x4]
  __m256 m;    // mins, same lanes (formats with a min only)
};

// Format traits: block bytes, zero point, byte offsets of m, qh and qs (d is at 0; -1: none).
template <int kBytes, int kZero, int kM, int kQh, int kQs>
struct Format {
  static constexpr int kBlockBytes = kBytes;
  static constexpr int kOffset = kZero;
  static constexpr bool kHasMin = kM >= 0;
  static constexpr bool kSigned = kQs + 32 == kBytes;  // a signed byte per quant: Q8_0
  static constexpr int kMByte = kM, kQhByte = kQh, kQsByte = kQs;
};

using Q4_0 = Format<18, 8, -1, -1, 2>;  // {f16 d; u8 qs[16]}: x = d * (q - 8)
using Q4_1 = Format<20, 0, 2, -1, 4>;   // {f16 d, m; u8 qs[16]}: x = d * q + m
using Q5_0 = Format<22, 16, -1, 2, 6>;  // {f16 d; u32 qh; u8 qs[16]}: x = d * (q - 16)
using Q5_1 = Format<24, 0, 2, 4, 8>;    // {f16 d, m; u32 qh; u8 qs[16]}: x = d * q + m
using Q8_0 = Format<34, 0, -1, -1, 2>;  // {f16 d; s8 qs[32]}: x = d * q

inline __m256 two_halves(const uint8_t* b0, const uint8_t* b1) {
  const float h1 = b1 != nullptr ? half_to_float(b1) : 0.0f;
  return _mm256_set_m128(_mm_set1_ps(h1), _mm_set1_ps(half_to_float(b0)));
}

// 16 bytes at offset `at` of block 0, then of block 1 (zeros when b1 is null).
inline __m256i two_loads(const uint8_t* b0, const uint8_t* b1, int at) {
  const __m128i v1 = b1 != nullptr ? loadu128(b1 + at) : _mm_setzero_si128();
  return _mm256_set_m128i(v1, loadu128(b0 + at));
}

// b1 is null for a row's odd last block.
template <class F>
inline Pair load_pair(const uint8_t* b0, const uint8_t* b1) {
  Pair w;
  if constexpr (F::kSigned) {
    w.lo = two_loads(b0, b1, F::kQsByte);
    w.hi = two_loads(b0, b1, F::kQsByte + 16);
  } else {
    const __m256i v = two_loads(b0, b1, F::kQsByte);
    const __m256i nibble = _mm256_set1_epi8(0x0F);
    w.lo = _mm256_and_si256(v, nibble);
    w.hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble);
  }
  if constexpr (F::kQhByte >= 0) {
    const uint32_t h0 = load_u32(b0 + F::kQhByte);
    const uint32_t h1 = b1 != nullptr ? load_u32(b1 + F::kQhByte) : 0;
    const __m256i sixteen = _mm256_set1_epi8(16);
    const __m256i lo = bits_to_bytes((h0 & 0xFFFFu) | (h1 << 16));
    const __m256i hi = bits_to_bytes((h0 >> 16) | (h1 & 0xFFFF0000u));
    w.lo = _mm256_or_si256(w.lo, _mm256_and_si256(lo, sixteen));
    w.hi = _mm256_or_si256(w.hi, _mm256_and_si256(hi, sixteen));
  }
  w.d = two_halves(b0, b1);
  if constexpr (F::kHasMin) {
    w.m = two_halves(b0 + F::kMByte, b1 != nullptr ? b1 + F::kMByte : nullptr);
  }
  return w;
}

// Activations of one token: pair p (blocks 2p, 2p + 1) sits in quad p / 2, half p % 2.
struct ActPtrs {
  const int8_t* qs;
  const float* d4;
  const int32_t* bias4;
  const float* s4;
};

// Sums of 4 products per int32 lane, block 0 in lanes 0-3 and block 1 in lanes 4-7.
template <class F>
inline __m256i pair_sums(const Pair& w, const int8_t* x_lo, const int8_t* x_hi) {
  __m256i xl = _mm256_load_si256(reinterpret_cast<const __m256i*>(x_lo));
  __m256i xh = _mm256_load_si256(reinterpret_cast<const __m256i*>(x_hi));
  const __m256i ones = _mm256_set1_epi16(1);
  if constexpr (F::kSigned) {  // |w| times x with w's sign; pairs reach 2 * 127 * 127 < 2^15
    xl = _mm256_sign_epi8(xl, w.lo);
    xh = _mm256_sign_epi8(xh, w.hi);
    const __m256i l =
        _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(w.lo, w.lo), xl), ones);
    const __m256i h =
        _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(w.hi, w.hi), xh), ones);
    return _mm256_add_epi32(l, h);
  } else {  // q <= 31: two pair sums stay below 4 * 31 * 127 < 2^15
    const __m256i p =
        _mm256_add_epi16(_mm256_maddubs_epi16(w.lo, xl), _mm256_maddubs_epi16(w.hi, xh));
    return _mm256_madd_epi16(p, ones);
  }
}

template <class F>
inline __m256 pair_dot(const Pair& w, const ActPtrs& x, int64_t p, __m256 acc) {
  const int64_t base = 128 * (p / 2) + 32 * (p % 2);
  __m256i sum = pair_sums<F>(w, x.qs + base, x.qs + base + 64);
  sum = _mm256_add_epi32(sum, _mm256_load_si256(reinterpret_cast<const __m256i*>(x.bias4 + 8 * p)));
  const __m256 scale = _mm256_mul_ps(w.d, _mm256_load_ps(x.d4 + 8 * p));
  acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), scale, acc);
  if constexpr (F::kHasMin) acc = _mm256_fmadd_ps(w.m, _mm256_load_ps(x.s4 + 8 * p), acc);
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
            reinterpret_cast<const int32_t*>(base + l.bias4_offset),
            reinterpret_cast<const float*>(base + l.s4_offset)};
  }
  __m256 acc[T];
  for (int j = 0; j < T; ++j) acc[j] = _mm256_setzero_ps();
  const int64_t n_blocks = a.n_cols / 32;
  for (int64_t p = 0; 2 * p < n_blocks; ++p) {
    const uint8_t* b0 = row + F::kBlockBytes * 2 * p;
    const uint8_t* b1 = 2 * p + 1 < n_blocks ? b0 + F::kBlockBytes : nullptr;
    if constexpr (T == 1) {
      _mm_prefetch(reinterpret_cast<const char*>(b0) + kPrefetchBytes, _MM_HINT_T0);
    }
    const Pair w = load_pair<F>(b0, b1);
#pragma GCC unroll 4
    for (int j = 0; j < T; ++j) acc[j] = pair_dot<F>(w, x[j], p, acc[j]);
  }
  for (int j = 0; j < T; ++j) a.y[(t + j) * a.ldy + r] = hsum(acc[j]);
}

template <class F>
void gemm(const GemmArgs& a, int64_t r0, int64_t r1, int64_t t0, int64_t t1) {
  const Block32SplitLayout l = block32_split_layout(a.n_cols);
  auto tiles = [&]<int R, int T>(int64_t r, int64_t t) { tile<F, T>(a, l, r, t); };
  run_tiles<1, 4>(tiles, a.w_row_bytes, r0, r1, t0, t1);
}

template <class F>
void add(IsaKernels& k, GgmlType type) {
  k.types[static_cast<int>(type)] = TypeKernel{&gemm<F>, ActFormat::kQ8Block32Split, F::kOffset};
}

}  // namespace

void add_legacy_kernels(IsaKernels& k) {
  add<Q4_0>(k, GgmlType::kQ4_0);
  add<Q4_1>(k, GgmlType::kQ4_1);
  add<Q5_0>(k, GgmlType::kQ5_0);
  add<Q5_1>(k, GgmlType::kQ5_1);
  add<Q8_0>(k, GgmlType::kQ8_0);
}

}  // namespace pensieve::cpu::avx2
