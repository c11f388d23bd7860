// K-quant element order on random blocks: the dequantizers (written per element) against a
// second, loop-structured reading of each layout (chunks of 128 or 64, shifting bit masks).
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "core/half.h"
#include "kernels/ref/quant_blocks.h"
#include "kernels/ref/quants.h"

namespace pensieve::ref {
namespace {

// A block of random bytes whose F16 scale fields hold finite values in [-1, 1].
template <class Block>
Block random_block(std::mt19937& rng, std::initializer_list<size_t> half_offsets) {
  Block b;
  auto* bytes = reinterpret_cast<uint8_t*>(&b);
  for (size_t i = 0; i < sizeof(Block); ++i) bytes[i] = static_cast<uint8_t>(rng());
  for (size_t offset : half_offsets) {
    const float v = static_cast<float>(static_cast<int>(rng() % 2001) - 1000) / 1000.0f;
    const uint16_t h = f32_to_f16(v);
    std::memcpy(bytes + offset, &h, sizeof h);
  }
  return b;
}

void expect_same(const std::vector<float>& got, const std::vector<float>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], want[i]) << "element " << i;
}

template <class Block>
std::vector<float> dequantize(GgmlType type, const Block& b) {
  std::vector<float> y(kQkK);
  dequantize_row(type, &b, y.data(), kQkK);
  return y;
}

// Q2_K and Q3_K: two halves of 128; in each, four 2-bit planes of 32 bytes, 16 values per scale.
std::vector<float> q2_k_by_loops(const BlockQ2_K& b) {
  std::vector<float> y;
  const float d = f16_to_f32(b.d);
  const float dmin = f16_to_f32(b.dmin);
  int is = 0;
  for (int half = 0; half < 2; ++half) {
    const uint8_t* q = b.qs + 32 * half;
    for (int shift = 0; shift < 8; shift += 2) {
      for (int part = 0; part < 2; ++part, ++is) {
        const float scale = d * static_cast<float>(b.scales[is] & 15);
        const float min = dmin * static_cast<float>(b.scales[is] >> 4);
        for (int i = 0; i < 16; ++i) {
          y.push_back(scale * static_cast<float>((q[16 * part + i] >> shift) & 3) - min);
        }
      }
    }
  }
  return y;
}

std::vector<float> q3_k_by_loops(const BlockQ3_K& b) {
  // The 16 six-bit scales: low nibbles of bytes 0-7 then their high nibbles; bytes 8-11 hold the
  // top 2 bits, byte 8 + (j % 4) at bit 2 * (j / 4).
  int scales[16];
  for (int j = 0; j < 8; ++j) {
    scales[j] = b.scales[j] & 15;
    scales[j + 8] = b.scales[j] >> 4;
  }
  for (int k = 0; k < 4; ++k) {
    for (int quarter = 0; quarter < 4; ++quarter) {
      scales[4 * quarter + k] |= ((b.scales[8 + k] >> (2 * quarter)) & 3) << 4;
    }
  }
  std::vector<float> y;
  const float d = f16_to_f32(b.d);
  uint8_t mask = 1;
  int is = 0;
  for (int half = 0; half < 2; ++half) {
    const uint8_t* q = b.qs + 32 * half;
    for (int shift = 0; shift < 8; shift += 2, mask = static_cast<uint8_t>(mask << 1)) {
      for (int part = 0; part < 2; ++part, ++is) {
        const float scale = d * static_cast<float>(scales[is] - 32);
        for (int i = 0; i < 16; ++i) {
          const int low = (q[16 * part + i] >> shift) & 3;
          const int sub = (b.hmask[16 * part + i] & mask) ? 0 : 4;
          y.push_back(scale * static_cast<float>(low - sub));
        }
      }
    }
  }
  return y;
}

// Q4_K and Q5_K: four chunks of 64 over 32 bytes each, low nibbles then high nibbles; Q5_K's
// fifth bits come from two bit masks that move up by 2 per chunk.
std::vector<float> k4_by_loops(uint16_t d_bits, uint16_t dmin_bits, const uint8_t* scales,
                               const uint8_t* qs, const uint8_t* qh) {
  std::vector<float> y;
  const float d = f16_to_f32(d_bits);
  const float dmin = f16_to_f32(dmin_bits);
  int mask_lo = 1;
  int mask_hi = 2;
  for (int chunk = 0; chunk < 4; ++chunk, mask_lo <<= 2, mask_hi <<= 2) {
    const uint8_t* q = qs + 32 * chunk;
    int sc = 0;
    int mn = 0;
    k4_scale_min(2 * chunk, scales, &sc, &mn);
    for (int i = 0; i < 32; ++i) {
      const int high = qh != nullptr && (qh[i] & mask_lo) ? 16 : 0;
      y.push_back(d * static_cast<float>(sc) * static_cast<float>((q[i] & 15) + high) -
                  dmin * static_cast<float>(mn));
    }
    k4_scale_min(2 * chunk + 1, scales, &sc, &mn);
    for (int i = 0; i < 32; ++i) {
      const int high = qh != nullptr && (qh[i] & mask_hi) ? 16 : 0;
      y.push_back(d * static_cast<float>(sc) * static_cast<float>((q[i] >> 4) + high) -
                  dmin * static_cast<float>(mn));
    }
  }
  return y;
}

