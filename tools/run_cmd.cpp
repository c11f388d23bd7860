// `pensieve run -m MODEL -p "text"`: generate text from a prompt, streamed to stdout.
// `pensieve run -m MODEL --chat`: a conversation in the terminal, one user turn per stdin line.
#include <unistd.h>

#include <charconv>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "core/log.h"
#include "engine/chat_session.h"
#include "engine/generate.h"
#include "model/device_forward.h"
#include "model/forward_cpu.h"
#include "model/forward_ref.h"
#include "model/model.h"
#include "server/config.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "tools/commands.h"

namespace pensieve::cli {
namespace {

struct RunOptions {
  std::string model_path;
  std::string prompt;
  int64_t n_ctx = 0;                      // 0: the model's trained context, capped
  std::string attention_window = "auto";  // a number of tokens, 0 (all) or auto
  bool no_bos = false;
  bool reference = false;      // the scalar reference forward pass instead of the SIMD one
  std::string device = "cpu";  // or "cuda": the whole model on GPU 0
  int n_threads = 0;           // 0: all cores
  std::string kv_type = "F16";
  bool mmap = false;  // map the file instead of loading the weights resident
  GenerateOptions generate;
  bool chat = false;
  std::string system_prompt;
  std::string chat_template;  // a built-in name; empty: from the GGUF
};

int fail(const Error& error) {
  std::fprintf(stderr, "%s\n", error.message.c_str());
  return 1;
}

bool print_text(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
  return true;
}

struct Loaded {
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<Forward> forward;
};

Expected<Loaded> load(const RunOptions& o) {
  Loaded l;
  const std::optional<GgmlType> kv_type = ggml_type_from_name(o.kv_type);
  if (!kv_type || !cpu::kv_type_supported(*kv_type)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "run: KV cache type '{}' is not one of F16, Q8_0, F32", o.kv_type);
  }
  int64_t setting = -1;  // auto
  if (o.attention_window != "auto") {
    const std::string& text = o.attention_window;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), setting);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty() || setting < 0) {
      return make_error(ErrorCode::kInvalidArgument,
                        "run: --attention-window '{}' is not auto or a number of tokens", text);
    }
  }
  PV_TRY(l.model,
         Model::load(o.model_path, o.mmap ? MmapFile::Mode::kMapped : MmapFile::Mode::kResident));
  PV_TRY(l.tokenizer, Tokenizer::from_gguf(l.model->file()));
  const Hparams& hp = l.model->hparams();
  const int64_t n_ctx = o.n_ctx > 0 ? o.n_ctx : std::min<int64_t>(hp.n_ctx_train, 4096);
  const int64_t window = server::resolve_attention_window(setting, n_ctx, hp.n_ctx_train);
  if (setting < 0 && window > 0) {
    std::fprintf(stderr,
                 "run: --ctx %lld is beyond the model's trained context (%lld): attention is "
                 "limited to a sliding window of the last %lld tokens (--attention-window 0 turns "
                 "this off)\n",
                 static_cast<long long>(n_ctx), static_cast<long long>(hp.n_ctx_train),
                 static_cast<long long>(window));
  }
  if (o.device != "cpu" && o.device != "cuda") {
    return make_error(ErrorCode::kInvalidArgument, "run: --device '{}' is not cpu or cuda",
                      o.device);
  }
  if (o.reference) {
    l.forward = std::make_unique<ReferenceForward>(hp, l.model->weights(), n_ctx, window);
  } else if (o.device == "cuda") {
    PV_TRY(l.forward,
           make_cuda_forward(hp, l.model->weights(), n_ctx, DeviceForwardOptions{0, 256, window}));
  } else {
    const int n_threads =
        o.n_threads > 0 ? o.n_threads : static_cast<int>(std::thread::hardware_concurrency());
    l.forward = std::make_unique<CpuForward>(hp, l.model->weights(), n_ctx, std::max(1, n_threads),
                                             256, *kv_type, 0, 1, window);
  }
  return l;
}

