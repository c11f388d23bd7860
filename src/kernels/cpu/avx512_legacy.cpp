// AVX-512 VNNI kernels for the 32-element formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) against
// kQ8Block32Split activations. Four blocks go at a time: two-source word permutes gather their
// quants as the blocks' first halves (low nibbles) and second halves (high nibbles), two vpdpbusd
// multiply them with the matching activation halves, and every block owns 4 lanes for its float
// scale. Weights are unsigned (q + zero point; Q8_0 + 128); the zero point comes back through
// each activation block's integer bias.
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

// Word s of a quad (relative to its start) as an index into the concatenation of two 64-byte
// loads, the first at byte 0 and the second at byte second_at.
constexpr uint16_t two_source(int s, int second_at) {
  return static_cast<uint16_t>(s < 32 ? s : 32 + s - second_at / 2);
}

// Lanes 8b..8b+7: the 16 quant bytes of block b (words qs_word.. of each block).
constexpr WordIndex quant_index(int block_words, int qs_word, int second_at) {
  WordIndex idx{};
  for (int i = 0; i < 32; ++i) {
    idx.v[i] = two_source((i / 8) * block_words + qs_word + i % 8, second_at);
  }
  return idx;
}

// Lanes 8b..8b+7: words qs_word.. of block b, from loads at bytes `first` and `first` + 64.
constexpr WordIndex high_index(int block_words, int qs_word, int first) {
  WordIndex idx{};
  for (int i = 0; i < 32; ++i) {
    idx.v[i] = static_cast<uint16_t>((i / 8) * block_words + qs_word + i % 8 - first / 2);
  }
  return idx;
}

// Lanes 4b..4b+3: d of block b; lanes 16 + 4b..: m of block b.
constexpr WordIndex scale_index(int block_words, int d_word, int m_word, int second_at) {
  WordIndex idx{};
  for (int i = 0; i < 32; ++i) {
    idx.v[i] = two_source((i % 16) / 4 * block_words + (i < 16 ? d_word : m_word), second_at);
  }
  return idx;
}

// Four weight blocks ready for the dot products.
struct Quad {
  __m512i lo;  // elements 0..15 of blocks 0..3, unsigned (q + zero point)
  __m512i hi;  // elements 16..31
  __m512 d;    // [d0 x4 | d1 x4 | d2 x4 | d3 x4]
  __m512 m;    // mins, same lanes (formats with a min only)
};

// Format traits: block bytes, zero point, and where d, m, qh and qs sit in a block (words).
// 4-bit formats keep both halves in one permute (nibbles); Q8_0 needs one permute per half.
template <int kBytes, int kZero, int kDWord, int kMWord, int kQh, int kQsWord>
struct Format {
  static constexpr int kBlockBytes = kBytes;
  static constexpr int kQuadBytes = 4 * kBytes;
  static constexpr bool kEightBit = kQsWord * 2 + 32 == kBytes;  // a byte per quant: Q8_0
  // The second load ends with the quad (nibble formats), or covers the quad's second 64 bytes.
  static constexpr int kSecondAt = kEightBit ? 64 : kQuadBytes - 64;
  static constexpr int kOffset = kZero;
  static constexpr bool kHasMin = kMWord >= 0;
  static constexpr bool kHasHighBit = kQh >= 0;
  static constexpr int kQhByte = kQh;
  static constexpr WordIndex kQuants = quant_index(kBytes / 2, kQsWord, kSecondAt);
  static constexpr WordIndex kScales =
      scale_index(kBytes / 2, kDWord, kHasMin ? kMWord : kDWord, kSecondAt);
  // Q8_0's second halves: words 8.. of each block's quants, from loads at bytes 8 and 72.
  static constexpr int kHighAt = 8;
  static constexpr WordIndex kHighQuants = high_index(kBytes / 2, kQsWord + 8, kHighAt);
};

using Q4_0 = Format<18, 8, 0, -1, -1, 1>;    // {f16 d; u8 qs[16]}: x = d * (q - 8)
using Q4_1 = Format<20, 0, 0, 1, -1, 2>;     // {f16 d, m; u8 qs[16]}: x = d * q + m
using Q5_0 = Format<22, 16, 0, -1, 2, 3>;    // {f16 d; u32 qh; u8 qs[16]}: x = d * (q - 16)
using Q5_1 = Format<24, 0, 0, 1, 4, 4>;      // {f16 d, m; u32 qh; u8 qs[16]}: x = d * q + m
using Q8_0 = Format<34, 128, 0, -1, -1, 1>;  // {f16 d; s8 qs[32]}: x = d * q

// Bits 0..15 (half 0) or 16..31 (half 1) of the n_blocks qh words, 16 bits per block.
template <class F>
inline __mmask64 high_bits(const uint8_t* p, int n_blocks, int half) {
  uint64_t bits = 0;
  for (int b = 0; b < n_blocks; ++b) {
    uint32_t qh;
    std::memcpy(&qh, p + b * F::kBlockBytes + F::kQhByte, 4);
    bits |= static_cast<uint64_t>((qh >> (16 * half)) & 0xFFFFu) << (16 * b);
  }
  return _cvtu64_mask64(bits);
}

// 64 bytes at p + at; with `valid` < the quad's bytes (a row's last, partial quad) only bytes
// below `valid` are read and the rest are zeros.
template <class F>
inline __m512i load64(const uint8_t* p, int at, int valid) {
  if (valid == F::kQuadBytes) return _mm512_loadu_si512(p + at);
  const int n = valid - at;
  const uint64_t mask = n <= 0 ? 0 : n >= 64 ? ~uint64_t{0} : (uint64_t{1} << n) - 1;
  return _mm512_maskz_loadu_epi8(_cvtu64_mask64(mask), p + at);
}

