// gemm_q8 (a batch step's products on the int8 tensor cores) against double sums of the
// reference's dequantized rows times the dequantized 8-bit codes of x (quantize_q8, itself
// checked code for code in matvec_test; quantize_q8_by_block holds the same blocks): the integer
// sums are exact, so only the F32 sums of the blocks differ. Every type, token counts on both sides
// of each 8-token tile, row counts past the 16-row blocks, with and without accumulation, and which
// rows it takes.
#include <cmath>
#include <cstring>

#include "kernels/cuda/ops.h"
#include "kernels/cuda/test_util.h"
#include "kernels/ref/ops.h"

namespace pensieve::cuda {
namespace {

class CudaGemmQ8 : public test::CudaTest {};

void check_gemm_q8(GgmlType type, int64_t n_rows, int64_t n_cols, int64_t n_tokens, size_t offset,
                   bool accumulate) {
  SCOPED_TRACE(testing::Message() << ggml_type_name(type) << " rows " << n_rows << " cols "
                                  << n_cols << " tokens " << n_tokens << " offset " << offset
                                  << (accumulate ? " accumulate" : ""));
  size_t row_bytes = 0;
  const std::vector<uint8_t> w =
      test::random_matrix(type, n_rows, n_cols, static_cast<uint64_t>(n_rows + n_cols), &row_bytes);
  std::vector<uint8_t> bytes(offset + w.size());
  std::memcpy(bytes.data() + offset, w.data(), w.size());
  test::DeviceBuffer<uint8_t> w_dev(bytes);
  const Matrix matrix = test::device_matrix(type, n_cols, n_rows, row_bytes, w_dev.get() + offset);
  ASSERT_TRUE(gemm_q8_supported(matrix));

  const auto x = test::random_floats(static_cast<size_t>(n_tokens * n_cols),
                                     static_cast<uint64_t>(n_tokens), 3.0f);
  const auto y0 = test::random_floats(static_cast<size_t>(n_tokens * n_rows), 17);
  test::DeviceBuffer<float> x_dev(x), y_dev(y0);
  // x by block, and row by row for the reference (quantize_q8 is checked against the host).
  const int64_t stride = q8_token_stride(n_tokens);
  const auto by_block_size = static_cast<size_t>(stride * n_cols);
  test::DeviceBuffer<int8_t> qs(by_block_size), qs_rows(x.size());
  test::DeviceBuffer<float> ds(2 * by_block_size / 32), ds_rows(2 * x.size() / 32);
  const Q8Act xq{qs.get(), reinterpret_cast<float2*>(ds.get())};
  quantize_q8_by_block(x_dev.get(), n_tokens, n_cols, xq, nullptr);
  quantize_q8(x_dev.get(), n_tokens, n_cols,
              {qs_rows.get(), reinterpret_cast<float2*>(ds_rows.get())}, nullptr);
  gemm_q8(matrix, xq, n_tokens, y_dev.get(), accumulate, nullptr);
  ASSERT_TRUE(test::synchronize());
  const std::vector<float> got = y_dev.download();
  const std::vector<int8_t> codes = qs_rows.download();
  const std::vector<float> scales = ds_rows.download();
  // The by-block layout holds the same blocks: block j of row t at j * stride + t.
  const std::vector<int8_t> block_codes = qs.download();
  const std::vector<float> block_scales = ds.download();
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t j = 0; j < n_cols / 32; ++j) {
      const size_t row_major = static_cast<size_t>(t * (n_cols / 32) + j);
      const size_t by_block = static_cast<size_t>(j * stride + t);
      ASSERT_EQ(std::memcmp(&codes[32 * row_major], &block_codes[32 * by_block], 32), 0)
          << "token " << t << " block " << j;
      ASSERT_EQ(std::memcmp(&scales[2 * row_major], &block_scales[2 * by_block], 8), 0)
          << "token " << t << " block " << j;
    }
  }

  const Matrix host{type, n_cols, n_rows, row_bytes, w.data()};
  std::vector<float> row(static_cast<size_t>(n_cols));
  for (int64_t r = 0; r < n_rows; ++r) {
    ref::matrix_row(host, r, row.data());
    for (int64_t t = 0; t < n_tokens; ++t) {
      double sum = accumulate ? y0[t * n_rows + r] : 0.0;
      double magnitude = 0.0;
      for (int64_t c = 0; c < n_cols; ++c) {
        const size_t i = static_cast<size_t>(t * n_cols + c);
        const double xc = static_cast<double>(codes[i]) * scales[2 * (i / 32)];
        sum += row[c] * xc;
        magnitude += std::fabs(row[c] * xc);
      }
      ASSERT_NEAR(got[t * n_rows + r], sum, 2e-5 * magnitude + 1e-5)
          << "row " << r << " token " << t;
    }
  }
}

TEST_F(CudaGemmQ8, MatchesReferenceOverTypesAndShapes) {
  for (GgmlType type :
       {GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K}) {
    for (int64_t n_cols : {256, 1280}) {
      for (int64_t n_tokens : {1, 5, 8, 9, 16, 17, 32}) {
        check_gemm_q8(type, n_tokens % 2 == 1 ? 17 : 48, n_cols, n_tokens, 0, n_tokens % 3 == 2);
        if (HasFatalFailure()) return;
      }
    }
    check_gemm_q8(type, 130, 4096, 32, 0, true);
    if (HasFatalFailure()) return;
  }
  // Q6_K's 210-byte super-blocks are 2-byte aligned at best: it reads any even offset.
  check_gemm_q8(GgmlType::kQ6_K, 33, 512, 12, 2, false);
}

// Rows it cannot read are refused up front: a width that is not a multiple of 64, rows of the
// 8-byte-loading types off 16-byte alignment (so Q8_0 and Q4_0 rows need a multiple of 8 blocks),
// and types without 8-bit codes.
TEST_F(CudaGemmQ8, SupportsOnlyRowsItReads) {
  for (GgmlType type : {GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ4_K}) {
    const int64_t n_cols = 256;
    const size_t row_bytes = ggml_row_bytes(ggml_type_traits(type), n_cols);
    test::DeviceBuffer<uint8_t> buffer(row_bytes * 4 + 16);
    EXPECT_TRUE(gemm_q8_supported(Matrix{type, n_cols, 4, row_bytes, buffer.get()}));
    EXPECT_FALSE(gemm_q8_supported(Matrix{type, n_cols, 4, row_bytes, buffer.get() + 4}))
        << ggml_type_name(type);
  }
  EXPECT_FALSE(gemm_q8_supported(Matrix{GgmlType::kQ8_0, 96, 1, 102, nullptr}));
  EXPECT_FALSE(gemm_q8_supported(Matrix{GgmlType::kQ8_0, 64, 1, 68, nullptr}));
  EXPECT_FALSE(gemm_q8_supported(Matrix{GgmlType::kF16, 64, 1, 128, nullptr}));
  EXPECT_FALSE(gemm_q8_supported(Matrix{GgmlType::kBF16, 64, 1, 128, nullptr}));
}

}  // namespace
}  // namespace pensieve::cuda
