// `pensieve bench`: prompt and generation speed of a model on this machine, with the memory
// bandwidth bound that decode is measured against.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"

namespace pensieve {

struct BenchOptions {
  std::string model_path;
  int n_threads = 0;         // 0: all cores
  int64_t n_prompt = 512;    // prompt tokens per repetition (0: skip)
  int64_t n_generate = 128;  // generated tokens per repetition (0: skip)
  int repetitions = 5;
  std::string kv_type = "F16";  // KV cache: F16, Q8_0 or F32
  bool mmap = false;            // map the file instead of loading the weights resident
  std::string device = "cpu";   // "cpu" or "cuda" (the whole model on GPU 0)
  // Batched decode: for each count, that many sequences generate n_generate tokens each in
  // lockstep, one greedy step (eval_batch_greedy) per step: the continuous-batching engine's
  // decode shape.
  std::vector<int> streams;
  // The batched decode's picks: greedy (0), or drawn at this temperature, from each stream's
  // seeded sampler; on the backend (eval_batch_drawn: on a GPU, on the device), from each step's
  // best tokens with a top-k or a top-p (eval_batch_best: on a GPU, selected on the device, with
  // each row's sum of exponentials for a top-p alone), or with sample_on_host by the sampler from
  // each step's logits (eval_batch).
  float temperature = 0.0f;
  bool sample_on_host = false;
  int32_t top_k = 0;  // with a temperature: the sampler's top-k, top-p and min-p
  float top_p = 1.0f;
  float min_p = 0.0f;
  // With cuda, the batched decode runs the model split: its last gpu_layers layers on the GPU,
  // the ones before on the CPU (as serve --gpu-layers); 0: all on the GPU. The single-sequence
  // figures stay the whole model's on the GPU.
  int64_t gpu_layers = 0;
};

struct Stat {
  double median = 0;
  double min = 0;
  double max = 0;
};

// Aggregate generation speed of n_streams sequences decoding together.
struct StreamsResult {
  int n_streams = 0;
  Stat tokens_per_s;  // all streams' tokens together
};

struct BenchResult {
  std::string model_path;
  std::string device;  // "cpu", or the GPU's name
  int n_threads = 0;
  bool mmap = false;
  Stat prompt_tokens_per_s;
  Stat generate_tokens_per_s;        // after the prompt (positions n_prompt on)
  Stat generate_empty_tokens_per_s;  // from an empty context, as llama-bench's tg runs
  Stat time_to_first_token_ms;       // one-token prompt on an empty context
  uint64_t weight_bytes_per_token = 0;
  std::string kv_type;
  uint64_t kv_cache_bytes = 0;
  double bandwidth_gb_per_s = 0;        // measured streaming read, same threads (GPU: device copy)
  double bandwidth_fraction = 0;        // weight bytes/token * generation tok/s / bandwidth
  double bandwidth_fraction_empty = 0;  // the same from an empty context
  std::vector<StreamsResult> streams;
  std::string streams_split;  // where the batched runs' layers ran, when split; else empty
  uint64_t peak_rss_bytes = 0;
};

// Streaming read of a buffer much larger than the caches, with n_threads; GB/s (1e9 bytes).
double measure_read_bandwidth(int n_threads);

Expected<BenchResult> run_bench(const BenchOptions& options);

Stat summarize(std::vector<double> samples);

}  // namespace pensieve
