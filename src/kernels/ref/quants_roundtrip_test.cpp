// Quantize -> dequantize round trips on seeded random data: per-type error bounds, exact zeros,
// stable re-quantization, sizes of 1, 2 and many blocks, and unaligned source/destination rows.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/ref/quants.h"

namespace pensieve::ref {
namespace {

// Bounds on |deq(q(x)) - x| / |x| (RMS over a row of 32768), set ~20% above the measured values
// in the trailing comments. gaussian: N(0, 1); uniform: U(-1, 1); outlier: N(0, 1) with x = 60
// once every 1024 values (a lone large value per block sets a coarse step for its neighbours).
//
// Re-quantizing a dequantized row (quantize(dequantize(q))) reproduces the bytes for the plain and
// legacy types and Q8_K, and the values for Q6_K. The other K-quants re-fit a few sub-blocks
// differently (a sub-block whose lowest levels are unused, or a lone outlier, has several exact
// fits, and the super-block steps are searched from the fits), so their values move by a small
// fraction of their own error: worst relative RMS change over 10 seeds x 3 distributions
// measured 0.016 (Q2_K), 0.006 (Q3_K, outliers only), 0.012 (Q4_K), 0.0013 (Q5_K).
enum class Stable { kBytes, kValues, kNear };

struct TypeBounds {
  GgmlType type;
  double gaussian;
  double uniform;
  double outlier;
  Stable stable;
  double drift;  // for kNear: bound on |deq(q(deq(q))) - deq(q)| / |deq(q)|
};

// clang-format off
constexpr TypeBounds kBounds[] = {
    {GgmlType::kF32,  0.0,    0.0,    0.0,    Stable::kBytes,  0},      // exact
    {GgmlType::kF16,  2.6e-4, 2.2e-4, 1.3e-4, Stable::kBytes,  0},      // 2.1e-4 1.8e-4 1.0e-4
    {GgmlType::kBF16, 2.0e-3, 1.8e-3, 1.0e-3, Stable::kBytes,  0},      // 1.66e-3 1.47e-3 0.78e-3
    {GgmlType::kQ8_0, 0.0065, 0.0045, 0.014,  Stable::kBytes,  0},      // 0.0054 0.0038 0.0116
    {GgmlType::kQ8_K, 0.0085, 0.0047, 0.039,  Stable::kBytes,  0},      // 0.0070 0.0039 0.0322
    {GgmlType::kQ6_K, 0.020,  0.015,  0.039,  Stable::kValues, 0},      // 0.0165 0.0123 0.0319
    {GgmlType::kQ5_1, 0.046,  0.035,  0.060,  Stable::kBytes,  0},      // 0.0380 0.0292 0.0499
    {GgmlType::kQ5_0, 0.052,  0.038,  0.093,  Stable::kBytes,  0},      // 0.0428 0.0312 0.0771
    {GgmlType::kQ5_K, 0.041,  0.032,  0.056,  Stable::kNear,   0.002},  // 0.0340 0.0262 0.0463
    {GgmlType::kQ4_1, 0.094,  0.073,  0.138,  Stable::kBytes,  0},      // 0.0783 0.0604 0.1148
    {GgmlType::kQ4_0, 0.103,  0.078,  0.110,  Stable::kBytes,  0},      // 0.0857 0.0645 0.0914
    {GgmlType::kQ4_K, 0.084,  0.065,  0.105,  Stable::kNear,   0.018},  // 0.0699 0.0538 0.0876
    {GgmlType::kQ3_K, 0.173,  0.142,  0.112,  Stable::kNear,   0.01},   // 0.1439 0.1180 0.0928
    {GgmlType::kQ2_K, 0.315,  0.262,  0.205,  Stable::kNear,   0.025},  // 0.2628 0.2186 0.1704
};
// clang-format on

enum class Dist { kGaussian, kUniform, kOutlier, kZeros };

// Portable seeded samples (std::normal_distribution differs between standard libraries).
std::vector<float> make_data(Dist dist, int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  auto uniform01 = [&rng] { return (static_cast<double>(rng() >> 8) + 0.5) / 16777216.0; };
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const double u1 = uniform01();
    const double u2 = uniform01();
    const double gauss = std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
    switch (dist) {
      case Dist::kGaussian:
        x[i] = static_cast<float>(gauss);
        break;
      case Dist::kUniform:
        x[i] = static_cast<float>(2.0 * u1 - 1.0);
        break;
      case Dist::kOutlier:
        x[i] = i % 1024 == 100 ? 60.0f : static_cast<float>(gauss);
        break;
      case Dist::kZeros:
        x[i] = 0.0f;
        break;
    }
  }
  return x;
}

size_t row_bytes(GgmlType type, int64_t n) { return ggml_row_bytes(ggml_type_traits(type), n); }

std::vector<uint8_t> quantize(GgmlType type, const std::vector<float>& x) {
  std::vector<uint8_t> q(row_bytes(type, static_cast<int64_t>(x.size())));
  quantize_row(type, x.data(), q.data(), static_cast<int64_t>(x.size()));
  return q;
}

std::vector<float> dequantize(GgmlType type, const std::vector<uint8_t>& q, int64_t n) {
  std::vector<float> y(static_cast<size_t>(n));
  dequantize_row(type, q.data(), y.data(), n);
  return y;
}

double relative_rms_error(const std::vector<float>& x, const std::vector<float>& y) {
  double err = 0;
  double ref = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    err += (static_cast<double>(y[i]) - x[i]) * (static_cast<double>(y[i]) - x[i]);
    ref += static_cast<double>(x[i]) * x[i];
  }
  return ref > 0 ? std::sqrt(err / ref) : std::sqrt(err);
}

