#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <random>

#include <gtest/gtest.h>

#include "sampling/draw.h"
#include "sampling/sampler.h"
#include "sampling/stages.h"
#include "sampling/stop_strings.h"

namespace pensieve {
namespace {

std::vector<int32_t> ids_of(const Candidates& c) {
  std::vector<int32_t> ids;
  for (const TokenCandidate& t : c.items()) ids.push_back(t.id);
  return ids;
}

TEST(Sampler, GreedyPicksHighestLogitAndLowestIdOnTies) {
  Sampler s(SamplingParams{.temperature = 0.0f}, 5);
  const std::vector<float> logits = {0.1f, 2.0f, -1.0f, 2.0f, 1.9f};
  EXPECT_EQ(s.sample(logits, {}), 1);
}

TEST(Sampler, SameSeedSameTokens) {
  std::vector<float> logits(100);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = std::sin(static_cast<float>(i));
  auto draw = [&](uint64_t seed) {
    Sampler s(SamplingParams{.temperature = 1.5f, .seed = seed}, 100);
    std::vector<int32_t> out;
    for (int i = 0; i < 50; ++i) out.push_back(s.sample(logits, out));
    return out;
  };
  EXPECT_EQ(draw(42), draw(42));
  EXPECT_NE(draw(42), draw(43));
}

TEST(Sampler, DrawsFollowTheDistribution) {
  const std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.2f)};
  Sampler s(SamplingParams{.temperature = 1.0f, .seed = 7}, 3);
  std::map<int32_t, int> counts;
  const int n = 20000;
  for (int i = 0; i < n; ++i) ++counts[s.sample(logits, {})];
  EXPECT_NEAR(counts[0] / double(n), 0.5, 0.02);
  EXPECT_NEAR(counts[1] / double(n), 0.3, 0.02);
  EXPECT_NEAR(counts[2] / double(n), 0.2, 0.02);
}

// A temperature-only sampler draws with draw_token; the full chain with a top-k as large as the
// vocabulary (which keeps every candidate in id order) must pick the same tokens from the same
// seed.
TEST(Sampler, TemperatureOnlyDrawEqualsTheFullChain) {
  std::vector<float> logits(300);
  for (float temperature : {0.3f, 1.0f, 1.7f}) {
    Sampler draw(SamplingParams{.temperature = temperature, .seed = 11}, 300);
    Sampler chain(SamplingParams{.temperature = temperature, .top_k = 300, .seed = 11}, 300);
    EXPECT_TRUE(draw.draws_only());
    EXPECT_FALSE(chain.draws_only());
    for (int step = 0; step < 200; ++step) {
      for (size_t i = 0; i < logits.size(); ++i) {
        logits[i] = 4.0f * std::sin(static_cast<float>(i * (step + 3)) * 0.37f);
      }
      ASSERT_EQ(draw.sample(logits, {}), chain.sample(logits, {})) << temperature << " " << step;
    }
  }
  EXPECT_FALSE(
      Sampler(SamplingParams{.temperature = 1.0f, .repeat_penalty = 1.1f}, 3).draws_only());
  EXPECT_FALSE(Sampler(SamplingParams{.temperature = 0.0f}, 3).draws_only());
}

// draw_token is the inverse of the cumulative distribution in id order: probabilities worked
// out here in double, a uniform just inside each token's interval picks that token.
// A row's best tokens carry everything a top-k chain looks at: sampling from the first k (or
// more) of them picks what sampling from the whole row picks, step after step, whatever top-p,
// min-p and temperature follow. Logits with ties, so the order among equal ones counts.
TEST(Sampler, SampleFromBestTokensEqualsSampleFromTheRow) {
  constexpr int64_t kVocab = 1000;
  std::mt19937 gen(7);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> logits(kVocab);
  for (float& l : logits) l = std::round(normal(gen) * 8.0f) / 8.0f;  // many equal values
  for (int32_t k : {1, 5, 40, 200}) {
    for (float top_p : {1.0f, 0.9f, 0.3f}) {
      for (float min_p : {0.0f, 0.05f}) {
        for (float temperature : {0.0f, 0.7f, 1.5f}) {
          SCOPED_TRACE(testing::Message() << "k " << k << " top_p " << top_p << " min_p " << min_p
                                          << " temperature " << temperature);
          const SamplingParams params{
              .temperature = temperature, .top_k = k, .top_p = top_p, .min_p = min_p, .seed = 11};
          Sampler whole(params, kVocab);
          Sampler from_best(params, kVocab);
          ASSERT_EQ(from_best.best_needed(256), temperature > 0.0f ? k : 1);
          std::vector<TokenLogit> best(static_cast<size_t>(k + 3));
          best_tokens(logits, best.size(), best);
          std::vector<int32_t> history;
          for (int step = 0; step < 40; ++step) {
            const int32_t want = whole.sample(logits, history);
            const int32_t got = from_best.sample_best(
                std::span<const TokenLogit>(best).first(
                    step % 2 == 0 ? best.size() : static_cast<size_t>(from_best.best_needed(256))),
                history);
            ASSERT_EQ(got, want) << "step " << step;
            history.push_back(want);
          }
        }
      }
    }
  }
}

