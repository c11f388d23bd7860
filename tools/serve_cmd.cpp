// `pensieve serve -m MODEL`: the Anthropic Messages API (and OpenAI chat completions) over HTTP.
// Settings come from flags, then PENSIEVE_* environment variables, then --config FILE (TOML).
#include <signal.h>
#include <sys/stat.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <thread>

#include "core/duration.h"
#include "core/log.h"
#include "engine/prompt.h"
#include "engine/scheduler.h"
#include "engine/weight_residency.h"
#include "memory/budget.h"
#include "memory/device_budget.h"
#include "memory/governor.h"
#include "memory/registry.h"
#include "memory/system_memory.h"
#include "model/device_forward.h"
#include "model/forward_cpu.h"
#include "model/model.h"
#include "server/config.h"
#include "server/http.h"
#include "server/metrics.h"
#include "server/routes.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "tools/commands.h"
#include "tools/serve_gpu.h"

namespace pensieve::cli {
namespace {

constexpr int64_t kDefaultMaxCtx = 32768;
constexpr int64_t kMaxBatch = 256;  // prompt tokens per forward step

struct ServeFlags {
  std::map<std::string, std::string, std::less<>> values;
  std::map<std::string, CLI::Option*, std::less<>> options;
  std::string config_path;
};

int fail(const std::string& message) {
  std::fprintf(stderr, "%s\n", message.c_str());
  return 1;
}

server::ServedModel served_model(const server::ServerConfig& config) {
  server::ServedModel m;
  m.id = config.model_name;
  if (m.id.empty()) {
    m.id = std::filesystem::path(config.model_path).filename().string();
    if (m.id.ends_with(".gguf")) m.id.resize(m.id.size() - 5);
  }
  struct stat st {};
  m.created_unix = ::stat(config.model_path.c_str(), &st) == 0 ? st.st_mtime : std::time(nullptr);
  m.created_at = format_rfc3339_utc(static_cast<std::time_t>(m.created_unix));
  return m;
}

Expected<std::unique_ptr<ChatTemplate>> choose_template(const server::ServerConfig& config,
                                                        const GgufFile& file) {
  const std::string_view text = file.get_string_or("tokenizer.chat_template", "");
  PV_TRY(auto chosen, make_chat_template(text, config.chat_template));
  if (chosen->source() == ChatTemplateSource::kNoTemplate) {
    log::warn(
        "serve: the model has no chat template; messages are sent as plain text (choose "
        "one with --chat-template)");
  } else if (chosen->source() == ChatTemplateSource::kUnrecognized) {
    log::warn(
        "serve: the model's chat template is not one pensieve recognizes; using chatml "
        "(choose another with --chat-template)");
  }
  return chosen;
}

// SIGINT and SIGTERM are taken with sigwait on the main thread, so no handler runs inside the
// HTTP library or the engine.
sigset_t shutdown_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

// Worker threads of the HTTP server (see server/http.cpp): each may hold one request body.
int64_t http_buffers_bytes(const server::ServerConfig& config) {
  return static_cast<int64_t>(server::HttpServer::n_workers(config)) * config.max_body_bytes;
}

// The startup budget: the model's weights, its KV cache and scratch at the chosen context, and
// the HTTP buffers, against what this machine (or cgroup) can give less the reserve and what
// other pensieve servers may still grow into.
Expected<memory::Budget> plan_memory(const server::ServerConfig& config, const GgufFile& header,
                                     const Hparams& hp, const CpuForward::MemoryPlan& plan,
                                     const memory::MemorySnapshot& machine,
                                     int64_t others_outstanding) {
  memory::BudgetInputs inputs;
  inputs.weights_bytes = static_cast<int64_t>(header.size_bytes());
  inputs.kv_bytes_per_position = plan.kv_bytes_per_position;
  inputs.scratch_bytes = plan.scratch_bytes;
  inputs.buffers_bytes = http_buffers_bytes(config);
  inputs.n_ctx_train = hp.n_ctx_train;
  memory::BudgetRequest request;
  if (config.ctx > 0) request.n_ctx = config.ctx;
  request.n_parallel = config.parallel;
  request.max_auto_ctx = kDefaultMaxCtx;
  if (config.memory_budget > 0) request.cap_bytes = config.memory_budget;
  memory::MachineRoom room;
  room.usable_bytes = machine.usable_bytes();
  room.reserve_bytes = config.memory_reserve >= 0
                           ? config.memory_reserve
                           : config.tiers.warning.resolve(machine.effective_total_bytes());
  // Other servers eat system memory, not this process's cgroup: what they may still grow into
  // lowers MemAvailable's side of the room only. room = min(avail - others, cgroup headroom).
  const int64_t usable = machine.usable_bytes();
  const int64_t with_others =
      std::min(machine.available_bytes - others_outstanding,
               machine.cgroup_limit_bytes
                   ? *machine.cgroup_limit_bytes - machine.cgroup_usage_bytes.value_or(0)
                   : machine.available_bytes);
  room.others_outstanding_bytes = std::max<int64_t>(0, usable - std::max<int64_t>(0, with_others));
  room.cgroup_limit_bytes = machine.cgroup_limit_bytes;
  room.available_bytes = machine.available_bytes;
  return memory::plan_budget(inputs, request, room);
}

// After the first signal: no new connections; in-flight requests get `drain_timeout` to finish,
// then the rest are ended with an error. A second signal exits at once.
[[noreturn]] void drain_and_exit(const server::ServerConfig& config, server::HttpServer& http,
                                 server::Router& router, Scheduler& scheduler,
                                 memory::InstanceRegistry& registry, const sigset_t& signals) {
  http.stop();
  const auto deadline = Clock::now() + config.drain_timeout;
  bool cut = false;
  const timespec tick{0, 50 * 1000 * 1000};
  while (router.n_in_flight() > 0) {
    if (sigtimedwait(&signals, nullptr, &tick) > 0) {
      log::warn("serve: second signal: exiting now with {} request(s) unfinished",
                router.n_in_flight());
      registry.unregister();
      std::fflush(stderr);
      std::_Exit(1);
    }
    if (!cut && Clock::now() >= deadline) {
      cut = true;
      const int n = scheduler.shed_newest(std::numeric_limits<int>::max(),
                                          "server: shutting down; the drain time ran out",
                                          ErrorCode::kUnavailable);
      log::warn("serve: drain timeout ({}) reached: ended {} request(s)",
                format_duration(config.drain_timeout), n);
    }
    if (cut && Clock::now() >= deadline + std::chrono::seconds(5)) break;  // a stuck writer
  }
  registry.unregister();
  log::info("serve: stopped");
  std::fflush(stderr);
  // The HTTP library would hold the process until idle keep-alive connections time out; with
  // every request answered there is nothing left to wait for.
  std::_Exit(0);
}

int serve(const server::ServerConfig& config) {
  if (config.model_path.empty()) {
    return fail(
        "serve: no model given. Pass -m FILE.gguf (or set PENSIEVE_MODEL, or model = \"...\" in "
        "--config FILE). pensieve reads GGUF files: download one (for example a Q4_K_M GGUF of "
        "Qwen2.5, Llama 3.2 or Phi-3 from the Hugging Face hub), or make a random-weight test "
        "model with `pensieve synth tinyllama-1.1b -o tinyllama.gguf`.");
  }
  log::Level level;
  if (log::parse_level(config.log_level, &level)) log::set_level(level);
  // Block the shutdown signals before any thread starts (the forward pass's pool included), so
  // every thread inherits the mask and only the signal thread receives them.
  const sigset_t signals = shutdown_signals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  const std::optional<GgmlType> kv_type = ggml_type_from_name(config.kv_type);
  if (!kv_type || !cpu::kv_type_supported(*kv_type)) {
    return fail("serve: KV cache type '" + config.kv_type + "' is not one of F16, Q8_0, F32");
  }
  const bool on_gpu = config.device == "cuda";
  if (on_gpu && !cuda_built()) {
    return fail(
        "serve: --device cuda: this pensieve was built without CUDA (configure with "
        "-DPENSIEVE_CUDA=ON, see README)");
  }
  if (!on_gpu && config.gpu_layers > 0) {
    log::warn(
        "serve: --gpu-layers {} is ignored: the model runs on the CPU (--device cuda puts "
        "layers on the GPU)",
        config.gpu_layers);
  }
  const int n_threads = config.threads > 0
                            ? config.threads
                            : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));

