// `pensieve run -m MODEL -p "text"`: generate text from a prompt, streamed to stdout.
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include "engine/generate.h"
#include "model/forward_cpu.h"
#include "model/forward_ref.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "tools/commands.h"

namespace pensieve::cli {
namespace {

struct RunOptions {
  std::string model_path;
  std::string prompt;
  int64_t n_ctx = 0;  // 0: the model's trained context, capped
  bool no_bos = false;
  bool reference = false;  // the scalar reference forward pass instead of the SIMD one
  int n_threads = 0;       // 0: all cores
  GenerateOptions generate;
};

int fail(const Error& error) {
  std::fprintf(stderr, "%s\n", error.message.c_str());
  return 1;
}

int run_generate(const RunOptions& o) {
  auto model = Model::load(o.model_path);
  if (!model) return fail(model.error());
  auto tokenizer = Tokenizer::from_gguf((*model)->file());
  if (!tokenizer) return fail(tokenizer.error());
  const Tokenizer& tok = **tokenizer;
  const Hparams& hp = (*model)->hparams();
  const int64_t n_ctx = o.n_ctx > 0 ? o.n_ctx : std::min<int64_t>(hp.n_ctx_train, 4096);
  std::vector<int32_t> prompt =
      tok.encode(o.prompt, EncodeOptions{.add_bos = tok.add_bos_default() && !o.no_bos});
  if (prompt.empty() && tok.bos() >= 0) prompt.push_back(tok.bos());  // "" starts from BOS
  std::unique_ptr<Forward> forward;
  if (o.reference) {
    forward = std::make_unique<ReferenceForward>(hp, (*model)->weights(), n_ctx);
  } else {
    const int n_threads =
        o.n_threads > 0 ? o.n_threads : static_cast<int>(std::thread::hardware_concurrency());
    forward = std::make_unique<CpuForward>(hp, (*model)->weights(), n_ctx, std::max(1, n_threads));
  }
  auto result = generate(*forward, tok, prompt, o.generate, [](std::string_view text) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    return true;
  });
  std::fputc('\n', stdout);
  if (!result) return fail(result.error());
  return 0;
}

}  // namespace

void register_run(CLI::App& app, Handler* run) {
  auto* cmd = app.add_subcommand("run", "Generate text from a prompt, streamed to stdout");
  auto o = std::make_shared<RunOptions>();
  SamplingParams& s = o->generate.sampling;
  cmd->add_option("-m,--model", o->model_path, "GGUF model file")->required();
  cmd->add_option("-p,--prompt", o->prompt, "Prompt text (empty: start from BOS)");
  cmd->add_option("-n,--max-tokens", o->generate.max_tokens, "Tokens to generate")
      ->default_val(128);
  cmd->add_option("-c,--ctx", o->n_ctx, "Context length (default: the model's, up to 4096)");
  cmd->add_option("--temp", s.temperature, "Temperature (0: greedy)")->default_val(0.8);
  cmd->add_option("--seed", s.seed, "Random seed")->default_val(0);
  cmd->add_option("--top-k", s.top_k, "Top-k (0: off)")->default_val(40);
  cmd->add_option("--top-p", s.top_p, "Top-p (1: off)")->default_val(0.95);
  cmd->add_option("--min-p", s.min_p, "Min-p (0: off)")->default_val(0.05);
  cmd->add_option("--repeat-penalty", s.repeat_penalty, "Repetition penalty (1: off)")
      ->default_val(1.0);
  cmd->add_option("--frequency-penalty", s.frequency_penalty, "Frequency penalty");
  cmd->add_option("--presence-penalty", s.presence_penalty, "Presence penalty");
  cmd->add_option("--stop", o->generate.stop_strings, "Stop string (repeatable)");
  cmd->add_flag("--no-bos", o->no_bos, "Do not add the BOS token");
  cmd->add_option("-t,--threads", o->n_threads, "Threads (default: all cores)");
  cmd->add_flag("--reference", o->reference, "Use the scalar reference forward pass (slow)");
  cmd->callback([=] { *run = [=] { return run_generate(*o); }; });
}

}  // namespace pensieve::cli
