// Small NEON helpers shared by the ARM64 kernel units (internal linkage: include only from the
// neon_*.cpp units).
#pragma once

#include <arm_neon.h>

#include <cstdint>
#include <cstring>

namespace pensieve::cpu::neon {
namespace {

constexpr int kPrefetchBytes = 2048;  // decode: how far ahead of the weight stream to prefetch

inline float half_to_float(const uint8_t* p) {
  __fp16 h;
  std::memcpy(&h, p, 2);
  return static_cast<float>(h);
}

inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Byte-wise v >> kShift for any kShift in [0, 8) (the intrinsic needs a shift of at least 1).
template <int kShift>
inline uint8x16_t shift_right(uint8x16_t v) {
  if constexpr (kShift == 0) {
    return v;
  } else {
    return vshrq_n_u8(v, kShift);
  }
}

// Byte-wise (v >> kShift) & kMask.
template <int kShift, int kMask>
inline uint8x16_t field(uint8x16_t v) {
  return vandq_u8(shift_right<kShift>(v), vdupq_n_u8(kMask));
}

// Eight int32 lanes (values in [-127, 127]) to eight int8 in order.
inline int8x8_t narrow_i8(int32x4_t a, int32x4_t b) {
  return vqmovn_s16(vcombine_s16(vqmovn_s32(a), vqmovn_s32(b)));
}

}  // namespace
}  // namespace pensieve::cpu::neon