  // Memory first: what the machine can give, before the model takes any of it.
  memory::LinuxMemorySource memory_source;
  auto machine = memory_source.read();
  if (!machine) return fail("serve: " + machine.error().message);
  if (auto ok = memory::validate(config.tiers, machine->effective_total_bytes()); !ok) {
    return fail("serve: " + ok.error().message);
  }
  memory::InstanceRegistry registry(config.runtime_dir.empty() ? memory::default_runtime_dir()
                                                               : config.runtime_dir);
  std::vector<memory::InstanceEntry> others = registry.list();
  std::erase_if(others, [](const memory::InstanceEntry& e) { return e.pid == ::getpid(); });
  const int64_t others_outstanding = memory::outstanding_bytes(others);

  memory::Budget budget;
  CpuForward::MemoryPlan plan;
  int64_t n_ctx_train = 0;
  std::optional<GpuPlacement> placement;
  DeviceForwardOptions device_options;
  device_options.max_batch = kMaxBatch;
  {
    // The header alone (mapped, nothing read yet) gives the sizes the budget needs.
    auto header = Model::load(config.model_path, MmapFile::Mode::kMapped);
    if (!header) return fail(header.error().message);
    const Hparams& hp = (*header)->hparams();
    n_ctx_train = hp.n_ctx_train;
    plan = CpuForward::memory_plan(hp, kMaxBatch, n_threads, *kv_type, config.parallel);
    // On the GPU the KV cache lives in device memory (budgeted there, below): host memory holds
    // the mapped weights, the buffers and what the CPU plan counts as scratch (an upper bound).
    if (on_gpu) plan.kv_bytes_per_position = 0;
    auto planned = plan_memory(config, (*header)->file(), hp, plan, *machine, others_outstanding);
    if (!planned) return fail("serve: " + planned.error().message);
    budget = *planned;
    if (on_gpu) {
      // The GPU's layers first, at this context; the host's KV cache then holds the CPU's.
      device_options.max_segments = budget.n_parallel;
      auto placed = place_layers(
          hp, (*header)->weights(),
          {config.gpu_layers, budget.n_ctx, budget.n_parallel, config.gpu_memory_budget},
          device_options);
      if (!placed) return fail("serve: " + placed.error().message);
      placement = *placed;
    }
    if (placement && placement->first_layer > 0) {
      plan = CpuForward::memory_plan(hp, kMaxBatch, n_threads, *kv_type, config.parallel,
                                     placement->first_layer);
      // The same context as asked or as large as the model's (the plan without host KV took
      // that), or a shorter one that fits the CPU's layers' KV cache.
      planned = plan_memory(config, (*header)->file(), hp, plan, *machine, others_outstanding);
      if (!planned) return fail("serve: " + planned.error().message);
      if (planned->n_ctx < budget.n_ctx) {  // a shorter context: the GPU needs less
        auto placed = place_layers(hp, (*header)->weights(),
                                   {hp.n_layer - placement->first_layer, planned->n_ctx,
                                    planned->n_parallel, config.gpu_memory_budget},
                                   device_options);
        if (!placed) return fail("serve: " + placed.error().message);
        placement = *placed;
      }
      budget = *planned;
    }
  }
  std::fprintf(stderr, "%s\n", memory::describe(budget, config.kv_type).c_str());
  const int64_t attention_window =
      server::resolve_attention_window(config.attention_window, budget.n_ctx, n_ctx_train);
  const bool beyond_training = n_ctx_train > 0 && budget.n_ctx > n_ctx_train;
  if (beyond_training && config.attention_window < 0) {
    log::warn(
        "serve: --ctx {} is beyond the model's trained context ({}): attention is limited to a "
        "sliding window of the last {} tokens (--attention-window 0 turns this off)",
        budget.n_ctx, n_ctx_train, attention_window);
  } else if (beyond_training && (attention_window == 0 || attention_window > n_ctx_train)) {
    log::warn(
        "serve: --ctx {} is beyond the model's trained context ({}) and attention reaches {} "
        "positions back; past {} its output may degrade",
        budget.n_ctx, n_ctx_train, attention_window == 0 ? budget.n_ctx : attention_window,
        n_ctx_train);
  } else if (attention_window > 0 && attention_window < budget.n_ctx) {
    log::info("serve: attention is limited to a sliding window of the last {} tokens",
              attention_window);
  }

