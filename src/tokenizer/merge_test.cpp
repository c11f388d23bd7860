#include "tokenizer/merge.h"

#include <random>

#include <gtest/gtest.h>

namespace pensieve {
namespace {

TEST(PairTable, FindsInsertedPairsAndKeepsTheFirstEntry) {
  PairTable table;
  EXPECT_EQ(table.find(1, 2), nullptr);
  for (int32_t i = 0; i < 1000; ++i) table.insert(i, i + 1, PairEntry{i + 5000, float(i)});
  table.insert(3, 4, PairEntry{42, -1.0f});  // again: ignored
  EXPECT_EQ(table.size(), 1000u);
  for (int32_t i = 0; i < 1000; ++i) {
    const PairEntry* e = table.find(i, i + 1);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->merged, i + 5000);
    EXPECT_EQ(e->priority, float(i));
  }
  EXPECT_EQ(table.find(2, 1), nullptr);
  EXPECT_EQ(table.find(0, 2), nullptr);
}

// The obvious quadratic algorithm: merge the lowest-priority, leftmost adjacent pair, repeat.
std::vector<int32_t> reference_merge(const PairTable& table, std::vector<int32_t> units) {
  while (true) {
    int best = -1;
    float best_priority = 0;
    for (size_t i = 0; i + 1 < units.size(); ++i) {
      if (units[i] < 0 || units[i + 1] < 0) continue;
      const PairEntry* e = table.find(units[i], units[i + 1]);
      if (e != nullptr && (best < 0 || e->priority < best_priority)) {
        best = static_cast<int>(i);
        best_priority = e->priority;
      }
    }
    if (best < 0) return units;
    units[best] = table.find(units[best], units[best + 1])->merged;
    units.erase(units.begin() + best + 1);
  }
}

std::vector<int32_t> run_merger(const PairTable& table, std::vector<int32_t> units) {
  Merger merger;
  merger.run(table, &units);
  std::vector<int32_t> out;
  for (const int32_t u : units) {
    if (u != kMergedAway) out.push_back(u);
  }
  return out;
}

TEST(Merger, MatchesTheQuadraticReferenceOnRandomInputs) {
  std::mt19937 rng(1234);
  for (int trial = 0; trial < 500; ++trial) {
    // Units 0..7 are "characters"; merges produce units from 8 up, some with equal priority
    // so that the leftmost rule matters.
    PairTable table;
    int32_t next = 8;
    for (int m = 0; m < 40; ++m) {
      const int32_t a = static_cast<int32_t>(rng() % next);
      const int32_t b = static_cast<int32_t>(rng() % next);
      table.insert(a, b, PairEntry{next++, float(rng() % 10)});
    }
    std::vector<int32_t> units(rng() % 80);
    for (int32_t& u : units) u = rng() % 10 == 0 ? -1 : static_cast<int32_t>(rng() % 8);
    EXPECT_EQ(run_merger(table, units), reference_merge(table, units)) << "trial " << trial;
  }
}

TEST(Merger, MergesLeftmostOnTies) {
  PairTable table;
  table.insert(1, 1, PairEntry{2, 0.0f});
  EXPECT_EQ(run_merger(table, {1, 1, 1}), (std::vector<int32_t>{2, 1}));
  EXPECT_EQ(run_merger(table, {1, 1, 1, 1}), (std::vector<int32_t>{2, 2}));
  EXPECT_EQ(run_merger(table, {}), (std::vector<int32_t>{}));
  EXPECT_EQ(run_merger(table, {1}), (std::vector<int32_t>{1}));
}

TEST(Merger, HandlesLongInputsInLinearithmicTime) {
  PairTable table;
  table.insert(1, 1, PairEntry{2, 0.0f});
  table.insert(2, 2, PairEntry{3, 1.0f});
  std::vector<int32_t> units(1 << 20, 1);
  const auto out = run_merger(table, units);
  EXPECT_EQ(out.size(), size_t{1} << 18);
  for (const int32_t u : out) ASSERT_EQ(u, 3);
}

}  // namespace
}  // namespace pensieve
