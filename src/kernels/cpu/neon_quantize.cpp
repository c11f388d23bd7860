// NEON activation quantizers (kQ8Block32Split, kQ8BlockK) and the NEON kernel table. Rounding
// matches the x86 quantizers: x * (127 / max) to the nearest integer, ties to even.
#include "kernels/cpu/act_layout.h"
#include "kernels/cpu/neon_kernels.h"
#include "kernels/cpu/neon_util.h"

namespace pensieve::cpu {
namespace neon {
namespace {

// Below this block maximum the activations quantize to zero (127 / max would overflow).
constexpr float kTinyMax = 1e-30f;

// Quantizes the 4 * kVectors floats at x with one scale into q; returns the scale.
template <int kVectors>
inline float quantize_run(const float* x, int32x4_t* q) {
  float32x4_t v[kVectors];
  float32x4_t amax = vdupq_n_f32(0.0f);
  for (int i = 0; i < kVectors; ++i) {
    v[i] = vld1q_f32(x + 4 * i);
    amax = vmaxq_f32(amax, vabsq_f32(v[i]));
  }
  const float max = vmaxvq_f32(amax);
  const float inv = max > kTinyMax ? 127.0f / max : 0.0f;
  for (int i = 0; i < kVectors; ++i) q[i] = vcvtnq_s32_f32(vmulq_n_f32(v[i], inv));
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
    int32x4_t q[8];
    for (int32x4_t& v : q) v = vdupq_n_s32(0);
    float d = 0;
    if (b < n_blocks) d = quantize_run<8>(x + 32 * b, q);  // zero blocks complete the last quad
    vst1q_s8(quad, vcombine_s8(narrow_i8(q[0], q[1]), narrow_i8(q[2], q[3])));
    vst1q_s8(quad + 64, vcombine_s8(narrow_i8(q[4], q[5]), narrow_i8(q[6], q[7])));
    int32x4_t sum = vdupq_n_s32(0);
    for (const int32x4_t& v : q) sum = vaddq_s32(sum, v);
    const int32_t total = vaddvq_s32(sum);
    vst1q_f32(d4 + 4 * b, vdupq_n_f32(d));
    vst1q_s32(bias4 + 4 * b, vsetq_lane_s32(-offset * total, vdupq_n_s32(0), 0));
    vst1q_f32(s4 + 4 * b, vsetq_lane_f32(d * static_cast<float>(total), vdupq_n_f32(0.0f), 0));
  }
}

void quantize_block_k(const float* x, int64_t n_cols, int /*offset*/, uint8_t* dst) {
  const BlockKLayout layout = block_k_layout(n_cols);
  auto* qs = reinterpret_cast<int8_t*>(dst);
  auto* d = reinterpret_cast<float*>(dst + layout.d_offset);
  auto* bsums = reinterpret_cast<int16_t*>(dst + layout.bsums_offset);
  for (size_t s = 0; s < layout.n_super; ++s) {
    const float* xs = x + 256 * s;
    float32x4_t amax = vdupq_n_f32(0.0f);
    for (int i = 0; i < 64; ++i) amax = vmaxq_f32(amax, vabsq_f32(vld1q_f32(xs + 4 * i)));
    const float max = vmaxvq_f32(amax);
    const float inv = max > kTinyMax ? 127.0f / max : 0.0f;
    d[s] = max / 127.0f;
    for (int g = 0; g < 16; ++g) {  // 16-element groups
      int32x4_t q[4];
      for (int k = 0; k < 4; ++k) {
        q[k] = vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(xs + 16 * g + 4 * k), inv));
      }
      vst1q_s8(qs + 256 * s + 16 * g, vcombine_s8(narrow_i8(q[0], q[1]), narrow_i8(q[2], q[3])));
      const int32x4_t sum = vaddq_s32(vaddq_s32(q[0], q[1]), vaddq_s32(q[2], q[3]));
      bsums[16 * s + g] = static_cast<int16_t>(vaddvq_s32(sum));
    }
  }
}

}  // namespace neon

const IsaKernels* neon_kernels() {
  static const IsaKernels table = [] {
    IsaKernels k;
    k.quantize_block32_split = &neon::quantize_block32_split;
    k.quantize_block_k = &neon::quantize_block_k;
    neon::add_float_kernels(k);
    neon::add_legacy_kernels(k);
    neon::add_k_kernels(k);
    return k;
  }();
  return &table;
}

}  // namespace pensieve::cpu
