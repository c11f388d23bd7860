// AVX-512 activation quantizers (kQ8Block32Split, kQ8BlockK) and the AVX-512 kernel table.
#include "kernels/cpu/act_layout.h"
#include "kernels/cpu/avx512_kernels.h"
#include "kernels/cpu/simd_intrinsics.h"

namespace pensieve::cpu {
namespace avx512 {
namespace {

// Below this block maximum the activations quantize to zero (127 / max would overflow).
constexpr float kTinyMax = 1e-30f;

// Rounds x * 127 / max|x| to int32; returns the scale max|x| / 127.
inline float quantize16x2(__m512 v0, __m512 v1, __m512i* q0, __m512i* q1) {
  const __m512 amax = _mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1));
  const float max = _mm512_reduce_max_ps(amax);
  const float inv = max > kTinyMax ? 127.0f / max : 0.0f;
  *q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, _mm512_set1_ps(inv)));
  *q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, _mm512_set1_ps(inv)));
  return max / 127.0f;
}

}  // namespace

void quantize_block32_split(const float* x, int64_t n_cols, int offset, uint8_t* dst) {
  const Block32SplitLayout layout = block32_split_layout(n_cols);
  auto* qs = reinterpret_cast<int8_t*>(dst);
  auto* d4 = reinterpret_cast<float*>(dst + layout.d4_offset);
  auto* bias4 = reinterpret_cast<int32_t*>(dst + layout.bias4_offset);
  auto* s4 = reinterpret_cast<float*>(dst + layout.s4_offset);
  const int64_t n_blocks = n_cols / 32;
  for (int64_t b = 0; b < static_cast<int64_t>(layout.n_quads) * 4; ++b) {
    int8_t* quad = qs + 128 * (b / 4) + 16 * (b % 4);
    float* d = d4 + 4 * b;
    int32_t* bias = bias4 + 4 * b;
    float* s = s4 + 4 * b;
    if (b >= n_blocks) {  // zero blocks complete the last quad
      _mm_storeu_si128(reinterpret_cast<__m128i*>(quad), _mm_setzero_si128());
      _mm_storeu_si128(reinterpret_cast<__m128i*>(quad + 64), _mm_setzero_si128());
      _mm_storeu_ps(d, _mm_setzero_ps());
      _mm_storeu_si128(reinterpret_cast<__m128i*>(bias), _mm_setzero_si128());
      _mm_storeu_ps(s, _mm_setzero_ps());
      continue;
    }
    __m512i q0, q1;
    const float scale =
        quantize16x2(_mm512_loadu_ps(x + 32 * b), _mm512_loadu_ps(x + 32 * b + 16), &q0, &q1);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(quad), _mm512_cvtepi32_epi8(q0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(quad + 64), _mm512_cvtepi32_epi8(q1));
    const int32_t sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
    _mm_storeu_ps(d, _mm_set1_ps(scale));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(bias), _mm_setr_epi32(-offset * sum, 0, 0, 0));
    _mm_storeu_ps(s, _mm_setr_ps(scale * static_cast<float>(sum), 0, 0, 0));
  }
}

void quantize_block_k(const float* x, int64_t n_cols, int /*offset*/, uint8_t* dst) {
  const BlockKLayout layout = block_k_layout(n_cols);
  auto* qs = reinterpret_cast<int8_t*>(dst);
  auto* d = reinterpret_cast<float*>(dst + layout.d_offset);
  auto* bsums = reinterpret_cast<int16_t*>(dst + layout.bsums_offset);
  for (size_t s = 0; s < layout.n_super; ++s) {
    const float* xs = x + 256 * s;
    __m512 amax = _mm512_setzero_ps();
    for (int i = 0; i < 16; ++i) {
      amax = _mm512_max_ps(amax, _mm512_abs_ps(_mm512_loadu_ps(xs + 16 * i)));
    }
    const float max = _mm512_reduce_max_ps(amax);
    const __m512 inv = _mm512_set1_ps(max > kTinyMax ? 127.0f / max : 0.0f);
    d[s] = max / 127.0f;
    for (int i = 0; i < 16; ++i) {
      const __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(xs + 16 * i), inv));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(qs + 256 * s + 16 * i), _mm512_cvtepi32_epi8(q));
      bsums[16 * s + i] = static_cast<int16_t>(_mm512_reduce_add_epi32(q));
    }
  }
}

}  // namespace avx512

const IsaKernels* avx512_kernels() {
  static const IsaKernels table = [] {
    IsaKernels k;
    k.quantize_block32_split = &avx512::quantize_block32_split;
    k.quantize_block_k = &avx512::quantize_block_k;
    avx512::add_float_kernels(k);
    avx512::add_legacy_kernels(k);
    avx512::add_row_lane_kernels(k);
    avx512::add_k_kernels(k);
    return k;
  }();
  return &table;
}

}  // namespace pensieve::cpu
