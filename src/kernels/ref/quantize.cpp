// Reference quantizers F32 -> each block format. Simple, deterministic and close to the
// least-squares choice: legacy formats scale by the block's extreme value, K-quants fit each
// group's scale (and min) and then quantize those with the super-block's f16 factors.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/check.h"
#include "core/half.h"
#include "kernels/ref/quants.h"

namespace pensieve::ref {
namespace {

void put_f16(uint8_t* p, float v) {
  const uint16_t h = f32_to_f16(v);
  std::memcpy(p, &h, 2);
}

int nearest(float v) { return static_cast<int>(std::lrintf(v)); }

// The element of largest magnitude, with its sign.
float signed_absmax(const float* x, int n) {
  float best = 0;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > std::fabs(best)) best = x[i];
  }
  return best;
}

void quant_q8_0(const float* x, uint8_t* b) {
  float amax = 0;
  for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float d = amax / 127.0f;
  const float id = d != 0 ? 1.0f / d : 0.0f;
  put_f16(b, d);
  for (int i = 0; i < 32; ++i)
    b[2 + i] = static_cast<uint8_t>(static_cast<int8_t>(nearest(x[i] * id)));
}

// Q4_0 / Q5_0: symmetric, d = extreme / -(2^(bits-1)) so the extreme maps to the end code.
void quant_sym(const float* x, int bits, float* d_out, uint8_t* q) {
  const int half = 1 << (bits - 1);
  const float max = signed_absmax(x, 32);
  const float d = max / static_cast<float>(-half);
  const float id = d != 0 ? 1.0f / d : 0.0f;
  *d_out = d;
  for (int i = 0; i < 32; ++i)
    q[i] = static_cast<uint8_t>(std::clamp(nearest(x[i] * id) + half, 0, 2 * half - 1));
}

// Q4_1 / Q5_1: affine, min and max of the block.
void quant_affine(const float* x, int bits, float* d_out, float* m_out, uint8_t* q) {
  const float mn = *std::min_element(x, x + 32);
  const float mx = *std::max_element(x, x + 32);
  const int top = (1 << bits) - 1;
  const float d = (mx - mn) / static_cast<float>(top);
  const float id = d != 0 ? 1.0f / d : 0.0f;
  *d_out = d;
  *m_out = mn;
  for (int i = 0; i < 32; ++i)
    q[i] = static_cast<uint8_t>(std::clamp(nearest((x[i] - mn) * id), 0, top));
}

void pack_nibbles(const uint8_t* q, uint8_t* qs) {
  for (int j = 0; j < 16; ++j)
    qs[j] = static_cast<uint8_t>((q[j] & 0x0f) | ((q[j + 16] & 0x0f) << 4));
}

uint32_t high_bits(const uint8_t* q) {
  uint32_t qh = 0;
  for (int j = 0; j < 32; ++j) qh |= static_cast<uint32_t>((q[j] >> 4) & 1) << j;
  return qh;
}

void quant_q4_0(const float* x, uint8_t* b) {
  float d;
  uint8_t q[32];
  quant_sym(x, 4, &d, q);
  put_f16(b, d);
  pack_nibbles(q, b + 2);
}

void quant_q4_1(const float* x, uint8_t* b) {
  float d, m;
  uint8_t q[32];
  quant_affine(x, 4, &d, &m, q);
  put_f16(b, d);
  put_f16(b + 2, m);
  pack_nibbles(q, b + 4);
}

void quant_q5_0(const float* x, uint8_t* b) {
  float d;
  uint8_t q[32];
  quant_sym(x, 5, &d, q);
  put_f16(b, d);
  const uint32_t qh = high_bits(q);
  std::memcpy(b + 2, &qh, 4);
  pack_nibbles(q, b + 6);
}

void quant_q5_1(const float* x, uint8_t* b) {
  float d, m;
  uint8_t q[32];
  quant_affine(x, 5, &d, &m, q);
  put_f16(b, d);
  put_f16(b + 2, m);
  const uint32_t qh = high_bits(q);
  std::memcpy(b + 4, &qh, 4);
  pack_nibbles(q, b + 8);
}

