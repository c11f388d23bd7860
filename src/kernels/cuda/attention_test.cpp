// attention against a double-precision softmax over the same F16 cache: head sizes from 8 to
// 256 (80: not a multiple of the warp; 64 and 128 have their own unrolled kernels), GQA groups,
// positions around the 32-position chunk and past several rounds of the block's warps, and
// sliding windows; positions partly read from device memory; the tensor-core kernel for prompt
// chunks of head sizes 64 and 128.
#include <algorithm>
#include <cmath>
#include <ostream>

#include "core/half.h"
#include "kernels/cuda/ops.h"
#include "kernels/cuda/test_util.h"

namespace pensieve::cuda {
namespace {

struct Heads {
  int64_t n_head, n_head_kv, head_dim;
};

void PrintTo(const Heads& s, std::ostream* os) {
  *os << s.n_head << " heads, " << s.n_head_kv << " KV heads, head_dim " << s.head_dim;
}

// out for token t, head h: softmax(scale * q.k) v over the token's positions.
std::vector<float> reference(const std::vector<float>& q, const std::vector<uint16_t>& k_cache,
                             const std::vector<uint16_t>& v_cache, const Heads& s, int64_t n_tokens,
                             int64_t first_pos, int64_t window, float scale) {
  const int64_t hd = s.head_dim;
  const int64_t n_kv = s.n_head_kv * hd;
  const int64_t group = s.n_head / s.n_head_kv;
  std::vector<float> out(q.size());
  for (int64_t t = 0; t < n_tokens; ++t) {
    const int64_t pos = first_pos + t;
    const int64_t begin = window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0;
    for (int64_t h = 0; h < s.n_head; ++h) {
      const float* qh = q.data() + (t * s.n_head + h) * hd;
      const int64_t off = (h / group) * hd;
      std::vector<double> w;
      double max = -INFINITY;
      for (int64_t j = begin; j <= pos; ++j) {
        double dot = 0;
        for (int64_t d = 0; d < hd; ++d) dot += qh[d] * f16_to_f32(k_cache[j * n_kv + off + d]);
        w.push_back(dot * scale);
        max = std::max(max, w.back());
      }
      double sum = 0;
      for (double& x : w) sum += (x = std::exp(x - max));
      for (int64_t d = 0; d < hd; ++d) {
        double acc = 0;
        for (int64_t j = begin; j <= pos; ++j) {
          acc += w[j - begin] * f16_to_f32(v_cache[j * n_kv + off + d]);
        }
        out[(t * s.n_head + h) * hd + d] = static_cast<float>(acc / sum);
      }
    }
  }
  return out;
}

std::vector<uint16_t> random_f16(size_t n, uint64_t seed) {
  const std::vector<float> values = test::random_floats(n, seed, 2.0f);
  std::vector<uint16_t> bits(n);
  for (size_t i = 0; i < n; ++i) bits[i] = f32_to_f16(values[i]);
  return bits;
}

class CudaAttention : public test::CudaTest, public ::testing::WithParamInterface<Heads> {};

TEST_P(CudaAttention, MatchesReference) {
  const Heads& s = GetParam();
  const int64_t n_q = s.n_head * s.head_dim;
  const int64_t n_kv = s.n_head_kv * s.head_dim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  const bool tc_shape = s.head_dim == 64 || s.head_dim == 128;
  for (int64_t n_tokens : {1, 5, 40, 130}) {
    for (int64_t first_pos : {0, 31, 32, 100, 300}) {
      for (int64_t window : {0, 1, 7, 33, 100}) {
        // 130 tokens (three 64-row tiles, the last partial) for the tensor-core kernel only.
        const bool tc = tc_shape && n_tokens >= 40 && (n_tokens == 130 || window % 2 == 0);
        if (n_tokens == 130 && !tc) continue;
        SCOPED_TRACE(testing::Message() << "tokens " << n_tokens << " first_pos " << first_pos
                                        << " window " << window << (tc ? " tensor cores" : ""));
        const int64_t n_ctx = first_pos + n_tokens + 3;  // rows past the last are never read
        const auto q = test::random_floats(static_cast<size_t>(n_tokens * n_q), 1);
        const auto k = random_f16(static_cast<size_t>(n_ctx * n_kv), 2);
        const auto v = random_f16(static_cast<size_t>(n_ctx * n_kv), 3);
        test::DeviceBuffer<float> q_dev(q), out_dev(q.size());
        test::DeviceBuffer<uint16_t> k_dev(k), v_dev(v);
        AttentionJob job;
        job.q = q_dev.get();
        job.out = out_dev.get();
        job.k_cache = k_dev.get();
        job.v_cache = v_dev.get();
        job.n_tokens = n_tokens;
        // With odd windows, part of the position comes from device memory (graph replays).
        const std::vector<int32_t> dev_part = {
            static_cast<int32_t>(window % 2 ? first_pos / 2 : 0)};
        test::DeviceBuffer<int32_t> dev_pos(dev_part);
        job.first_pos = first_pos - dev_part[0];
        job.first_pos_dev = window % 2 ? dev_pos.get() : nullptr;
        job.n_head = s.n_head;
        job.n_head_kv = s.n_head_kv;
        job.head_dim = s.head_dim;
        job.scale = scale;
        job.window = window;
        job.tensor_cores = tc;
        attention(job, nullptr);
        ASSERT_TRUE(test::synchronize());
        const std::vector<float> got = out_dev.download();
        const std::vector<float> want = reference(q, k, v, s, n_tokens, first_pos, window, scale);
        // The tensor cores see q and the softmax weights rounded to F16 (11-bit mantissas).
        const double tolerance = tc ? 4e-3 : 2e-5;
        for (size_t i = 0; i < want.size(); ++i) {
          ASSERT_NEAR(got[i], want[i], tolerance * (1 + std::fabs(want[i]))) << "element " << i;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(CudaShapes, CudaAttention,
                         ::testing::Values(Heads{4, 4, 8}, Heads{8, 2, 16}, Heads{14, 2, 64},
                                           Heads{6, 3, 80}, Heads{4, 1, 128}, Heads{2, 2, 256}),
                         [](const auto& param_info) {
                           return std::to_string(param_info.param.n_head) + "x" +
                                  std::to_string(param_info.param.n_head_kv) + "_hd" +
                                  std::to_string(param_info.param.head_dim);
                         });

}  // namespace
}  // namespace pensieve::cuda