  auto model = Model::load(config.model_path,
                           config.mmap ? MmapFile::Mode::kMapped : MmapFile::Mode::kResident);
  if (!model) return fail(model.error().message);
  auto tokenizer = Tokenizer::from_gguf((*model)->file());
  if (!tokenizer) return fail(tokenizer.error().message);
  auto chat_template = choose_template(config, (*model)->file());
  if (!chat_template) return fail(chat_template.error().message);
  const Hparams& hp = (*model)->hparams();
  std::unique_ptr<BatchForward> forward;
  std::optional<server::MemoryContext::Gpu> gpu_budget;
  std::unique_ptr<WeightResidency> residency;
  // The KV pool holds what the budget counted: n_ctx x n_parallel positions, shared by the
  // running sequences (one may use up to n_ctx of them).
  const int64_t host_blocks =
      plan.kv_bytes_per_position == 0
          ? 0
          : (budget.kv_bytes / plan.kv_bytes_per_position + BatchForward::kKvBlockPositions - 1) /
                BatchForward::kKvBlockPositions;
  if (placement) {
    device_options.attention_window = attention_window;
    log::info("serve: {}", memory::describe(placement->kv, placement->room));
    auto made = make_gpu_forward(**model, *placement, budget.n_ctx, device_options,
                                 {n_threads, *kv_type, host_blocks});
    if (!made) return fail("serve: " + made.error().message);
    log::info("serve: long prompt chunks multiply with {}", made->prompt_products);
    forward = std::move(made->forward);
    gpu_budget = made->budget;
    residency = std::move(made->residency);  // keep-alive frees the GPU's copy of the weights
  } else {
    forward =
        std::make_unique<CpuForward>(hp, (*model)->weights(), budget.n_ctx, n_threads, kMaxBatch,
                                     *kv_type, host_blocks, budget.n_parallel, attention_window);
    residency = std::make_unique<ModelResidency>(**model);
  }

