// The attention kernel against a plain softmax in double, at every dispatch level this CPU
// supports, for each cache type, head sizes, GQA groups, prompt chunks and decode steps, with
// positions crossing the kernel's blocks of 32.
//
// Tolerance: outputs are convex combinations of V rows with |v| <= 1. The reference uses the same
// cache values (kv_load), so the only differences are float accumulation and the polynomial exp
// (relative error ~2e-7): 2e-5 absolute.
#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
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

std::vector<double> reference(const Case& c, const Fixture& f) {
  const int64_t hd = c.head_dim;
  const int64_t n_pos = c.first_pos + c.n_tokens;
  const size_t head_offset = kv_bytes(c.kv_type, hd * f.kv_head);
  std::vector<float> k(static_cast<size_t>(n_pos * hd)), v(k.size());
  for (int64_t p = 0; p < n_pos; ++p) {
    kv_load(c.kv_type, f.k.data() + f.stride * p + head_offset, hd, k.data() + p * hd);
    kv_load(c.kv_type, f.v.data() + f.stride * p + head_offset, hd, v.data() + p * hd);
  }
  std::vector<double> out(f.q.size());
  for (int64_t t = 0; t < c.n_tokens; ++t) {
    for (int64_t h = 0; h < c.group; ++h) {
      const float* q = f.q.data() + (t * c.group + h) * hd;
      const int64_t seen = c.first_pos + t + 1;
      std::vector<double> s(static_cast<size_t>(seen));
      for (int64_t p = 0; p < seen; ++p) {
        double dot = 0;
        for (int64_t d = 0; d < hd; ++d) dot += static_cast<double>(q[d]) * k[p * hd + d];
        s[p] = dot * c.scale;
      }
      const double max = *std::max_element(s.begin(), s.end());
      double sum = 0;
      for (double& x : s) sum += (x = std::exp(x - max));
      double* o = out.data() + (t * c.group + h) * hd;
      for (int64_t p = 0; p < seen; ++p) {
        for (int64_t d = 0; d < hd; ++d) o[d] += s[p] / sum * v[p * hd + d];
      }
    }
  }
  return out;
}

std::vector<float> run(const Case& c, const Fixture& f, Isa isa) {
  std::vector<float> out(f.q.size(), NAN);
  std::vector<float> scratch(attention_scratch_floats(c.group * c.n_tokens, c.head_dim));
  attention(make_job(c, f, out.data()), scratch.data(), isa);
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

// A row's result must not depend on the rows that share its job: the forward pass splits
// prompts and heads among threads in different ways.
TEST(Attention, RowsDoNotDependOnTheirJob) {
  const Case whole{GgmlType::kF16, 64, 4, 9, 20, 0.125f};
  const Fixture f = make_fixture(whole, 7);
  const std::vector<float> together = run(whole, f, best_isa());
  for (int64_t t = 0; t < whole.n_tokens; ++t) {
    const Case one{whole.kv_type, whole.head_dim, whole.group, 1, whole.first_pos + t, whole.scale};
    Fixture single = f;
    const auto row = static_cast<size_t>(whole.group * whole.head_dim);
    single.q.assign(f.q.begin() + t * row, f.q.begin() + (t + 1) * row);
    const std::vector<float> alone = run(one, single, best_isa());
    for (size_t j = 0; j < row; ++j) ASSERT_EQ(alone[j], together[t * row + j]) << t << " " << j;
  }
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