// Top-p and min-p over the whole row from its best tokens and its sum of exponentials: the same
// tokens as from the row, step after step. A peaked row's best suffice; a flat one's often do
// not (nothing comes back, no number is drawn), and the row then gives the token.
TEST(Sampler, TopPAndMinPFromBestTokensAndTheRowSumEqualSampleFromTheRow) {
  constexpr int64_t kVocab = 1000;
  std::mt19937 gen(9);
  for (float spread : {4.0f, 0.2f}) {
    std::normal_distribution<float> normal(0.0f, spread);
    std::vector<float> logits(kVocab);
    for (float& l : logits) l = std::round(normal(gen) * 64.0f) / 64.0f;  // some equal values
    std::vector<TokenLogit> best(256);
    best_tokens(logits, best.size(), best);
    const double sum = exp_sum(logits, best[0].logit);
    int fell_short = 0;
    for (size_t k : {size_t{20}, size_t{256}}) {
      for (float top_p : {1.0f, 0.9f, 0.5f}) {
        for (float min_p : {0.0f, 0.05f, 0.2f}) {
          if (top_p == 1.0f && min_p == 0.0f) continue;
          for (float temperature : {0.7f, 1.5f}) {
            SCOPED_TRACE(testing::Message()
                         << "spread " << spread << " k " << k << " top_p " << top_p << " min_p "
                         << min_p << " temperature " << temperature);
            const SamplingParams params{
                .temperature = temperature, .top_p = top_p, .min_p = min_p, .seed = 5};
            Sampler whole(params, kVocab);
            Sampler from_best(params, kVocab);
            ASSERT_TRUE(from_best.needs_exp_sum());
            std::vector<int32_t> history;
            for (int step = 0; step < 20; ++step) {
              const int32_t want = whole.sample(logits, history);
              std::optional<int32_t> got =
                  from_best.sample_best(std::span(best).first(k), sum, history);
              if (!got) {
                ++fell_short;
                got = from_best.sample(logits, history);
              }
              ASSERT_EQ(*got, want) << "step " << step;
              history.push_back(want);
            }
          }
        }
      }
    }
    if (spread > 1.0f) {
      EXPECT_EQ(fell_short, 0);  // a peaked row: its best decide
    } else {
      EXPECT_GT(fell_short, 0);  // a flat row: they cannot
    }
    // The cut itself, for top-p from 0.01 to 0.99: the same tokens as apply_top_p on the row.
    Candidates row(kVocab);
    Candidates from_best(kVocab);
    for (int percent = 1; percent < 100; ++percent) {
      const float p = static_cast<float>(percent) / 100.0f;
      row.assign(logits);
      sampling::apply_top_p(row, p);
      from_best.assign_best(best);
      if (!sampling::apply_top_p_min_p_of_row(from_best, p, 0.0f, sum)) {
        EXPECT_GT(row.size(), best.size()) << "p " << p;  // fell short only past the best
        continue;
      }
      ASSERT_EQ(from_best.size(), row.size()) << "p " << p;
      for (size_t i = 0; i < row.size(); ++i) {
        ASSERT_EQ(from_best.items()[i].id, row.items()[i].id) << "p " << p << " place " << i;
      }
    }
  }
}

