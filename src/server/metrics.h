// Server metrics for GET /metrics: request and generation counters, latency and throughput
// histograms, queue gauges, rendered as Prometheus text exposition format 0.0.4.
// Thread-safe: HTTP threads and the engine record concurrently; render() copies under the lock.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace pensieve::server {

class Metrics {
 public:
  // route: a route template label ("/v1/messages", "/v1/models/{id}", "other"); status: HTTP.
  void record_request(std::string_view route, int status);
  // A finished generation: its stop_reason label (end_turn, max_tokens, stop_sequence,
  // model_context_window_exceeded, cancelled, error, ...), prompt and generated token counts
  // (negative counts as 0), seconds from request arrival to the first generated token (< 0 or
  // not finite: none), and generation tokens/s (< 0 or not finite: none, e.g. < 2 tokens).
  void record_generation(std::string_view stop_reason, int64_t input_tokens, int64_t output_tokens,
                         double ttft_seconds, double tokens_per_second);
  void set_queue_depth(int64_t waiting);  // gauge: requests waiting in the engine queue
  void set_in_flight(int64_t running);    // gauge: sequences being generated
  // A request refused before it reached the engine: "memory" (529), "queue_full" (429).
  void record_rejection(std::string_view reason);

  // Memory gauges, set at each scrape.
  struct MemoryGauges {
    int64_t budget_weights_bytes = 0, budget_kv_bytes = 0, budget_scratch_bytes = 0,
            budget_buffers_bytes = 0;
    int64_t usable_bytes = 0;  // what the machine (or cgroup) has free
    int tier = 0;              // 0 safe .. 4 emergency
    int64_t rss_anon_bytes = 0, swap_bytes = 0;
    bool model_loaded = true;
    int64_t shed_total = 0;  // requests cancelled in Emergency
  };
  void set_memory(const MemoryGauges& gauges);

  // The KV block pool and the prefix cache, set at each scrape.
  struct KvGauges {
    int64_t blocks_free = 0, blocks_cached = 0, blocks_used = 0;
    int64_t block_bytes = 0;
    int64_t prefix_hit_tokens = 0, prefix_lookup_tokens = 0;
    int64_t preemptions = 0;
    int64_t trimmed_blocks = 0;
  };
  void set_kv(const KvGauges& gauges);
  // The whole text exposition. Labelled counter families appear once they have a series;
  // unlabelled counters, histograms and gauges always (at 0).
  std::string render() const;

  // Upper bounds of the finite histogram buckets; +Inf is implicit.
  static constexpr std::array<double, 13> kTtftBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                          1,     2.5,  5,     10,   30,  60};
  static constexpr std::array<double, 11> kTokensPerSecondBuckets = {1,   2,   5,   10,   20,  50,
                                                                     100, 200, 500, 1000, 2000};

 private:
  // Observations per bucket (not cumulative; the last slot is +Inf), their sum and count.
  template <size_t N>
  struct Histogram {
    std::array<uint64_t, N + 1> n_in_bucket{};
    double sum = 0;
    uint64_t count = 0;
    void observe(const std::array<double, N>& bounds, double value);
  };

  // Everything render() needs; copied out under the lock and formatted outside it.
  struct State {
    std::map<std::string, std::map<int, uint64_t>, std::less<>> requests;  // route -> status -> n
    std::map<std::string, uint64_t, std::less<>> generations;              // stop_reason -> n
    uint64_t input_tokens = 0;
    uint64_t output_tokens = 0;
    Histogram<kTtftBuckets.size()> ttft;
    Histogram<kTokensPerSecondBuckets.size()> tokens_per_second;
    int64_t queue_depth = 0;
    int64_t in_flight = 0;
    std::map<std::string, uint64_t, std::less<>> rejections;  // reason -> n
    MemoryGauges memory;
    KvGauges kv;
  };

  mutable std::mutex mutex_;
  State state_;
};

// A label value escaped for the text format: backslash, double quote and newline.
std::string escape_label_value(std::string_view value);

}  // namespace pensieve::server
