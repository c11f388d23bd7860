// Hand-built blocks with known values: nibble and bit order, signs and scale packing per type.
#include "kernels/ref/quants.h"

#include <cmath>
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/ref/quant_blocks.h"

namespace pensieve::ref {
namespace {

template <class Block>
std::vector<float> dequantize_block(GgmlType type, const Block& block) {
  const int64_t n = ggml_type_traits(type).block_elements;
  EXPECT_EQ(sizeof(Block), ggml_type_traits(type).block_bytes);
  std::vector<float> y(static_cast<size_t>(n));
  dequantize_row(type, &block, y.data(), n);
  return y;
}

// Scales of the Q4_K/Q5_K tests and their packed bytes, worked out by hand.
constexpr uint8_t kK4Scales[8] = {1, 2, 3, 63, 17, 33, 48, 5};
constexpr uint8_t kK4Mins[8] = {0, 10, 20, 62, 40, 15, 31, 60};
constexpr uint8_t kK4Packed[12] = {0x41, 0x82, 0xC3, 0x3F, 0x80, 0x0A,
                                   0x54, 0xFE, 0x81, 0xF1, 0xF0, 0xC5};
// The same for the 16 Q3_K scales (stored with +32).
constexpr uint8_t kQ3Scales[16] = {0, 1, 15, 16, 31, 32, 47, 48, 63, 5, 10, 20, 40, 60, 33, 2};
constexpr uint8_t kQ3Packed[12] = {0xF0, 0x51, 0xAF, 0x40, 0x8F, 0xC0,
                                   0x1F, 0x20, 0xB4, 0xC8, 0x88, 0x1D};

TEST(RefQuants, SupportedTypes) {
  for (GgmlType t :
       {GgmlType::kF32, GgmlType::kF16, GgmlType::kBF16, GgmlType::kQ4_0, GgmlType::kQ4_1,
        GgmlType::kQ5_0, GgmlType::kQ5_1, GgmlType::kQ8_0, GgmlType::kQ2_K, GgmlType::kQ3_K,
        GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K, GgmlType::kQ8_K}) {
    EXPECT_TRUE(can_dequantize(t)) << ggml_type_name(t);
    EXPECT_TRUE(can_quantize(t)) << ggml_type_name(t);
  }
  for (GgmlType t : {GgmlType::kQ8_1, GgmlType::kIQ2_XXS, GgmlType::kIQ4_NL, GgmlType::kI8,
                     GgmlType::kI32, GgmlType::kF64}) {
    EXPECT_FALSE(can_dequantize(t)) << ggml_type_name(t);
    EXPECT_FALSE(can_quantize(t)) << ggml_type_name(t);
  }
}

TEST(RefQuantsDeathTest, RejectsUnsupportedTypeAndPartialBlocks) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  uint8_t bytes[64] = {};
  float out[64];
  EXPECT_DEATH(dequantize_row(GgmlType::kIQ4_NL, bytes, out, 32), "no dequantizer for IQ4_NL");
  EXPECT_DEATH(dequantize_row(GgmlType::kQ4_0, bytes, out, 31), "not a multiple");
  EXPECT_DEATH(quantize_row(GgmlType::kQ8_0, out, bytes, 33), "not a multiple");
}

TEST(RefQuants, PlainTypes) {
  const float f32[3] = {1.5f, -0.0f, 3e-39f};
  float out[4];
  dequantize_row(GgmlType::kF32, f32, out, 3);
  EXPECT_EQ(std::memcmp(out, f32, sizeof f32), 0);

  const uint16_t f16[4] = {0x3C00, 0xC000, 0x7BFF, 0x0001};
  dequantize_row(GgmlType::kF16, f16, out, 4);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -2.0f);
  EXPECT_EQ(out[2], 65504.0f);
  EXPECT_EQ(out[3], std::ldexp(1.0f, -24));

