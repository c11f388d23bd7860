// The sampler's cost a token on a real vocabulary's size (32,000: Llama 2; 152,064: Qwen2) with
// a peaked distribution (probabilities falling as 1 / rank^2, ranks scattered over the ids), for
// the settings clients send: temperature only, top-k 40, top-p 0.9, both with a repeat penalty;
// and top-p 0.9 of a nearly flat one, the worst case of its growing sorted prefix.
#include <cmath>
#include <cstdint>
#include <vector>

#include <benchmark/benchmark.h>

#include "sampling/sampler.h"

namespace pensieve {
namespace {

// Nearly flat: what a random-weight model gives; top-p 0.9 then keeps most of the vocabulary.
std::vector<float> flat_logits(int64_t n) {
  std::vector<float> logits(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    logits[static_cast<size_t>(i)] = 0.5f * std::sin(static_cast<float>(i) * 0.37f);
  }
  return logits;
}

std::vector<float> peaked_logits(int64_t n) {
  std::vector<float> logits(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t rank = (i * 7919) % n;
    logits[static_cast<size_t>(i)] = -2.0f * std::log(1.0f + static_cast<float>(rank));
  }
  return logits;
}

void run(benchmark::State& state, SamplingParams params, bool flat = false) {
  const int64_t n_vocab = state.range(0);
  const std::vector<float> logits = flat ? flat_logits(n_vocab) : peaked_logits(n_vocab);
  const std::vector<int32_t> history(64, 5);
  Sampler sampler(params, n_vocab);
  for (auto _ : state) benchmark::DoNotOptimize(sampler.sample(logits, history));
}

void BM_Temperature(benchmark::State& state) { run(state, {.temperature = 1.0f}); }
void BM_TopK40(benchmark::State& state) { run(state, {.temperature = 1.0f, .top_k = 40}); }
void BM_TopP09(benchmark::State& state) { run(state, {.temperature = 1.0f, .top_p = 0.9f}); }
void BM_TopP09Flat(benchmark::State& state) {
  run(state, {.temperature = 1.0f, .top_p = 0.9f}, true);
}
void BM_TopK40TopP09Penalty(benchmark::State& state) {
  run(state, {.temperature = 0.7f, .top_k = 40, .top_p = 0.9f, .repeat_penalty = 1.1f});
}

BENCHMARK(BM_Temperature)->Arg(32000)->Arg(152064)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_TopK40)->Arg(32000)->Arg(152064)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_TopP09)->Arg(32000)->Arg(152064)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_TopP09Flat)->Arg(32000)->Arg(152064)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_TopK40TopP09Penalty)->Arg(32000)->Arg(152064)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace pensieve

BENCHMARK_MAIN();
