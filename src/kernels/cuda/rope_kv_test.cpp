// rope_store_kv against ref::rope (and the attention kernel's fused RoPE against both launches):
// both pair layouts, partial rotation (n_rot < head_dim), per-pair frequency factors, an attention
// factor, biases, GQA head counts, and positions far from 0, also read from device memory. The
// cache rows written must be the reference's k and v rounded to F16; the other rows must stay as
// they were. Paged caches: rows through block tables.
#include <cmath>
#include <ostream>
#include <utility>

#include "core/half.h"
#include "kernels/cuda/ops.h"
#include "kernels/cuda/test_util.h"
#include "kernels/ref/ops.h"

namespace pensieve::cuda {
namespace {

struct RopeCase {
  int64_t n_head, n_head_kv, head_dim, n_rot;
  ref::RopeStyle style;
  bool factors;
  float attn_factor;
  bool biases;
};

void PrintTo(const RopeCase& c, std::ostream* os) {
  *os << c.n_head << "/" << c.n_head_kv << " heads, head_dim " << c.head_dim << ", n_rot "
      << c.n_rot << (c.style == ref::RopeStyle::kHalfSplit ? ", half-split" : ", adjacent")
      << (c.factors ? ", factors" : "") << ", attn_factor " << c.attn_factor
      << (c.biases ? ", biases" : "");
}

class CudaRopeKv : public test::CudaTest, public ::testing::WithParamInterface<RopeCase> {};

// The q, k and v of a pass (with the case's biases when it has them) and the cache they go to.
struct RopeBuffers {
  float* q;
  const float* k;
  const float* v;
  const float* bq;
  const float* bk;
  const float* bv;
  uint16_t* k_cache;
  uint16_t* v_cache;
};

// The case's frequencies at base 10000, unscaled, without factors.
std::vector<double> plain_freqs(const RopeCase& c) {
  std::vector<double> freqs(static_cast<size_t>(c.n_rot / 2));
  rope_frequencies(c.n_rot, 10000.0f, 1.0f, nullptr, freqs.data());
  return freqs;
}

// rope_store_kv's job for case c: n_tokens at first_pos, over these buffers.
RopeKvJob rope_job(const RopeCase& c, const RopeBuffers& b, int64_t n_tokens, int64_t first_pos,
                   const double* freqs) {
  RopeKvJob job;
  job.q = b.q;
  job.k = b.k;
  job.v = b.v;
  if (c.biases) {
    job.bq = b.bq;
    job.bk = b.bk;
    job.bv = b.bv;
  }
  job.k_cache = b.k_cache;
  job.v_cache = b.v_cache;
  job.n_tokens = n_tokens;
  job.first_pos = first_pos;
  job.n_head = c.n_head;
  job.n_head_kv = c.n_head_kv;
  job.head_dim = c.head_dim;
  job.n_rot = c.n_rot;
  job.half_split = c.style == ref::RopeStyle::kHalfSplit;
  job.freqs = freqs;
  job.attn_factor = c.attn_factor;
  return job;
}

TEST_P(CudaRopeKv, MatchesReference) {
  const RopeCase& c = GetParam();
  const int64_t n_q = c.n_head * c.head_dim;
  const int64_t n_kv = c.n_head_kv * c.head_dim;
  const std::vector<float> factors = test::random_floats(static_cast<size_t>(c.n_rot / 2), 5, 0.5f);
  std::vector<float> factor_values(factors.size());
  for (size_t i = 0; i < factors.size(); ++i) factor_values[i] = 1.5f + factors[i];  // [1, 2)
  ref::RopeParams p;
  p.n_rot = c.n_rot;
  p.freq_base = 10000.0f;
  p.freq_scale = 0.5f;
  p.style = c.style;
  p.freq_factors = c.factors ? factor_values.data() : nullptr;
  p.attn_factor = c.attn_factor;
  std::vector<double> freqs(static_cast<size_t>(c.n_rot / 2));
  rope_frequencies(c.n_rot, p.freq_base, p.freq_scale, p.freq_factors, freqs.data());

  for (int64_t n_tokens : {1, 5}) {
    for (int64_t first_pos : {0, 13, 1000}) {
      SCOPED_TRACE(testing::Message() << "tokens " << n_tokens << " first_pos " << first_pos);
      const int64_t n_ctx = first_pos + n_tokens + 2;
      const auto q = test::random_floats(static_cast<size_t>(n_tokens * n_q), 1);
      const auto k = test::random_floats(static_cast<size_t>(n_tokens * n_kv), 2);
      const auto v = test::random_floats(static_cast<size_t>(n_tokens * n_kv), 3);
      const auto bq = test::random_floats(static_cast<size_t>(n_q), 4);
      const auto bk = test::random_floats(static_cast<size_t>(n_kv), 5);
      const auto bv = test::random_floats(static_cast<size_t>(n_kv), 6);
      const uint16_t kSentinel = 0x7777;
      const std::vector<uint16_t> cache(static_cast<size_t>(n_ctx * n_kv), kSentinel);
      test::DeviceBuffer<float> q_dev(q), k_dev(k), v_dev(v), bq_dev(bq), bk_dev(bk), bv_dev(bv);
      test::DeviceBuffer<double> freqs_dev(freqs);
      test::DeviceBuffer<uint16_t> k_cache(cache), v_cache(cache);
      // With several tokens, part of the position comes from device memory (graph replays).
      const std::vector<int32_t> dev_part = {
          static_cast<int32_t>(n_tokens > 1 ? first_pos / 2 : 0)};
      test::DeviceBuffer<int32_t> dev_pos(dev_part);
      const RopeBuffers buffers{q_dev.get(),  k_dev.get(),  v_dev.get(),   bq_dev.get(),
                                bk_dev.get(), bv_dev.get(), k_cache.get(), v_cache.get()};
      RopeKvJob job = rope_job(c, buffers, n_tokens, first_pos - dev_part[0], freqs_dev.get());
      job.first_pos_dev = n_tokens > 1 ? dev_pos.get() : nullptr;
      rope_store_kv(job, nullptr);
      ASSERT_TRUE(test::synchronize());
      const std::vector<float> got_q = q_dev.download();
      const std::vector<uint16_t> got_k = k_cache.download();
      const std::vector<uint16_t> got_v = v_cache.download();

      std::vector<float> scratch(static_cast<size_t>(c.n_rot));
      for (int64_t t = 0; t < n_tokens; ++t) {
        std::vector<float> want_q(q.begin() + t * n_q, q.begin() + (t + 1) * n_q);
        std::vector<float> want_k(k.begin() + t * n_kv, k.begin() + (t + 1) * n_kv);
        std::vector<float> want_v(v.begin() + t * n_kv, v.begin() + (t + 1) * n_kv);
        for (int64_t i = 0; c.biases && i < n_q; ++i) want_q[i] += bq[i];
        for (int64_t i = 0; c.biases && i < n_kv; ++i) want_k[i] += bk[i];
        for (int64_t i = 0; c.biases && i < n_kv; ++i) want_v[i] += bv[i];
        for (int64_t h = 0; h < c.n_head; ++h) {
          ref::rope(p, first_pos + t, want_q.data() + h * c.head_dim, scratch.data());
        }
        for (int64_t h = 0; h < c.n_head_kv; ++h) {
          ref::rope(p, first_pos + t, want_k.data() + h * c.head_dim, scratch.data());
        }
        for (int64_t i = 0; i < n_q; ++i) {
          ASSERT_NEAR(got_q[t * n_q + i], want_q[i], 2e-6 * (1 + std::fabs(want_q[i])))
              << "q token " << t << " dim " << i;
        }
        const size_t row = static_cast<size_t>((first_pos + t) * n_kv);
        for (int64_t i = 0; i < n_kv; ++i) {
          // One F16 rounding step of the value: 2^-11 relative, up to a whole step where the
          // float inputs sit on either side of a rounding boundary.
          ASSERT_NEAR(f16_to_f32(got_k[row + i]), want_k[i], 1e-3 * std::fabs(want_k[i]) + 1e-7)
              << "k token " << t << " dim " << i;
          ASSERT_NEAR(f16_to_f32(got_v[row + i]), want_v[i], 1e-3 * std::fabs(want_v[i]) + 1e-7)
              << "v token " << t << " dim " << i;
        }
      }
      for (int64_t pos = 0; pos < n_ctx; ++pos) {
        if (pos >= first_pos && pos < first_pos + n_tokens) continue;
        for (int64_t i = 0; i < n_kv; ++i) {
          const size_t at = static_cast<size_t>(pos * n_kv + i);
          ASSERT_EQ(got_k[at], kSentinel) << "k row " << pos << " was written";
          ASSERT_EQ(got_v[at], kSentinel) << "v row " << pos << " was written";
        }
      }
    }
  }
}

// A paged cache: tokens of two sequences at their own positions, written through block tables
// of 4-position blocks, give the q and the K/V rows the contiguous kernel (tested above) gives at
// those positions; every other pool row keeps its sentinel.
TEST_P(CudaRopeKv, PagedWritesThroughBlockTables) {
  const RopeCase& c = GetParam();
  const int64_t n_q = c.n_head * c.head_dim;
  const int64_t n_kv = c.n_head_kv * c.head_dim;
  const std::vector<double> freqs = plain_freqs(c);
  constexpr int64_t kBlock = 4;
  const std::vector<int32_t> tables = {5, 2, 7, 0, /* sequence 1: */ 3, 6, 1, 4};
  const std::vector<int32_t> offsets = {0, 0, 4, 0};
  const std::vector<int32_t> positions = {9, 10, 6, 11};  // sequence 0, 0, 1, 0
  const auto n_tokens = static_cast<int64_t>(positions.size());
  const auto q = test::random_floats(static_cast<size_t>(n_tokens * n_q), 1);
  const auto k = test::random_floats(static_cast<size_t>(n_tokens * n_kv), 2);
  const auto v = test::random_floats(static_cast<size_t>(n_tokens * n_kv), 3);
  const uint16_t kSentinel = 0x7777;
  const std::vector<uint16_t> pool(static_cast<size_t>(8 * kBlock * n_kv), kSentinel);
  test::DeviceBuffer<double> freqs_dev(freqs);
  test::DeviceBuffer<int32_t> tables_dev(tables), offsets_dev(offsets), positions_dev(positions);
  test::DeviceBuffer<float> k_dev(k), v_dev(v), paged_q(q);
  test::DeviceBuffer<uint16_t> k_pool(pool), v_pool(pool);
  // No biases here: the contiguous test covers them.
  const RopeBuffers pool_buffers{paged_q.get(), k_dev.get(), v_dev.get(),  nullptr,
                                 nullptr,       nullptr,     k_pool.get(), v_pool.get()};
  RopeKvJob paged = rope_job(c, pool_buffers, n_tokens, 0, freqs_dev.get());
  paged.paged = {positions_dev.get(), offsets_dev.get(), tables_dev.get(), kBlock};
  rope_store_kv(paged, nullptr);
  ASSERT_TRUE(test::synchronize());
  const std::vector<float> got_q = paged_q.download();
  const std::vector<uint16_t> got_k = k_pool.download();
  const std::vector<uint16_t> got_v = v_pool.download();
  std::vector<bool> written(pool.size() / static_cast<size_t>(n_kv), false);
  for (int64_t t = 0; t < n_tokens; ++t) {
    const int64_t pos = positions[static_cast<size_t>(t)];
    SCOPED_TRACE(testing::Message() << "token " << t << " position " << pos);
    // The same token alone through the contiguous kernel at its position.
    const std::vector<float> q_t(q.begin() + t * n_q, q.begin() + (t + 1) * n_q);
    test::DeviceBuffer<float> one_q(q_t);
    test::DeviceBuffer<uint16_t> k_rows(static_cast<size_t>((pos + 1) * n_kv));
    test::DeviceBuffer<uint16_t> v_rows(static_cast<size_t>((pos + 1) * n_kv));
    const RopeBuffers token_buffers{one_q.get(),
                                    k_dev.get() + t * n_kv,
                                    v_dev.get() + t * n_kv,
                                    nullptr,
                                    nullptr,
                                    nullptr,
                                    k_rows.get(),
                                    v_rows.get()};
    const RopeKvJob one = rope_job(c, token_buffers, 1, pos, freqs_dev.get());
    rope_store_kv(one, nullptr);
    ASSERT_TRUE(test::synchronize());
    const std::vector<float> want_q = one_q.download();
    const std::vector<uint16_t> want_k = k_rows.download();
    const std::vector<uint16_t> want_v = v_rows.download();
    for (int64_t i = 0; i < n_q; ++i) ASSERT_EQ(got_q[t * n_q + i], want_q[i]) << "q dim " << i;
    const int64_t table = offsets[static_cast<size_t>(t)];
    const int64_t row = tables[static_cast<size_t>(table + pos / kBlock)] * kBlock + pos % kBlock;
    written[static_cast<size_t>(row)] = true;
    for (int64_t i = 0; i < n_kv; ++i) {
      ASSERT_EQ(got_k[row * n_kv + i], want_k[pos * n_kv + i]) << "k dim " << i;
      ASSERT_EQ(got_v[row * n_kv + i], want_v[pos * n_kv + i]) << "v dim " << i;
    }
  }
  for (size_t row = 0; row < written.size(); ++row) {
    if (written[row]) continue;
    for (int64_t i = 0; i < n_kv; ++i) {
      ASSERT_EQ(got_k[row * n_kv + i], kSentinel) << "k row " << row << " was written";
      ASSERT_EQ(got_v[row * n_kv + i], kSentinel) << "v row " << row << " was written";
    }
  }
}

constexpr ref::RopeStyle kAdjacent = ref::RopeStyle::kAdjacentPairs;
constexpr ref::RopeStyle kHalf = ref::RopeStyle::kHalfSplit;
// One token with the RoPE fused into the attention kernel: the cache rows are rope_store_kv's bit
// for bit (the token's row written, the others kept), and the attention output is that of
// rope_store_kv then attention, at positions in the first chunk, at a chunk's end and past it,
// and far enough on that a row's positions are split over several blocks. With the RMSNorm
// ending in the kernel (AttentionJob::norm), q, k and v are taken as products of the weighted
// residual and scaled by its 1/rms: against the separate launches on q, k and v scaled on the
// host (the rms summed in another order: cache rows within an F16 step).
TEST_P(CudaRopeKv, FusedIntoAttentionMatchesSeparateLaunches) {
  const RopeCase& c = GetParam();
  const int64_t n_q = c.n_head * c.head_dim;
  const int64_t n_kv = c.n_head_kv * c.head_dim;
  const std::vector<double> freqs = plain_freqs(c);
  test::DeviceBuffer<double> freqs_dev(freqs);
  constexpr int64_t kEmbd = 259;  // the residual's width: float4 loads and a remainder
  constexpr float kEps = 1e-5f;
  const auto residual = test::random_floats(static_cast<size_t>(kEmbd), 18, 3.0f);
  test::DeviceBuffer<float> residual_dev(residual);
  double sum_sq = 0.0;
  for (float x : residual) sum_sq += static_cast<double>(x) * x;
  const auto norm_scale = static_cast<float>(1.0 / std::sqrt(sum_sq / kEmbd + kEps));
  for (bool norm : {false, true}) {
    for (int64_t pos : {0, 31, 40, 300}) {
      SCOPED_TRACE(testing::Message() << "position " << pos << (norm ? ", norm ending" : ""));
      const int64_t n_ctx = pos + 3;
      const auto q = test::random_floats(static_cast<size_t>(n_q), 11);
      const auto k = test::random_floats(static_cast<size_t>(n_kv), 12);
      const auto v = test::random_floats(static_cast<size_t>(n_kv), 13);
      const auto bq = test::random_floats(static_cast<size_t>(n_q), 14);
      const auto bk = test::random_floats(static_cast<size_t>(n_kv), 15);
      const auto bv = test::random_floats(static_cast<size_t>(n_kv), 16);
      const auto earlier = test::random_floats(static_cast<size_t>(n_ctx * n_kv), 17, 2.0f);
      std::vector<uint16_t> cache(earlier.size(), 0x7777);
      for (size_t i = 0; i < static_cast<size_t>(pos * n_kv); ++i) {
        cache[i] = f32_to_f16(earlier[i]);
      }
      auto scaled = [&](std::vector<float> x) {
        for (float& e : x) e *= norm ? norm_scale : 1.0f;
        return x;
      };
      test::DeviceBuffer<float> q_sep(scaled(q)), k_sep_in(scaled(k)), v_sep_in(scaled(v));
      test::DeviceBuffer<float> q_raw(q), k_dev(k), v_dev(v), bq_dev(bq), bk_dev(bk), bv_dev(bv);
      test::DeviceBuffer<uint16_t> k_sep(cache), v_sep(cache), k_fused(cache), v_fused(cache);
      test::DeviceBuffer<float> out_sep(static_cast<size_t>(n_q)),
          out_fused(static_cast<size_t>(n_q));
      test::DeviceBuffer<float> partials(static_cast<size_t>(kAttentionPartialFloats));
      test::DeviceBuffer<unsigned> counters(
          std::vector<unsigned>(static_cast<size_t>(kAttentionSplitBlocks), 0u));

      const RopeBuffers buffers{q_sep.get(),  k_sep_in.get(), v_sep_in.get(), bq_dev.get(),
                                bk_dev.get(), bv_dev.get(),   k_sep.get(),    v_sep.get()};
      const RopeKvJob rope = rope_job(c, buffers, 1, pos, freqs_dev.get());
      AttentionJob a;
      a.q = q_sep.get();
      a.out = out_sep.get();
      a.k_cache = k_sep.get();
      a.v_cache = v_sep.get();
      a.n_tokens = 1;
      a.first_pos = pos;
      a.n_head = c.n_head;
      a.n_head_kv = c.n_head_kv;
      a.head_dim = c.head_dim;
      a.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
      a.partials = partials.get();
      a.counters = counters.get();
      rope_store_kv(rope, nullptr);
      attention(a, nullptr);

      a.q = nullptr;
      a.out = out_fused.get();
      a.k_cache = k_fused.get();
      a.v_cache = v_fused.get();
      a.fuse_rope = true;
      a.rope = rope;
      a.rope.q = q_raw.get();
      a.rope.k = k_dev.get();
      a.rope.v = v_dev.get();
      a.rope.k_cache = k_fused.get();
      a.rope.v_cache = v_fused.get();
      if (norm) a.norm = {residual_dev.get(), kEmbd, kEps};
      attention(a, nullptr);
      ASSERT_TRUE(test::synchronize());

      for (auto [fused, sep] : {std::pair{&k_fused, &k_sep}, std::pair{&v_fused, &v_sep}}) {
        const std::vector<uint16_t> got = fused->download();
        const std::vector<uint16_t> want = sep->download();
        if (!norm) {
          EXPECT_EQ(got, want);
          continue;
        }
        for (size_t i = 0; i < want.size(); ++i) {
          const float w = f16_to_f32(want[i]);
          ASSERT_NEAR(f16_to_f32(got[i]), w, 1e-3 * std::fabs(w) + 1e-7) << "cache element " << i;
        }
      }
      // With the norm, a cache value an F16 step apart moves the output by as much.
      const float tolerance = norm ? 2e-3f : 1e-5f;
      const std::vector<float> want = out_sep.download();
      const std::vector<float> got = out_fused.download();
      for (size_t i = 0; i < want.size(); ++i) {
        ASSERT_NEAR(got[i], want[i], tolerance * (1.0f + std::fabs(want[i]))) << "output " << i;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(CudaShapes, CudaRopeKv,
                         ::testing::Values(RopeCase{4, 2, 64, 64, kAdjacent, false, 1.0f, false},
                                           RopeCase{4, 2, 64, 64, kHalf, false, 1.0f, true},
                                           RopeCase{3, 1, 16, 8, kHalf, true, 1.2f, true},
                                           RopeCase{3, 1, 16, 8, kAdjacent, true, 1.0f, false},
                                           RopeCase{8, 8, 128, 128, kAdjacent, true, 1.0f, false},
                                           RopeCase{14, 2, 64, 64, kHalf, false, 1.0f, true},
                                           RopeCase{8, 4, 8, 8, kAdjacent, false, 1.0f, false}));

}  // namespace
}  // namespace pensieve::cuda