constexpr int64_t kRowElements = 8 * 4096;

double round_trip_error(GgmlType type, Dist dist, uint32_t seed) {
  const std::vector<float> x = make_data(dist, kRowElements, seed);
  return relative_rms_error(x, dequantize(type, quantize(type, x), kRowElements));
}

TEST(RefQuantsRoundTrip, ErrorWithinPerTypeBounds) {
  for (const TypeBounds& b : kBounds) {
    const double gaussian = round_trip_error(b.type, Dist::kGaussian, 1);
    const double uniform = round_trip_error(b.type, Dist::kUniform, 2);
    const double outlier = round_trip_error(b.type, Dist::kOutlier, 3);
    std::printf("%-5s relative RMS error: gaussian %.5f uniform %.5f outlier %.5f\n",
                std::string(ggml_type_name(b.type)).c_str(), gaussian, uniform, outlier);
    EXPECT_LE(gaussian, b.gaussian) << ggml_type_name(b.type);
    EXPECT_LE(uniform, b.uniform) << ggml_type_name(b.type);
    EXPECT_LE(outlier, b.outlier) << ggml_type_name(b.type);
  }
}

TEST(RefQuantsRoundTrip, OutlierKeepsItsValue) {
  const std::vector<float> x = make_data(Dist::kOutlier, 4096, 4);
  for (const TypeBounds& b : kBounds) {
    const std::vector<float> y = dequantize(b.type, quantize(b.type, x), 4096);
    for (size_t i = 100; i < x.size(); i += 1024) {
      EXPECT_NEAR(y[i], 60.0f, 60.0f * 0.05f) << ggml_type_name(b.type) << " at " << i;
    }
  }
}

TEST(RefQuantsRoundTrip, ZerosStayExactlyZero) {
  const std::vector<float> x = make_data(Dist::kZeros, 4096, 5);
  for (const TypeBounds& b : kBounds) {
    const std::vector<float> y = dequantize(b.type, quantize(b.type, x), 4096);
    for (size_t i = 0; i < y.size(); ++i) {
      ASSERT_EQ(y[i], 0.0f) << ggml_type_name(b.type) << " at " << i;
    }
  }
}

TEST(RefQuantsRoundTrip, RequantizingIsStable) {
  for (const TypeBounds& b : kBounds) {
    for (Dist dist : {Dist::kGaussian, Dist::kUniform, Dist::kOutlier}) {
      SCOPED_TRACE(testing::Message()
                   << ggml_type_name(b.type) << " dist " << static_cast<int>(dist));
      const std::vector<float> x = make_data(dist, kRowElements, 6);
      const std::vector<uint8_t> q1 = quantize(b.type, x);
      const std::vector<float> y1 = dequantize(b.type, q1, kRowElements);
      const std::vector<uint8_t> q2 = quantize(b.type, y1);
      const std::vector<float> y2 = dequantize(b.type, q2, kRowElements);
      switch (b.stable) {
        case Stable::kBytes:
          EXPECT_EQ(q1, q2);
          break;
        case Stable::kValues:
          EXPECT_EQ(y1, y2);
          break;
        case Stable::kNear:
          EXPECT_LE(relative_rms_error(y1, y2), b.drift);
          break;
      }
    }
  }
}

// Quantizing from a source offset by one float into a destination offset by one byte, and
// dequantizing from there into an offset destination, gives the same bytes and floats as aligned
// buffers, never writes past the row, and is deterministic.
TEST(RefQuantsRoundTrip, SizesAndMisalignedPointers) {
  constexpr uint8_t kGuard = 0xA5;
  for (const TypeBounds& b : kBounds) {
    const int64_t block = ggml_type_traits(b.type).block_elements;
    for (int64_t n_blocks : {int64_t{1}, int64_t{2}, int64_t{37}}) {
      const int64_t n = n_blocks * block;
      const size_t n_bytes = row_bytes(b.type, n);
      const std::vector<float> x = make_data(Dist::kGaussian, n, static_cast<uint32_t>(n));
      const std::vector<uint8_t> q = quantize(b.type, x);
      const std::vector<float> y = dequantize(b.type, q, n);

      std::vector<float> src(static_cast<size_t>(n) + 1);
      std::memcpy(src.data() + 1, x.data(), x.size() * sizeof(float));
      std::vector<uint8_t> dst(n_bytes + 2, kGuard);
      quantize_row(b.type, src.data() + 1, dst.data() + 1, n);
      EXPECT_EQ(dst[0], kGuard);
      EXPECT_EQ(dst[n_bytes + 1], kGuard);
      EXPECT_EQ(std::memcmp(dst.data() + 1, q.data(), n_bytes), 0)
          << ggml_type_name(b.type) << " blocks " << n_blocks;

      std::vector<float> out(static_cast<size_t>(n) + 2, -7.0f);
      dequantize_row(b.type, dst.data() + 1, out.data() + 1, n);
      EXPECT_EQ(out[0], -7.0f);
      EXPECT_EQ(out[static_cast<size_t>(n) + 1], -7.0f);
      EXPECT_EQ(std::memcmp(out.data() + 1, y.data(), y.size() * sizeof(float)), 0)
          << ggml_type_name(b.type) << " blocks " << n_blocks;
    }
  }
}

}  // namespace
}  // namespace pensieve::ref