  const uint16_t bf16[2] = {0x3F80, 0xC040};
  dequantize_row(GgmlType::kBF16, bf16, out, 2);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -3.0f);

  const float x[2] = {1.0f, -3.0f};
  uint16_t bits[2];
  quantize_row(GgmlType::kBF16, x, bits, 2);
  EXPECT_EQ(bits[0], 0x3F80);
  EXPECT_EQ(bits[1], 0xC040);
  quantize_row(GgmlType::kF16, x, bits, 2);
  EXPECT_EQ(bits[0], 0x3C00);
  EXPECT_EQ(bits[1], 0xC200);
}

TEST(RefQuants, Q4_0LowNibblesFirstHalf) {
  BlockQ4_0 b{};
  b.d = 0x3800;  // 0.5
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  const std::vector<float> y = dequantize_block(GgmlType::kQ4_0, b);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], (j - 8) * 0.5f) << j;
    EXPECT_EQ(y[j + 16], (7 - j) * 0.5f) << j;
  }
  EXPECT_EQ(y[0], -4.0f);
  EXPECT_EQ(y[31], -4.0f);
}

TEST(RefQuants, Q4_1ScaleAndMin) {
  BlockQ4_1 b{};
  b.d = 0x3400;  // 0.25
  b.m = 0xBC00;  // -1
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  const std::vector<float> y = dequantize_block(GgmlType::kQ4_1, b);
  EXPECT_EQ(y[0], -1.0f);
  EXPECT_EQ(y[15], 2.75f);
  EXPECT_EQ(y[16], 2.75f);
  EXPECT_EQ(y[31], -1.0f);
  EXPECT_EQ(y[5], 0.25f);
}

// qh bits 0, 15, 17 and 30 set: elements 0, 15, 17 and 30 gain 16.
constexpr uint8_t kQh[4] = {0x01, 0x80, 0x02, 0x40};

TEST(RefQuants, Q5_0FifthBitOrder) {
  BlockQ5_0 b{};
  b.d = 0x3C00;
  std::memcpy(b.qh, kQh, 4);
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  const std::vector<float> y = dequantize_block(GgmlType::kQ5_0, b);
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_EQ(y[1], -15.0f);
  EXPECT_EQ(y[15], 15.0f);
  EXPECT_EQ(y[16], -1.0f);
  EXPECT_EQ(y[17], 14.0f);
  EXPECT_EQ(y[30], 1.0f);
  EXPECT_EQ(y[31], -16.0f);
}

TEST(RefQuants, Q5_1FifthBitOrder) {
  BlockQ5_1 b{};
  b.d = 0x3800;  // 0.5
  b.m = 0x4000;  // 2
  std::memcpy(b.qh, kQh, 4);
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  const std::vector<float> y = dequantize_block(GgmlType::kQ5_1, b);
  EXPECT_EQ(y[0], 10.0f);
  EXPECT_EQ(y[1], 2.5f);
  EXPECT_EQ(y[15], 17.5f);
  EXPECT_EQ(y[16], 9.5f);
  EXPECT_EQ(y[17], 17.0f);
  EXPECT_EQ(y[31], 2.0f);
}

TEST(RefQuants, Q8_0SignedCodes) {
  BlockQ8_0 b{};
  b.d = 0x4000;  // 2
  for (int j = 0; j < 32; ++j) b.qs[j] = static_cast<int8_t>(8 * j - 128);
  const std::vector<float> y = dequantize_block(GgmlType::kQ8_0, b);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], 2.0f * (8 * j - 128)) << j;
}

TEST(RefQuants, K4ScalePacking) {
  uint8_t packed[12];
  pack_k4_scales(kK4Scales, kK4Mins, packed);
  EXPECT_EQ(std::memcmp(packed, kK4Packed, 12), 0);
  for (int j = 0; j < 8; ++j) {
    int scale = -1;
    int min = -1;
    k4_scale_min(j, kK4Packed, &scale, &min);
    EXPECT_EQ(scale, kK4Scales[j]) << j;
    EXPECT_EQ(min, kK4Mins[j]) << j;
  }
}