  SchedulerOptions scheduler_options;
  scheduler_options.max_waiting = config.max_queue;
  scheduler_options.max_parallel = budget.n_parallel;
  scheduler_options.token_delay_ms = config.debug_token_delay_ms;
  scheduler_options.keep_alive = config.keep_alive;
  scheduler_options.residency = residency.get();
  Scheduler scheduler(*forward, **tokenizer, scheduler_options);

  memory::Governor::Options governor_options;
  governor_options.thresholds = config.tiers;
  governor_options.poll = std::chrono::milliseconds(config.memory_poll_ms);
  governor_options.emergency_shutdown = std::chrono::seconds(config.emergency_shutdown_s);
  memory::Governor governor(
      memory_source, governor_options,
      {.shed =
           [&scheduler] {
             const int n = scheduler.shed_newest(
                 1,
                 "memory: the machine is almost out of memory; this request was cancelled to "
                 "free memory",
                 ErrorCode::kUnavailable);
             // Nothing left to cancel: give back the weights (reloaded once admission resumes).
             if (n == 0) scheduler.release_when_idle();
             return n;
           },
       .shutdown = [] { ::kill(::getpid(), SIGTERM); },
       .trim = [&scheduler] { scheduler.trim_cache(); }});
  governor.start();

  PromptRenderer renderer(**tokenizer, **chat_template);
  server::Metrics metrics;
  server::Router router(
      config, scheduler, renderer, metrics, served_model(config),
      server::MemoryContext{&governor, budget, plan.kv_bytes_per_position, gpu_budget});
  server::HttpServer http(config, router);
  auto port = http.bind();
  if (!port) return fail(port.error().message);
  memory::InstanceEntry entry;
  entry.host = config.host;
  entry.port = *port;
  entry.model = config.model_name;
  entry.budget_bytes = budget.total_bytes();
  if (auto registered = registry.register_self(entry); !registered) {
    log::warn("serve: not registered with other pensieve servers: {}", registered.error().message);
  }

