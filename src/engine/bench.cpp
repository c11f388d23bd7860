#include "engine/bench.h"

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <optional>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "core/thread_pool.h"
#include "engine/generate.h"
#include "kernels/cpu/stream.h"
#include "model/device_forward.h"
#include "model/forward_cpu.h"
#include "model/forward_split.h"
#include "model/model.h"
#include "sampling/sampler.h"

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

// n_streams sequences decode n_generate tokens each in lockstep, from position 0, one
// eval_batch_greedy() per step (on the GPU the picks are made there), or at a temperature a
// sampler for each stream with eval_batch_drawn() (the temperature alone), eval_batch_best() (a
// top-k, or a top-p with the rows' sums of exponentials; a row the best tokens do not decide is
// read after all) or eval_batch(); aggregate tokens/s per repetition.
Expected<Stat> bench_streams(const Model& model, const BenchOptions& o, int n_threads,
                             GgmlType kv_type, int n_streams) {
  const Hparams& hp = model.hparams();
  constexpr int64_t kBlock = BatchForward::kKvBlockPositions;
  const int64_t n_positions = o.n_generate + 1;
  const int64_t blocks_per_stream = (n_positions + kBlock - 1) / kBlock;
  std::unique_ptr<BatchForward> forward;
  if (o.device == "cuda") {
    DeviceForwardOptions options;
    options.max_batch = n_streams;
    options.kv_blocks = blocks_per_stream * n_streams;
    options.max_segments = n_streams;
    if (o.gpu_layers > 0) options.first_layer = std::max<int64_t>(0, hp.n_layer - o.gpu_layers);
    PV_TRY(CudaBatchForward gpu,
           make_cuda_batch_forward(hp, model.weights(), n_positions, options));
    if (options.first_layer > 0) {
      auto front = std::make_unique<CpuForward>(hp, model.weights(), n_positions, n_threads,
                                                n_streams, kv_type, options.kv_blocks, n_streams, 0,
                                                LayerRange{0, options.first_layer});
      forward = std::make_unique<SplitForward>(std::move(front), std::move(gpu.forward));
    } else {
      forward = std::move(gpu.forward);
    }
  } else {
    forward = std::make_unique<CpuForward>(hp, model.weights(), n_positions, n_threads, n_streams,
                                           kv_type, blocks_per_stream * n_streams, n_streams);
  }
  BatchForward& fwd = *forward;
  std::vector<int32_t> tables(static_cast<size_t>(blocks_per_stream * n_streams));
  for (size_t i = 0; i < tables.size(); ++i) tables[i] = static_cast<int32_t>(i);
  std::vector<int32_t> tokens(static_cast<size_t>(n_streams));
  std::vector<BatchSegment> segments(static_cast<size_t>(n_streams));
  std::vector<TokenDraw> draws(static_cast<size_t>(n_streams));
  std::vector<Sampler> samplers;
  for (int s = 0; s < n_streams; ++s) {
    samplers.emplace_back(SamplingParams{.temperature = o.temperature,
                                         .top_k = o.top_k,
                                         .top_p = o.top_p,
                                         .min_p = o.min_p,
                                         .seed = uint64_t(s)},
                          hp.n_vocab);
  }
  std::vector<double> exp_sums;  // a best-token step's, for a top-p or min-p over the row
  // As the scheduler does, steps after best tokens fell short bring the rows (Generation).
  int rows_before_best = 0;
  // One step's picks into `tokens`.
  auto step = [&]() -> Expected<void> {
    std::span<const int32_t> picks;
    const int64_t n_best = samplers.front().best_needed(BatchForward::kMaxBestTokens);
    if (o.temperature <= 0.0f) {
      PV_TRY(picks, fwd.eval_batch_greedy(segments));
    } else if (!o.sample_on_host && n_best > 0 && rows_before_best == 0) {
      exp_sums.assign(samplers.front().needs_exp_sum() ? tokens.size() : 0, 0.0);
      PV_TRY(std::span<const TokenLogit> best, fwd.eval_batch_best(segments, n_best, exp_sums));
      const auto per_row = static_cast<size_t>(n_best);
      for (size_t s = 0; s < tokens.size(); ++s) {
        if (best[s * per_row].id < 0) {
          return make_error(ErrorCode::kInternal, "bench: the model produced a non-finite logit");
        }
        const std::optional<int32_t> token = samplers[s].sample_best(
            best.subspan(s * per_row, per_row), exp_sums.empty() ? 0.0 : exp_sums[s], {});
        if (token) {
          tokens[s] = *token;
          continue;
        }
        PV_TRY(std::span<const float> row, fwd.best_step_row(static_cast<int64_t>(s)));
        tokens[s] = samplers[s].sample(row, {});
        rows_before_best = Generation::kRowsAfterShortBest;
      }
      return {};
    } else if (o.sample_on_host || !samplers.front().draws_only()) {
      if (rows_before_best > 0) --rows_before_best;
      PV_TRY(std::span<const float> logits, fwd.eval_batch(segments));
      const auto n_vocab = static_cast<size_t>(hp.n_vocab);
      for (size_t s = 0; s < tokens.size(); ++s) {
        tokens[s] = samplers[s].sample(logits.subspan(s * n_vocab, n_vocab), {});
      }
      return {};
    } else {
      for (size_t s = 0; s < draws.size(); ++s) draws[s] = {o.temperature, samplers[s].uniform()};
      PV_TRY(picks, fwd.eval_batch_drawn(segments, draws));
    }
    if (std::find(picks.begin(), picks.end(), -1) != picks.end()) {
      return make_error(ErrorCode::kInternal, "bench: the model produced a non-finite logit");
    }
    std::copy(picks.begin(), picks.end(), tokens.begin());
    return {};
  };
  std::vector<double> rates;
  for (int rep = 0; rep <= o.repetitions; ++rep) {  // repetition 0 warms up
    for (int s = 0; s < n_streams; ++s)
      tokens[s] = static_cast<int32_t>((s * 7919 + 1) % hp.n_vocab);
    const auto start = Clock::now();
    for (int64_t pos = 0; pos < n_positions; ++pos) {
      for (int s = 0; s < n_streams; ++s) {
        segments[s] =
            BatchSegment{std::span<const int32_t>(&tokens[s], 1), pos,
                         std::span<const int32_t>(&tables[s * blocks_per_stream],
                                                  static_cast<size_t>(blocks_per_stream))};
      }
      PV_TRY_VOID(step());
    }
    if (rep > 0)
      rates.push_back(static_cast<double>(n_streams * n_positions) / seconds_since(start));
  }
  return summarize(rates);
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
  constexpr size_t kFloats = size_t{1} << 28;  // 1 GiB, far beyond any cache
  std::vector<float> storage(kFloats + 16);
  float* buffer = storage.data();
  while (reinterpret_cast<uintptr_t>(buffer) % 64 != 0) ++buffer;
  ThreadPool pool(n_threads);
  const size_t per_thread = kFloats / static_cast<size_t>(n_threads) / 64 * 64;
  std::vector<double> rates;
  std::atomic<float> sink{0};
  for (int rep = 0; rep < 5; ++rep) {
    const auto start = Clock::now();
    // Each thread streams its own contiguous part with the widest loads the CPU has.
    pool.run([&](int thread, int) {
      const float* part = buffer + per_thread * static_cast<size_t>(thread);
      sink.store(cpu::stream_sum(part, static_cast<int64_t>(per_thread)),
                 std::memory_order_relaxed);
    });
    const double bytes = static_cast<double>(per_thread * sizeof(float)) * n_threads;
    rates.push_back(bytes / seconds_since(start) / 1e9);
  }
  return summarize(rates).median;
}

