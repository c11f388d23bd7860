// matmul against ref_matmul for every weight type at every dispatch level this CPU supports:
// sizes from one block to real shapes, misaligned weights and activations, 1 and 2 threads.
//
// Tolerance, relative to sum |w| |x| of each output (w as the reference dequantizes it):
//   F32, F16, BF16: float accumulation only, 1e-5.
//   Quantized types: activations are rounded to 8 bits per block of 32 (or 256 for K-quants),
//   an error of at most max|x| / 254 per element; with |x| uniform that bounds the relative
//   error near 1/127, so 1e-2. Kernel bugs (a wrong nibble, scale or block) show up as errors
//   of order 1.
#include "kernels/cpu/matmul.h"

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/cpu/ref_matmul.h"
#include "kernels/ref/quants.h"

namespace pensieve::cpu {
namespace {

constexpr GgmlType kTypes[] = {GgmlType::kF32,  GgmlType::kF16,  GgmlType::kBF16, GgmlType::kQ4_0,
                               GgmlType::kQ4_1, GgmlType::kQ5_0, GgmlType::kQ5_1, GgmlType::kQ8_0,
                               GgmlType::kQ2_K, GgmlType::kQ3_K, GgmlType::kQ4_K, GgmlType::kQ5_K,
                               GgmlType::kQ6_K};

double tolerance(GgmlType type) {
  const bool is_float = type == GgmlType::kF32 || type == GgmlType::kF16 || type == GgmlType::kBF16;
  return is_float ? 1e-5 : 1e-2;
}

// A weight matrix quantized by the reference, its rows starting `misalign` bytes past an
// allocation of exactly the bytes it needs (so reads past the end trip AddressSanitizer).
struct TestMatrix {
  std::vector<uint8_t> storage;
  Matrix m;
  std::vector<float> dequantized;  // [n_rows, n_cols]
};

TestMatrix make_matrix(GgmlType type, int64_t n_rows, int64_t n_cols, size_t misalign,
                       uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  const size_t row_bytes = ggml_row_bytes(ggml_type_traits(type), n_cols);
  TestMatrix t;
  t.storage.resize(misalign + row_bytes * static_cast<size_t>(n_rows));
  std::vector<float> row(static_cast<size_t>(n_cols));
  t.dequantized.resize(static_cast<size_t>(n_rows * n_cols));
  for (int64_t r = 0; r < n_rows; ++r) {
    const float row_scale = 0.5f + static_cast<float>(r % 5);  // rows of different magnitudes
    for (float& v : row) v = dist(rng) * row_scale;
    uint8_t* dst = t.storage.data() + misalign + row_bytes * static_cast<size_t>(r);
    ref::quantize_row(type, row.data(), dst, n_cols);
    ref::dequantize_row(type, dst, t.dequantized.data() + r * n_cols, n_cols);
  }
  t.m = Matrix{type, n_cols, n_rows, row_bytes, t.storage.data() + misalign};
  return t;
}

// Activations [n_tokens, n_cols] one float past a 64-byte boundary.
struct TestActivations {
  std::vector<float> storage;
  const float* x = nullptr;
};

TestActivations make_activations(int64_t n_tokens, int64_t n_cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  TestActivations a;
  a.storage.resize(static_cast<size_t>(n_tokens * n_cols) + 32);
  auto address = reinterpret_cast<uintptr_t>(a.storage.data());
  const size_t skip = ((64 - address % 64) % 64) / sizeof(float) + 1;
  float* x = a.storage.data() + skip;
  for (int64_t i = 0; i < n_tokens * n_cols; ++i) x[i] = dist(rng) * (i % 7 == 0 ? 4.0f : 1.0f);
  a.x = x;
  return a;
}

void expect_near_ref(const TestMatrix& w, const float* x, int64_t n_tokens, const float* y,
                     const float* y_ref, double tol) {
  const int64_t n_rows = w.m.n_rows, n_cols = w.m.n_cols;
  int failures = 0;
  for (int64_t t = 0; t < n_tokens && failures < 5; ++t) {
    for (int64_t r = 0; r < n_rows && failures < 5; ++r) {
      double magnitude = 0;
      for (int64_t c = 0; c < n_cols; ++c) {
        magnitude += std::fabs(w.dequantized[r * n_cols + c] * x[t * n_cols + c]);
      }
      const double err = std::fabs(static_cast<double>(y[t * n_rows + r]) - y_ref[t * n_rows + r]);
      if (!(err <= tol * magnitude + 1e-6)) {
        ++failures;
        ADD_FAILURE() << "token " << t << " row " << r << ": " << y[t * n_rows + r] << " vs ref "
                      << y_ref[t * n_rows + r] << " (error " << err / magnitude
                      << " of sum |w||x|)";
      }
    }
  }
}

class MatmulTest : public testing::TestWithParam<std::tuple<GgmlType, Isa>> {};

std::vector<int64_t> column_counts(GgmlType type) {
  const int64_t block = ggml_type_traits(type).block_elements;
  if (block == 1) return {1, 7, 15, 16, 17, 33, 100, 2048, 5632};
  if (block == 32) return {32, 64, 96, 320, 2048, 5632};
  return {256, 512, 768, 2048, 5632};
}

TEST_P(MatmulTest, MatchesReference) {
  const auto [type, isa] = GetParam();
  if (!isa_supported(isa)) GTEST_SKIP() << isa_name(isa) << " not supported here";
  EXPECT_EQ(matmul_isa(type, isa), isa) << "no " << isa_name(isa) << " kernel";
  ThreadPool one(1), two(2);
  MatmulWorkspace ws(33, 5632);
  uint32_t seed = 1;
  for (const int64_t n_cols : column_counts(type)) {
    for (const int64_t n_rows : {1, 3, 17, 64}) {
      const TestMatrix w = make_matrix(type, n_rows, n_cols, 1 + seed % 3, seed);
      for (const int64_t n_tokens : {1, 2, 7, 33}) {
        SCOPED_TRACE(testing::Message()
                     << n_rows << " x " << n_cols << ", " << n_tokens << " tokens");
        const TestActivations a = make_activations(n_tokens, n_cols, seed + 1000);
        ++seed;
        std::vector<float> y_ref(static_cast<size_t>(n_tokens * n_rows));
        ref_matmul(w.m, a.x, n_tokens, y_ref.data());
        std::vector<float> y1(y_ref.size(), NAN), y2(y_ref.size(), NAN);
        matmul(w.m, a.x, n_tokens, y1.data(), one, ws, isa);
        matmul(w.m, a.x, n_tokens, y2.data(), two, ws, isa);
        expect_near_ref(w, a.x, n_tokens, y1.data(), y_ref.data(), tolerance(type));
        EXPECT_EQ(0, std::memcmp(y1.data(), y2.data(), y1.size() * sizeof(float)))
            << "1 and 2 threads differ";
      }
    }
  }
}

// A token's outputs do not depend on which other tokens share the batch.
TEST_P(MatmulTest, BatchedEqualsOneTokenAtATime) {
  const auto [type, isa] = GetParam();
  if (!isa_supported(isa)) GTEST_SKIP() << isa_name(isa) << " not supported here";
  const int64_t n_cols = ggml_type_traits(type).block_elements == 256 ? 512 : 96;
  const int64_t n_rows = 21, n_tokens = 11;
  const TestMatrix w = make_matrix(type, n_rows, n_cols, 0, 7);
  const TestActivations a = make_activations(n_tokens, n_cols, 8);
  ThreadPool pool(2);
  MatmulWorkspace ws(n_tokens, n_cols);
  std::vector<float> batched(static_cast<size_t>(n_tokens * n_rows));
  matmul(w.m, a.x, n_tokens, batched.data(), pool, ws, isa);
  for (int64_t t = 0; t < n_tokens; ++t) {
    std::vector<float> single(static_cast<size_t>(n_rows));
    matmul(w.m, a.x + t * n_cols, 1, single.data(), pool, ws, isa);
    EXPECT_EQ(0, std::memcmp(single.data(), batched.data() + t * n_rows, single.size() * 4))
        << "token " << t;
  }
}

// Rows further apart than their bytes (a view into a wider tensor) and n_tokens == 0.
TEST_P(MatmulTest, PaddedRowStrideAndNoTokens) {
  const auto [type, isa] = GetParam();
  if (!isa_supported(isa)) GTEST_SKIP() << isa_name(isa) << " not supported here";
  const int64_t n_cols = ggml_type_traits(type).block_elements == 256 ? 256 : 64;
  const int64_t n_rows = 5, n_tokens = 3;
  const TestMatrix packed = make_matrix(type, n_rows, n_cols, 0, 11);
  const size_t stride = packed.m.row_bytes + 13;
  std::vector<uint8_t> padded(stride * n_rows, 0xAB);
  for (int64_t r = 0; r < n_rows; ++r) {
    std::memcpy(padded.data() + stride * r, packed.m.row(r), packed.m.row_bytes);
  }
  Matrix w = packed.m;
  w.row_bytes = stride;
  w.data = padded.data();
  const TestActivations a = make_activations(n_tokens, n_cols, 12);
  ThreadPool pool(2);
  MatmulWorkspace ws(n_tokens, n_cols);
  std::vector<float> y(static_cast<size_t>(n_tokens * n_rows)), y_ref(y.size());
  ref_matmul(packed.m, a.x, n_tokens, y_ref.data());
  matmul(w, a.x, n_tokens, y.data(), pool, ws, isa);
  expect_near_ref(packed, a.x, n_tokens, y.data(), y_ref.data(), tolerance(type));
  std::vector<float> untouched(4, 1.5f);
  matmul(w, a.x, 0, untouched.data(), pool, ws, isa);
  EXPECT_EQ(untouched[0], 1.5f);
}

// Zero and vanishingly small activations give zeros, not NaN or garbage from 127 / max.
TEST_P(MatmulTest, ZeroAndTinyActivations) {
  const auto [type, isa] = GetParam();
  if (!isa_supported(isa)) GTEST_SKIP() << isa_name(isa) << " not supported here";
  const int64_t n_cols = ggml_type_traits(type).block_elements == 256 ? 512 : 64;
  const int64_t n_rows = 4, n_tokens = 2;
  const TestMatrix w = make_matrix(type, n_rows, n_cols, 0, 21);
  std::vector<float> x(static_cast<size_t>(n_tokens * n_cols), 0.0f);
  for (int64_t c = 0; c < n_cols; ++c) x[n_cols + c] = (c % 2 ? 1e-39f : -1e-39f);
  ThreadPool pool(1);
  MatmulWorkspace ws(n_tokens, n_cols);
  std::vector<float> y(static_cast<size_t>(n_tokens * n_rows), NAN);
  matmul(w.m, x.data(), n_tokens, y.data(), pool, ws, isa);
  for (int64_t r = 0; r < n_rows; ++r) {
    EXPECT_EQ(y[r], 0.0f) << "row " << r;
    EXPECT_TRUE(std::isfinite(y[n_rows + r]) && std::fabs(y[n_rows + r]) < 1e-30f)
        << "row " << r << ": " << y[n_rows + r];
  }
}

std::string param_name(const testing::TestParamInfo<std::tuple<GgmlType, Isa>>& info) {
  return std::string(ggml_type_name(std::get<0>(info.param))) + "_" +
         std::string(isa_name(std::get<1>(info.param)));
}

INSTANTIATE_TEST_SUITE_P(AllTypes, MatmulTest,
                         testing::Combine(testing::ValuesIn(kTypes), testing::ValuesIn(kAllIsas)),
                         param_name);

// matmul_many gives exactly matmul()'s results: sharing the quantized activations and splitting
// the rows of several matrices by bytes (same formats), or falling back (mixed formats, prompts).
TEST(Matmul, ManyEqualsOneByOne) {
  const std::vector<std::vector<GgmlType>> groups = {
      {GgmlType::kQ4_0, GgmlType::kQ4_0, GgmlType::kQ4_0},
      {GgmlType::kQ4_K, GgmlType::kQ6_K},  // K-quants share the Q8_K activations at best_isa
      {GgmlType::kQ4_0, GgmlType::kQ8_0, GgmlType::kF16},
      {GgmlType::kF16, GgmlType::kBF16}};
  ThreadPool pool(2);
  MatmulWorkspace ws(3, 512);
  uint32_t seed = 100;
  for (const auto& types : groups) {
    for (const int64_t n_tokens : {1, 3}) {
      std::vector<TestMatrix> ws_matrices;
      const int64_t rows[] = {48, 17, 130, 64};
      for (size_t i = 0; i < types.size(); ++i) {
        ws_matrices.push_back(make_matrix(types[i], rows[i], 512, i, seed++));
      }
      const TestActivations a = make_activations(n_tokens, 512, seed++);
      std::vector<std::vector<float>> together(types.size()), alone(types.size());
      std::vector<MatmulTarget> targets;
      for (size_t i = 0; i < types.size(); ++i) {
        together[i].assign(static_cast<size_t>(n_tokens * rows[i]), NAN);
        alone[i].assign(together[i].size(), NAN);
        targets.push_back({&ws_matrices[i].m, together[i].data()});
      }
      matmul_many(targets, a.x, n_tokens, pool, ws);
      for (size_t i = 0; i < types.size(); ++i) {
        matmul(ws_matrices[i].m, a.x, n_tokens, alone[i].data(), pool, ws);
        for (size_t j = 0; j < alone[i].size(); ++j) {
          ASSERT_EQ(together[i][j], alone[i][j])
              << ggml_type_name(types[i]) << " tokens " << n_tokens << " output " << j;
        }
      }
    }
  }
}

TEST(Matmul, SupportedTypes) {
  for (GgmlType type : kTypes) EXPECT_TRUE(matmul_supports(type)) << ggml_type_name(type);
  EXPECT_FALSE(matmul_supports(GgmlType::kQ8_K));
  EXPECT_FALSE(matmul_supports(GgmlType::kIQ4_NL));
}

}  // namespace
}  // namespace pensieve::cpu