// n_blocks < 4 only for a row's last, partial quad; missing blocks load as zeros.
template <class F>
inline Quad load_quad(const uint8_t* p, int n_blocks) {
  const int valid = n_blocks * F::kBlockBytes;
  const __m512i a = load64<F>(p, 0, valid);
  const __m512i b = load64<F>(p, F::kSecondAt, valid);
  Quad w;
  const __m512i q = _mm512_permutex2var_epi16(a, _mm512_load_si512(F::kQuants.v), b);
  if constexpr (F::kEightBit) {
    const __m512i h = _mm512_permutex2var_epi16(load64<F>(p, F::kHighAt, valid),
                                                _mm512_load_si512(F::kHighQuants.v),
                                                load64<F>(p, F::kHighAt + 64, valid));
    const __m512i bias = _mm512_set1_epi8(static_cast<char>(0x80));
    w.lo = _mm512_xor_si512(q, bias);
    w.hi = _mm512_xor_si512(h, bias);
  } else {
    const __m512i nibble = _mm512_set1_epi8(0x0F);
    w.lo = _mm512_and_si512(q, nibble);
    w.hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), nibble);
  }
  if constexpr (F::kHasHighBit) {
    const __m512i sixteen = _mm512_set1_epi8(16);
    w.lo = _mm512_mask_add_epi8(w.lo, high_bits<F>(p, n_blocks, 0), w.lo, sixteen);
    w.hi = _mm512_mask_add_epi8(w.hi, high_bits<F>(p, n_blocks, 1), w.hi, sixteen);
  }
  const __m512i s = _mm512_permutex2var_epi16(a, _mm512_load_si512(F::kScales.v), b);
  w.d = _mm512_cvtph_ps(_mm512_castsi512_si256(s));
  if constexpr (F::kHasMin) w.m = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(s, 1));
  return w;
}

struct ActPtrs {
  const int8_t* qs;
  const float* d4;
  const int32_t* bias4;
  const float* s4;
};

// acc += four weight blocks . four activation blocks, per lane.
template <class F>
inline __m512 quad_dot(const Quad& w, const ActPtrs& x, int64_t q, __m512 acc) {
  __m512i sum = _mm512_load_si512(x.bias4 + 16 * q);
  sum = _mm512_dpbusd_epi32(sum, w.lo, _mm512_load_si512(x.qs + 128 * q));
  sum = _mm512_dpbusd_epi32(sum, w.hi, _mm512_load_si512(x.qs + 128 * q + 64));
  const __m512 scale = _mm512_mul_ps(w.d, _mm512_load_ps(x.d4 + 16 * q));
  acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), scale, acc);
  if constexpr (F::kHasMin) acc = _mm512_fmadd_ps(w.m, _mm512_load_ps(x.s4 + 16 * q), acc);
  return acc;
}

// Rows [r, r + R) x tokens [t, t + T), all columns.
template <class F, int R, int T>
void tile(const GemmArgs& a, const Block32SplitLayout& l, int64_t r, int64_t t) {
  const int64_t n_blocks = a.n_cols / 32;
  const int64_t n_full = n_blocks / 4;
  const uint8_t* rows[R];
  for (int i = 0; i < R; ++i) rows[i] = a.w + static_cast<size_t>(r + i) * a.w_row_bytes;
  ActPtrs x[T];
  for (int j = 0; j < T; ++j) {
    const uint8_t* base = a.act + static_cast<size_t>(t + j) * a.act_stride;
    x[j] = {reinterpret_cast<const int8_t*>(base),
            reinterpret_cast<const float*>(base + l.d4_offset),
            reinterpret_cast<const int32_t*>(base + l.bias4_offset),
            reinterpret_cast<const float*>(base + l.s4_offset)};
  }
  __m512 acc[R][T];
  for (int i = 0; i < R; ++i) {
    for (int j = 0; j < T; ++j) acc[i][j] = _mm512_setzero_ps();
  }
  const auto step = [&](int64_t q, int n) __attribute__((always_inline)) {
    Quad w[R];
#pragma GCC unroll 4
    for (int i = 0; i < R; ++i) {
      const uint8_t* at = rows[i] + F::kQuadBytes * q;
      if constexpr (T == 1) {
        for (int line = 0; line < F::kQuadBytes; line += 64) {
          _mm_prefetch(reinterpret_cast<const char*>(at) + kPrefetchBytes + line, _MM_HINT_T0);
        }
      }
      w[i] = load_quad<F>(at, n);
    }
#pragma GCC unroll 4
    for (int j = 0; j < T; ++j) {
#pragma GCC unroll 4
      for (int i = 0; i < R; ++i) acc[i][j] = quad_dot<F>(w[i], x[j], q, acc[i][j]);
    }
  };
  for (int64_t q = 0; q < n_full; ++q) step(q, 4);
  if (n_blocks % 4 != 0) step(n_full, static_cast<int>(n_blocks % 4));
  for (int i = 0; i < R; ++i) {
    for (int j = 0; j < T; ++j) a.y[(t + j) * a.ldy + r + i] = _mm512_reduce_add_ps(acc[i][j]);
  }
}

template <class F>
void gemm(const GemmArgs& a, int64_t r0, int64_t r1, int64_t t0, int64_t t1) {
  const Block32SplitLayout l = block32_split_layout(a.n_cols);
  auto tiles = [&]<int R, int T>(int64_t r, int64_t t) { tile<F, R, T>(a, l, r, t); };
  run_tiles<2, 8>(tiles, a.w_row_bytes, r0, r1, t0, t1);
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

}  // namespace pensieve::cpu::avx512
