// attention against a double-precision softmax over the same F16 cache: head sizes from 8 to
// 256 (80: not a multiple of the warp; 64 and 128 have their own unrolled kernels), GQA groups,
// positions around the 32-position chunk and past several rounds of the block's warps, and
// sliding windows; positions partly read from device memory; the tensor-core kernel for prompt
// chunks of head sizes 64 and 128; a paged cache read through block tables; rows split over
// several blocks (with the workspace), run twice for the same bits and the counters left zero;
// the output's 8-bit codes, when asked for, as quantize_q8 makes them.
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
  test::DeviceBuffer<float> partials(static_cast<size_t>(kAttentionPartialFloats));
  const std::vector<unsigned> zeros(static_cast<size_t>(kAttentionSplitBlocks), 0);
  test::DeviceBuffer<unsigned> counters(zeros);
  for (int64_t n_tokens : {1, 5, 40, 130}) {
    for (int64_t first_pos : {0, 31, 32, 100, 300, 1000}) {
      for (int64_t window : {0, 1, 7, 33, 100}) {
        // 130 tokens (three 64-row tiles, the last partial) for the tensor-core kernel only.
        const bool tc = tc_shape && n_tokens >= 40 && (n_tokens == 130 || window % 2 == 0);
        if (n_tokens == 130 && !tc) continue;
        if (first_pos == 1000 && n_tokens > 5) continue;  // long rows: for the splits
        // Few rows split over blocks when the job has the workspace: every other window.
        const bool split = !tc && window != 1 && window != 33;
        SCOPED_TRACE(testing::Message()
                     << "tokens " << n_tokens << " first_pos " << first_pos << " window " << window
                     << (tc ? " tensor cores" : "") << (split ? " split" : ""));
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
        if (split) {
          job.partials = partials.get();
          job.counters = counters.get();
        }
        attention(job, nullptr);
        ASSERT_TRUE(test::synchronize());
        const std::vector<float> got = out_dev.download();
        if (split) {  // again: the counters were reset, and the merge order is fixed
          attention(job, nullptr);
          ASSERT_TRUE(test::synchronize());
          ASSERT_EQ(out_dev.download(), got);
          ASSERT_EQ(counters.download(), zeros);
        }
        if (s.head_dim % 32 ==
            0) {  // with the output's codes: the same output, quantize_q8's codes
          test::DeviceBuffer<int8_t> qs(q.size()), want_qs(q.size());
          test::DeviceBuffer<float> ds(q.size() / 16), want_ds(q.size() / 16);
          job.out_q8 = {qs.get(), reinterpret_cast<float2*>(ds.get())};
          attention(job, nullptr);
          quantize_q8(out_dev.get(), n_tokens, n_q,
                      {want_qs.get(), reinterpret_cast<float2*>(want_ds.get())}, nullptr);
          ASSERT_TRUE(test::synchronize());
          ASSERT_EQ(out_dev.download(), got);
          ASSERT_EQ(qs.download(), want_qs.download());
          ASSERT_EQ(ds.download(), want_ds.download());
        }
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

// A paged cache: three sequences' rows scattered over a pool of 8-position blocks in shuffled
// order, tokens of the three interleaved in one launch (decode steps and a prompt chunk), each
// against the reference over its own sequence's contiguous rows.
TEST_P(CudaAttention, PagedMatchesContiguousPerSequence) {
  const Heads& s = GetParam();
  const int64_t n_q = s.n_head * s.head_dim;
  const int64_t n_kv = s.n_head_kv * s.head_dim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  constexpr int64_t kBlock = 8;
  const std::vector<int64_t> lengths = {70, 9, 33};  // positions each sequence holds
  const int64_t n_pool = 3 * 10;                     // blocks; 10 cover 80 positions
  std::vector<int32_t> order(static_cast<size_t>(n_pool));
  for (int32_t b = 0; b < n_pool; ++b) order[static_cast<size_t>(b)] = (b * 7 + 3) % n_pool;
  std::vector<uint16_t> k_pool(static_cast<size_t>(n_pool * kBlock * n_kv));
  std::vector<uint16_t> v_pool(k_pool.size());
  std::vector<std::vector<uint16_t>> k_seq, v_seq;
  std::vector<int32_t> tables;  // sequence i's table at i * 10
  for (size_t i = 0; i < lengths.size(); ++i) {
    k_seq.push_back(random_f16(static_cast<size_t>(80 * n_kv), 10 + i));
    v_seq.push_back(random_f16(static_cast<size_t>(80 * n_kv), 20 + i));
    for (int64_t b = 0; b < 10; ++b) tables.push_back(order[i * 10 + static_cast<size_t>(b)]);
    for (int64_t p = 0; p < lengths[i]; ++p) {
      const int64_t row = tables[i * 10 + static_cast<size_t>(p / kBlock)] * kBlock + p % kBlock;
      for (int64_t d = 0; d < n_kv; ++d) {
        k_pool[static_cast<size_t>(row * n_kv + d)] = k_seq[i][static_cast<size_t>(p * n_kv + d)];
        v_pool[static_cast<size_t>(row * n_kv + d)] = v_seq[i][static_cast<size_t>(p * n_kv + d)];
      }
    }
  }
  // Token t: sequence seq[t] at position pos[t] (its last positions: one decode step each for
  // sequences 1 and 2, a chunk of 5 for sequence 0).
  const std::vector<int32_t> seq = {1, 0, 0, 0, 0, 0, 2};
  const std::vector<int32_t> pos = {8, 65, 66, 67, 68, 69, 32};
  std::vector<int32_t> offsets;
  for (int32_t i : seq) offsets.push_back(i * 10);
  const auto n_tokens = static_cast<int64_t>(seq.size());
  for (int64_t window : {0, 5}) {
    SCOPED_TRACE(testing::Message() << "window " << window);
    const auto q = test::random_floats(static_cast<size_t>(n_tokens * n_q), 4);
    test::DeviceBuffer<float> q_dev(q), out_dev(q.size());
    test::DeviceBuffer<uint16_t> k_dev(k_pool), v_dev(v_pool);
    test::DeviceBuffer<int32_t> pos_dev(pos), off_dev(offsets), tables_dev(tables);
    AttentionJob job;
    job.q = q_dev.get();
    job.out = out_dev.get();
    job.k_cache = k_dev.get();
    job.v_cache = v_dev.get();
    job.n_tokens = n_tokens;
    job.paged = {pos_dev.get(), off_dev.get(), tables_dev.get(), kBlock};
    job.n_head = s.n_head;
    job.n_head_kv = s.n_head_kv;
    job.head_dim = s.head_dim;
    job.scale = scale;
    job.window = window;
    job.tensor_cores = true;  // ignored for a paged cache
    test::DeviceBuffer<float> partials(static_cast<size_t>(kAttentionPartialFloats));
    test::DeviceBuffer<unsigned> counters(
        std::vector<unsigned>(static_cast<size_t>(kAttentionSplitBlocks), 0));
    if (window == 0) {  // 7 tokens x up to 14 heads: split
      job.partials = partials.get();
      job.counters = counters.get();
    }
    attention(job, nullptr);
    ASSERT_TRUE(test::synchronize());
    const std::vector<float> got = out_dev.download();
    for (int64_t t = 0; t < n_tokens; ++t) {
      const auto i = static_cast<size_t>(seq[static_cast<size_t>(t)]);
      const std::vector<float> q_t(q.begin() + t * n_q, q.begin() + (t + 1) * n_q);
      const std::vector<float> want =
          reference(q_t, k_seq[i], v_seq[i], s, 1, pos[static_cast<size_t>(t)], window, scale);
      for (int64_t e = 0; e < n_q; ++e) {
        ASSERT_NEAR(got[static_cast<size_t>(t * n_q + e)], want[static_cast<size_t>(e)],
                    2e-5 * (1 + std::fabs(want[static_cast<size_t>(e)])))
            << "token " << t << " element " << e;
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