// Scale and min (both >= 0) of one group for codes 0..top: x ~ scale * q - min.
void fit_group(const float* x, int n, int top, float* scale, float* min) {
  float mn = 0, mx = 0;  // the min is clipped at 0 so it can be stored unsigned
  for (int i = 0; i < n; ++i) {
    mn = std::min(mn, x[i]);
    mx = std::max(mx, x[i]);
  }
  *scale = (mx - mn) / static_cast<float>(top);
  *min = -mn;
}

// Codes of one group under a quantized scale and min.
void codes_for(const float* x, int n, int top, float scale, float min, uint8_t* q) {
  const float id = scale != 0 ? 1.0f / scale : 0.0f;
  for (int i = 0; i < n; ++i)
    q[i] = static_cast<uint8_t>(std::clamp(nearest((x[i] + min) * id), 0, top));
}

// Packs 8 six-bit scales and mins into 12 bytes (inverse of scale_min_k4).
void pack_scales_k4(const uint8_t* sc, const uint8_t* m, uint8_t* out) {
  for (int j = 0; j < 4; ++j) {
    out[j] = static_cast<uint8_t>((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
    out[j + 4] = static_cast<uint8_t>((m[j] & 63) | ((m[j + 4] >> 4) << 6));
    out[j + 8] = static_cast<uint8_t>((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
  }
}

// Shared by Q4_K (bits 4) and Q5_K (bits 5): 8 groups of 32 with 6-bit scales and mins.
void quant_k_affine(const float* x, int bits, float* d_out, float* dmin_out, uint8_t* scales12,
                    uint8_t* q) {
  const int top = (1 << bits) - 1;
  float scale[8], min[8];
  float max_scale = 0, max_min = 0;
  for (int g = 0; g < 8; ++g) {
    fit_group(x + 32 * g, 32, top, &scale[g], &min[g]);
    max_scale = std::max(max_scale, scale[g]);
    max_min = std::max(max_min, min[g]);
  }
  const float d = max_scale / 63.0f;
  const float dmin = max_min / 63.0f;
  const float d_q = f16_to_f32(f32_to_f16(d));
  const float dmin_q = f16_to_f32(f32_to_f16(dmin));
  uint8_t sc[8], mq[8];
  for (int g = 0; g < 8; ++g) {
    sc[g] = static_cast<uint8_t>(std::clamp(d > 0 ? nearest(scale[g] / d) : 0, 0, 63));
    mq[g] = static_cast<uint8_t>(std::clamp(dmin > 0 ? nearest(min[g] / dmin) : 0, 0, 63));
    codes_for(x + 32 * g, 32, top, d_q * sc[g], dmin_q * mq[g], q + 32 * g);
  }
  *d_out = d;
  *dmin_out = dmin;
  pack_scales_k4(sc, mq, scales12);
}

void quant_q4_k(const float* x, uint8_t* b) {
  float d, dmin;
  uint8_t q[256];
  quant_k_affine(x, 4, &d, &dmin, b + 4, q);
  put_f16(b, d);
  put_f16(b + 2, dmin);
  uint8_t* qs = b + 16;
  for (int c = 0; c < 4; ++c) {  // chunk c: groups 2c (low nibbles) and 2c+1 (high nibbles)
    for (int l = 0; l < 32; ++l)
      qs[32 * c + l] = static_cast<uint8_t>(q[64 * c + l] | (q[64 * c + 32 + l] << 4));
  }
}

void quant_q5_k(const float* x, uint8_t* b) {
  float d, dmin;
  uint8_t q[256];
  quant_k_affine(x, 5, &d, &dmin, b + 4, q);
  put_f16(b, d);
  put_f16(b + 2, dmin);
  uint8_t* qh = b + 16;
  uint8_t* ql = b + 48;
  std::memset(qh, 0, 32);
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      const uint8_t lo = q[64 * c + l];
      const uint8_t hi = q[64 * c + 32 + l];
      ql[32 * c + l] = static_cast<uint8_t>((lo & 15) | ((hi & 15) << 4));
      qh[l] |= static_cast<uint8_t>(((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
    }
  }
}

// Q2_K: 16 groups of 16, 2-bit codes, 4-bit scales and mins.
void quant_q2_k(const float* x, uint8_t* b) {
  float scale[16], min[16], max_scale = 0, max_min = 0;
  for (int g = 0; g < 16; ++g) {
    fit_group(x + 16 * g, 16, 3, &scale[g], &min[g]);
    max_scale = std::max(max_scale, scale[g]);
    max_min = std::max(max_min, min[g]);
  }
  const float d = max_scale / 15.0f, dmin = max_min / 15.0f;
  const float d_q = f16_to_f32(f32_to_f16(d)), dmin_q = f16_to_f32(f32_to_f16(dmin));
  uint8_t q[256];
  for (int g = 0; g < 16; ++g) {
    const int sc = std::clamp(d > 0 ? nearest(scale[g] / d) : 0, 0, 15);
    const int mq = std::clamp(dmin > 0 ? nearest(min[g] / dmin) : 0, 0, 15);
    b[g] = static_cast<uint8_t>(sc | (mq << 4));
    codes_for(x + 16 * g, 16, 3, d_q * sc, dmin_q * mq, q + 16 * g);
  }
  uint8_t* qs = b + 16;
  std::memset(qs, 0, 64);
  // Element i: half n = i / 128, shift s = (i % 128) / 32, byte l = i % 32 of that half.
  for (int i = 0; i < 256; ++i) {
    qs[32 * (i / 128) + i % 32] |= static_cast<uint8_t>(q[i] << (2 * ((i % 128) / 32)));
  }
  put_f16(b + 80, d);
  put_f16(b + 82, dmin);
}

// Q3_K: 16 groups of 16, 3-bit signed codes (-4..3), 6-bit signed scales.
void quant_q3_k(const float* x, uint8_t* b) {
  float scale[16], max_abs_scale = 0;
  for (int g = 0; g < 16; ++g) {
    scale[g] = signed_absmax(x + 16 * g, 16) / -4.0f;
    if (std::fabs(scale[g]) > std::fabs(max_abs_scale)) max_abs_scale = scale[g];
  }
  const float d = max_abs_scale / -32.0f;
  const float d_q = f16_to_f32(f32_to_f16(d));
  int8_t sc[16];
  int q[256];
  for (int g = 0; g < 16; ++g) {
    sc[g] = static_cast<int8_t>(std::clamp(d != 0 ? nearest(scale[g] / d) : 0, -32, 31));
    const float s = d_q * sc[g];
    const float is = s != 0 ? 1.0f / s : 0.0f;
    for (int l = 0; l < 16; ++l) q[16 * g + l] = std::clamp(nearest(x[16 * g + l] * is), -4, 3);
  }
  uint8_t* hmask = b;
  uint8_t* qs = b + 32;
  std::memset(b, 0, 110);
  for (int i = 0; i < 256; ++i) {
    const int v = q[i] + 4;            // 0..7
    const int shift = (i % 128) / 32;  // which 2-bit plane
    const int byte = 32 * (i / 128) + i % 32;
    qs[byte] |= static_cast<uint8_t>((v & 3) << (2 * shift));
    if (v & 4) hmask[i % 32] |= static_cast<uint8_t>(1 << (4 * (i / 128) + shift));
  }
  // Scales: 6-bit values (sc + 32) split into low nibbles and high 2-bit pairs.
  uint8_t* out = b + 96;
  for (int j = 0; j < 16; ++j) {
    const int v = sc[j] + 32;
    if (j < 8) {
      out[j] |= static_cast<uint8_t>(v & 15);
    } else {
      out[j - 8] |= static_cast<uint8_t>((v & 15) << 4);
    }
    out[8 + j % 4] |= static_cast<uint8_t>((v >> 4) << (2 * (j / 4)));
  }
  put_f16(b + 108, d);
}

// Q6_K: 16 groups of 16, 6-bit signed codes (-32..31), int8 scales.
void quant_q6_k(const float* x, uint8_t* b) {
  float scale[16], max_abs_scale = 0;
  for (int g = 0; g < 16; ++g) {
    scale[g] = signed_absmax(x + 16 * g, 16) / -32.0f;
    if (std::fabs(scale[g]) > std::fabs(max_abs_scale)) max_abs_scale = scale[g];
  }
  const float d = max_abs_scale / -128.0f;
  const float d_q = f16_to_f32(f32_to_f16(d));
  std::memset(b, 0, 210);
  uint8_t* ql = b;
  uint8_t* qh = b + 128;
  auto* sc = reinterpret_cast<int8_t*>(b + 192);
  for (int g = 0; g < 16; ++g) {
    sc[g] = static_cast<int8_t>(std::clamp(d != 0 ? nearest(scale[g] / d) : 0, -128, 127));
  }
  for (int i = 0; i < 256; ++i) {
    const float s = d_q * sc[i / 16];
    const int v = std::clamp(s != 0 ? nearest(x[i] / s) : 0, -32, 31) + 32;  // 0..63
    const int n = i / 128, r = i % 128, quarter = r / 32, l = r % 32;
    // quarters 0..3 of a half: ql[l] low, ql[l+32] low, ql[l] high, ql[l+32] high.
    uint8_t& low = ql[64 * n + l + 32 * (quarter & 1)];
    low |= static_cast<uint8_t>((v & 15) << (4 * (quarter >> 1)));
    qh[32 * n + l] |= static_cast<uint8_t>((v >> 4) << (2 * quarter));
  }
  put_f16(b + 208, d);
}

void quant_q8_k(const float* x, uint8_t* b) {
  const float max = signed_absmax(x, 256);
  const float d = max / -127.0f;
  const float id = d != 0 ? 1.0f / d : 0.0f;
  std::memcpy(b, &d, 4);
  auto* qs = reinterpret_cast<int8_t*>(b + 4);
  int16_t bsums[16] = {};
  for (int i = 0; i < 256; ++i) {
    qs[i] = static_cast<int8_t>(std::clamp(nearest(x[i] * id), -128, 127));
    bsums[i / 16] = static_cast<int16_t>(bsums[i / 16] + qs[i]);
  }
  std::memcpy(b + 260, bsums, 32);
}

using BlockFn = void (*)(const float*, uint8_t*);

BlockFn block_quantizer(GgmlType type) {
  switch (type) {
    case GgmlType::kQ4_0:
      return quant_q4_0;
    case GgmlType::kQ4_1:
      return quant_q4_1;
    case GgmlType::kQ5_0:
      return quant_q5_0;
    case GgmlType::kQ5_1:
      return quant_q5_1;
    case GgmlType::kQ8_0:
      return quant_q8_0;
    case GgmlType::kQ2_K:
      return quant_q2_k;
    case GgmlType::kQ3_K:
      return quant_q3_k;
    case GgmlType::kQ4_K:
      return quant_q4_k;
    case GgmlType::kQ5_K:
      return quant_q5_k;
    case GgmlType::kQ6_K:
      return quant_q6_k;
    case GgmlType::kQ8_K:
      return quant_q8_k;
    default:
      return nullptr;
  }
}

}  // namespace

bool can_quantize(GgmlType type) {
  return type == GgmlType::kF32 || type == GgmlType::kF16 || type == GgmlType::kBF16 ||
         block_quantizer(type) != nullptr;
}

void quantize_row(GgmlType type, const float* src, void* dst, int64_t n) {
  auto* out = static_cast<uint8_t*>(dst);
  switch (type) {
    case GgmlType::kF32:
      std::memcpy(out, src, static_cast<size_t>(n) * 4);
      return;
    case GgmlType::kF16:
      for (int64_t i = 0; i < n; ++i) put_f16(out + 2 * i, src[i]);
      return;
    case GgmlType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = f32_to_bf16(src[i]);
        std::memcpy(out + 2 * i, &h, 2);
      }
      return;
    default:
      break;
  }
  const BlockFn fn = block_quantizer(type);
  PV_CHECK(fn != nullptr, "no quantizer for {}", ggml_type_name(type));
  const GgmlTypeTraits& traits = ggml_type_traits(type);
  PV_CHECK(n % traits.block_elements == 0, "{} elements is not a whole number of {} blocks", n,
           ggml_type_name(type));
  for (int64_t i = 0; i < n / traits.block_elements; ++i) {
    fn(src + i * traits.block_elements, out + static_cast<size_t>(i) * traits.block_bytes);
  }
}

}  // namespace pensieve::ref
