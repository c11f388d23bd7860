// argmax_rows against a scalar scan: row widths around the thread block (1024) and a vocabulary's,
// ties (the lowest index wins), rows with NaN or infinities (-1).
#include <cmath>
#include <limits>

#include "kernels/cuda/ops.h"
#include "kernels/cuda/test_util.h"

namespace pensieve::cuda {
namespace {

class CudaArgmax : public test::CudaTest {};

// The first index of the largest value; -1 if a value is not finite.
int32_t scalar_argmax(const float* row, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(row[i])) return -1;
    if (row[i] > row[best]) best = i;
  }
  return static_cast<int32_t>(best);
}

TEST_F(CudaArgmax, MatchesScalarScan) {
  constexpr float kNan = std::numeric_limits<float>::quiet_NaN();
  constexpr float kInf = std::numeric_limits<float>::infinity();
  for (int64_t n : {1, 2, 31, 1023, 1024, 1025, 4099, 32000}) {
    const int64_t n_rows = 7;
    SCOPED_TRACE(testing::Message() << "n " << n);
    auto x = test::random_floats(static_cast<size_t>(n * n_rows), static_cast<uint64_t>(n), 8.0f);
    auto at = [&](int64_t r, int64_t i) -> float& { return x[static_cast<size_t>(r * n + i)]; };
    // Row 1: the maximum twice, late then early. Row 2: every value equal. Row 3: one NaN at the
    // end. Row 4: +inf in the middle. Row 5: -inf at the front. Row 6: the maximum last.
    at(1, n - 1) = 100.0f;
    at(1, n / 2) = 100.0f;
    for (int64_t i = 0; i < n; ++i) at(2, i) = 1.5f;
    at(3, n - 1) = kNan;
    at(4, n / 2) = kInf;
    at(5, 0) = -kInf;
    at(6, n - 1) = 50.0f;
    test::DeviceBuffer<float> x_dev(x);
    test::DeviceBuffer<int32_t> out_dev(static_cast<size_t>(n_rows));
    argmax_rows(x_dev.get(), n_rows, n, out_dev.get(), nullptr);
    ASSERT_TRUE(test::synchronize());
    const std::vector<int32_t> got = out_dev.download();
    for (int64_t r = 0; r < n_rows; ++r) {
      EXPECT_EQ(got[static_cast<size_t>(r)], scalar_argmax(&at(r, 0), n)) << "row " << r;
    }
    EXPECT_EQ(got[1], n / 2);
    EXPECT_EQ(got[2], 0);
    EXPECT_EQ(got[3], -1);
    EXPECT_EQ(got[4], -1);
    EXPECT_EQ(got[5], -1);
    EXPECT_EQ(got[6], n - 1);
  }
}

}  // namespace
}  // namespace pensieve::cuda