TEST(Sampler, BestTokensSufficeForTopKAndGreedyWithoutPenalties) {
  auto needed = [](SamplingParams p, int64_t most = 256) {
    return Sampler(p, 1000).best_needed(most);
  };
  EXPECT_EQ(needed({.top_k = 40}), 40);
  EXPECT_EQ(needed({.top_k = 40, .top_p = 0.5f, .min_p = 0.1f}), 40);
  EXPECT_EQ(needed({.top_k = 40}, 32), 0);  // more than the backend gives
  EXPECT_EQ(needed({.top_k = 0}), 0);       // the temperature alone
  EXPECT_EQ(needed({.top_k = 1000}), 0);    // the whole vocabulary
  // Top-p or min-p over the whole row: as many as come, with the row's sum of exponentials.
  EXPECT_EQ(needed({.top_p = 0.9f}), 256);
  EXPECT_EQ(needed({.min_p = 0.05f}, 32), 32);
  EXPECT_EQ(needed({.top_k = 1000, .top_p = 0.9f}), 256);
  EXPECT_TRUE(Sampler({.top_p = 0.9f}, 1000).needs_exp_sum());
  EXPECT_FALSE(Sampler({.top_k = 40, .top_p = 0.9f}, 1000).needs_exp_sum());
  EXPECT_FALSE(Sampler({.temperature = 0.0f, .top_p = 0.9f}, 1000).needs_exp_sum());
  EXPECT_EQ(needed({.temperature = 0.0f, .top_k = 40}), 1);  // greedy: the best one
  EXPECT_EQ(needed({.temperature = 0.0f, .repeat_penalty = 1.1f}), 0);
  EXPECT_EQ(needed({.top_k = 40, .repeat_penalty = 1.1f}), 0);  // penalties see every token
  EXPECT_EQ(needed({.top_k = 40, .presence_penalty = 0.5f}), 0);
}

TEST(BestTokens, OrderedAsThePartialSortWithTiesByIdAndNonFiniteFlagged) {
  const std::vector<float> logits = {0.5f, 2.0f, -1.0f, 2.0f, 0.5f, 3.0f, 0.5f};
  std::vector<TokenLogit> best(5);
  best_tokens(logits, best.size(), best);
  std::vector<int32_t> ids;
  for (const TokenLogit& t : best) ids.push_back(t.id);
  EXPECT_EQ(ids, (std::vector<int32_t>{5, 1, 3, 0, 4}));
  EXPECT_EQ(best[0].logit, 3.0f);
  Candidates c(static_cast<int64_t>(logits.size()));
  c.assign(logits);
  c.sort_prefix(best.size());
  for (size_t i = 0; i < best.size(); ++i) EXPECT_EQ(c.items()[i].id, best[i].id) << i;
  // A long row with many equal values, k from one to more than the heap's comfortable size.
  std::mt19937 gen(3);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> row(5000);
  for (float& l : row) l = std::round(normal(gen) * 4.0f) / 4.0f;
  Candidates all(static_cast<int64_t>(row.size()));
  for (size_t k : {size_t{1}, size_t{7}, size_t{256}, size_t{4999}}) {
    std::vector<TokenLogit> got(k);
    best_tokens(row, k, got);
    all.assign(row);
    all.sort_prefix(k);
    for (size_t i = 0; i < k; ++i) {
      ASSERT_EQ(got[i].id, all.items()[i].id) << "k " << k << " place " << i;
      ASSERT_EQ(got[i].logit, all.items()[i].logit) << "k " << k << " place " << i;
    }
  }
  std::vector<float> bad = logits;
  bad[6] = std::numeric_limits<float>::infinity();
  best_tokens(bad, best.size(), best);
  EXPECT_EQ(best[0].id, -1);
}

