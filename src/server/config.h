// Settings of `pensieve serve`: one table of settings, three sources (flags, environment, TOML
// file) resolved by precedence flag > env > file > default, validated into a ServerConfig.
// Pure functions of their inputs: two servers on one machine never share configuration state.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/result.h"
#include "memory/tiers.h"

namespace pensieve::server {

// Each field's comment: TOML key, environment variable, meaning. The flag is "--" + key with
// '_' -> '-' (--max-body-bytes).
struct ServerConfig {
  std::string host = "127.0.0.1";  // host, PENSIEVE_HOST: address to bind
  int port = 7777;                 // port, PENSIEVE_PORT: 0..65535, 0 = any free port
  std::string model_path;          // model, PENSIEVE_MODEL: path of a GGUF file (may be empty)
  // model_name, PENSIEVE_MODEL_NAME: id reported by /v1/models. When not given, resolve fills
  // in the model file name without its ".gguf" extension (empty while model_path is empty).
  std::string model_name;
  // models_dir, PENSIEVE_MODELS_DIR: where `pensieve pull` stores models and serve looks for a
  // default one; "" = $XDG_DATA_HOME/pensieve/models or ~/.local/share/pensieve/models.
  std::string models_dir;
  // default_model, PENSIEVE_DEFAULT_MODEL: served when model is not set: a name under models_dir
  // ("owner/repo/file.gguf", "owner/repo", "file.gguf") or a path. See resolve_default_model.
  std::string default_model;
  std::string api_key;    // api_key, PENSIEVE_API_KEY: empty = no authentication
  bool insecure = false;  // insecure, PENSIEVE_INSECURE: allow a non-loopback host keyless
  int64_t ctx = 0;        // ctx, PENSIEVE_CTX: 0 = model's trained context capped at 32768
  // attention_window, PENSIEVE_ATTENTION_WINDOW: positions each token attends (a sliding
  // window); 0 = all; "auto" (-1) = the trained context when ctx is longer, else all.
  int64_t attention_window = -1;
  int threads = 0;              // threads, PENSIEVE_THREADS: 0 = all cores
  std::string kv_type = "F16";  // kv_type, PENSIEVE_KV_TYPE: F16, Q8_0 or F32 (canonical case)
  std::string device = "cpu";   // device, PENSIEVE_DEVICE: cpu or cuda
  // gpu_layers, PENSIEVE_GPU_LAYERS: with device cuda, the model's last gpu_layers layers run on
  // the GPU and the ones before on the CPU; -1 = auto (all that fit); above the count = all.
  int64_t gpu_layers = -1;
  // gpu_memory_budget, PENSIEVE_GPU_MEMORY_BUDGET: with device cuda, the most device memory the
  // weights, activations and KV pool take; 0 = what is free at start less the reserve.
  int64_t gpu_memory_budget = 0;
  bool mmap = false;          // mmap, PENSIEVE_MMAP: map the model instead of reading it
  std::string chat_template;  // chat_template, PENSIEVE_CHAT_TEMPLATE: overrides the model's
  // tool_first, PENSIEVE_TOOL_FIRST: a request that offers tools and leaves tool_choice to the
  // model is answered with one call (tool_choice any, no parallel calls) when its last turn is the
  // user's own message, not tool results; for small models that never call tools by themselves.
  bool tool_first = false;
  int max_queue = 16;  // max_queue, PENSIEVE_MAX_QUEUE: waiting besides the running ones
  int parallel = 4;    // parallel, PENSIEVE_PARALLEL: sequences generated at once
  int64_t max_body_bytes = 8 << 20;  // max_body_bytes, PENSIEVE_MAX_BODY_BYTES: a byte size
  int read_timeout_s = 30;         // read_timeout_s, PENSIEVE_READ_TIMEOUT_S: headers+body deadline
  int idle_timeout_s = 5;          // idle_timeout_s, PENSIEVE_IDLE_TIMEOUT_S: keep-alive idle
  int ping_interval_s = 10;        // ping_interval_s, PENSIEVE_PING_INTERVAL_S: SSE pings, 1..300
  std::string log_level = "info";  // log_level, PENSIEVE_LOG_LEVEL: trace|debug|info|warn|error|off
  // Memory (see docs/MEMORY.md):
  int64_t memory_budget = 0;    // memory_budget, PENSIEVE_MEMORY_BUDGET: cap; 0 = machine's room
  int64_t memory_reserve = -1;  // memory_reserve, PENSIEVE_MEMORY_RESERVE: -1 = auto (Warning)
  // memory_caution, memory_warning, memory_critical, memory_emergency (PENSIEVE_MEMORY_...):
  // tier thresholds in bytes or percent of the total; defaults in memory/tiers.h.
  memory::TierThresholds tiers;
  int memory_poll_ms = 500;       // memory_poll_ms, PENSIEVE_MEMORY_POLL_MS: governor period
  int emergency_shutdown_s = 30;  // emergency_shutdown_s, ...: 0 = never shut down on Emergency
  // keep_alive, PENSIEVE_KEEP_ALIVE: idle time before the weights are released (Ollama's
  // convention: "5m", "0" after each request, "-1" never).
  std::chrono::milliseconds keep_alive{5 * 60 * 1000};
  std::chrono::milliseconds drain_timeout{30 * 1000};  // drain_timeout, PENSIEVE_DRAIN_TIMEOUT
  // request_timeout, PENSIEVE_REQUEST_TIMEOUT: a generation running longer (from arrival) is
  // stopped and answered with an error; 0 = no limit.
  std::chrono::milliseconds request_timeout{10 * 60 * 1000};
  std::string runtime_dir;  // runtime_dir, PENSIEVE_RUNTIME_DIR: instance registry; "" = default
  // log_requests, PENSIEVE_LOG_REQUESTS: debugging: save every API request (body, method, path,
  // headers without credentials) as a file in this directory; "" = off. See request_log.h.
  std::string log_requests;
  int debug_token_delay_ms = 0;  // debug_token_delay_ms, PENSIEVE_DEBUG_TOKEN_DELAY_MS: tests only
};

// Looks a setting up by its key ("port"); nullopt when that source does not give it.
// An empty std::function is a source that gives nothing.
using SettingLookup = std::function<std::optional<std::string>(std::string_view key)>;

// One row of the settings table, so the CLI can register one flag per setting: flag name is
// "--" + key with '_' -> '-'; boolean settings are flags without a value (the CLI then reports
// "true" for them).
struct SettingInfo {
  std::string_view key;   // TOML key and lookup key: "max_body_bytes"
  std::string_view env;   // environment variable: "PENSIEVE_MAX_BODY_BYTES"
  std::string_view help;  // one line for --help
  bool is_bool;
};

// Every setting of ServerConfig, in the order of its fields.
std::span<const SettingInfo> server_settings();

// The flag that sets `key`: "max_body_bytes" -> "--max-body-bytes".
std::string setting_flag_name(std::string_view key);

// Reads PENSIEVE_<KEY in upper case> with getenv at each call. A variable set to the empty
// string counts as not set, so `PENSIEVE_PORT= pensieve serve` falls back to the file/default.
SettingLookup environment_lookup();

// Parses the TOML file at `path`: flat keys named like the settings (port = 8080,
// host = "0.0.0.0", insecure = true, max_body_bytes = "64MiB" or an integer). Every scalar
// becomes a string (booleans "true"/"false"). Errors: unreadable file, bad TOML (file, line,
// column and toml++'s description), an unknown key or a table/array value (naming key and file).
Expected<SettingLookup> toml_lookup(const std::string& path);

// Resolves every setting from flags, then env, then file, then the default, and validates it.
// Errors start with "config: " and name the setting, the value and where it came from:
//   config: port 'abc' (from PENSIEVE_PORT) is not a number in 0..65535
// Booleans accept true/false, 1/0, yes/no, on/off (any case). A host other than loopback
// (127.0.0.0/8, ::1, localhost) needs api_key unless insecure is set.
// An empty model is not an error here; the CLI reports it.
Expected<ServerConfig> resolve_server_config(const SettingLookup& flags, const SettingLookup& env,
                                             const SettingLookup& file);

// The sliding attention window for a context of n_ctx with a model trained on n_ctx_train
// positions (<= 0: unknown): the setting as given, or for "auto" (-1) the trained context when
// n_ctx is longer, else 0 (every position).
int64_t resolve_attention_window(int64_t setting, int64_t n_ctx, int64_t n_ctx_train);

// When model is not set, fills model_path (and model_name, when not given) with default_model,
// or else with the only model under models_dir (read from disk). Errors start with "serve: " and
// say how to choose (--model, default_model, `pensieve pull`).
Expected<void> resolve_default_model(ServerConfig* config);

}  // namespace pensieve::server
