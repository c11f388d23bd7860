#include "engine/bench.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <numeric>
#include <thread>

#include "core/thread_pool.h"
#include "model/forward_cpu.h"
#include "model/model.h"

namespace pensieve {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

uint64_t peak_rss_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<uint64_t>(usage.ru_maxrss) * 1024;
}

}  // namespace

Stat summarize(std::vector<double> samples) {
  if (samples.empty()) return {};
  std::sort(samples.begin(), samples.end());
  const size_t n = samples.size();
  const double median = n % 2 ? samples[n / 2] : (samples[n / 2 - 1] + samples[n / 2]) / 2;
  return Stat{median, samples.front(), samples.back()};
}

double measure_read_bandwidth(int n_threads) {
  const size_t n = size_t{1} << 27;  // 128 Mi floats = 512 MiB, far beyond any cache
  std::vector<float> buffer(n, 1.0f);
  ThreadPool pool(n_threads);
  std::vector<double> sums(static_cast<size_t>(n_threads));
  std::vector<double> rates;
  for (int rep = 0; rep < 5; ++rep) {
    const auto start = Clock::now();
    pool.parallel_for(static_cast<int64_t>(n), [&](int64_t begin, int64_t end) {
      float acc[16] = {};  // independent lanes so the loop vectorizes
      for (int64_t i = begin; i + 16 <= end; i += 16) {
        for (int j = 0; j < 16; ++j) acc[j] += buffer[static_cast<size_t>(i + j)];
      }
      const double s = std::accumulate(acc, acc + 16, 0.0);
      sums[static_cast<size_t>(begin * n_threads / static_cast<int64_t>(n))] = s;
    });
    rates.push_back(static_cast<double>(n * sizeof(float)) / seconds_since(start) / 1e9);
  }
  return summarize(rates).median;
}

Expected<BenchResult> run_bench(const BenchOptions& o) {
  PV_TRY(auto model, Model::load(o.model_path));
  const Hparams& hp = model->hparams();
  BenchResult result;
  result.model_path = o.model_path;
  result.n_threads = o.n_threads > 0
                         ? o.n_threads
                         : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int64_t n_ctx = std::max<int64_t>(o.n_prompt + o.n_generate + 1, 16);
  CpuForward fwd(hp, model->weights(), n_ctx, result.n_threads, std::max<int64_t>(o.n_prompt, 1));
  result.weight_bytes_per_token = fwd.weight_bytes_per_token();
  // Token ids spread over the vocabulary; the content does not change the work.
  std::vector<int32_t> prompt(static_cast<size_t>(std::max<int64_t>(o.n_prompt, 1)));
  for (size_t i = 0; i < prompt.size(); ++i)
    prompt[i] = static_cast<int32_t>((i * 7919 + 1) % hp.n_vocab);
  std::vector<double> pp, tg, ttft;
  for (int rep = 0; rep <= o.repetitions; ++rep) {  // repetition 0 warms up
    fwd.reset();
    auto start = Clock::now();
    PV_TRY_VOID(fwd.eval(std::span<const int32_t>(prompt.data(), 1)));
    const double first = seconds_since(start);
    fwd.reset();
    double prompt_s = 0;
    if (o.n_prompt > 0) {
      start = Clock::now();
      PV_TRY_VOID(fwd.eval(prompt));
      prompt_s = seconds_since(start);
    }
    int32_t token = prompt.back();
    start = Clock::now();
    for (int64_t i = 0; i < o.n_generate; ++i) {
      PV_TRY(std::span<const float> logits, fwd.eval(std::span<const int32_t>(&token, 1)));
      token = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    }
    const double gen_s = seconds_since(start);
    if (rep == 0) continue;
    ttft.push_back(first * 1e3);
    if (o.n_prompt > 0) pp.push_back(static_cast<double>(o.n_prompt) / prompt_s);
    if (o.n_generate > 0) tg.push_back(static_cast<double>(o.n_generate) / gen_s);
  }
  result.prompt_tokens_per_s = summarize(pp);
  result.generate_tokens_per_s = summarize(tg);
  result.time_to_first_token_ms = summarize(ttft);
  result.peak_rss_bytes = peak_rss_bytes();
  result.bandwidth_gb_per_s = measure_read_bandwidth(result.n_threads);
  result.bandwidth_fraction = static_cast<double>(result.weight_bytes_per_token) *
                              result.generate_tokens_per_s.median / 1e9 / result.bandwidth_gb_per_s;
  return result;
}

}  // namespace pensieve
