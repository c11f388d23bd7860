// best_rows against sampling::best_tokens, pair for pair and bit for bit: row widths around the
// thread block (1024) and real vocabularies', k from 1 to kBestRowsMax, logits with many equal
// values (so the lowest-index rule decides), rows of one value repeated (the threshold's equal
// keys fill almost every place), -0 beside +0, and rows with a value that is not finite (-1).
// Each row's sum of exponentials (the softmax's denominator) against the host's.
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "kernels/cuda/ops.h"
#include "kernels/cuda/test_util.h"
#include "sampling/candidates.h"

namespace pensieve::cuda {
namespace {

class CudaBestRows : public test::CudaTest {};

// The pairs as the kernel writes them: index, then the value's bits.
std::vector<TokenLogit> as_pairs(const std::vector<int32_t>& raw) {
  std::vector<TokenLogit> pairs(raw.size() / 2);
  for (size_t i = 0; i < pairs.size(); ++i) {
    pairs[i].id = raw[2 * i];
    std::memcpy(&pairs[i].logit, &raw[2 * i + 1], sizeof(float));
  }
  return pairs;
}

void expect_rows_match(const std::vector<float>& x, int64_t n_rows, int64_t n, int64_t k) {
  test::DeviceBuffer<float> x_dev(x);
  test::DeviceBuffer<int32_t> out_dev(static_cast<size_t>(n_rows * k * 2));
  test::DeviceBuffer<double> sums_dev(static_cast<size_t>(n_rows));
  best_rows(x_dev.get(), n_rows, n, k, out_dev.get(), sums_dev.get(), nullptr);
  ASSERT_TRUE(test::synchronize());
  const std::vector<TokenLogit> got = as_pairs(out_dev.download());
  const std::vector<double> sums = sums_dev.download();
  std::vector<TokenLogit> want(static_cast<size_t>(k));
  for (int64_t r = 0; r < n_rows; ++r) {
    best_tokens(
        std::span<const float>(x).subspan(static_cast<size_t>(r * n), static_cast<size_t>(n)),
        static_cast<size_t>(k), want);
    const size_t first = static_cast<size_t>(r * k);
    ASSERT_EQ(got[first].id, want[0].id) << "row " << r << " place 0";
    if (want[0].id < 0) continue;  // a value that is not finite: only the flag counts
    for (size_t j = 0; j < want.size(); ++j) {
      ASSERT_EQ(got[first + j].id, want[j].id) << "row " << r << " place " << j;
      ASSERT_EQ(std::signbit(got[first + j].logit), std::signbit(want[j].logit));
      ASSERT_EQ(got[first + j].logit, want[j].logit) << "row " << r << " place " << j;
    }
    // The softmax's denominator as Candidates::softmax adds it; the device's exponentials are
    // within 2 ulp of the host's.
    double want_sum = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      want_sum += static_cast<double>(std::exp(x[static_cast<size_t>(r * n + i)] - want[0].logit));
    }
    ASSERT_NEAR(sums[static_cast<size_t>(r)], want_sum, 5e-7 * want_sum) << "row " << r;
  }
}

TEST_F(CudaBestRows, MatchesTheHostSelection) {
  std::mt19937 gen(5);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (int64_t n : {1, 7, 1000, 1025, 4099, 32000, 151936}) {
    for (int64_t k : {1, 2, 40, 100, 256}) {
      if (k > n) continue;
      SCOPED_TRACE(testing::Message() << "n " << n << " k " << k);
      constexpr int64_t kRows = 5;
      std::vector<float> x(static_cast<size_t>(kRows * n));
      for (float& v : x) v = std::round(normal(gen) * 4.0f) / 4.0f;  // many equal values
      auto row = [&](int64_t r) { return x.begin() + r * n; };
      std::fill(row(1), row(2), 0.5f);                       // one value: the lowest indices win
      for (int64_t i = 0; i < n; i += 3) row(2)[i] = -0.0f;  // -0 and +0 are equal values
      for (int64_t i = 1; i < n; i += 3) row(2)[i] = 0.0f;
      row(3)[n / 2] = std::numeric_limits<float>::quiet_NaN();
      row(4)[n - 1] = -std::numeric_limits<float>::infinity();
      expect_rows_match(x, kRows, n, k);
    }
  }
}

// The same row twice in one launch gives the same pairs: the atomic slots of the values above
// the threshold do not leak into the order.
TEST_F(CudaBestRows, RowsAreIndependentOfSchedule) {
  std::mt19937 gen(6);
  std::uniform_real_distribution<float> uniform(-5.0f, 5.0f);
  constexpr int64_t kN = 32000;
  std::vector<float> x(2 * kN);
  for (int64_t i = 0; i < kN; ++i) x[i] = x[kN + i] = uniform(gen);
  test::DeviceBuffer<float> x_dev(x);
  test::DeviceBuffer<int32_t> out_dev(2 * 256 * 2);
  best_rows(x_dev.get(), 2, kN, 256, out_dev.get(), nullptr, nullptr);
  ASSERT_TRUE(test::synchronize());
  const std::vector<int32_t> out = out_dev.download();
  EXPECT_TRUE(std::equal(out.begin(), out.begin() + 512, out.begin() + 512));
}

}  // namespace
}  // namespace pensieve::cuda
