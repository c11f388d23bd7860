#include "server/metrics.h"

#include <cmath>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace pensieve::server {
namespace {

// Sample lines of an exposition: "name{labels}" -> value text; comments checked to be HELP/TYPE.
std::map<std::string, std::string> parse_samples(const std::string& text) {
  std::map<std::string, std::string> samples;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) continue;
    EXPECT_NE(line[0], '#') << line;
    size_t space = line.rfind(' ');
    EXPECT_NE(space, std::string::npos) << line;
    EXPECT_TRUE(samples.emplace(line.substr(0, space), line.substr(space + 1)).second) << line;
  }
  return samples;
}

TEST(Metrics, RendersExactTextForASmallScenario) {
  Metrics metrics;
  metrics.record_request("/v1/messages", 200);
  metrics.record_request("/v1/models/{id}", 404);
  metrics.record_request("/v1/messages", 400);
  metrics.record_request("/v1/messages", 200);
  metrics.record_generation("end_turn", 10, 5, 0.25, 50.0);
  metrics.record_generation("max_tokens", 3, 1, 0.0078125, -1);  // one token: no speed
  metrics.set_queue_depth(2);
  metrics.set_in_flight(1);
  metrics.record_rejection("memory");
  metrics.record_rejection("queue_full");
  metrics.record_rejection("memory");
  Metrics::MemoryGauges memory;
  memory.budget_weights_bytes = 1000;
  memory.budget_kv_bytes = 200;
  memory.budget_scratch_bytes = 30;
  memory.budget_buffers_bytes = 4;
  memory.usable_bytes = 5000000000;
  memory.tier = 3;
  memory.rss_anon_bytes = 123;
  memory.swap_bytes = 0;
  memory.model_loaded = false;
  memory.shed_total = 7;
  metrics.set_memory(memory);
  Metrics::KvGauges kv;
  kv.blocks_used = 3;
  kv.blocks_cached = 2;
  kv.blocks_free = 5;
  kv.block_bytes = 1024;
  kv.prefix_hit_tokens = 64;
  kv.prefix_lookup_tokens = 100;
  kv.preemptions = 1;
  kv.trimmed_blocks = 7;
  metrics.set_kv(kv);
  const std::string expected =
      "# HELP pensieve_requests_total HTTP requests answered, by route template and status.\n"
      "# TYPE pensieve_requests_total counter\n"
      "pensieve_requests_total{route=\"/v1/messages\",status=\"200\"} 2\n"
      "pensieve_requests_total{route=\"/v1/messages\",status=\"400\"} 1\n"
      "pensieve_requests_total{route=\"/v1/models/{id}\",status=\"404\"} 1\n"
      "# HELP pensieve_generations_total Finished generations, by stop reason.\n"
      "# TYPE pensieve_generations_total counter\n"
      "pensieve_generations_total{stop_reason=\"end_turn\"} 1\n"
      "pensieve_generations_total{stop_reason=\"max_tokens\"} 1\n"
      "# HELP pensieve_input_tokens_total Prompt tokens of finished generations.\n"
      "# TYPE pensieve_input_tokens_total counter\n"
      "pensieve_input_tokens_total 13\n"
      "# HELP pensieve_output_tokens_total Generated tokens of finished generations.\n"
      "# TYPE pensieve_output_tokens_total counter\n"
      "pensieve_output_tokens_total 6\n"
      "# HELP pensieve_time_to_first_token_seconds Seconds from request arrival to the first "
      "generated token.\n"
      "# TYPE pensieve_time_to_first_token_seconds histogram\n"
      "pensieve_time_to_first_token_seconds_bucket{le=\"0.005\"} 0\n"
      "pensieve_time_to_first_token_seconds_bucket{le=\"0.01\"} 1\n"
      "pensieve_time_to_first_token_seconds_bucket{le=\"0.025\"} 1\n"
      "pensieve_time_to_first_token_seconds_bucket{le=\"0.05\"} 1\n"
      "pensieve_time_to_first_token_seconds_bucket{le=\"0.1\"} 1\n"
      "pensieve_time_to_first_token_seconds_bucket{le=\"0.25\"} 2\n"
      "pensieve_time_to_first_token_seconds_bucket{le=\"0.5\"} 2\n"
      "pensieve_time_to_first_token_seconds_bucket{le=\"1\"} 2\n"
      "pensieve_time_to_first_token_seconds_bucket{le=\"2.5\"} 2\n"
      "pensieve_time_to_first_token_seconds_bucket{le=\"5\"} 2\n"
      "pensieve_time_to_first_token_seconds_bucket{le=\"10\"} 2\n"
      "pensieve_time_to_first_token_seconds_bucket{le=\"30\"} 2\n"
      "pensieve_time_to_first_token_seconds_bucket{le=\"60\"} 2\n"
      "pensieve_time_to_first_token_seconds_bucket{le=\"+Inf\"} 2\n"
      "pensieve_time_to_first_token_seconds_sum 0.2578125\n"
      "pensieve_time_to_first_token_seconds_count 2\n"
      "# HELP pensieve_generation_tokens_per_second Generation speed of finished generations, in "
      "tokens per second.\n"
      "# TYPE pensieve_generation_tokens_per_second histogram\n"
      "pensieve_generation_tokens_per_second_bucket{le=\"1\"} 0\n"
      "pensieve_generation_tokens_per_second_bucket{le=\"2\"} 0\n"
      "pensieve_generation_tokens_per_second_bucket{le=\"5\"} 0\n"
      "pensieve_generation_tokens_per_second_bucket{le=\"10\"} 0\n"
      "pensieve_generation_tokens_per_second_bucket{le=\"20\"} 0\n"
      "pensieve_generation_tokens_per_second_bucket{le=\"50\"} 1\n"
      "pensieve_generation_tokens_per_second_bucket{le=\"100\"} 1\n"
      "pensieve_generation_tokens_per_second_bucket{le=\"200\"} 1\n"
      "pensieve_generation_tokens_per_second_bucket{le=\"500\"} 1\n"
      "pensieve_generation_tokens_per_second_bucket{le=\"1000\"} 1\n"
      "pensieve_generation_tokens_per_second_bucket{le=\"2000\"} 1\n"
      "pensieve_generation_tokens_per_second_bucket{le=\"+Inf\"} 1\n"
      "pensieve_generation_tokens_per_second_sum 50\n"
      "pensieve_generation_tokens_per_second_count 1\n"
      "# HELP pensieve_queue_depth Requests waiting in the engine queue.\n"
      "# TYPE pensieve_queue_depth gauge\n"
      "pensieve_queue_depth 2\n"
      "# HELP pensieve_requests_in_flight Sequences being generated.\n"
      "# TYPE pensieve_requests_in_flight gauge\n"
      "pensieve_requests_in_flight 1\n"
      "# HELP pensieve_rejections_total Requests refused before reaching the engine, by reason.\n"
      "# TYPE pensieve_rejections_total counter\n"
      "pensieve_rejections_total{reason=\"memory\"} 2\n"
      "pensieve_rejections_total{reason=\"queue_full\"} 1\n"
      "# HELP pensieve_memory_budget_bytes The memory budget computed at startup, by part.\n"
      "# TYPE pensieve_memory_budget_bytes gauge\n"
      "pensieve_memory_budget_bytes{part=\"weights\"} 1000\n"
      "pensieve_memory_budget_bytes{part=\"kv_cache\"} 200\n"
      "pensieve_memory_budget_bytes{part=\"scratch\"} 30\n"
      "pensieve_memory_budget_bytes{part=\"buffers\"} 4\n"
      "# HELP pensieve_memory_usable_bytes Memory the machine (or the cgroup) has free: "
      "min(MemAvailable, limit - usage).\n"
      "# TYPE pensieve_memory_usable_bytes gauge\n"
      "pensieve_memory_usable_bytes 5000000000\n"
      "# HELP pensieve_memory_tier Memory tier: 0 safe, 1 caution, 2 warning, 3 critical, 4 "
      "emergency.\n"
      "# TYPE pensieve_memory_tier gauge\n"
      "pensieve_memory_tier 3\n"
      "# HELP pensieve_process_rss_anon_bytes The server's anonymous resident memory (RssAnon).\n"
      "# TYPE pensieve_process_rss_anon_bytes gauge\n"
      "pensieve_process_rss_anon_bytes 123\n"
      "# HELP pensieve_process_swap_bytes The server's swapped-out memory.\n"
      "# TYPE pensieve_process_swap_bytes gauge\n"
      "pensieve_process_swap_bytes 0\n"
      "# HELP pensieve_model_loaded 1 while the model's weights are in memory, 0 after a "
      "keep-alive release.\n"
      "# TYPE pensieve_model_loaded gauge\n"
      "pensieve_model_loaded 0\n"
      "# HELP pensieve_memory_shed_total Requests cancelled to free memory in the Emergency tier.\n"
      "# TYPE pensieve_memory_shed_total counter\n"
      "pensieve_memory_shed_total 7\n"
      "# HELP pensieve_kv_blocks KV cache blocks by state: used by running requests, cached "
      "(prefix cache, evictable), free.\n"
      "# TYPE pensieve_kv_blocks gauge\n"
      "pensieve_kv_blocks{state=\"used\"} 3\n"
      "pensieve_kv_blocks{state=\"cached\"} 2\n"
      "pensieve_kv_blocks{state=\"free\"} 5\n"
      "# HELP pensieve_prefix_cache_bytes Bytes of KV cache held by the prefix cache (inside the "
      "KV pool's budget).\n"
      "# TYPE pensieve_prefix_cache_bytes gauge\n"
      "pensieve_prefix_cache_bytes 2048\n"
      "# HELP pensieve_prefix_cache_hit_tokens_total Prompt tokens whose KV came from the prefix "
      "cache.\n"
      "# TYPE pensieve_prefix_cache_hit_tokens_total counter\n"
      "pensieve_prefix_cache_hit_tokens_total 64\n"
      "# HELP pensieve_prefix_cache_lookup_tokens_total Prompt tokens looked up in the prefix "
      "cache.\n"
      "# TYPE pensieve_prefix_cache_lookup_tokens_total counter\n"
      "pensieve_prefix_cache_lookup_tokens_total 100\n"
      "# HELP pensieve_kv_preemptions_total Requests sent back to be recomputed because the KV "
      "pool ran out of blocks.\n"
      "# TYPE pensieve_kv_preemptions_total counter\n"
      "pensieve_kv_preemptions_total 1\n"
      "# HELP pensieve_prefix_cache_trimmed_blocks_total Prefix cache blocks dropped because the "
      "machine's memory ran low.\n"
      "# TYPE pensieve_prefix_cache_trimmed_blocks_total counter\n"
      "pensieve_prefix_cache_trimmed_blocks_total 7\n";
  EXPECT_EQ(metrics.render(), expected);
}