  log::info(
      "serve: model {} ({} tokens of context, template {}, {} threads, keep-alive {})",
      config.model_path, budget.n_ctx, (*chat_template)->name(), n_threads,
      config.keep_alive.count() < 0 ? std::string("forever") : format_duration(config.keep_alive));
  std::fprintf(stderr, "pensieve: listening on http://%s:%d\n", config.host.c_str(), *port);
  std::atomic<bool> listener_failed = false;
  std::thread listener([&] {
    if (!http.run()) {
      listener_failed = true;
      ::kill(::getpid(), SIGTERM);  // wake the sigwait below
    }
  });
  int signal = 0;
  sigwait(&signals, &signal);
  if (listener_failed) {
    listener.join();
    return fail("serve: the listener stopped unexpectedly");
  }
  log::info("serve: signal {}: no new connections; finishing {} request(s) in flight (up to {})",
            signal, router.n_in_flight(), format_duration(config.drain_timeout));
  drain_and_exit(config, http, router, scheduler, registry, signals);
}

}  // namespace

void register_serve(CLI::App& app, Handler* run) {
  auto* cmd = app.add_subcommand(
      "serve", "Serve the Anthropic Messages API (and OpenAI chat completions) over HTTP");
  auto flags = std::make_shared<ServeFlags>();
  static const std::map<std::string_view, std::string_view> kShort = {
      {"model", "-m,"}, {"ctx", "-c,"}, {"threads", "-t,"}};
  for (const server::SettingInfo& s : server::server_settings()) {
    std::string name(s.key);
    std::replace(name.begin(), name.end(), '_', '-');
    auto shorthand = kShort.find(s.key);
    const std::string spec =
        (shorthand == kShort.end() ? std::string() : std::string(shorthand->second)) + "--" + name;
    std::string help = std::string(s.help) + " [env " + std::string(s.env) + "]";
    std::string& value = flags->values[std::string(s.key)];
    CLI::Option* option = s.is_bool ? cmd->add_flag_callback(
                                          spec, [&value] { value = "true"; }, help)
                                    : cmd->add_option(spec, value, help);
    if (s.key.starts_with("debug_")) option->group("");  // for tests; not in --help
    flags->options[std::string(s.key)] = option;
  }
  cmd->add_option("--config", flags->config_path, "TOML file of settings (lowest precedence)");
  cmd->callback([flags, run] {
    *run = [flags] {
      const server::SettingLookup from_flags =
          [flags](std::string_view key) -> std::optional<std::string> {
        auto option = flags->options.find(key);
        if (option == flags->options.end() || option->second->count() == 0) return std::nullopt;
        return flags->values.find(key)->second;
      };
      server::SettingLookup from_file = [](std::string_view) { return std::nullopt; };
      if (!flags->config_path.empty()) {
        auto file = server::toml_lookup(flags->config_path);
        if (!file) return fail(file.error().message);
        from_file = *file;
      }
      auto config =
          server::resolve_server_config(from_flags, server::environment_lookup(), from_file);
      if (!config) return fail(config.error().message);
      if (auto chosen = server::resolve_default_model(&*config); !chosen) {
        return fail(chosen.error().message);
      }
      return serve(*config);
    };
  });
}

}  // namespace pensieve::cli