// Q6_K: two halves of 128; each position l < 32 of a half yields four values 32 apart.
std::vector<float> q6_k_by_loops(const BlockQ6_K& b) {
  std::vector<float> y(kQkK);
  const float d = f16_to_f32(b.d);
  for (int half = 0; half < 2; ++half) {
    const uint8_t* ql = b.ql + 64 * half;
    const uint8_t* qh = b.qh + 32 * half;
    const int8_t* sc = b.scales + 8 * half;
    float* out = y.data() + 128 * half;
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 15) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      out[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
      out[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
      out[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
      out[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
    }
  }
  return y;
}

constexpr int kBlocks = 200;

TEST(RefQuantsLayout, Q2_K) {
  std::mt19937 rng(21);
  for (int i = 0; i < kBlocks; ++i) {
    const auto b =
        random_block<BlockQ2_K>(rng, {offsetof(BlockQ2_K, d), offsetof(BlockQ2_K, dmin)});
    expect_same(dequantize(GgmlType::kQ2_K, b), q2_k_by_loops(b));
  }
}

TEST(RefQuantsLayout, Q3_K) {
  std::mt19937 rng(22);
  for (int i = 0; i < kBlocks; ++i) {
    const auto b = random_block<BlockQ3_K>(rng, {offsetof(BlockQ3_K, d)});
    expect_same(dequantize(GgmlType::kQ3_K, b), q3_k_by_loops(b));
  }
}

TEST(RefQuantsLayout, Q4_K) {
  std::mt19937 rng(23);
  for (int i = 0; i < kBlocks; ++i) {
    const auto b =
        random_block<BlockQ4_K>(rng, {offsetof(BlockQ4_K, d), offsetof(BlockQ4_K, dmin)});
    expect_same(dequantize(GgmlType::kQ4_K, b), k4_by_loops(b.d, b.dmin, b.scales, b.qs, nullptr));
  }
}

TEST(RefQuantsLayout, Q5_K) {
  std::mt19937 rng(24);
  for (int i = 0; i < kBlocks; ++i) {
    const auto b =
        random_block<BlockQ5_K>(rng, {offsetof(BlockQ5_K, d), offsetof(BlockQ5_K, dmin)});
    expect_same(dequantize(GgmlType::kQ5_K, b), k4_by_loops(b.d, b.dmin, b.scales, b.qs, b.qh));
  }
}

TEST(RefQuantsLayout, Q6_K) {
  std::mt19937 rng(25);
  for (int i = 0; i < kBlocks; ++i) {
    const auto b = random_block<BlockQ6_K>(rng, {offsetof(BlockQ6_K, d)});
    expect_same(dequantize(GgmlType::kQ6_K, b), q6_k_by_loops(b));
  }
}

// Quantizing a random row and dequantizing it through the loop-structured readings gives the
// same values as the dequantizers: the quantizers pack in the order the layouts define.
TEST(RefQuantsLayout, QuantizersPackInLayoutOrder) {
  std::mt19937 rng(26);
  std::vector<float> x(kQkK);
  for (float& v : x) v = static_cast<float>(static_cast<int>(rng() % 2001) - 1000) / 500.0f;
  BlockQ2_K q2;
  quantize_row(GgmlType::kQ2_K, x.data(), &q2, kQkK);
  expect_same(dequantize(GgmlType::kQ2_K, q2), q2_k_by_loops(q2));
  BlockQ3_K q3;
  quantize_row(GgmlType::kQ3_K, x.data(), &q3, kQkK);
  expect_same(dequantize(GgmlType::kQ3_K, q3), q3_k_by_loops(q3));
  BlockQ4_K q4;
  quantize_row(GgmlType::kQ4_K, x.data(), &q4, kQkK);
  expect_same(dequantize(GgmlType::kQ4_K, q4),
              k4_by_loops(q4.d, q4.dmin, q4.scales, q4.qs, nullptr));
  BlockQ5_K q5;
  quantize_row(GgmlType::kQ5_K, x.data(), &q5, kQkK);
  expect_same(dequantize(GgmlType::kQ5_K, q5), k4_by_loops(q5.d, q5.dmin, q5.scales, q5.qs, q5.qh));
  BlockQ6_K q6;
  quantize_row(GgmlType::kQ6_K, x.data(), &q6, kQkK);
  expect_same(dequantize(GgmlType::kQ6_K, q6), q6_k_by_loops(q6));
}

}  // namespace
}  // namespace pensieve::ref
