// AVX2 activation quantizers (kQ8Block32Split, kQ8BlockK) and the AVX2 kernel table.
#include "kernels/cpu/act_layout.h"
#include "kernels/cpu/avx2_kernels.h"
#include "kernels/cpu/avx2_util.h"

namespace pensieve::cpu {
namespace avx2 {
namespace {

// Below this block maximum the activations quantize to zero (127 / max would overflow).
constexpr float kTinyMax = 1e-30f;

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
    __m256i q[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                    _mm256_setzero_si256()};
    float d = 0;
    if (b < n_blocks) {  // zero blocks complete the last quad
      __m256 v[4];
      __m256 amax = _mm256_setzero_ps();
      for (int i = 0; i < 4; ++i) {
        v[i] = _mm256_loadu_ps(x + 32 * b + 8 * i);
        amax = _mm256_max_ps(amax, abs_ps(v[i]));
      }
      const float max = hmax(amax);
      const __m256 inv = _mm256_set1_ps(max > kTinyMax ? 127.0f / max : 0.0f);
      for (int i = 0; i < 4; ++i) q[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], inv));
      d = max / 127.0f;
    }
    const __m256i packed = pack_i8(q[0], q[1], q[2], q[3]);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(quad), _mm256_castsi256_si128(packed));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(quad + 64), _mm256_extracti128_si256(packed, 1));
    const int32_t sum =
        hsum(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
    _mm_storeu_ps(d4 + 4 * b, _mm_set1_ps(d));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(bias4 + 4 * b),
                     _mm_setr_epi32(-offset * sum, 0, 0, 0));
    _mm_storeu_ps(s4 + 4 * b, _mm_setr_ps(d * static_cast<float>(sum), 0, 0, 0));
  }
}

void quantize_block_k(const float* x, int64_t n_cols, int /*offset*/, uint8_t* dst) {
  const BlockKLayout layout = block_k_layout(n_cols);
  auto* qs = reinterpret_cast<int8_t*>(dst);
  auto* d = reinterpret_cast<float*>(dst + layout.d_offset);
  auto* bsums = reinterpret_cast<int16_t*>(dst + layout.bsums_offset);
  for (size_t s = 0; s < layout.n_super; ++s) {
    const float* xs = x + 256 * s;
    __m256 amax = _mm256_setzero_ps();
    for (int i = 0; i < 32; ++i) amax = _mm256_max_ps(amax, abs_ps(_mm256_loadu_ps(xs + 8 * i)));
    const float max = hmax(amax);
    const __m256 inv = _mm256_set1_ps(max > kTinyMax ? 127.0f / max : 0.0f);
    d[s] = max / 127.0f;
    for (int i = 0; i < 8; ++i) {  // 32 elements, two 16-element sums
      __m256i q[4];
      for (int k = 0; k < 4; ++k) {
        q[k] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xs + 32 * i + 8 * k), inv));
      }
      _mm256_store_si256(reinterpret_cast<__m256i*>(qs + 256 * s + 32 * i),
                         pack_i8(q[0], q[1], q[2], q[3]));
      bsums[16 * s + 2 * i] = static_cast<int16_t>(hsum(_mm256_add_epi32(q[0], q[1])));
      bsums[16 * s + 2 * i + 1] = static_cast<int16_t>(hsum(_mm256_add_epi32(q[2], q[3])));
    }
  }
}

}  // namespace avx2

const IsaKernels* avx2_kernels() {
  static const IsaKernels table = [] {
    IsaKernels k;
    k.quantize_block32_split = &avx2::quantize_block32_split;
    k.quantize_block_k = &avx2::quantize_block_k;
    avx2::add_float_kernels(k);
    avx2::add_legacy_kernels(k);
    avx2::add_k_kernels(k);
    return k;
  }();
  return &table;
}

}  // namespace pensieve::cpu
