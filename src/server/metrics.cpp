#include "server/metrics.h"

#include <algorithm>
#include <cmath>
#include <iterator>

#include <fmt/format.h>

namespace pensieve::server {
namespace {

void append_header(std::string* out, std::string_view name, std::string_view type,
                   std::string_view help) {
  fmt::format_to(std::back_inserter(*out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

// Bucket bounds and sums as Prometheus clients print floats: shortest round-trip ("0.005", "1").
std::string format_double(double value) {
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (std::isnan(value)) return "NaN";
  return fmt::format("{}", value);
}

template <class Hist, size_t N>
void append_histogram(std::string* out, std::string_view name, std::string_view help,
                      const std::array<double, N>& bounds, const Hist& hist) {
  append_header(out, name, "histogram", help);
  auto it = std::back_inserter(*out);
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= N; ++i) {
    cumulative += hist.n_in_bucket[i];
    std::string le = i < N ? format_double(bounds[i]) : "+Inf";
    fmt::format_to(it, "{}_bucket{{le=\"{}\"}} {}\n", name, le, cumulative);
  }
  fmt::format_to(it, "{}_sum {}\n{}_count {}\n", name, format_double(hist.sum), name, hist.count);
}

}  // namespace

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

template <size_t N>
void Metrics::Histogram<N>::observe(const std::array<double, N>& bounds, double value) {
  size_t bucket = 0;
  while (bucket < N && value > bounds[bucket]) ++bucket;  // le is inclusive
  ++n_in_bucket[bucket];
  sum += value;
  ++count;
}

void Metrics::record_request(std::string_view route, int status) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = state_.requests.find(route);
  if (it == state_.requests.end())
    it = state_.requests.emplace(std::string(route), std::map<int, uint64_t>{}).first;
  ++it->second[status];
}

void Metrics::record_generation(std::string_view stop_reason, int64_t input_tokens,
                                int64_t output_tokens, double ttft_seconds,
                                double tokens_per_second) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = state_.generations.find(stop_reason);
  if (it == state_.generations.end()) {
    it = state_.generations.emplace(std::string(stop_reason), 0).first;
  }
  ++it->second;
  // Counters never decrease: a negative count is a caller bug we do not let corrupt them.
  state_.input_tokens += static_cast<uint64_t>(std::max<int64_t>(input_tokens, 0));
  state_.output_tokens += static_cast<uint64_t>(std::max<int64_t>(output_tokens, 0));
  if (std::isfinite(ttft_seconds) && ttft_seconds >= 0) {
    state_.ttft.observe(kTtftBuckets, ttft_seconds);
  }
  if (std::isfinite(tokens_per_second) && tokens_per_second >= 0) {
    state_.tokens_per_second.observe(kTokensPerSecondBuckets, tokens_per_second);
  }
}

void Metrics::set_queue_depth(int64_t waiting) {
  std::lock_guard<std::mutex> lock(mutex_);
  state_.queue_depth = waiting;
}

void Metrics::set_in_flight(int64_t running) {
  std::lock_guard<std::mutex> lock(mutex_);
  state_.in_flight = running;
}

void Metrics::record_rejection(std::string_view reason) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = state_.rejections.find(reason);
  if (it == state_.rejections.end()) it = state_.rejections.emplace(std::string(reason), 0).first;
  ++it->second;
}

void Metrics::set_memory(const MemoryGauges& gauges) {
  std::lock_guard<std::mutex> lock(mutex_);
  state_.memory = gauges;
}

void Metrics::set_kv(const KvGauges& gauges) {
  std::lock_guard<std::mutex> lock(mutex_);
  state_.kv = gauges;
}