int run_generate(const RunOptions& o) {
  auto loaded = load(o);
  if (!loaded) return fail(loaded.error());
  const Tokenizer& tok = *loaded->tokenizer;
  std::vector<int32_t> prompt =
      tok.encode(o.prompt, EncodeOptions{.add_bos = tok.add_bos_default() && !o.no_bos});
  if (prompt.empty() && tok.bos() >= 0) prompt.push_back(tok.bos());  // "" starts from BOS
  auto result = generate(*loaded->forward, tok, prompt, o.generate, print_text);
  std::fputc('\n', stdout);
  if (!result) return fail(result.error());
  return 0;
}

// Ctrl-C during a reply stops that reply; elsewhere it keeps its default (quit).
volatile std::sig_atomic_t g_interrupted = 0;

void on_interrupt(int) { g_interrupted = 1; }

// Sends one message with Ctrl-C caught, streaming the reply to stdout.
Expected<ChatTurnResult> send_interruptible(ChatSession& chat, const std::string& line,
                                            const GenerateOptions& options) {
  struct sigaction action = {}, previous = {};
  action.sa_handler = on_interrupt;
  sigemptyset(&action.sa_mask);
  g_interrupted = 0;
  sigaction(SIGINT, &action, &previous);
  auto result = chat.send(line, options, [](std::string_view text) {
    print_text(text);
    return g_interrupted == 0;
  });
  sigaction(SIGINT, &previous, nullptr);
  return result;
}

Expected<std::unique_ptr<ChatTemplate>> choose_template(const RunOptions& o, const GgufFile& file) {
  const std::string_view text = file.get_string_or("tokenizer.chat_template", "");
  PV_TRY(auto chosen, make_chat_template(text, o.chat_template));
  if (chosen->source() == ChatTemplateSource::kNoTemplate) {
    return make_error(ErrorCode::kInvalidArgument,
                      "run: {} has no chat template (tokenizer.chat_template); choose one with "
                      "--chat-template NAME (chatml, llama3, phi3, mistral, gemma), or "
                      "--chat-template plain for the messages as plain text",
                      o.model_path);
  }
  if (chosen->source() == ChatTemplateSource::kUnrecognized) {
    std::fprintf(stderr,
                 "run: the model's chat template is not one pensieve recognizes; using chatml "
                 "(choose another with --chat-template NAME)\n");
  }
  return chosen;
}

// Whether the template leaves system messages out, as Phi-3's does.
bool drops_system(const ChatTemplate& chat_template) {
  ChatRequest with, without;
  with.messages = {{ChatRole::kSystem, "s", {}, {}, false}, {ChatRole::kUser, "u", {}, {}, false}};
  without.messages = {with.messages[1]};
  auto a = chat_template.render(with);
  auto b = chat_template.render(without);
  return a && b && *a == *b;
}

void report_turn(const ChatTurnResult& turn, int64_t n_ctx) {
  const GenerateResult& g = turn.generation;
  if (turn.restarted) {
    std::fprintf(stderr,
                 "chat: the conversation (%lld tokens) no longer fit the context (%lld tokens); "
                 "it was cleared and this message started a new one\n",
                 static_cast<long long>(turn.n_dropped_tokens), static_cast<long long>(n_ctx));
  }
  if (turn.context_full) {
    std::fprintf(stderr,
                 "chat: the reply filled the context (%lld tokens) and was cut off; the "
                 "conversation was cleared\n",
                 static_cast<long long>(n_ctx));
  }
  log::info(
      "chat: {} prompt tokens ({} reused from earlier turns), {} generated, stop: {}, "
      "prefill {:.0f} ms, decode {:.0f} ms",
      turn.n_prompt_tokens, turn.n_reused_tokens, g.tokens.size(), stop_reason_name(g.reason),
      g.prefill_ms, g.decode_ms);
}

