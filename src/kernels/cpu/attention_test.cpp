// The attention kernel against a plain softmax in double, at every dispatch level this CPU
// supports, for each cache type, head sizes, GQA groups, prompt chunks and decode steps, with
// positions crossing the kernel's blocks of 32, with and without a sliding window; and a paged
// cache against a contiguous one.
//
// Tolerance: outputs are convex combinations of V rows with |v| <= 1. The reference uses the same
// cache values (kv_load), so the only differences are float accumulation and the polynomial exp
// (relative error ~2e-7): 2e-5 absolute.
#include "kernels/cpu/attention.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace pensieve::cpu {
namespace {

struct Case {
  GgmlType kv_type;
  int64_t head_dim;
  int64_t group;
  int64_t n_tokens;
  int64_t first_pos;
  float scale;
};

// A cache of n_kv_heads heads per position, filled with values in [-1, 1], plus the query rows.
struct Fixture {
  int64_t n_kv_heads = 3;
  int64_t kv_head = 1;  // the head the job reads: a stride wider than one head
  std::vector<uint8_t> k, v;
  size_t stride = 0;
  std::vector<float> q;  // [n_tokens, group * head_dim]
};

Fixture make_fixture(const Case& c, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  Fixture f;
  const int64_t n_pos = c.first_pos + c.n_tokens;
  f.stride = kv_bytes(c.kv_type, c.head_dim * f.n_kv_heads);
  f.k.resize(f.stride * static_cast<size_t>(n_pos));
  f.v.resize(f.k.size());
  std::vector<float> row(static_cast<size_t>(c.head_dim * f.n_kv_heads));
  for (int64_t p = 0; p < n_pos; ++p) {
    for (float& x : row) x = dist(rng);
    kv_store(c.kv_type, row.data(), std::ssize(row), f.k.data() + f.stride * p);
    for (float& x : row) x = dist(rng);
    kv_store(c.kv_type, row.data(), std::ssize(row), f.v.data() + f.stride * p);
  }
  f.q.resize(static_cast<size_t>(c.n_tokens * c.group * c.head_dim));
  for (float& x : f.q) x = dist(rng);
  return f;
}

AttentionJob make_job(const Case& c, const Fixture& f, float* out) {
  AttentionJob job;
  const size_t head_offset = kv_bytes(c.kv_type, c.head_dim * f.kv_head);
  job.q = f.q.data();
  job.out = out;
  job.token_stride = c.group * c.head_dim;
  job.group = c.group;
  job.n_tokens = c.n_tokens;
  job.first_pos = c.first_pos;
  job.k = f.k.data() + head_offset;
  job.v = f.v.data() + head_offset;
  job.kv_stride = f.stride;
  job.kv_type = c.kv_type;
  job.head_dim = c.head_dim;
  job.scale = c.scale;
  return job;
}

// Plain softmax attention in double over n_pos cache rows of `stride` bytes from k and v (one head
// each): token t at position first_pos + t attends [first_pos + t - window + 1, first_pos + t]
// clipped at 0, or every position up to its own with window 0.
std::vector<double> reference_rows(GgmlType type, const uint8_t* k_rows, const uint8_t* v_rows,
                                   size_t stride, int64_t hd, const float* q_rows, int64_t group,
                                   int64_t n_tokens, int64_t first_pos, float scale,
                                   int64_t window) {
  const int64_t n_pos = first_pos + n_tokens;
  std::vector<float> k(static_cast<size_t>(n_pos * hd)), v(k.size());
  for (int64_t p = 0; p < n_pos; ++p) {
    kv_load(type, k_rows + stride * p, hd, k.data() + p * hd);
    kv_load(type, v_rows + stride * p, hd, v.data() + p * hd);
  }
  std::vector<double> out(static_cast<size_t>(n_tokens * group * hd));
  for (int64_t t = 0; t < n_tokens; ++t) {
    const int64_t pos = first_pos + t;
    const int64_t begin = window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0;
    for (int64_t h = 0; h < group; ++h) {
      const float* q = q_rows + (t * group + h) * hd;
      std::vector<double> s(static_cast<size_t>(pos + 1 - begin));
      for (int64_t p = begin; p <= pos; ++p) {
        double dot = 0;
        for (int64_t d = 0; d < hd; ++d) dot += static_cast<double>(q[d]) * k[p * hd + d];
        s[p - begin] = dot * scale;
      }
      const double max = *std::max_element(s.begin(), s.end());
      double sum = 0;
      for (double& x : s) sum += (x = std::exp(x - max));
      double* o = out.data() + (t * group + h) * hd;
      for (int64_t p = begin; p <= pos; ++p) {
        for (int64_t d = 0; d < hd; ++d) o[d] += s[p - begin] / sum * v[p * hd + d];
      }
    }
  }
  return out;
}

std::vector<double> reference(const Case& c, const Fixture& f, int64_t window = 0) {
  const size_t head_offset = kv_bytes(c.kv_type, c.head_dim * f.kv_head);
  return reference_rows(c.kv_type, f.k.data() + head_offset, f.v.data() + head_offset, f.stride,
                        c.head_dim, f.q.data(), c.group, c.n_tokens, c.first_pos, c.scale, window);
}

std::vector<float> run(const Case& c, const Fixture& f, Isa isa, int64_t window = 0) {
  std::vector<float> out(f.q.size(), NAN);
  std::vector<float> scratch(attention_scratch_floats(c.group * c.n_tokens, c.head_dim));
  AttentionJob job = make_job(c, f, out.data());
  job.window = window;
  attention(job, scratch.data(), isa);
  return out;
}

const Case kCases[] = {
    // decode: one token, one head, from the first position to long contexts
    {GgmlType::kF16, 64, 1, 1, 0, 0.125f},
    {GgmlType::kF16, 64, 1, 1, 31, 0.125f},
    {GgmlType::kF16, 64, 1, 1, 32, 0.125f},
    {GgmlType::kF16, 128, 8, 1, 575, 0.088f},
    {GgmlType::kF32, 64, 4, 1, 100, 0.125f},
    {GgmlType::kQ8_0, 96, 2, 1, 70, 0.1f},
    {GgmlType::kF16, 80, 1, 1, 45, 0.11f},
    // prompt chunks: several tokens, with and without earlier positions
    {GgmlType::kF16, 64, 8, 7, 33, 0.125f},
    {GgmlType::kF32, 128, 1, 40, 0, 0.088f},
    {GgmlType::kQ8_0, 64, 4, 16, 64, 0.125f},
    {GgmlType::kF16, 96, 2, 33, 0, 0.1f},
    // large scores: the running maximum must keep the exponentials finite
    {GgmlType::kF16, 64, 2, 5, 60, 8.0f},
    {GgmlType::kF32, 64, 1, 3, 90, 30.0f},
};

TEST(Attention, MatchesReferenceAtEveryIsa) {
  for (Isa isa : kAllIsas) {
    if (!isa_supported(isa)) {
      std::printf("attention: %s not supported here, skipped\n", isa_name(isa).data());
      continue;
    }
    for (size_t i = 0; i < std::size(kCases); ++i) {
      const Case& c = kCases[i];
      SCOPED_TRACE(testing::Message() << isa_name(isa) << " case " << i << " "
                                      << ggml_type_name(c.kv_type) << " hd " << c.head_dim);
      const Fixture f = make_fixture(c, static_cast<uint32_t>(i + 1));
      const std::vector<double> want = reference(c, f);
      const std::vector<float> got = run(c, f, isa);
      for (size_t j = 0; j < want.size(); ++j) {
        ASSERT_NEAR(got[j], want[j], 2e-5) << "output " << j;
      }
    }
  }
}

// Sliding windows shorter than, equal to and longer than a block of 32, on every case above: the
// window start falls inside blocks, on block boundaries and before position 0.
constexpr int64_t kWindows[] = {1, 5, 32, 33, 100};

TEST(Attention, SlidingWindowMatchesReferenceAtEveryIsa) {
  for (Isa isa : kAllIsas) {
    if (!isa_supported(isa)) continue;
    for (size_t i = 0; i < std::size(kCases); ++i) {
      const Case& c = kCases[i];
      const Fixture f = make_fixture(c, static_cast<uint32_t>(i + 1));
      for (int64_t window : kWindows) {
        SCOPED_TRACE(testing::Message() << isa_name(isa) << " case " << i << " window " << window);
        const std::vector<double> want = reference(c, f, window);
        const std::vector<float> got = run(c, f, isa, window);
        for (size_t j = 0; j < want.size(); ++j) {
          ASSERT_NEAR(got[j], want[j], 2e-5) << "output " << j;
        }
      }
    }
  }
}

// A window that covers every position a token sees is no window at all, bit for bit.
TEST(Attention, WindowCoveringEveryPositionIsFullAttention) {
  for (Isa isa : kAllIsas) {
    if (!isa_supported(isa)) continue;
    for (size_t i = 0; i < std::size(kCases); ++i) {
      const Case& c = kCases[i];
      const Fixture f = make_fixture(c, static_cast<uint32_t>(i + 1));
      const std::vector<float> full = run(c, f, isa);
      for (int64_t window :
           {c.first_pos + c.n_tokens, c.first_pos + c.n_tokens + 1, int64_t{1} << 40}) {
        const std::vector<float> got = run(c, f, isa, window);
        for (size_t j = 0; j < full.size(); ++j) {
          ASSERT_EQ(std::bit_cast<uint32_t>(got[j]), std::bit_cast<uint32_t>(full[j]))
              << isa_name(isa) << " case " << i << " window " << window << " output " << j;
        }
      }
    }
  }
}

// A row's result must not depend on the rows that share its job: the forward pass splits
// prompts and heads among threads in different ways.
TEST(Attention, RowsDoNotDependOnTheirJob) {
  const Case whole{GgmlType::kF16, 64, 4, 40, 20, 0.125f};  // positions 20..59
  const Fixture f = make_fixture(whole, 7);
  for (int64_t window : {0, 5, 33}) {
    const std::vector<float> together = run(whole, f, best_isa(), window);
    for (int64_t t = 0; t < whole.n_tokens; ++t) {
      const Case one{whole.kv_type,       whole.head_dim, whole.group, 1,
                     whole.first_pos + t, whole.scale};
      Fixture single = f;
      const auto row = static_cast<size_t>(whole.group * whole.head_dim);
      single.q.assign(f.q.begin() + t * row, f.q.begin() + (t + 1) * row);
      const std::vector<float> alone = run(one, single, best_isa(), window);
      for (size_t j = 0; j < row; ++j) {
        ASSERT_EQ(alone[j], together[t * row + j]) << "window " << window << " " << t << " " << j;
      }
    }
  }
}

// Paged cache: the same K/V values once in a contiguous cache and once in pool blocks of
// kKvBlockPositions positions, in shuffled order. Spare blocks and the unused tail of the last
// block are all NaN (0xFF bytes in every cache type), so reading a wrong block or row shows. The
// kernel does the same arithmetic in the same order on both, so outputs must agree bit for bit.
enum class BlockLayout {
  kPositionMajor,  // block [kKvBlockPositions, n_kv_heads, head] in a pool each for K and V
  kHeadMajor,      // block [2 (K, V), n_kv_heads, kKvBlockPositions, head] in one shared pool
};

constexpr int64_t kPagedPositions = 200;  // 6 full blocks and a partial one
constexpr int64_t kPagedMaxRows = 256;    // group * n_tokens of the largest case below
constexpr int64_t kPagedHeads = 3;
constexpr int64_t kPagedHead = 1;  // the head jobs read

struct PagedFixture {
  std::vector<uint8_t> k, v;  // contiguous [kPagedPositions, row]
  std::vector<uint8_t> k_pool, v_pool;
  std::vector<int32_t> table;
  int32_t spare = 0;     // a pool block outside the table: all NaN
  std::vector<float> q;  // [n_tokens, group * head_dim], as long as the largest case needs
  AttentionJob flat, paged;
};

PagedFixture make_paged_fixture(GgmlType type, int64_t hd, BlockLayout layout, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  PagedFixture f;
  const size_t head_bytes = kv_bytes(type, hd);
  const int64_t n_blocks = (kPagedPositions + kKvBlockPositions - 1) / kKvBlockPositions;
  const int64_t n_pool = n_blocks + 3;
  std::vector<int32_t> order(static_cast<size_t>(n_pool));
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  f.table.assign(order.begin(), order.begin() + n_blocks);
  f.spare = order[static_cast<size_t>(n_blocks)];

  const bool by_position = layout == BlockLayout::kPositionMajor;
  // Head-major keeps only the read head in the contiguous cache, one head a row, so an F32 cache
  // is read in place (no copy) on both sides.
  const size_t flat_stride = by_position ? kPagedHeads * head_bytes : head_bytes;
  const size_t block_stride = kKvBlockPositions * kPagedHeads * head_bytes * (by_position ? 1 : 2);
  f.k.resize(flat_stride * kPagedPositions);
  f.v.resize(f.k.size());
  f.k_pool.assign(block_stride * n_pool, 0xFF);
  if (by_position) f.v_pool.assign(f.k_pool.size(), 0xFF);
  // Where head h of position p lives in the pool (kv: 0 for K, 1 for V).
  auto in_pool = [&](int64_t p, int64_t h, int kv) {
    const size_t block = static_cast<size_t>(f.table[p / kKvBlockPositions]) * block_stride;
    const int64_t j = p % kKvBlockPositions;
    if (by_position) {
      return (kv == 0 ? f.k_pool : f.v_pool).data() + block + (j * kPagedHeads + h) * head_bytes;
    }
    return f.k_pool.data() + block + ((kv * kPagedHeads + h) * kKvBlockPositions + j) * head_bytes;
  };
  std::vector<float> x(static_cast<size_t>(hd));
  for (int64_t p = 0; p < kPagedPositions; ++p) {
    for (int64_t h = 0; h < kPagedHeads; ++h) {
      for (int kv = 0; kv < 2; ++kv) {
        for (float& e : x) e = dist(rng);
        kv_store(type, x.data(), hd, in_pool(p, h, kv));
        if (by_position || h == kPagedHead) {
          uint8_t* flat = (kv == 0 ? f.k : f.v).data() + p * flat_stride;
          kv_store(type, x.data(), hd, flat + (by_position ? h * head_bytes : 0));
        }
      }
    }
  }
  f.q.resize(static_cast<size_t>(kPagedMaxRows * hd));
  for (float& e : f.q) e = dist(rng);

  f.flat.q = f.q.data();
  f.flat.kv_type = type;
  f.flat.head_dim = hd;
  f.flat.scale = 1.0f / std::sqrt(static_cast<float>(hd));
  f.paged = f.flat;
  f.flat.k = f.k.data() + (by_position ? kPagedHead * head_bytes : 0);
  f.flat.v = f.v.data() + (by_position ? kPagedHead * head_bytes : 0);
  f.flat.kv_stride = flat_stride;
  f.paged.k = in_pool(0, kPagedHead, 0) - static_cast<size_t>(f.table[0]) * block_stride;
  f.paged.v = in_pool(0, kPagedHead, 1) - static_cast<size_t>(f.table[0]) * block_stride;
  f.paged.kv_stride = by_position ? kPagedHeads * head_bytes : head_bytes;
  f.paged.block_table = f.table.data();
  f.paged.block_stride = block_stride;
  return f;
}

std::vector<float> run_job(AttentionJob job, int64_t group, int64_t n_tokens, int64_t first_pos,
                           Isa isa, int64_t window = 0) {
  std::vector<float> out(static_cast<size_t>(n_tokens * group * job.head_dim), NAN);
  std::vector<float> scratch(attention_scratch_floats(group * n_tokens, job.head_dim));
  job.out = out.data();
  job.token_stride = group * job.head_dim;
  job.group = group;
  job.n_tokens = n_tokens;
  job.first_pos = first_pos;
  job.window = window;
  attention(job, scratch.data(), isa);
  return out;
}

struct PagedStep {
  int64_t group, n_tokens, first_pos;
};

// Decode steps at every context length, then prompt chunks that start inside a block.
std::vector<PagedStep> paged_steps() {
  std::vector<PagedStep> steps;
  for (int64_t n_pos = 1; n_pos <= kPagedPositions; ++n_pos) steps.push_back({4, 1, n_pos - 1});
  for (PagedStep s : {PagedStep{2, 40, 5}, PagedStep{4, 7, 37}, PagedStep{2, 66, 63},
                      PagedStep{2, 100, 100}, PagedStep{8, 3, 161}, PagedStep{4, 64, 136}}) {
    steps.push_back(s);
  }
  for (const PagedStep& s : steps) EXPECT_LE(s.group * s.n_tokens, kPagedMaxRows);
  return steps;
}

TEST(Attention, PagedCacheMatchesContiguousBitForBit) {
  const std::vector<PagedStep> steps = paged_steps();
  for (Isa isa : kAllIsas) {
    if (!isa_supported(isa)) continue;
    int64_t n_compared = 0;
    for (GgmlType type : {GgmlType::kF32, GgmlType::kF16, GgmlType::kQ8_0}) {
      for (int64_t hd : {64, 128}) {
        for (BlockLayout layout : {BlockLayout::kPositionMajor, BlockLayout::kHeadMajor}) {
          const bool by_position = layout == BlockLayout::kPositionMajor;
          const PagedFixture f = make_paged_fixture(type, hd, layout, static_cast<uint32_t>(hd));
          for (const PagedStep& s : steps) {
            SCOPED_TRACE(testing::Message()
                         << isa_name(isa) << " " << ggml_type_name(type) << " hd " << hd
                         << (by_position ? " position-major" : " head-major") << " group "
                         << s.group << " n_tokens " << s.n_tokens << " first_pos " << s.first_pos);
            const std::vector<float> want = run_job(f.flat, s.group, s.n_tokens, s.first_pos, isa);
            const std::vector<float> got = run_job(f.paged, s.group, s.n_tokens, s.first_pos, isa);
            for (size_t j = 0; j < want.size(); ++j) {
              ASSERT_FALSE(std::isnan(want[j])) << "output " << j;
              ASSERT_EQ(std::bit_cast<uint32_t>(got[j]), std::bit_cast<uint32_t>(want[j]))
                  << "output " << j << ": paged " << got[j] << ", contiguous " << want[j];
            }
            n_compared += std::ssize(want);
          }
        }
      }
    }
    std::printf("attention: %s paged = contiguous on %lld outputs\n", isa_name(isa).data(),
                static_cast<long long>(n_compared));
  }
}

// Sliding windows over a paged cache: against the reference, and bit for bit against the
// contiguous cache. Table entries of blocks wholly before the first token's window point at a
// spare NaN block, so any use of their values would show.
TEST(Attention, PagedSlidingWindowMatchesReferenceAndContiguous) {
  const std::vector<PagedStep> steps = paged_steps();
  for (Isa isa : kAllIsas) {
    if (!isa_supported(isa)) continue;
    for (GgmlType type : {GgmlType::kF32, GgmlType::kF16, GgmlType::kQ8_0}) {
      for (BlockLayout layout : {BlockLayout::kPositionMajor, BlockLayout::kHeadMajor}) {
        const PagedFixture f = make_paged_fixture(type, 64, layout, 3);
        for (int64_t window : kWindows) {
          for (const PagedStep& s : steps) {
            SCOPED_TRACE(testing::Message()
                         << isa_name(isa) << " " << ggml_type_name(type) << " layout "
                         << static_cast<int>(layout) << " window " << window << " group " << s.group
                         << " n_tokens " << s.n_tokens << " first_pos " << s.first_pos);
            std::vector<int32_t> table = f.table;
            const int64_t first = std::max<int64_t>(0, s.first_pos - window + 1);
            for (int64_t b = 0; b < first / kKvBlockPositions; ++b) table[b] = f.spare;
            AttentionJob paged = f.paged;
            paged.block_table = table.data();
            const std::vector<float> got =
                run_job(paged, s.group, s.n_tokens, s.first_pos, isa, window);
            const std::vector<float> flat =
                run_job(f.flat, s.group, s.n_tokens, s.first_pos, isa, window);
            const std::vector<double> want =
                reference_rows(type, f.flat.k, f.flat.v, f.flat.kv_stride, 64, f.q.data(), s.group,
                               s.n_tokens, s.first_pos, f.flat.scale, window);
            for (size_t j = 0; j < want.size(); ++j) {
              ASSERT_NEAR(got[j], want[j], 2e-5) << "output " << j;
              ASSERT_EQ(std::bit_cast<uint32_t>(got[j]), std::bit_cast<uint32_t>(flat[j]))
                  << "output " << j << ": paged " << got[j] << ", contiguous " << flat[j];
            }
          }
        }
      }
    }
  }
}

TEST(Attention, RejectsNegativeBlockTableEntry) {
  const PagedFixture f = make_paged_fixture(GgmlType::kF16, 64, BlockLayout::kPositionMajor, 1);
  std::vector<int32_t> table = f.table;
  table[2] = -1;
  AttentionJob job = f.paged;
  job.block_table = table.data();
  EXPECT_DEATH(run_job(job, 1, 1, 70, best_isa()), "block table entry 2 is -1");
}

TEST(Attention, KvStoreRoundTrips) {
  std::vector<float> x(64), y(64);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(static_cast<float>(i)) * 3.0f;
  for (GgmlType type : {GgmlType::kF32, GgmlType::kF16, GgmlType::kQ8_0}) {
    std::vector<uint8_t> row(kv_bytes(type, 64));
    kv_store(type, x.data(), 64, row.data());
    kv_load(type, row.data(), 64, y.data());
    const double tol = type == GgmlType::kF32 ? 0 : type == GgmlType::kF16 ? 2e-3 : 3.0 / 127;
    for (size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(y[i], x[i], tol) << ggml_type_name(type);
  }
  EXPECT_FALSE(kv_type_supported(GgmlType::kQ4_0));
}

}  // namespace
}  // namespace pensieve::cpu