TEST(RefQuants, Q3KScalePacking) {
  uint8_t packed[12];
  pack_q3k_scales(kQ3Scales, packed);
  EXPECT_EQ(std::memcmp(packed, kQ3Packed, 12), 0);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(q3k_scale(j, kQ3Packed), kQ3Scales[j]) << j;
}

TEST(RefQuants, Q2_K) {
  BlockQ2_K b{};
  b.d = 0x3C00;     // 1
  b.dmin = 0x3800;  // 0.5
  for (int j = 0; j < 16; ++j) b.scales[j] = static_cast<uint8_t>(((j + 1) & 15) | ((j % 4) << 4));
  b.qs[0] = 0xE4;   // elements 0, 32, 64, 96 get 0, 1, 2, 3
  b.qs[17] = 0xC0;  // element 96 + 17 gets 3
  b.qs[37] = 0x0C;  // element 128 + 32 + 5 gets 3
  const std::vector<float> y = dequantize_block(GgmlType::kQ2_K, b);
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_EQ(y[32], 2.0f);    // scale 3, min 2 * 0.5
  EXPECT_EQ(y[64], 10.0f);   // scale 5, min 0
  EXPECT_EQ(y[96], 20.0f);   // 7 * 3 - 2 * 0.5
  EXPECT_EQ(y[113], 22.5f);  // 8 * 3 - 3 * 0.5
  EXPECT_EQ(y[165], 32.0f);  // 11 * 3 - 2 * 0.5
  EXPECT_EQ(y[20], -0.5f);   // q 0, min 1
  EXPECT_EQ(y[255], -1.5f);  // scale 0, min 3
}

TEST(RefQuants, Q3_K) {
  BlockQ3_K b{};
  b.d = 0x3800;  // 0.5; sub-block scales are kQ3Scales - 32
  std::memcpy(b.scales, kQ3Packed, 12);
  std::memset(b.hmask, 0xFF, sizeof b.hmask);
  b.hmask[3] = 0xF6;  // elements 3 and 99 lack the high bit: q - 4
  b.qs[0] = 0xE4;     // elements 0, 32, 64, 96 get 0, 1, 2, 3
  b.qs[40] = 0x30;    // element 128 + 64 + 8 gets 3
  const std::vector<float> y = dequantize_block(GgmlType::kQ3_K, b);
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_EQ(y[32], -8.5f);   // scale -17
  EXPECT_EQ(y[64], -1.0f);   // scale -1, q 2
  EXPECT_EQ(y[96], 22.5f);   // scale 15, q 3
  EXPECT_EQ(y[3], 64.0f);    // scale -32, q -4
  EXPECT_EQ(y[99], -30.0f);  // scale 15, q -4
  EXPECT_EQ(y[200], 12.0f);  // scale 8, q 3
}

TEST(RefQuants, Q4_K) {
  BlockQ4_K b{};
  b.d = 0x3C00;     // 1
  b.dmin = 0x3400;  // 0.25
  std::memcpy(b.scales, kK4Packed, 12);
  b.qs[0] = 0x21;    // element 0 low nibble 1, element 32 high nibble 2
  b.qs[33] = 0xF7;   // element 65: 7, element 97: 15
  b.qs[127] = 0x9A;  // element 223: 10, element 255: 9
  const std::vector<float> y = dequantize_block(GgmlType::kQ4_K, b);
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_EQ(y[32], 1.5f);      // 2 * 2 - 10 * 0.25
  EXPECT_EQ(y[65], 16.0f);     // 3 * 7 - 20 * 0.25
  EXPECT_EQ(y[97], 929.5f);    // 63 * 15 - 62 * 0.25
  EXPECT_EQ(y[223], 472.25f);  // 48 * 10 - 31 * 0.25
  EXPECT_EQ(y[255], 30.0f);    // 5 * 9 - 60 * 0.25
  EXPECT_EQ(y[1], 0.0f);
  EXPECT_EQ(y[130], -10.0f);  // min 40
  EXPECT_EQ(y[170], -3.75f);  // min 15
}

