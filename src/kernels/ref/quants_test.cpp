// Reference (de)quantization: hand-built blocks with known values, round-trip error bounds per
// type, and real data (the same TinyStories model stored as Q8_0 and as F16).
#include "kernels/ref/quants.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "core/half.h"
#include "gguf/reader.h"

namespace pensieve::ref {
namespace {

void put_f16(uint8_t* p, float v) {
  const uint16_t h = f32_to_f16(v);
  std::memcpy(p, &h, 2);
}

TEST(Dequantize, Q4_0NibbleOrderAndOffset) {
  uint8_t b[18];
  put_f16(b, 0.5f);
  for (int j = 0; j < 16; ++j) b[2 + j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  float y[32];
  dequantize_row(GgmlType::kQ4_0, b, y, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], (j - 8) * 0.5f) << j;            // low nibbles: elements 0..15
    EXPECT_EQ(y[j + 16], (15 - j - 8) * 0.5f) << j;  // high nibbles: elements 16..31
  }
}

TEST(Dequantize, Q5_0HighBitsFromQh) {
  uint8_t b[22] = {};
  put_f16(b, 1.0f);
  const uint32_t qh = (1u << 3) | (1u << 20);  // 5th bit of elements 3 and 20
  std::memcpy(b + 2, &qh, 4);
  float y[32];
  dequantize_row(GgmlType::kQ5_0, b, y, 32);
  EXPECT_EQ(y[0], -16.0f);
  EXPECT_EQ(y[3], 0.0f);  // 16 - 16
  EXPECT_EQ(y[20], 0.0f);
  EXPECT_EQ(y[21], -16.0f);
}

TEST(Dequantize, Q8_0AndQ4_1) {
  uint8_t b8[34];
  put_f16(b8, 0.25f);
  for (int j = 0; j < 32; ++j) b8[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(j - 16));
  float y[32];
  dequantize_row(GgmlType::kQ8_0, b8, y, 32);
  EXPECT_EQ(y[0], -4.0f);
  EXPECT_EQ(y[31], 3.75f);
  uint8_t b41[20];
  put_f16(b41, 2.0f);
  put_f16(b41 + 2, -1.0f);
  std::memset(b41 + 4, 0x31, 16);  // low 1, high 3
  dequantize_row(GgmlType::kQ4_1, b41, y, 32);
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_EQ(y[16], 5.0f);
}

TEST(Dequantize, Q4_KSixBitScalePacking) {
  uint8_t b[144] = {};
  put_f16(b, 1.0f);      // d
  put_f16(b + 2, 0.5f);  // dmin
  uint8_t* s = b + 4;
  // Group 0: scale 5, min 2. Group 5: scale 37 (0b100101), min 50 (0b110010).
  s[0] = 5;
  s[4] = 2;
  s[9] = static_cast<uint8_t>((37 & 15) | ((50 & 15) << 4));
  s[1] |= static_cast<uint8_t>((37 >> 4) << 6);
  s[5] |= static_cast<uint8_t>((50 >> 4) << 6);
  uint8_t* qs = b + 16;
  qs[0] = 0x0f;       // element 0 (group 0) = 15
  qs[64 + 3] = 0x70;  // element 160 + 3 (group 5, high nibbles of chunk 2) = 7
  std::vector<float> y(256);
  dequantize_row(GgmlType::kQ4_K, b, y.data(), 256);
  EXPECT_EQ(y[0], 5 * 15 - 0.5f * 2);
  EXPECT_EQ(y[1], -0.5f * 2);
  EXPECT_EQ(y[163], 37 * 7 - 0.5f * 50);
}

TEST(Dequantize, Q6_KLayout) {
  uint8_t b[210] = {};
  auto* sc = reinterpret_cast<int8_t*>(b + 192);
  for (int g = 0; g < 16; ++g) sc[g] = static_cast<int8_t>(g + 1);
  put_f16(b + 208, 0.5f);
  // Element 70 = half 0, quarter 2 (high nibble of ql[6]), group 4; code 63 -> value 31.
  b[6] = 0xf0;
  b[128 + 6] = 0x30;  // qh bits 4-5 for quarter 2
  std::vector<float> y(256);
  dequantize_row(GgmlType::kQ6_K, b, y.data(), 256);
  EXPECT_EQ(y[70], 0.5f * 5 * 31);
  EXPECT_EQ(y[6], 0.5f * 1 * -32);  // low nibble 0, high bits 0: code 0 -> -32
}

struct Bound {
  GgmlType type;
  double max_relative_rms;  // rms(error) / rms(x) for Gaussian data
};

// Measured with this generator (standard normal, seed 1, 4096 elements; print them with
// PENSIEVE_PRINT_ERRORS=1): F16 0.0002, BF16 0.0017, Q8_0 0.0054, Q4_0 0.088, Q4_1 0.078,
// Q5_0 0.043, Q5_1 0.038, Q2_K 0.326, Q3_K 0.155, Q4_K 0.079, Q5_K 0.038, Q6_K 0.019,
// Q8_K 0.0068. Bounds leave about 25% headroom.
const Bound kBounds[] = {
    {GgmlType::kF32, 0.0},    {GgmlType::kF16, 0.0003},  {GgmlType::kBF16, 0.0021},
    {GgmlType::kQ8_0, 0.007}, {GgmlType::kQ4_0, 0.11},   {GgmlType::kQ4_1, 0.10},
    {GgmlType::kQ5_0, 0.055}, {GgmlType::kQ5_1, 0.048},  {GgmlType::kQ2_K, 0.41},
    {GgmlType::kQ3_K, 0.20},  {GgmlType::kQ4_K, 0.10},   {GgmlType::kQ5_K, 0.048},
    {GgmlType::kQ6_K, 0.024}, {GgmlType::kQ8_K, 0.0086},
};

class RoundTrip : public ::testing::TestWithParam<Bound> {};

std::vector<float> gaussian(size_t n, uint32_t seed, float outlier) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(n);
  for (float& v : x) v = dist(rng);
  if (outlier != 0 && n > 7) x[7] = outlier;
  return x;
}