TEST(DrawToken, PicksTheTokenWhoseIntervalHoldsTheUniform) {
  const std::vector<float> logits = {1.0f, -2.0f, 3.0f, 0.5f, 3.0f};
  for (float temperature : {0.5f, 1.0f, 2.5f}) {
    std::vector<double> p(logits.size());
    double sum = 0;
    for (size_t i = 0; i < p.size(); ++i) sum += p[i] = std::exp(double(logits[i]) / temperature);
    double lo = 0;
    for (size_t i = 0; i < p.size(); ++i) {
      const double hi = lo + p[i] / sum;
      EXPECT_EQ(sampling::draw_token(logits, temperature, lo + 1e-6), int32_t(i)) << temperature;
      EXPECT_EQ(sampling::draw_token(logits, temperature, hi - 1e-6), int32_t(i)) << temperature;
      lo = hi;
    }
  }
  EXPECT_EQ(sampling::draw_token(logits, 1.0f, 0.0), 0);
  EXPECT_EQ(sampling::draw_token(logits, 1.0f, 1.0), 4);  // past the total: the last id
  std::vector<float> bad = logits;
  bad[3] = std::nanf("");
  EXPECT_EQ(sampling::draw_token(bad, 1.0f, 0.5), -1);
  bad[3] = INFINITY;
  EXPECT_EQ(sampling::draw_token(bad, 1.0f, 0.5), -1);
  EXPECT_EQ(sampling::draw_token({}, 1.0f, 0.5), -1);
  // -infinity is a masked token: never drawn, the others share its mass.
  std::vector<float> masked = logits;
  masked[2] = masked[4] = -INFINITY;
  for (double u : {0.0, 0.3, 0.6, 0.9, 0.999999}) {
    const int32_t id = sampling::draw_token(masked, 1.0f, u);
    EXPECT_TRUE(id == 0 || id == 1 || id == 3) << u << " -> " << id;
  }
  const std::vector<float> none(3, -INFINITY);
  EXPECT_EQ(sampling::draw_token(none, 1.0f, 0.5), -1);
}

// The stages as first written, sorting every candidate before cutting: the reference for the
// partial sorts. Ids kept, in order.
std::vector<int32_t> reference_cut(std::span<const float> logits, int32_t k, float p, float min_p) {
  std::vector<TokenCandidate> items;
  for (size_t i = 0; i < logits.size(); ++i) items.push_back({int32_t(i), logits[i], 0.0f});
  std::sort(items.begin(), items.end(), [](const TokenCandidate& a, const TokenCandidate& b) {
    return a.logit != b.logit ? a.logit > b.logit : a.id < b.id;
  });
  auto softmax = [&items] {  // Candidates::softmax's arithmetic, summed in sorted order
    double sum = 0;
    for (TokenCandidate& c : items) sum += c.prob = std::exp(c.logit - items[0].logit);
    for (TokenCandidate& c : items) c.prob = float(c.prob / sum);
  };
  if (k > 0 && size_t(k) < items.size()) items.resize(size_t(k));
  if (p < 1.0f) {
    softmax();
    double mass = 0;
    for (size_t i = 0; i < items.size(); ++i) {
      mass += items[i].prob;
      if (mass >= p) {
        items.resize(i + 1);
        break;
      }
    }
  }
  if (min_p > 0.0f) {
    softmax();
    const float threshold = items[0].prob * min_p;
    size_t keep = 1;
    while (keep < items.size() && items[keep].prob >= threshold) ++keep;
    items.resize(keep);
  }
  std::vector<int32_t> ids;
  for (const TokenCandidate& c : items) ids.push_back(c.id);
  return ids;
}

// Top-k, top-p and min-p sort only as much as they keep; what they keep, and its order, is what
// sorting everything first keeps: peaked and flat distributions, vocabularies of 1 to 5000
// tokens, many equal logits.
TEST(SamplingStages, PartialSortsKeepWhatAFullSortKeeps) {
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const float scales[] = {0.3f, 2.0f, 8.0f};
  for (int trial = 0; trial < 120; ++trial) {
    const size_t n = 1 + rng() % 5000;
    std::vector<float> logits(n);
    for (float& l : logits) l = normal(rng) * scales[trial % 3];
    if (trial % 4 == 0) {
      for (float& l : logits) l = std::round(l * 4.0f) / 4.0f;  // ties
    }
    struct Cut {
      int32_t k;
      float p, min_p;
    };
    const Cut cuts[] = {{1, 1, 0},        {5, 1, 0},    {40, 1, 0},   {int32_t(n), 1, 0},
                        {0, 0.1f, 0},     {0, 0.5f, 0}, {0, 0.9f, 0}, {0, 0.999f, 0},
                        {0, 1, 0.01f},    {0, 1, 0.3f}, {0, 1, 1.5f}, {40, 0.9f, 0.05f},
                        {0, 0.95f, 0.02f}};
    for (const Cut& cut : cuts) {
      Candidates c{static_cast<int64_t>(n)};
      c.assign(logits);
      sampling::apply_top_k(c, cut.k);
      sampling::apply_top_p(c, cut.p);
      sampling::apply_min_p(c, cut.min_p);
      if (cut.k > 0 && size_t(cut.k) < n) {
        EXPECT_TRUE(c.sorted());
      }
      std::vector<int32_t> ids = ids_of(c);
      if (!c.sorted()) std::sort(ids.begin(), ids.end());  // no cut: every id, in id order
      std::vector<int32_t> want = reference_cut(logits, cut.k, cut.p, cut.min_p);
      if (!c.sorted()) std::sort(want.begin(), want.end());
      ASSERT_EQ(ids, want) << "trial " << trial << ", n " << n << ", k " << cut.k << ", p " << cut.p
                           << ", min_p " << cut.min_p;
    }
  }
}

