// The tensor-core path against host references: to_f16 and dequantize_f16 bit for bit (the
// reference's dequantized value rounded to F16), gemm_f16 against double sums of the same F16
// operands, over m, n and k around the 64/128-row tiles and the 32-wide k slices, with and
// without accumulation; gemm_quantized against dequantize_f16 then gemm_f16, bit for bit.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "core/half.h"
#include "kernels/cuda/ops.h"
#include "kernels/cuda/test_util.h"
#include "kernels/ref/ops.h"
#include "kernels/ref/quants.h"

namespace pensieve::cuda {
namespace {

std::vector<uint16_t> random_halves(size_t n, uint64_t seed) {
  const std::vector<float> f = test::random_floats(n, seed);
  std::vector<uint16_t> h(n);
  for (size_t i = 0; i < n; ++i) h[i] = f32_to_f16(f[i]);
  return h;
}

class CudaGemm : public test::CudaTest {};

TEST_F(CudaGemm, ToF16RoundsLikeTheHost) {
  std::vector<float> x = test::random_floats(1000, 3, 70000.0f);  // past F16's range too
  x[0] = 1e-8f;                                                   // subnormal in F16
  test::DeviceBuffer<float> x_dev(x);
  test::DeviceBuffer<uint16_t> out(x.size());
  to_f16(x_dev.get(), static_cast<int64_t>(x.size()), out.get(), nullptr);
  ASSERT_TRUE(test::synchronize());
  const std::vector<uint16_t> got = out.download();
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(got[i], f32_to_f16(x[i])) << i << " " << x[i];
}

// K-quants are decoded with the reference's roundings (no fused multiply-add), so they too must
// match bit for bit; widths of 1, 3 and 8 super-blocks.
TEST_F(CudaGemm, DequantizeF16MatchesReferenceRows) {
  for (GgmlType type : {GgmlType::kF32, GgmlType::kF16, GgmlType::kBF16, GgmlType::kQ8_0,
                        GgmlType::kQ4_0, GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K}) {
    const bool k_quant = ggml_type_traits(type).block_elements == 256;
    for (int64_t n_cols :
         k_quant ? std::vector<int64_t>{256, 768, 2048} : std::vector<int64_t>{32, 96, 2048}) {
      for (size_t offset : {size_t{0}, size_t{4}}) {
        SCOPED_TRACE(testing::Message()
                     << ggml_type_name(type) << " cols " << n_cols << " offset " << offset);
        const int64_t n_rows = 37;
        const size_t row_bytes = ggml_row_bytes(ggml_type_traits(type), n_cols);
        std::vector<uint8_t> bytes(offset + row_bytes * n_rows);
        const auto values = test::random_floats(static_cast<size_t>(n_rows * n_cols), 9);
        for (int64_t r = 0; r < n_rows; ++r) {
          ref::quantize_row(type, values.data() + r * n_cols, bytes.data() + offset + r * row_bytes,
                            n_cols);
        }
        test::DeviceBuffer<uint8_t> w_dev(bytes);
        test::DeviceBuffer<uint16_t> out(static_cast<size_t>(n_rows * n_cols));
        dequantize_f16(test::device_matrix(type, n_cols, n_rows, row_bytes, w_dev.get() + offset),
                       out.get(), nullptr);
        ASSERT_TRUE(test::synchronize());
        const std::vector<uint16_t> got = out.download();
        const Matrix host{type, n_cols, n_rows, row_bytes, bytes.data() + offset};
        std::vector<float> row(static_cast<size_t>(n_cols));
        for (int64_t r = 0; r < n_rows; ++r) {
          ref::matrix_row(host, r, row.data());
          for (int64_t c = 0; c < n_cols; ++c) {
            ASSERT_EQ(got[r * n_cols + c], f32_to_f16(row[c])) << "row " << r << " col " << c;
          }
        }
      }
    }
  }
}

TEST(CudaGemmTypes, DequantizeF16SupportedTypes) {
  for (GgmlType type : {GgmlType::kBF16, GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ4_K,
                        GgmlType::kQ5_K, GgmlType::kQ6_K}) {
    EXPECT_TRUE(dequantize_f16_supported(type)) << ggml_type_name(type);
  }
  EXPECT_FALSE(dequantize_f16_supported(GgmlType::kQ5_0));
  EXPECT_FALSE(dequantize_f16_supported(GgmlType::kQ3_K));
}

// c = a b^T (+ c0) on the device against double sums; F32 accumulation of exact F16 products
// differs by rounding only: |c - want| <= 1e-5 * sum |a b| + 1e-6.
// With blas, through cuBLAS instead of gemm_f16.
void check_gemm(int64_t m, int64_t n, int64_t k, bool accumulate, int64_t workspace_floats = 0,
                const Blas* blas = nullptr) {
  SCOPED_TRACE(testing::Message() << "m " << m << " n " << n << " k " << k
                                  << (accumulate ? " accumulate" : "") << " workspace "
                                  << workspace_floats << (blas != nullptr ? " cuBLAS" : ""));
  const auto a = random_halves(static_cast<size_t>(m * k), static_cast<uint64_t>(m + 7 * k));
  const auto b = random_halves(static_cast<size_t>(n * k), static_cast<uint64_t>(n + 13 * k));
  const auto c0 = test::random_floats(static_cast<size_t>(m * n), 21);
  test::DeviceBuffer<uint16_t> a_dev(a), b_dev(b);
  test::DeviceBuffer<float> c_dev(c0);
  test::DeviceBuffer<float> workspace(static_cast<size_t>(std::max<int64_t>(workspace_floats, 1)));
  if (blas != nullptr) {
    ASSERT_TRUE(blas->gemm_f16(a_dev.get(), b_dev.get(), m, n, k, c_dev.get(), accumulate));
  } else {
    gemm_f16(a_dev.get(), b_dev.get(), m, n, k, c_dev.get(), accumulate, nullptr, workspace.get(),
             workspace_floats);
  }
  ASSERT_TRUE(test::synchronize());
  const std::vector<float> c = c_dev.download();
  std::vector<float> af(a.size()), bf(b.size());
  for (size_t i = 0; i < a.size(); ++i) af[i] = f16_to_f32(a[i]);
  for (size_t i = 0; i < b.size(); ++i) bf[i] = f16_to_f32(b[i]);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0, magnitude = 0;
      for (int64_t e = 0; e < k; ++e) {
        const double p = static_cast<double>(af[i * k + e]) * bf[j * k + e];
        sum += p;
        magnitude += std::fabs(p);
      }
      if (accumulate) sum += c0[i * n + j];
      ASSERT_NEAR(c[i * n + j], sum, 1e-5 * magnitude + 1e-6) << "row " << i << " col " << j;
    }
  }
}