std::string Metrics::render() const {
  State s;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    s = state_;
  }
  std::string out;
  out.reserve(4096);
  auto it = std::back_inserter(out);

  if (!s.requests.empty()) {
    append_header(&out, "pensieve_requests_total", "counter",
                  "HTTP requests answered, by route template and status.");
    for (const auto& [route, by_status] : s.requests) {
      for (const auto& [status, n] : by_status) {
        fmt::format_to(it, "pensieve_requests_total{{route=\"{}\",status=\"{}\"}} {}\n",
                       escape_label_value(route), status, n);
      }
    }
  }
  if (!s.generations.empty()) {
    append_header(&out, "pensieve_generations_total", "counter",
                  "Finished generations, by stop reason.");
    for (const auto& [reason, n] : s.generations) {
      fmt::format_to(it, "pensieve_generations_total{{stop_reason=\"{}\"}} {}\n",
                     escape_label_value(reason), n);
    }
  }
  append_header(&out, "pensieve_input_tokens_total", "counter",
                "Prompt tokens of finished generations.");
  fmt::format_to(it, "pensieve_input_tokens_total {}\n", s.input_tokens);
  append_header(&out, "pensieve_output_tokens_total", "counter",
                "Generated tokens of finished generations.");
  fmt::format_to(it, "pensieve_output_tokens_total {}\n", s.output_tokens);
  append_histogram(&out, "pensieve_time_to_first_token_seconds",
                   "Seconds from request arrival to the first generated token.", kTtftBuckets,
                   s.ttft);
  append_histogram(&out, "pensieve_generation_tokens_per_second",
                   "Generation speed of finished generations, in tokens per second.",
                   kTokensPerSecondBuckets, s.tokens_per_second);
  append_header(&out, "pensieve_queue_depth", "gauge", "Requests waiting in the engine queue.");
  fmt::format_to(it, "pensieve_queue_depth {}\n", s.queue_depth);
  append_header(&out, "pensieve_requests_in_flight", "gauge", "Sequences being generated.");
  fmt::format_to(it, "pensieve_requests_in_flight {}\n", s.in_flight);
  if (!s.rejections.empty()) {
    append_header(&out, "pensieve_rejections_total", "counter",
                  "Requests refused before reaching the engine, by reason.");
    for (const auto& [reason, n] : s.rejections) {
      fmt::format_to(it, "pensieve_rejections_total{{reason=\"{}\"}} {}\n",
                     escape_label_value(reason), n);
    }
  }
  const MemoryGauges& m = s.memory;
  append_header(&out, "pensieve_memory_budget_bytes", "gauge",
                "The memory budget computed at startup, by part.");
  for (const auto& [part, bytes] :
       {std::pair{"weights", m.budget_weights_bytes}, std::pair{"kv_cache", m.budget_kv_bytes},
        std::pair{"scratch", m.budget_scratch_bytes},
        std::pair{"buffers", m.budget_buffers_bytes}}) {
    fmt::format_to(it, "pensieve_memory_budget_bytes{{part=\"{}\"}} {}\n", part, bytes);
  }
  append_header(&out, "pensieve_memory_usable_bytes", "gauge",
                "Memory the machine (or the cgroup) has free: min(MemAvailable, limit - usage).");
  fmt::format_to(it, "pensieve_memory_usable_bytes {}\n", m.usable_bytes);
  append_header(&out, "pensieve_memory_tier", "gauge",
                "Memory tier: 0 safe, 1 caution, 2 warning, 3 critical, 4 emergency.");
  fmt::format_to(it, "pensieve_memory_tier {}\n", m.tier);
  append_header(&out, "pensieve_process_rss_anon_bytes", "gauge",
                "The server's anonymous resident memory (RssAnon).");
  fmt::format_to(it, "pensieve_process_rss_anon_bytes {}\n", m.rss_anon_bytes);
  append_header(&out, "pensieve_process_swap_bytes", "gauge", "The server's swapped-out memory.");
  fmt::format_to(it, "pensieve_process_swap_bytes {}\n", m.swap_bytes);
  append_header(&out, "pensieve_model_loaded", "gauge",
                "1 while the model's weights are in memory, 0 after a keep-alive release.");
  fmt::format_to(it, "pensieve_model_loaded {}\n", m.model_loaded ? 1 : 0);
  append_header(&out, "pensieve_memory_shed_total", "counter",
                "Requests cancelled to free memory in the Emergency tier.");
  fmt::format_to(it, "pensieve_memory_shed_total {}\n", m.shed_total);
  const KvGauges& kv = s.kv;
  append_header(&out, "pensieve_kv_blocks", "gauge",
                "KV cache blocks by state: used by running requests, cached (prefix cache, "
                "evictable), free.");
  for (const auto& [state, n] :
       {std::pair{"used", kv.blocks_used}, std::pair{"cached", kv.blocks_cached},
        std::pair{"free", kv.blocks_free}}) {
    fmt::format_to(it, "pensieve_kv_blocks{{state=\"{}\"}} {}\n", state, n);
  }
  append_header(&out, "pensieve_prefix_cache_bytes", "gauge",
                "Bytes of KV cache held by the prefix cache (inside the KV pool's budget).");
  fmt::format_to(it, "pensieve_prefix_cache_bytes {}\n", kv.blocks_cached * kv.block_bytes);
  append_header(&out, "pensieve_prefix_cache_hit_tokens_total", "counter",
                "Prompt tokens whose KV came from the prefix cache.");
  fmt::format_to(it, "pensieve_prefix_cache_hit_tokens_total {}\n", kv.prefix_hit_tokens);
  append_header(&out, "pensieve_prefix_cache_lookup_tokens_total", "counter",
                "Prompt tokens looked up in the prefix cache.");
  fmt::format_to(it, "pensieve_prefix_cache_lookup_tokens_total {}\n", kv.prefix_lookup_tokens);
  append_header(&out, "pensieve_kv_preemptions_total", "counter",
                "Requests sent back to be recomputed because the KV pool ran out of blocks.");
  fmt::format_to(it, "pensieve_kv_preemptions_total {}\n", kv.preemptions);
  append_header(&out, "pensieve_prefix_cache_trimmed_blocks_total", "counter",
                "Prefix cache blocks dropped because the machine's memory ran low.");
  fmt::format_to(it, "pensieve_prefix_cache_trimmed_blocks_total {}\n", kv.trimmed_blocks);
  return out;
}

}  // namespace pensieve::server