double relative_rms(const std::vector<float>& x, const std::vector<float>& y) {
  double err = 0, ref = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    err += (x[i] - y[i]) * static_cast<double>(x[i] - y[i]);
    ref += x[i] * static_cast<double>(x[i]);
  }
  return ref == 0 ? std::sqrt(err) : std::sqrt(err / ref);
}

TEST_P(RoundTrip, ErrorWithinBound) {
  const Bound& bound = GetParam();
  ASSERT_TRUE(can_quantize(bound.type) && can_dequantize(bound.type));
  const GgmlTypeTraits& t = ggml_type_traits(bound.type);
  for (int64_t n_blocks : {1, 2, 16}) {
    const int64_t n = n_blocks * std::max<int64_t>(t.block_elements, 256);
    const auto x = gaussian(static_cast<size_t>(n), 1, 0.0f);
    // Misaligned buffers: kernels must not assume alignment of rows.
    std::vector<uint8_t> q(ggml_row_bytes(t, n) + 1);
    std::vector<float> y(static_cast<size_t>(n) + 1);
    quantize_row(bound.type, x.data(), q.data() + 1, n);
    dequantize_row(bound.type, q.data() + 1, y.data() + 1, n);
    const std::vector<float> back(y.begin() + 1, y.end());
    const double rms = relative_rms(x, back);
    EXPECT_LE(rms, bound.max_relative_rms) << ggml_type_name(bound.type) << " n=" << n;
    if (std::getenv("PENSIEVE_PRINT_ERRORS") != nullptr) {
      std::printf("%s n=%lld relative rms %.5f\n", ggml_type_name(bound.type).data(),
                  static_cast<long long>(n), rms);
    }
    // Quantizing what came back reproduces it (up to f16 rounding of the factors).
    std::vector<uint8_t> q2(q.size());
    std::vector<float> y2(static_cast<size_t>(n));
    quantize_row(bound.type, back.data(), q2.data(), n);
    dequantize_row(bound.type, q2.data(), y2.data(), n);
    EXPECT_LE(relative_rms(back, y2), bound.max_relative_rms) << ggml_type_name(bound.type);
  }
}