TEST_F(CudaGemm, MatchesReferenceAroundTileEdges) {
  for (int64_t m : {1, 2, 16, 63, 64, 65, 129}) {
    for (int64_t n : {1, 8, 127, 128, 129, 260}) {
      for (int64_t k : {8, 32, 40, 264}) {
        check_gemm(m, n, k, false);
        if (HasFatalFailure()) return;
      }
    }
  }
}

// Few tokens against wide weights: k split over more blocks through a workspace (room for 2, 5
// and 16 splits), uneven last splits, with and without accumulation; and the same product
// with no workspace gives the same sums within rounding.
TEST_F(CudaGemm, SplitsKForFewTokens) {
  for (int64_t m : {1, 9, 32}) {
    for (int64_t k : {520, 4096}) {
      for (int64_t splits : {2, 5, 16}) {
        check_gemm(m, 256, k, m % 2 == 1, splits * m * 256);
        if (HasFatalFailure()) return;
      }
    }
  }
  check_gemm(32, 256, 11008, true, 16 * 32 * 256);
}

// cuBLAS where it is installed: the same products within the same rounding, and a product run
// twice gives the same bits. It skips (saying why) where libcublas.so.13 cannot be loaded.
TEST_F(CudaGemm, BlasMatchesReference) {
  test::DeviceBuffer<uint8_t> workspace(kBlasWorkspaceBytes);
  std::string why;
  const std::unique_ptr<Blas> blas = Blas::create(nullptr, workspace.get(), &why);
  if (blas == nullptr) GTEST_SKIP() << "no cuBLAS: " << why;
  std::printf("cuBLAS version %d\n", blas->version());
  for (int64_t m : {1, 64, 65, 512}) {
    for (int64_t n : {8, 129, 640}) {
      check_gemm(m, n, 264, m % 2 == 1, 0, blas.get());
      if (HasFatalFailure()) return;
    }
  }
  check_gemm(200, 640, 2048, true, 0, blas.get());
  const auto a = random_halves(512 * 1024, 1);
  const auto b = random_halves(768 * 1024, 2);
  test::DeviceBuffer<uint16_t> a_dev(a), b_dev(b);
  test::DeviceBuffer<float> c1(512 * 768), c2(512 * 768);
  ASSERT_TRUE(blas->gemm_f16(a_dev.get(), b_dev.get(), 512, 768, 1024, c1.get(), false));
  ASSERT_TRUE(blas->gemm_f16(a_dev.get(), b_dev.get(), 512, 768, 1024, c2.get(), false));
  ASSERT_TRUE(test::synchronize());
  EXPECT_EQ(c1.download(), c2.download());
}

