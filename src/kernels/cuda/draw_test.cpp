// draw_rows against sampling::draw_token: row widths around the thread block (1024) and real
// vocabularies', temperatures from sharp to flat, greedy rows (argmax_rows's picks), rows with a
// value that is not finite (-1), and evenly spread uniforms that must split like the host's.
#include <cmath>
#include <limits>
#include <random>

#include "kernels/cuda/ops.h"
#include "kernels/cuda/test_util.h"
#include "sampling/draw.h"

namespace pensieve::cuda {
namespace {

class CudaDraw : public test::CudaTest {};

// The host's running sums of the probabilities (draw_token's arithmetic): sums[i] after id i.
std::vector<double> running_sums(std::span<const float> logits, float temperature) {
  float max = -std::numeric_limits<float>::infinity();
  for (float l : logits) max = std::max(max, l / temperature);
  double sum = 0;
  for (float l : logits) sum += std::exp(l / temperature - max);
  std::vector<double> sums;
  double cumulative = 0;
  for (float l : logits) {
    cumulative += static_cast<float>(std::exp(l / temperature - max) / sum);
    sums.push_back(cumulative);
  }
  return sums;
}

std::vector<int32_t> draw_on_device(const std::vector<float>& x, int64_t n_rows, int64_t n,
                                    const std::vector<double>& draws) {
  test::DeviceBuffer<float> x_dev(x);
  test::DeviceBuffer<double> draws_dev(draws);
  test::DeviceBuffer<int32_t> out_dev(static_cast<size_t>(n_rows));
  draw_rows(x_dev.get(), n_rows, n, draws_dev.get(), out_dev.get(), nullptr);
  EXPECT_TRUE(test::synchronize());
  return out_dev.download();
}

TEST_F(CudaDraw, MatchesTheHostDraw) {
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  const float temperatures[] = {0.0f, 0.2f, 0.7f, 1.0f, 1.6f};
  int near_edge = 0;
  int n_draws = 0;
  for (int64_t n : {5, 1000, 1025, 4099, 32000, 151936}) {
    const int64_t n_rows = 40;
    SCOPED_TRACE(testing::Message() << "n " << n);
    auto x = test::random_floats(static_cast<size_t>(n * n_rows), static_cast<uint64_t>(n), 8.0f);
    std::vector<double> draws;
    for (int64_t r = 0; r < n_rows; ++r) {
      draws.push_back(temperatures[r % 5]);
      draws.push_back(uniform(rng));
    }
    // Row 3 (a draw) holds a NaN, row 5 (greedy) a -infinity, row 8 (a draw) a +infinity: all
    // refused. Row 7 (a draw) has a -infinity token: one that may not come.
    constexpr float kInf = std::numeric_limits<float>::infinity();
    x[static_cast<size_t>(3 * n + n / 2)] = std::numeric_limits<float>::quiet_NaN();
    x[static_cast<size_t>(5 * n + n - 1)] = -kInf;
    x[static_cast<size_t>(7 * n)] = -kInf;
    x[static_cast<size_t>(8 * n + n / 3)] = kInf;
    const std::vector<int32_t> got = draw_on_device(x, n_rows, n, draws);
    for (int64_t r = 0; r < n_rows; ++r) {
      const std::span<const float> row(&x[static_cast<size_t>(r * n)], static_cast<size_t>(n));
      const auto t = static_cast<float>(draws[static_cast<size_t>(2 * r)]);
      const double u = draws[static_cast<size_t>(2 * r + 1)];
      const int32_t g = got[static_cast<size_t>(r)];
      if (r == 3 || r == 5 || r == 8) {
        EXPECT_EQ(g, -1) << "row " << r;
        continue;
      }
      if (t == 0.0f) {
        int32_t best = 0;
        for (int32_t i = 0; i < n; ++i) best = row[static_cast<size_t>(i)] > row[best] ? i : best;
        EXPECT_EQ(g, best) << "row " << r;
        continue;
      }
      ++n_draws;
      const int32_t h = sampling::draw_token(row, t, u);
      if (r == 7) {
        EXPECT_NE(g, 0);
      }
      if (g == h) continue;
      // Only a uniform at an interval's edge may fall the other way.
      ASSERT_GE(g, 0) << "row " << r;
      const std::vector<double> sums = running_sums(row, t);
      const double edge = sums[static_cast<size_t>(std::min(g, h))];
      EXPECT_NEAR(u, edge, 1e-6) << "row " << r << ": device " << g << ", host " << h;
      ++near_edge;
    }
  }
  EXPECT_LE(near_edge, 1) << "of " << n_draws << " draws";
}

// Uniforms spread evenly over [0, 1) split over three tokens as their probabilities say, as the
// host's draws do; an all-equal row goes by the uniform's place among equal intervals.
TEST_F(CudaDraw, EvenUniformsSplitAsTheProbabilities) {
  const int64_t n = 3;
  const int64_t n_rows = 1000;
  std::vector<float> x;
  std::vector<double> draws;
  for (int64_t r = 0; r < n_rows; ++r) {
    for (float p : {0.5f, 0.3f, 0.2f}) x.push_back(std::log(p));
    draws.push_back(1.0);
    draws.push_back((static_cast<double>(r) + 0.5) / static_cast<double>(n_rows));
  }
  const std::vector<int32_t> got = draw_on_device(x, n_rows, n, draws);
  int counts[3] = {0, 0, 0};
  for (int32_t g : got) {
    ASSERT_TRUE(g >= 0 && g < 3) << g;
    ++counts[g];
  }
  EXPECT_EQ(counts[0], 500);
  EXPECT_EQ(counts[1], 300);
  EXPECT_EQ(counts[2], 200);

  const std::vector<float> flat(4096, 0.25f);
  const std::vector<int32_t> at = draw_on_device(flat, 1, 4096, {1.0, (1000.0 + 0.5) / 4096.0});
  EXPECT_EQ(at[0], 1000);
}

}  // namespace
}  // namespace pensieve::cuda