Expected<BenchResult> run_bench(const BenchOptions& o) {
  PV_TRY(auto model,
         Model::load(o.model_path, o.mmap ? MmapFile::Mode::kMapped : MmapFile::Mode::kResident));
  const Hparams& hp = model->hparams();
  BenchResult result;
  result.model_path = o.model_path;
  result.mmap = o.mmap;
  result.n_threads = o.n_threads > 0
                         ? o.n_threads
                         : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int64_t n_ctx = std::max<int64_t>(o.n_prompt + o.n_generate + 1, 16);
  const std::optional<GgmlType> kv_type = ggml_type_from_name(o.kv_type);
  if (!kv_type || !cpu::kv_type_supported(*kv_type)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "bench: KV cache type '{}' is not one of F16, Q8_0, F32", o.kv_type);
  }
  const int64_t max_batch = std::max<int64_t>(o.n_prompt, 1);
  std::unique_ptr<Forward> forward;
  result.weight_bytes_per_token = matmul_weight_bytes(model->weights());
  if (o.device == "cuda") {
    PV_TRY(const CudaDeviceInfo device, cuda_device_info());
    PV_TRY(forward,
           make_cuda_forward(hp, model->weights(), n_ctx,
                             DeviceForwardOptions{0, std::min<int64_t>(max_batch, 512), 0}));
    result.device = device.name;
    result.bandwidth_gb_per_s = device.bandwidth_gb_per_s;
    result.kv_type = "F16";
    result.kv_cache_bytes = static_cast<uint64_t>(2 * hp.n_layer * n_ctx * hp.n_embd_kv() * 2);
  } else if (o.device == "cpu") {
    auto cpu = std::make_unique<CpuForward>(hp, model->weights(), n_ctx, result.n_threads,
                                            max_batch, *kv_type);
    result.device = "cpu";
    result.kv_type = std::string(ggml_type_name(cpu->kv_type()));
    result.kv_cache_bytes = cpu->kv_cache_bytes();
    forward = std::move(cpu);
  } else {
    return make_error(ErrorCode::kInvalidArgument, "bench: --device '{}' is not cpu or cuda",
                      o.device);
  }
  Forward& fwd = *forward;
  // Token ids spread over the vocabulary; the content does not change the work.
  std::vector<int32_t> prompt(static_cast<size_t>(std::max<int64_t>(o.n_prompt, 1)));
  for (size_t i = 0; i < prompt.size(); ++i)
    prompt[i] = static_cast<int32_t>((i * 7919 + 1) % hp.n_vocab);
  std::vector<double> pp, tg, tg_empty, ttft;
  // n_generate greedy steps from `token` on the current context, seconds.
  auto generate = [&](int32_t token) -> Expected<double> {
    const auto start = Clock::now();
    for (int64_t i = 0; i < o.n_generate; ++i) {
      PV_TRY(std::span<const float> logits, fwd.eval(std::span<const int32_t>(&token, 1)));
      token = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    }
    return seconds_since(start);
  };
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
    PV_TRY(const double gen_s, generate(prompt.back()));
    fwd.reset();
    PV_TRY(const double gen_empty_s, generate(prompt.front()));
    if (rep == 0) continue;
    ttft.push_back(first * 1e3);
    if (o.n_prompt > 0) pp.push_back(static_cast<double>(o.n_prompt) / prompt_s);
    if (o.n_generate > 0) {
      tg.push_back(static_cast<double>(o.n_generate) / gen_s);
      tg_empty.push_back(static_cast<double>(o.n_generate) / gen_empty_s);
    }
  }
  forward.reset();  // its device memory, before the batched runs take theirs
  if (o.device == "cuda" && o.gpu_layers > 0 && o.gpu_layers < hp.n_layer && !o.streams.empty()) {
    const int64_t first = hp.n_layer - o.gpu_layers;
    result.streams_split =
        fmt::format("layers [0, {}) on the CPU ({} threads), [{}, {}) on the GPU", first,
                    result.n_threads, first, hp.n_layer);
  }
  for (const int n_streams : o.streams) {
    if (n_streams < 1 || n_streams > 256) {
      return make_error(ErrorCode::kInvalidArgument, "bench: --streams {} is not in 1..256",
                        n_streams);
    }
    PV_TRY(Stat rate, bench_streams(*model, o, result.n_threads, *kv_type, n_streams));
    result.streams.push_back(StreamsResult{n_streams, rate});
  }
  result.prompt_tokens_per_s = summarize(pp);
  result.generate_tokens_per_s = summarize(tg);
  result.generate_empty_tokens_per_s = summarize(tg_empty);
  result.time_to_first_token_ms = summarize(ttft);
  result.peak_rss_bytes = peak_rss_bytes();
  if (o.device == "cpu") result.bandwidth_gb_per_s = measure_read_bandwidth(result.n_threads);
  const double bytes_per_s = static_cast<double>(result.weight_bytes_per_token) / 1e9;
  result.bandwidth_fraction =
      bytes_per_s * result.generate_tokens_per_s.median / result.bandwidth_gb_per_s;
  result.bandwidth_fraction_empty =
      bytes_per_s * result.generate_empty_tokens_per_s.median / result.bandwidth_gb_per_s;
  return result;
}

}  // namespace pensieve