// Quantized rows decoded inside the tiles: the same bits as dequantize_f16 then gemm_f16, over
// every supported type, 16-byte aligned rows and rows at an offset of 4 bytes, k ending inside a
// 64-column slice (Q8_0, Q4_0), k split through a workspace, and 128-row tiles (enough tiles
// for every SM of a large GPU: 3 x 44 of them).
void check_gemm_quantized(GgmlType type, int64_t m, int64_t n, int64_t k, size_t offset,
                          bool accumulate, int64_t workspace_floats) {
  SCOPED_TRACE(testing::Message() << ggml_type_name(type) << " m " << m << " n " << n << " k " << k
                                  << " offset " << offset << (accumulate ? " accumulate" : "")
                                  << " workspace " << workspace_floats);
  size_t row_bytes = 0;
  const std::vector<uint8_t> w =
      test::random_matrix(type, n, k, static_cast<uint64_t>(n + k), &row_bytes);
  std::vector<uint8_t> bytes(offset + w.size());
  std::copy(w.begin(), w.end(), bytes.begin() + static_cast<std::ptrdiff_t>(offset));
  test::DeviceBuffer<uint8_t> w_dev(bytes);
  const Matrix matrix = test::device_matrix(type, k, n, row_bytes, w_dev.get() + offset);
  const auto a = random_halves(static_cast<size_t>(m * k), static_cast<uint64_t>(m));
  const auto c0 = test::random_floats(static_cast<size_t>(m * n), 5);
  test::DeviceBuffer<uint16_t> a_dev(a), w16(static_cast<size_t>(n * k));
  test::DeviceBuffer<float> fused(c0), two_step(c0);
  test::DeviceBuffer<float> workspace(static_cast<size_t>(std::max<int64_t>(workspace_floats, 1)));
  gemm_quantized(a_dev.get(), matrix, m, fused.get(), accumulate, nullptr, workspace.get(),
                 workspace_floats);
  dequantize_f16(matrix, w16.get(), nullptr);
  gemm_f16(a_dev.get(), w16.get(), m, n, k, two_step.get(), accumulate, nullptr, workspace.get(),
           workspace_floats);
  ASSERT_TRUE(test::synchronize());
  const std::vector<float> got = fused.download();
  const std::vector<float> want = two_step.download();
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(std::memcmp(&got[i], &want[i], sizeof(float)), 0)
        << "row " << i / static_cast<size_t>(n) << " col " << i % static_cast<size_t>(n) << ": "
        << got[i] << " vs " << want[i];
  }
}

TEST_F(CudaGemm, QuantizedMatchesDequantizeThenGemm) {
  for (GgmlType type :
       {GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K}) {
    ASSERT_TRUE(gemm_quantized_supported(type));
    const bool k_quant = ggml_type_traits(type).block_elements == 256;
    for (int64_t k : k_quant ? std::vector<int64_t>{256, 1280} : std::vector<int64_t>{96, 1312}) {
      for (size_t offset : {size_t{0}, size_t{4}}) {
        check_gemm_quantized(type, 9, 130, k, offset, false, 0);
        check_gemm_quantized(type, 32, 300, k, offset, true, 16 * 32 * 300);
        check_gemm_quantized(type, 70, 129, k, offset, true, 0);
        if (HasFatalFailure()) return;
      }
    }
    check_gemm_quantized(type, 300, 44 * 128, 256, 0, true, 0);
    if (HasFatalFailure()) return;
  }
  EXPECT_FALSE(gemm_quantized_supported(GgmlType::kF16));
  EXPECT_FALSE(gemm_quantized_supported(GgmlType::kBF16));
}

TEST_F(CudaGemm, AccumulatesAndHandlesRealSizes) {
  check_gemm(70, 200, 64, true);
  check_gemm(1100, 1920, 72, false);  // enough tiles for the 128-row blocks
  check_gemm(200, 640, 2048, true);
}

}  // namespace
}  // namespace pensieve::cuda
