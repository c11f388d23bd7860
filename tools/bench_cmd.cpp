// `pensieve bench -m MODEL`: prompt and generation tokens/s (generation after the prompt, and from
// an empty context as llama-bench's tg runs), time to first token, peak RSS and the fraction of
// the memory-bandwidth bound that generation reaches.
#include <cstdio>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "engine/bench.h"
#include "tools/commands.h"

namespace pensieve::cli {
namespace {

void print_text(const BenchResult& r, int repetitions) {
  fmt::print("model            {}\n", r.model_path);
  if (r.device == "cpu") {
    fmt::print("threads          {}   repetitions {}   weights {}\n", r.n_threads, repetitions,
               r.mmap ? "mapped" : "resident");
  } else {
    fmt::print("device           {}   repetitions {}\n", r.device, repetitions);
  }
  auto line = [](const char* name, const Stat& s, const char* unit) {
    fmt::print("{:<17}{:.2f} {} (median; min {:.2f}, max {:.2f})\n", name, s.median, unit, s.min,
               s.max);
  };
  line("prompt", r.prompt_tokens_per_s, "tokens/s");
  line("generation", r.generate_tokens_per_s, "tokens/s");
  line("gen. from empty", r.generate_empty_tokens_per_s, "tokens/s");
  line("first token", r.time_to_first_token_ms, "ms");
  if (!r.streams_split.empty()) fmt::print("streams split    {}\n", r.streams_split);
  for (const StreamsResult& s : r.streams) {
    const StreamsResult& first = r.streams.front();
    fmt::print("{:<17}{:.2f} tokens/s (median; min {:.2f}, max {:.2f}); {:.2f}x {} stream{}\n",
               fmt::format("{} streams", s.n_streams), s.tokens_per_s.median, s.tokens_per_s.min,
               s.tokens_per_s.max, s.tokens_per_s.median / first.tokens_per_s.median,
               first.n_streams, first.n_streams == 1 ? "" : "s");
  }
  fmt::print("weights/token    {:.1f} MiB\n", r.weight_bytes_per_token / 1048576.0);
  fmt::print("KV cache         {} {:.1f} MiB\n", r.kv_type, r.kv_cache_bytes / 1048576.0);
  if (r.device == "cpu") {
    fmt::print("read bandwidth   {:.1f} GB/s (measured, {} threads)\n", r.bandwidth_gb_per_s,
               r.n_threads);
  } else {
    fmt::print("memory bandwidth {:.1f} GB/s (device-to-device copy, read + written)\n",
               r.bandwidth_gb_per_s);
  }
  fmt::print("bandwidth bound  {:.0f}% reached by generation ({:.0f}% from an empty context)\n",
             100 * r.bandwidth_fraction, 100 * r.bandwidth_fraction_empty);
  fmt::print("peak RSS         {:.1f} MiB\n", r.peak_rss_bytes / 1048576.0);
}

void print_json(const BenchResult& r) {
  auto stat = [](const Stat& s) {
    return fmt::format("{{\"median\": {:.4f}, \"min\": {:.4f}, \"max\": {:.4f}}}", s.median, s.min,
                       s.max);
  };
  std::string streams;
  for (const StreamsResult& s : r.streams) {
    if (!streams.empty()) streams += ", ";
    streams +=
        fmt::format("{{\"n\": {}, \"tokens_per_s\": {}}}", s.n_streams, stat(s.tokens_per_s));
  }
  fmt::print(
      "{{\"model\": \"{}\", \"device\": \"{}\", \"threads\": {}, \"prompt_tokens_per_s\": {}, "
      "\"generate_tokens_per_s\": {}, \"generate_empty_tokens_per_s\": {}, "
      "\"time_to_first_token_ms\": {}, "
      "\"weight_bytes_per_token\": {}, \"kv_type\": \"{}\", \"kv_cache_bytes\": {}, "
      "\"bandwidth_gb_per_s\": {:.3f}, \"bandwidth_fraction\": {:.4f}, \"streams\": [{}], "
      "\"peak_rss_bytes\": {}}}\n",
      r.model_path, r.device, r.n_threads, stat(r.prompt_tokens_per_s),
      stat(r.generate_tokens_per_s), stat(r.generate_empty_tokens_per_s),
      stat(r.time_to_first_token_ms), r.weight_bytes_per_token, r.kv_type, r.kv_cache_bytes,
      r.bandwidth_gb_per_s, r.bandwidth_fraction, streams, r.peak_rss_bytes);
}

}  // namespace

void register_bench(CLI::App& app, Handler* run) {
  auto* cmd = app.add_subcommand("bench", "Measure prompt and generation speed of a model");
  auto o = std::make_shared<BenchOptions>();
  auto json = std::make_shared<bool>(false);
  cmd->add_option("-m,--model", o->model_path, "GGUF model file")->required();
  cmd->add_option("-t,--threads", o->n_threads, "Threads (default: all cores)");
  cmd->add_option("-p,--prompt-tokens", o->n_prompt, "Prompt tokens")->default_val(512);
  cmd->add_option("-n,--generate-tokens", o->n_generate, "Generated tokens")->default_val(128);
  cmd->add_option("-r,--repetitions", o->repetitions, "Repetitions")->default_val(5);
  cmd->add_option("--kv-type", o->kv_type, "KV cache type: F16, Q8_0 or F32")->default_val("F16");
  cmd->add_option("--streams", o->streams,
                  "Also measure batched generation: N sequences decoding together, for each N "
                  "(e.g. 1,4,16); ratios are to the first")
      ->delimiter(',');
  cmd->add_option("--temperature", o->temperature,
                  "Batched generation draws its tokens at this temperature (default 0: greedy)")
      ->check(CLI::Range(0.0f, 100.0f));
  cmd->add_option("--top-k", o->top_k,
                  "With --temperature: keep the k most likely tokens (up to 256: only those "
                  "come back from the backend)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--top-p", o->top_p,
                  "With --temperature: keep the most likely tokens up to this mass (without "
                  "--top-k: from the 256 best and the row's sum of exponentials, or the whole "
                  "row when those fall short)")
      ->check(CLI::Range(0.0f, 1.0f));
  cmd->add_option("--min-p", o->min_p,
                  "With --temperature: keep the tokens at least this fraction as likely as the "
                  "most likely")
      ->check(CLI::Range(0.0f, 1.0f));
  cmd->add_flag("--sample-on-host", o->sample_on_host,
                "Batched generation at a temperature samples on the host from each step's "
                "logits, instead of drawing where the logits are (on the GPU: on the device)");
  cmd->add_option("--gpu-layers", o->gpu_layers,
                  "With --device cuda: batched generation runs the last N layers on the GPU and "
                  "the ones before on the CPU (default: all on the GPU)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--mmap", o->mmap, "Map the model file instead of loading it resident");
  cmd->add_option("--device", o->device, "cpu, or cuda: the whole model on GPU 0")
      ->default_val("cpu");
  cmd->add_flag("--json", *json, "Print one JSON object");
  cmd->callback([=] {
    *run = [=] {
      auto result = run_bench(*o);
      if (!result) {
        std::fprintf(stderr, "%s\n", result.error().message.c_str());
        return 1;
      }
      if (*json) {
        print_json(*result);
      } else {
        print_text(*result, o->repetitions);
      }
      return 0;
    };
  });
}

}  // namespace pensieve::cli