TEST(Metrics, FreshMetricsShowOnlyUnlabelledSeries) {
  Metrics metrics;
  std::string text = metrics.render();
  EXPECT_EQ(text.find("pensieve_requests_total"), std::string::npos);
  EXPECT_EQ(text.find("pensieve_generations_total"), std::string::npos);
  auto samples = parse_samples(text);
  EXPECT_EQ(samples.at("pensieve_input_tokens_total"), "0");
  EXPECT_EQ(samples.at("pensieve_output_tokens_total"), "0");
  EXPECT_EQ(samples.at("pensieve_time_to_first_token_seconds_bucket{le=\"+Inf\"}"), "0");
  EXPECT_EQ(samples.at("pensieve_time_to_first_token_seconds_count"), "0");
  EXPECT_EQ(samples.at("pensieve_generation_tokens_per_second_sum"), "0");
  EXPECT_EQ(samples.at("pensieve_queue_depth"), "0");
  EXPECT_EQ(samples.at("pensieve_requests_in_flight"), "0");
}

TEST(Metrics, HistogramBucketsAreCumulativeWithSumAndCount) {
  Metrics metrics;
  // One value per boundary case: below the first bound, on a bound (le is inclusive), just
  // above a bound, past the last bound; NaN, infinity and negatives are "none".
  const double ttfts[] = {0.001, 0.005, 0.0050001,    0.5,
                          100,   -1,    std::nan(""), std::numeric_limits<double>::infinity()};
  for (double ttft : ttfts) metrics.record_generation("end_turn", 0, 0, ttft, -1);
  auto samples = parse_samples(metrics.render());
  auto bucket = [&samples](const char* le) {
    return samples.at(std::string("pensieve_time_to_first_token_seconds_bucket{le=\"") + le +
                      "\"}");
  };
  EXPECT_EQ(bucket("0.005"), "2");
  EXPECT_EQ(bucket("0.01"), "3");
  EXPECT_EQ(bucket("0.25"), "3");
  EXPECT_EQ(bucket("0.5"), "4");
  EXPECT_EQ(bucket("60"), "4");
  EXPECT_EQ(bucket("+Inf"), "5");
  EXPECT_EQ(samples.at("pensieve_time_to_first_token_seconds_count"), "5");
  double sum = std::stod(samples.at("pensieve_time_to_first_token_seconds_sum"));
  EXPECT_DOUBLE_EQ(sum, 0.001 + 0.005 + 0.0050001 + 0.5 + 100);
  EXPECT_EQ(samples.at("pensieve_generation_tokens_per_second_count"), "0");
  EXPECT_EQ(samples.at("pensieve_generations_total{stop_reason=\"end_turn\"}"), "8");
  // Each bucket count never falls as le grows.
  uint64_t previous = 0;
  for (double le : Metrics::kTtftBuckets) {
    uint64_t n = std::stoull(bucket(fmt::format("{}", le).c_str()));
    EXPECT_GE(n, previous) << le;
    previous = n;
  }
}