int run_chat(const RunOptions& o) {
  auto loaded = load(o);
  if (!loaded) return fail(loaded.error());
  auto chat_template = choose_template(o, loaded->model->file());
  if (!chat_template) return fail(chat_template.error());
  const ChatTemplate& tmpl = **chat_template;
  if (!o.system_prompt.empty() && drops_system(tmpl)) {
    std::fprintf(stderr,
                 "run: the %s chat template leaves system messages out; --system is ignored\n",
                 std::string(tmpl.name()).c_str());
  }
  ChatSession chat(*loaded->forward, *loaded->tokenizer, tmpl, o.system_prompt);
  const bool interactive = ::isatty(STDIN_FILENO) != 0;
  if (interactive) {
    std::fprintf(stderr,
                 "chat: template %s, context %lld tokens. /reset starts over, /exit or Ctrl-D "
                 "quits, Ctrl-C stops a reply.\n",
                 std::string(tmpl.name()).c_str(), static_cast<long long>(chat.n_ctx()));
  }
  std::string line;
  while (true) {
    if (interactive) std::fputs("> ", stderr);
    if (!std::getline(std::cin, line)) break;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    if (line == "/exit") break;
    if (line == "/reset") {
      chat.reset();
      if (interactive) std::fputs("chat: the conversation was cleared\n", stderr);
      continue;
    }
    if (line.starts_with('/')) {
      std::fprintf(stderr, "chat: unknown command '%s' (/reset, /exit)\n", line.c_str());
      continue;
    }
    auto turn = send_interruptible(chat, line, o.generate);
    if (!turn) {
      std::fprintf(stderr, "%s\n", turn.error().message.c_str());
      if (turn.error().code == ErrorCode::kOutOfRange) continue;  // it cleared the conversation
      return 1;
    }
    std::fputc('\n', stdout);
    std::fflush(stdout);
    report_turn(*turn, chat.n_ctx());
  }
  if (interactive) std::fputc('\n', stderr);
  return 0;
}

}  // namespace

void register_run(CLI::App& app, Handler* run) {
  auto* cmd = app.add_subcommand(
      "run", "Generate text from a prompt, or chat (--chat), streamed to stdout");
  auto o = std::make_shared<RunOptions>();
  SamplingParams& s = o->generate.sampling;
  cmd->add_option("-m,--model", o->model_path, "GGUF model file")->required();
  auto* prompt = cmd->add_option("-p,--prompt", o->prompt, "Prompt text (empty: start from BOS)");
  cmd->add_option("-n,--max-tokens", o->generate.max_tokens, "Tokens to generate (per reply)")
      ->default_val(128);
  cmd->add_option("-c,--ctx", o->n_ctx, "Context length (default: the model's, up to 4096)");
  cmd->add_option("--attention-window", o->attention_window,
                  "Tokens each token attends, a sliding window (0: all; auto: the model's "
                  "trained context when --ctx is longer)")
      ->default_val("auto");
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
  auto* no_bos = cmd->add_flag("--no-bos", o->no_bos, "Do not add the BOS token");
  cmd->add_option("-t,--threads", o->n_threads, "Threads (default: all cores)");
  cmd->add_option("--kv-type", o->kv_type, "KV cache type: F16, Q8_0 or F32")->default_val("F16");
  cmd->add_flag("--mmap", o->mmap, "Map the model file instead of loading it resident");
  cmd->add_flag("--reference", o->reference, "Use the scalar reference forward pass (slow)");
  cmd->add_option("--device", o->device, "cpu, or cuda: the whole model on GPU 0")
      ->default_val("cpu");
  auto* chat = cmd->add_flag("--chat", o->chat,
                             "Chat: one user message per stdin line, replies on stdout, with the "
                             "model's chat template; /reset starts over, /exit or EOF quits");
  chat->excludes(prompt)->excludes(no_bos);
  cmd->add_option("--system", o->system_prompt, "System prompt for --chat")->needs(chat);
  cmd->add_option("--chat-template", o->chat_template,
                  "Chat template for --chat instead of the model's: chatml, llama3, phi3, "
                  "mistral, gemma or plain")
      ->needs(chat);
  cmd->callback([=] { *run = [=] { return o->chat ? run_chat(*o) : run_generate(*o); }; });
}

}  // namespace pensieve::cli