TEST(RefQuants, Q5_K) {
  BlockQ5_K b{};
  b.d = 0x3C00;     // 1
  b.dmin = 0x3400;  // 0.25
  std::memcpy(b.scales, kK4Packed, 12);
  b.qs[0] = 0x21;
  b.qs[33] = 0xF7;
  b.qs[127] = 0x9A;
  b.qh[0] = 0x03;   // elements 0 and 32 gain 16
  b.qh[31] = 0x80;  // element 255 gains 16
  const std::vector<float> y = dequantize_block(GgmlType::kQ5_K, b);
  EXPECT_EQ(y[0], 17.0f);
  EXPECT_EQ(y[32], 33.5f);  // 2 * 18 - 2.5
  EXPECT_EQ(y[65], 16.0f);
  EXPECT_EQ(y[255], 110.0f);  // 5 * 25 - 15
  EXPECT_EQ(y[31], 0.0f);
}

TEST(RefQuants, Q6_K) {
  BlockQ6_K b{};
  b.d = 0x3800;  // 0.5
  for (int j = 0; j < 16; ++j) b.scales[j] = static_cast<int8_t>(10 * j - 70);
  b.scales[0] = -128;
  b.scales[15] = 127;
  b.ql[0] = 0x5F;    // element 0 low 15, element 64 low 5
  b.qh[0] = 0xE4;    // high bits of elements 0, 32, 64, 96: 0, 1, 2, 3
  b.ql[127] = 0xA3;  // element 191 low 3, element 255 low 10
  b.qh[63] = 0xC4;   // high bits of elements 159, 191, 223, 255: 0, 1, 0, 3
  const std::vector<float> y = dequantize_block(GgmlType::kQ6_K, b);
  EXPECT_EQ(y[0], 1088.0f);    // -128 * (15 - 32)
  EXPECT_EQ(y[32], 400.0f);    // -50 * (16 - 32)
  EXPECT_EQ(y[64], -75.0f);    // -30 * (37 - 32)
  EXPECT_EQ(y[96], -80.0f);    // -10 * (48 - 32)
  EXPECT_EQ(y[191], -260.0f);  // 40 * (19 - 32)
  EXPECT_EQ(y[255], 1651.0f);  // 127 * (58 - 32)
  EXPECT_EQ(y[1], 2048.0f);    // -128 * -32
}

TEST(RefQuants, Q8_K) {
  BlockQ8_K b{};
  b.d = 0.25f;
  for (int e = 0; e < 256; ++e) b.qs[e] = static_cast<int8_t>(e - 128);
  const std::vector<float> y = dequantize_block(GgmlType::kQ8_K, b);
  for (int e = 0; e < 256; ++e) EXPECT_EQ(y[e], 0.25f * (e - 128)) << e;

  std::vector<float> x(256);
  for (int e = 0; e < 256; ++e) x[e] = static_cast<float>(e % 37) - 20.0f;
  x[7] = -127.0f;
  BlockQ8_K q{};
  quantize_row(GgmlType::kQ8_K, x.data(), &q, 256);
  EXPECT_EQ(q.d, 1.0f);
  for (int k = 0; k < 16; ++k) {
    int sum = 0;
    for (int i = 0; i < 16; ++i) sum += q.qs[16 * k + i];
    EXPECT_EQ(q.bsums[k], sum) << k;
  }
  EXPECT_EQ(q.qs[7], -127);
  EXPECT_EQ(q.qs[36], 16);
}

}  // namespace
}  // namespace pensieve::ref
