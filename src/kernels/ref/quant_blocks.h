// ggml's block layouts for the quantized GGUF tensor types, byte for byte, with the element
// order of each. uint16_t scale fields hold raw IEEE half bits (core/half.h converts them).
#pragma once

#include <cstdint>

namespace pensieve::ref {

inline constexpr int kQk = 32;           // elements per block of Q4_0, Q4_1, Q5_0, Q5_1, Q8_0
inline constexpr int kQkK = 256;         // elements per K-quant super-block
inline constexpr int kKScaleBytes = 12;  // packed 6-bit scales of Q3_K, Q4_K, Q5_K

// x[j] = (q[j] - 8) * d. qs[j] low nibble is q[j], high nibble q[j + 16].
struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[kQk / 2];
};

// x[j] = q[j] * d + m. Nibbles as in Q4_0.
struct BlockQ4_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qs[kQk / 2];
};

// x[j] = (q[j] - 16) * d. Low 4 bits as in Q4_0; bit 4 of q[j] is bit j of qh read as a
// little-endian uint32 (so elements 16..31 use bits 16..31).
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[kQk / 2];
};

// x[j] = q[j] * d + m. Bits as in Q5_0.
struct BlockQ5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[kQk / 2];
};

// x[j] = qs[j] * d.
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[kQk];
};

// 16 sub-blocks of 16: x[e] = d * (scales[e/16] & 15) * q - dmin * (scales[e/16] >> 4).
// 2-bit q of element e (c = e / 128, g = e % 128 / 32, l = e % 32): (qs[32c + l] >> 2g) & 3.
struct BlockQ2_K {
  uint8_t scales[kQkK / 16];
  uint8_t qs[kQkK / 4];
  uint16_t d;
  uint16_t dmin;
};

// 16 sub-blocks of 16: x[e] = d * (scale6(e/16) - 32) * (q - 4), q in 0..7. The low 2 bits of q
// sit in qs as in Q2_K; bit 2 is bit e/32 of hmask[e % 32]. See q3k_scale for scale6.
struct BlockQ3_K {
  uint8_t hmask[kQkK / 8];
  uint8_t qs[kQkK / 4];
  uint8_t scales[kKScaleBytes];
  uint16_t d;
};

// 8 sub-blocks of 32: x[e] = d * scale6(e/32) * q - dmin * min6(e/32), q in 0..15. In each
// 64-element chunk c, qs[32c + l] low nibble is element 64c + l, high nibble 64c + 32 + l.
struct BlockQ4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qs[kQkK / 2];
};

// As Q4_K with q in 0..31; bit 4 of q[e] is bit e/32 of qh[e % 32].
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qh[kQkK / 8];
  uint8_t qs[kQkK / 2];
};

// 16 sub-blocks of 16: x[e] = d * scales[e/16] * (q - 32), q in 0..63. For c = e / 128,
// g = e % 128 / 32, l = e % 32: low 4 bits from ql[64c + 32 * (g & 1) + l] (low nibble for
// g < 2, high nibble otherwise), high 2 bits are (qh[32c + l] >> 2g) & 3.
struct BlockQ6_K {
  uint8_t ql[kQkK / 2];
  uint8_t qh[kQkK / 4];
  int8_t scales[kQkK / 16];
  uint16_t d;
};

// x[e] = d * qs[e]; bsums[k] is the sum of qs[16k .. 16k + 15] (for K-quant dot products).
struct BlockQ8_K {
  float d;
  int8_t qs[kQkK];
  int16_t bsums[kQkK / 16];
};

static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ2_K) == 84);
static_assert(sizeof(BlockQ3_K) == 110);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);
static_assert(sizeof(BlockQ8_K) == 292);

// Scale and min (6 bits each) of sub-block j (0..7) of a Q4_K/Q5_K. Bytes 0-3 hold scales 0-3
// and bytes 4-7 mins 0-3 in their low 6 bits; sub-blocks 4-7 keep their low nibbles in bytes
// 8-11 (scale low, min high) and their top 2 bits in bits 6-7 of bytes j-4 (scale) and j (min).
inline void k4_scale_min(int j, const uint8_t* scales, int* scale, int* min) {
  if (j < 4) {
    *scale = scales[j] & 63;
    *min = scales[j + 4] & 63;
  } else {
    *scale = (scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4);
    *min = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
  }
}

// The inverse of k4_scale_min for all 8 sub-blocks; every value must be < 64.
inline void pack_k4_scales(const uint8_t scale[8], const uint8_t min[8], uint8_t out[12]) {
  for (int j = 0; j < 4; ++j) {
    out[j] = static_cast<uint8_t>(scale[j] | ((scale[j + 4] >> 4) << 6));
    out[j + 4] = static_cast<uint8_t>(min[j] | ((min[j + 4] >> 4) << 6));
    out[j + 8] = static_cast<uint8_t>((scale[j + 4] & 0xF) | ((min[j + 4] & 0xF) << 4));
  }
}

// The 6-bit scale j (0..15) of a Q3_K, before subtracting 32: low nibble from byte j (j < 8) or
// the high nibble of byte j - 8; top 2 bits at bit 2 * (j / 4) of byte 8 + j % 4.
inline int q3k_scale(int j, const uint8_t* scales) {
  const int low = j < 8 ? scales[j] & 0xF : scales[j - 8] >> 4;
  const int high = (scales[8 + j % 4] >> (2 * (j / 4))) & 3;
  return low | (high << 4);
}

// The inverse of q3k_scale for all 16 scales; every value must be < 64.
inline void pack_q3k_scales(const uint8_t scale[16], uint8_t out[12]) {
  for (int k = 0; k < 12; ++k) out[k] = 0;
  for (int j = 0; j < 16; ++j) {
    if (j < 8) {
      out[j] = static_cast<uint8_t>(out[j] | (scale[j] & 0xF));
    } else {
      out[j - 8] = static_cast<uint8_t>(out[j - 8] | ((scale[j] & 0xF) << 4));
    }
    out[8 + j % 4] = static_cast<uint8_t>(out[8 + j % 4] | ((scale[j] >> 4) << (2 * (j / 4))));
  }
}

}  // namespace pensieve::ref
