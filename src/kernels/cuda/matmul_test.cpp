// matmul against ref::matvec for every supported weight type over shape sweeps: odd widths,
// row counts around the 4-row thread block, token counts around the 8-token tile, and real
// widths (K-quants: whole 256-element super-blocks); quantized rows also at a 2-byte offset (as
// a fused tensor's row ranges start).
#include <cmath>
#include <cstring>

#include "kernels/cuda/ops.h"
#include "kernels/cuda/test_util.h"
#include "kernels/ref/ops.h"
#include "kernels/ref/quants.h"

namespace pensieve::cuda {
namespace {

bool quantized(GgmlType type) { return type == GgmlType::kQ8_0 || type == GgmlType::kQ4_0; }

bool k_quant(GgmlType type) { return ggml_type_traits(type).block_elements == 256; }

using test::random_matrix;

// Runs one product on the device with the weights `offset` bytes into their buffer and checks
// every output against the reference: |y - ref| <= 1e-5 * sum |w x| + 1e-6 (F32 sums in a
// different order; the weights are the same dequantized values).
void check_product(GgmlType type, int64_t n_rows, int64_t n_cols, int64_t n_tokens, size_t offset) {
  SCOPED_TRACE(testing::Message() << ggml_type_name(type) << " rows " << n_rows << " cols "
                                  << n_cols << " tokens " << n_tokens << " offset " << offset);
  size_t row_bytes = 0;
  const std::vector<uint8_t> bytes =
      random_matrix(type, n_rows, n_cols, static_cast<uint64_t>(n_rows * 131 + n_cols), &row_bytes);
  const std::vector<float> x =
      test::random_floats(static_cast<size_t>(n_tokens * n_cols), static_cast<uint64_t>(n_tokens));
  std::vector<uint8_t> padded(offset + bytes.size());
  std::memcpy(padded.data() + offset, bytes.data(), bytes.size());
  test::DeviceBuffer<uint8_t> w_dev(padded);
  test::DeviceBuffer<float> x_dev(x);
  test::DeviceBuffer<float> y_dev(static_cast<size_t>(n_tokens * n_rows));
  ASSERT_NE(w_dev.get(), nullptr);
  const Matrix w = test::device_matrix(type, n_cols, n_rows, row_bytes, w_dev.get() + offset);
  matmul(w, x_dev.get(), n_tokens, y_dev.get(), nullptr);
  ASSERT_TRUE(test::synchronize());
  const std::vector<float> y = y_dev.download();

  const Matrix w_host{type, n_cols, n_rows, row_bytes, bytes.data()};
  std::vector<float> want(static_cast<size_t>(n_rows));
  std::vector<float> row(static_cast<size_t>(n_cols));
  for (int64_t t = 0; t < n_tokens; ++t) {
    const float* xt = x.data() + t * n_cols;
    ref::matvec(w_host, xt, want.data(), row.data());
    for (int64_t r = 0; r < n_rows; ++r) {
      ref::matrix_row(w_host, r, row.data());
      double magnitude = 0;
      for (int64_t c = 0; c < n_cols; ++c) magnitude += std::fabs(row[c] * xt[c]);
      const float got = y[static_cast<size_t>(t * n_rows + r)];
      ASSERT_NEAR(got, want[r], 1e-5 * magnitude + 1e-6) << "token " << t << " row " << r;
    }
  }
}

class CudaMatmul : public test::CudaTest, public ::testing::WithParamInterface<GgmlType> {};

TEST_P(CudaMatmul, MatchesReferenceOverShapes) {
  const GgmlType type = GetParam();
  // K-quant rows go in sub-blocks of 32 per lane: 8 (most lanes idle), 40 and 72 (a second pass).
  std::vector<int64_t> widths = {1, 7, 32, 33, 172, 1000};
  if (quantized(type)) widths = {32, 64, 96, 288, 1056};
  if (k_quant(type)) widths = {256, 1280, 2304};
  for (int64_t n_cols : widths) {
    for (int64_t n_rows : {1, 3, 4, 5, 67}) {
      for (int64_t n_tokens : {1, 2, 7, 8, 9, 17}) {
        check_product(type, n_rows, n_cols, n_tokens, 0);
        if (HasFatalFailure()) return;
      }
    }
  }
}

// A real width: a 4096-wide row spans four passes of a warp over its 128 blocks.
TEST_P(CudaMatmul, MatchesReferenceAtRealWidth) {
  for (int64_t n_tokens : {1, 9}) {
    check_product(GetParam(), 96, 4096, n_tokens, 0);
    if (HasFatalFailure()) return;
  }
}

INSTANTIATE_TEST_SUITE_P(CudaTypes, CudaMatmul,
                         ::testing::Values(GgmlType::kF32, GgmlType::kF16, GgmlType::kBF16,
                                           GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ4_K,
                                           GgmlType::kQ5_K, GgmlType::kQ6_K),
                         [](const auto& param_info) {
                           return std::string(ggml_type_name(param_info.param));
                         });

class CudaMatmulOffset : public test::CudaTest {};

TEST_F(CudaMatmulOffset, QuantizedRowsAtTwoByteOffset) {
  for (GgmlType type :
       {GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K}) {
    for (int64_t n_tokens : {1, 3, 9}) {
      check_product(type, 5, k_quant(type) ? 512 : 96, n_tokens, 2);
      if (HasFatalFailure()) return;
    }
  }
}

TEST(CudaMatmulTypes, SupportedTypes) {
  EXPECT_TRUE(matrix_type_supported(GgmlType::kF32));
  EXPECT_TRUE(matrix_type_supported(GgmlType::kF16));
  EXPECT_TRUE(matrix_type_supported(GgmlType::kQ8_0));
  EXPECT_TRUE(matrix_type_supported(GgmlType::kQ4_0));
  EXPECT_TRUE(matrix_type_supported(GgmlType::kBF16));
  EXPECT_TRUE(matrix_type_supported(GgmlType::kQ4_K));
  EXPECT_TRUE(matrix_type_supported(GgmlType::kQ5_K));
  EXPECT_TRUE(matrix_type_supported(GgmlType::kQ6_K));
  EXPECT_FALSE(matrix_type_supported(GgmlType::kQ4_1));
  EXPECT_FALSE(matrix_type_supported(GgmlType::kQ5_0));
  EXPECT_FALSE(matrix_type_supported(GgmlType::kQ2_K));
  EXPECT_FALSE(matrix_type_supported(GgmlType::kQ3_K));
}

}  // namespace
}  // namespace pensieve::cuda