TEST(SamplingStages, TopKKeepsTheKBest) {
  Candidates c(6);
  const std::vector<float> logits = {1, 5, 3, 4, 2, 0};
  c.assign(logits);
  sampling::apply_top_k(c, 3);
  EXPECT_EQ(ids_of(c), (std::vector<int32_t>{1, 3, 2}));
}

TEST(SamplingStages, TopPKeepsSmallestSetReachingP) {
  Candidates c(4);
  const std::vector<float> logits = {std::log(0.1f), std::log(0.6f), std::log(0.25f),
                                     std::log(0.05f)};
  c.assign(logits);
  sampling::apply_top_p(c, 0.8f);  // 0.6 + 0.25 >= 0.8
  EXPECT_EQ(ids_of(c), (std::vector<int32_t>{1, 2}));
}

TEST(SamplingStages, MinPDropsTokensBelowFractionOfBest) {
  Candidates c(4);
  const std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.15f),
                                     std::log(0.05f)};
  c.assign(logits);
  sampling::apply_min_p(c, 0.25f);  // threshold 0.125
  EXPECT_EQ(ids_of(c), (std::vector<int32_t>{0, 1, 2}));
}

TEST(SamplingStages, PenaltiesLowerRepeatedTokens) {
  Candidates c(4);
  const std::vector<float> logits = {2.0f, -2.0f, 1.0f, 1.0f};
  c.assign(logits);
  std::vector<int32_t> counts(4, 0);
  const std::vector<int32_t> recent = {0, 1, 0};
  sampling::apply_penalties(c, recent, 2.0f, 0.5f, 0.25f, counts);
  EXPECT_FLOAT_EQ(c.items()[0].logit, 2.0f / 2 - 2 * 0.5f - 0.25f);
  EXPECT_FLOAT_EQ(c.items()[1].logit, -2.0f * 2 - 1 * 0.5f - 0.25f);
  EXPECT_FLOAT_EQ(c.items()[2].logit, 1.0f);
  EXPECT_EQ(std::accumulate(counts.begin(), counts.end(), 0), 0);  // scratch left zeroed
}

TEST(SamplingStages, TemperatureSharpens) {
  Candidates c(2);
  const std::vector<float> logits = {1.0f, 2.0f};
  c.assign(logits);
  sampling::apply_temperature(c, 0.5f);
  EXPECT_FLOAT_EQ(c.items()[1].logit, 4.0f);
}

TEST(StopMatcher, CatchesStopStringSplitAcrossTokens) {
  StopMatcher m({"The end", "###"});
  std::string out;
  EXPECT_FALSE(m.feed("and they lived. Th", &out));
  EXPECT_EQ(out, "and they lived. ");  // "Th" held back: it may start "The end"
  EXPECT_FALSE(m.feed("e e", &out));
  EXPECT_TRUE(m.feed("nd!", &out));
  EXPECT_EQ(out, "and they lived. ");
  EXPECT_EQ(m.matched(), "The end");
}

TEST(StopMatcher, ReleasesHeldTextWhenItStopsMatching) {
  StopMatcher m({"###"});
  std::string out;
  EXPECT_FALSE(m.feed("a#", &out));
  EXPECT_EQ(out, "a");
  EXPECT_FALSE(m.feed("#b", &out));
  EXPECT_EQ(out, "a##b");
  EXPECT_FALSE(m.feed("##", &out));
  m.flush(&out);
  EXPECT_EQ(out, "a##b##");
  EXPECT_FALSE(m.stopped());
}

TEST(StopMatcher, EarliestStopWins) {
  StopMatcher m({"cd", "b"});
  std::string out;
  EXPECT_TRUE(m.feed("abcd", &out));
  EXPECT_EQ(out, "a");
  EXPECT_EQ(m.matched(), "b");
}

}  // namespace
}  // namespace pensieve