TEST(Metrics, EscapesLabelValues) {
  EXPECT_EQ(escape_label_value("plain"), "plain");
  EXPECT_EQ(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  Metrics metrics;
  metrics.record_request("/x\"y\\z\nw", 500);
  metrics.record_generation("we\"ird", 1, 1, -1, -1);
  std::string text = metrics.render();
  EXPECT_NE(text.find("pensieve_requests_total{route=\"/x\\\"y\\\\z\\nw\",status=\"500\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("pensieve_generations_total{stop_reason=\"we\\\"ird\"} 1\n"),
            std::string::npos)
      << text;
}

TEST(Metrics, NegativeTokenCountsDoNotDecreaseCounters) {
  Metrics metrics;
  metrics.record_generation("error", 5, 2, -1, -1);
  metrics.record_generation("error", -3, -1, -1, -1);
  auto samples = parse_samples(metrics.render());
  EXPECT_EQ(samples.at("pensieve_input_tokens_total"), "5");
  EXPECT_EQ(samples.at("pensieve_output_tokens_total"), "2");
}

TEST(Metrics, ConcurrentRecordsGiveExactTotals) {
  Metrics metrics;
  constexpr int kThreads = 8;
  constexpr int kPerThread = 5000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&metrics, t] {
      for (int i = 0; i < kPerThread; ++i) {
        metrics.record_request(i % 2 == 0 ? "/v1/messages" : "/v1/models", 200 + (t % 2));
        metrics.record_generation("end_turn", 2, 3, 0.1, 10);
        if (i % 500 == 0) (void)metrics.render();  // readers race writers too
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  auto samples = parse_samples(metrics.render());
  const std::string per_series = std::to_string(kThreads / 2 * kPerThread / 2);
  EXPECT_EQ(samples.at("pensieve_requests_total{route=\"/v1/messages\",status=\"200\"}"),
            per_series);
  EXPECT_EQ(samples.at("pensieve_requests_total{route=\"/v1/messages\",status=\"201\"}"),
            per_series);
  EXPECT_EQ(samples.at("pensieve_requests_total{route=\"/v1/models\",status=\"200\"}"), per_series);
  EXPECT_EQ(samples.at("pensieve_requests_total{route=\"/v1/models\",status=\"201\"}"), per_series);
  const int64_t n = int64_t{kThreads} * kPerThread;
  EXPECT_EQ(samples.at("pensieve_generations_total{stop_reason=\"end_turn\"}"), std::to_string(n));
  EXPECT_EQ(samples.at("pensieve_input_tokens_total"), std::to_string(2 * n));
  EXPECT_EQ(samples.at("pensieve_output_tokens_total"), std::to_string(3 * n));
  EXPECT_EQ(samples.at("pensieve_time_to_first_token_seconds_count"), std::to_string(n));
  EXPECT_EQ(samples.at("pensieve_generation_tokens_per_second_bucket{le=\"10\"}"),
            std::to_string(n));
}

}  // namespace
}  // namespace pensieve::server
