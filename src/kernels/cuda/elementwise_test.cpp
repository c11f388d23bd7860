// rms_norm, add, swiglu and get_rows against the scalar reference, over sizes around the thread
// block (256) and odd ones; the device layout of Q8_0 and Q4_0 rows against a host rearrangement.
#include <cmath>
#include <cstring>

#include "kernels/cuda/ops.h"
#include "kernels/cuda/test_util.h"
#include "kernels/ref/ops.h"
#include "kernels/ref/quants.h"

namespace pensieve::cuda {
namespace {

class CudaElementwise : public test::CudaTest {};

TEST_F(CudaElementwise, RmsNormMatchesReference) {
  for (int64_t n : {1, 7, 64, 255, 256, 257, 1000, 4097}) {
    for (int64_t n_rows : {1, 3}) {
      SCOPED_TRACE(testing::Message() << "n " << n << " rows " << n_rows);
      const auto x =
          test::random_floats(static_cast<size_t>(n * n_rows), static_cast<uint64_t>(n), 3.0f);
      const auto weight = test::random_floats(static_cast<size_t>(n), 7);
      test::DeviceBuffer<float> x_dev(x), w_dev(weight), out_dev(x.size());
      rms_norm(x_dev.get(), w_dev.get(), n_rows, n, 1e-5f, out_dev.get(), nullptr);
      ASSERT_TRUE(test::synchronize());
      const std::vector<float> got = out_dev.download();
      std::vector<float> want(x.size());
      for (int64_t r = 0; r < n_rows; ++r) {
        ref::rms_norm(x.data() + r * n, weight.data(), n, 1e-5f, want.data() + r * n);
      }
      for (size_t i = 0; i < want.size(); ++i) {
        ASSERT_NEAR(got[i], want[i], 2e-6 * std::fabs(want[i]) + 1e-6) << i;
      }
    }
  }
}

TEST_F(CudaElementwise, AddAndSwigluMatchReference) {
  for (int64_t n : {1, 255, 256, 257, 10000}) {
    SCOPED_TRACE(testing::Message() << "n " << n);
    const auto a = test::random_floats(static_cast<size_t>(n), 1, 6.0f);
    const auto b = test::random_floats(static_cast<size_t>(n), 2, 6.0f);
    test::DeviceBuffer<float> a_dev(a), b_dev(b), sum_dev(a.size()), glu_dev(a.size());
    add(a_dev.get(), b_dev.get(), n, sum_dev.get(), nullptr);
    swiglu(a_dev.get(), b_dev.get(), n, glu_dev.get(), nullptr);
    add(a_dev.get(), b_dev.get(), n, a_dev.get(), nullptr);  // in place, as the residual is
    ASSERT_TRUE(test::synchronize());
    const std::vector<float> sum = sum_dev.download();
    const std::vector<float> in_place = a_dev.download();
    const std::vector<float> glu = glu_dev.download();
    std::vector<float> want_glu(a.size());
    ref::swiglu(a.data(), b.data(), n, want_glu.data());
    for (size_t i = 0; i < a.size(); ++i) {
      ASSERT_EQ(sum[i], a[i] + b[i]) << i;
      ASSERT_EQ(in_place[i], a[i] + b[i]) << i;
      ASSERT_NEAR(glu[i], want_glu[i], 1e-6 * std::fabs(want_glu[i]) + 1e-7) << i;
    }
  }
}

// Every block's codes, in block order, then every block's 2-byte scale: rows of 1, 9 and 128
// blocks (the last fills a 96 KiB-capped shared row easily), aligned and 2 bytes off.
TEST_F(CudaElementwise, DeviceLayoutPutsCodesBeforeScales) {
  for (GgmlType type : {GgmlType::kQ8_0, GgmlType::kQ4_0}) {
    const size_t block_bytes = type == GgmlType::kQ8_0 ? 34 : 18;
    for (int64_t n_cols : {32, 288, 4096}) {
      for (size_t offset : {size_t{0}, size_t{2}}) {
        SCOPED_TRACE(testing::Message()
                     << ggml_type_name(type) << " cols " << n_cols << " offset " << offset);
        const int64_t n_rows = 5;
        const int64_t n_blocks = n_cols / 32;
        size_t row_bytes = 0;
        const std::vector<uint8_t> gguf = test::random_matrix(
            type, n_rows, n_cols, static_cast<uint64_t>(n_cols + 3), &row_bytes);
        ASSERT_EQ(row_bytes, block_bytes * static_cast<size_t>(n_blocks));
        std::vector<uint8_t> padded(offset + gguf.size());
        std::memcpy(padded.data() + offset, gguf.data(), gguf.size());
        test::DeviceBuffer<uint8_t> dev(padded);
        ASSERT_NE(dev.get(), nullptr);
        test::device_matrix(type, n_cols, n_rows, row_bytes, dev.get() + offset);
        ASSERT_TRUE(test::synchronize());
        const std::vector<uint8_t> got = dev.download();
        const size_t code_bytes = block_bytes - 2;
        for (int64_t r = 0; r < n_rows; ++r) {
          const uint8_t* src = gguf.data() + r * row_bytes;
          const uint8_t* dst = got.data() + offset + r * row_bytes;
          for (int64_t b = 0; b < n_blocks; ++b) {
            const uint8_t* block = src + b * block_bytes;
            ASSERT_EQ(std::memcmp(dst + b * code_bytes, block + 2, code_bytes), 0)
                << "row " << r << " codes of block " << b;
            ASSERT_EQ(std::memcmp(dst + n_blocks * code_bytes + 2 * b, block, 2), 0)
                << "row " << r << " scale of block " << b;
          }
        }
      }
    }
  }
  EXPECT_FALSE(device_layout_differs(GgmlType::kQ4_K));
  EXPECT_FALSE(device_layout_differs(GgmlType::kF16));
}

// Dequantization rounds as the reference does (one multiply per element; K-quants' multiplies
// and subtraction unfused): the rows must be equal.
TEST_F(CudaElementwise, GetRowsEqualsReferenceRows) {
  for (GgmlType type : {GgmlType::kF32, GgmlType::kF16, GgmlType::kBF16, GgmlType::kQ8_0,
                        GgmlType::kQ4_0, GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K}) {
    const int64_t block = ggml_type_traits(type).block_elements;
    for (int64_t n_cols : block == 256  ? std::vector<int64_t>{256, 512, 1280}
                          : block == 32 ? std::vector<int64_t>{32, 64, 288}
                                        : std::vector<int64_t>{1, 7, 172}) {
      SCOPED_TRACE(testing::Message() << ggml_type_name(type) << " cols " << n_cols);
      const int64_t n_rows = 67;
      const size_t row_bytes = ggml_row_bytes(ggml_type_traits(type), n_cols);
      const auto values = test::random_floats(static_cast<size_t>(n_rows * n_cols), 11);
      std::vector<uint8_t> bytes(row_bytes * n_rows);
      for (int64_t r = 0; r < n_rows; ++r) {
        ref::quantize_row(type, values.data() + r * n_cols, bytes.data() + r * row_bytes, n_cols);
      }
      const std::vector<int32_t> ids = {0, 66, 5, 5, 33, 1};
      test::DeviceBuffer<uint8_t> w_dev(bytes);
      test::DeviceBuffer<int32_t> ids_dev(ids);
      test::DeviceBuffer<float> out_dev(ids.size() * static_cast<size_t>(n_cols));
      get_rows(test::device_matrix(type, n_cols, n_rows, row_bytes, w_dev.get()), ids_dev.get(),
               static_cast<int64_t>(ids.size()), out_dev.get(), nullptr);
      ASSERT_TRUE(test::synchronize());
      const std::vector<float> got = out_dev.download();
      const Matrix host{type, n_cols, n_rows, row_bytes, bytes.data()};
      std::vector<float> want(static_cast<size_t>(n_cols));
      for (size_t t = 0; t < ids.size(); ++t) {
        ref::matrix_row(host, ids[t], want.data());
        for (int64_t c = 0; c < n_cols; ++c) {
          ASSERT_EQ(got[t * n_cols + c], want[c]) << "id " << ids[t] << " col " << c;
        }
      }
    }
  }
}

}  // namespace
}  // namespace pensieve::cuda