TEST_P(RoundTrip, ZerosAndOutliersStayFinite) {
  const Bound& bound = GetParam();
  const GgmlTypeTraits& t = ggml_type_traits(bound.type);
  const int64_t n = std::max<int64_t>(t.block_elements, 256);
  for (float outlier : {0.0f, 1000.0f}) {
    auto x = outlier == 0 ? std::vector<float>(static_cast<size_t>(n), 0.0f)
                          : gaussian(static_cast<size_t>(n), 2, outlier);
    std::vector<uint8_t> q(ggml_row_bytes(t, n));
    std::vector<float> y(static_cast<size_t>(n));
    quantize_row(bound.type, x.data(), q.data(), n);
    dequantize_row(bound.type, q.data(), y.data(), n);
    for (float v : y) ASSERT_TRUE(std::isfinite(v)) << ggml_type_name(bound.type);
    if (outlier == 0) {
      for (float v : y) EXPECT_EQ(v, 0.0f) << ggml_type_name(bound.type);
    } else {
      EXPECT_NEAR(y[7], outlier, outlier * 0.1) << ggml_type_name(bound.type);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, RoundTrip, ::testing::ValuesIn(kBounds),
                         [](const auto& param_info) {
                           return std::string(ggml_type_name(param_info.param.type));
                         });

// The Q8_0 and F16 TinyStories files hold the same model: every tensor must agree within the
// error Q8_0 allows: half a quantization step (max|block| / 254), plus the rounding of the f16
// block scale (up to 127 * d * 2^-11 = max|block| / 2048) and of the F16 values themselves
// (|y| * 2^-11 <= max|block| / 2048).
TEST(RealData, TinyStoriesQ8_0AgreesWithF16) {
  const std::string dir = std::string(PENSIEVE_SHARED_DIR) + "/models/";
  auto q8 = GgufFile::open(dir + "TinyStories-656K-Q8_0.gguf");
  auto f16 = GgufFile::open(dir + "TinyStories-656K-F16.gguf");
  ASSERT_TRUE(q8.has_value() && f16.has_value());
  int compared = 0, q8_tensors = 0;
  for (const GgufTensorInfo& a : (*q8)->tensors()) {
    const GgufTensorInfo* b = (*f16)->find_tensor(a.name);
    ASSERT_NE(b, nullptr) << a.name;
    ASSERT_EQ(a.n_elements, b->n_elements) << a.name;
    std::vector<float> x(a.n_elements), y(a.n_elements);
    dequantize_row(a.type, a.data, x.data(), static_cast<int64_t>(a.n_elements));
    dequantize_row(b->type, b->data, y.data(), static_cast<int64_t>(b->n_elements));
    q8_tensors += a.type == GgmlType::kQ8_0;
    for (size_t blk = 0; blk < a.n_elements / 32; ++blk) {
      float amax = 0;
      for (size_t i = 32 * blk; i < 32 * blk + 32; ++i) amax = std::max(amax, std::fabs(y[i]));
      const float tolerance = amax / 254.0f + amax / 1024.0f + 1e-6f;
      for (size_t i = 32 * blk; i < 32 * blk + 32; ++i) {
        ASSERT_NEAR(x[i], y[i], tolerance) << a.name << " element " << i;
      }
    }
    EXPECT_LT(relative_rms(y, x), 0.01) << a.name;
    ++compared;
  }
  EXPECT_EQ(compared, 20);
  EXPECT_EQ(q8_tensors, 15);
}

}  // namespace
}  // namespace pensieve::ref
