#include "server/config.h"

#include <arpa/inet.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <map>
#include <memory>
#include <sstream>

#include <toml++/toml.h>

#include "core/byte_size.h"
#include "core/duration.h"
#include "core/log.h"
#include "hub/models_dir.h"

namespace pensieve::server {
namespace {

constexpr SettingInfo kSettings[] = {
    {"host", "PENSIEVE_HOST", "address to bind (non-loopback needs --api-key or --insecure)",
     false},
    {"port", "PENSIEVE_PORT", "port to listen on, 0..65535 (0 = any free port)", false},
    {"model", "PENSIEVE_MODEL", "path of the GGUF model file", false},
    {"model_name", "PENSIEVE_MODEL_NAME",
     "model id reported by /v1/models (default: file name without .gguf)", false},
    {"models_dir", "PENSIEVE_MODELS_DIR",
     "where `pensieve pull` stores models (default $XDG_DATA_HOME/pensieve/models)", false},
    {"default_model", "PENSIEVE_DEFAULT_MODEL",
     "model served without --model: owner/repo/file.gguf under models_dir, or a path", false},
    {"api_key", "PENSIEVE_API_KEY", "require this key (x-api-key or Authorization: Bearer)", false},
    {"insecure", "PENSIEVE_INSECURE", "allow a non-loopback host without an API key", true},
    {"ctx", "PENSIEVE_CTX", "context length in tokens (0 = model's, capped at 32768)", false},
    {"attention_window", "PENSIEVE_ATTENTION_WINDOW",
     "tokens each token attends, a sliding window (0 = all; default auto: the model's trained "
     "context when ctx is longer)",
     false},
    {"threads", "PENSIEVE_THREADS", "compute threads (0 = all cores)", false},
    {"kv_type", "PENSIEVE_KV_TYPE", "KV cache element type: F16, Q8_0 or F32", false},
    {"device", "PENSIEVE_DEVICE",
     "where the model runs: cpu, or cuda (the model and its KV cache on GPU 0)", false},
    {"gpu_layers", "PENSIEVE_GPU_LAYERS",
     "with --device cuda: how many of the model's last layers run on the GPU, the rest on the "
     "CPU (default auto: all that fit in its free memory; a number above the model's layer "
     "count means all)",
     false},
    {"gpu_memory_budget", "PENSIEVE_GPU_MEMORY_BUDGET",
     "with --device cuda: cap on the GPU memory pensieve takes, e.g. 8GiB (default: what is "
     "free at start less a reserve)",
     false},
    {"mmap", "PENSIEVE_MMAP", "memory-map the model file instead of reading it", true},
    {"chat_template", "PENSIEVE_CHAT_TEMPLATE", "chat template overriding the model's", false},
    {"tool_first", "PENSIEVE_TOOL_FIRST",
     "answer each new user message that offers tools with one tool call (tool_choice any unless "
     "the client chose); after tool results the model answers freely",
     true},
    {"max_queue", "PENSIEVE_MAX_QUEUE", "requests that may wait besides the running ones", false},
    {"parallel", "PENSIEVE_PARALLEL",
     "sequences generated at once; the KV cache holds ctx x parallel positions (1..64)", false},
    {"max_body_bytes", "PENSIEVE_MAX_BODY_BYTES",
     "largest request body (1000, 4KiB, 32MiB, 32MB; MB = 10^6, MiB = 2^20)", false},
    {"read_timeout_s", "PENSIEVE_READ_TIMEOUT_S", "seconds for a request's headers and body",
     false},
    {"idle_timeout_s", "PENSIEVE_IDLE_TIMEOUT_S", "seconds an idle keep-alive connection stays",
     false},
    {"ping_interval_s", "PENSIEVE_PING_INTERVAL_S", "seconds between SSE pings, 1..300", false},
    {"log_level", "PENSIEVE_LOG_LEVEL", "trace, debug, info, warn, error or off", false},
    {"memory_budget", "PENSIEVE_MEMORY_BUDGET",
     "cap on pensieve's memory budget, e.g. 4GiB (default: what the machine can give)", false},
    {"memory_reserve", "PENSIEVE_MEMORY_RESERVE",
     "memory left to the rest of the machine at startup (default auto: the Warning threshold)",
     false},
    {"memory_caution", "PENSIEVE_MEMORY_CAUTION",
     "Caution tier below this much free memory: bytes or percent (default 3GB, at most 25%)",
     false},
    {"memory_warning", "PENSIEVE_MEMORY_WARNING",
     "Warning tier threshold (default 2GB, at most 15%)", false},
    {"memory_critical", "PENSIEVE_MEMORY_CRITICAL",
     "Critical tier threshold: new requests get 529 (default 1GB, at most 8%)", false},
    {"memory_emergency", "PENSIEVE_MEMORY_EMERGENCY",
     "Emergency tier threshold: newest requests are cancelled (default 500MB, at most 4%)", false},
    {"memory_poll_ms", "PENSIEVE_MEMORY_POLL_MS", "milliseconds between memory checks", false},
    {"emergency_shutdown_s", "PENSIEVE_EMERGENCY_SHUTDOWN_S",
     "shut down gracefully after this many seconds in Emergency (0 = never)", false},
    {"keep_alive", "PENSIEVE_KEEP_ALIVE",
     "release the model's memory after this idle time (5m; 0 = after each request; -1 = never)",
     false},
    {"drain_timeout", "PENSIEVE_DRAIN_TIMEOUT",
     "on SIGTERM/SIGINT, how long in-flight requests may take to finish (30s)", false},
    {"request_timeout", "PENSIEVE_REQUEST_TIMEOUT",
     "stop a generation that runs longer than this from arrival (10m; 0 = no limit)", false},
    {"runtime_dir", "PENSIEVE_RUNTIME_DIR",
     "directory where running servers register (default $XDG_RUNTIME_DIR/pensieve)", false},
    {"log_requests", "PENSIEVE_LOG_REQUESTS",
     "debugging: save every API request as DIR/<time>-<request id>-<route>.json (no credentials)",
     false},
    {"debug_token_delay_ms", "PENSIEVE_DEBUG_TOKEN_DELAY_MS",
     "tests only: sleep this long per generated token", false},
};

std::string_view trim(std::string_view text) {
  constexpr std::string_view kSpace = " \t\r\n";
  size_t begin = text.find_first_not_of(kSpace);
  if (begin == std::string_view::npos) return {};
  size_t end = text.find_last_not_of(kSpace);
  return text.substr(begin, end - begin + 1);
}

std::string to_lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Parses a whole decimal integer (optional leading '-'); nullopt for anything else or overflow.
std::optional<int64_t> parse_int(std::string_view text) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

std::optional<bool> parse_bool(std::string_view raw) {
  std::string text = to_lower(trim(raw));
  if (text == "true" || text == "1" || text == "yes" || text == "on") return true;
  if (text == "false" || text == "0" || text == "no" || text == "off") return false;
  return std::nullopt;
}

bool is_loopback_host(std::string_view host) {
  if (to_lower(host) == "localhost") return true;
  std::string text(host);
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;  // 127.0.0.0/8
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, text.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

// A setting's raw text and the source it came from ("--port", "PENSIEVE_PORT").
struct RawSetting {
  std::string value;
  std::string source;
};

class Sources {
 public:
  Sources(const SettingLookup& flags, const SettingLookup& env, const SettingLookup& file)
      : flags_(flags), env_(env), file_(file) {}

  // The first source giving `info.key`, by precedence; nullopt: use the default.
  std::optional<RawSetting> find(const SettingInfo& info) const {
    if (flags_) {
      if (auto v = flags_(info.key)) return RawSetting{*v, setting_flag_name(info.key)};
    }
    if (env_) {
      if (auto v = env_(info.key)) return RawSetting{*v, std::string(info.env)};
    }
    if (file_) {
      if (auto v = file_(info.key)) return RawSetting{*v, "the config file"};
    }
    return std::nullopt;
  }

 private:
  const SettingLookup& flags_;
  const SettingLookup& env_;
  const SettingLookup& file_;
};

Unexpected<Error> setting_error(const SettingInfo& info, const RawSetting& raw,
                                std::string_view problem) {
  return make_error(ErrorCode::kInvalidArgument, "config: {} '{}' (from {}) {}", info.key,
                    raw.value, raw.source, problem);
}

template <class Int>
Expected<void> apply_int(const SettingInfo& info, const std::optional<RawSetting>& raw, int64_t lo,
                         int64_t hi, Int* out) {
  if (!raw) return {};
  std::optional<int64_t> value = parse_int(trim(raw->value));
  if (!value || *value < lo || *value > hi) {
    return setting_error(info, *raw, fmt::format("is not a number in {}..{}", lo, hi));
  }
  *out = static_cast<Int>(*value);
  return {};
}

Expected<void> apply_bool(const SettingInfo& info, const std::optional<RawSetting>& raw,
                          bool* out) {
  if (!raw) return {};
  std::optional<bool> value = parse_bool(raw->value);
  if (!value)
    return setting_error(info, *raw, "is not a boolean (true/false, 1/0, yes/no, on/off)");
  *out = *value;
  return {};
}

Expected<void> apply_string(const std::optional<RawSetting>& raw, std::string* out) {
  if (raw) *out = raw->value;
  return {};
}

// "byte size '12XB' is not a byte size (...)" -> "is not a byte size (...)": the setting's
// message names the value itself.
std::string problem_of(const Error& error, std::string_view what, std::string_view raw) {
  const std::string prefix = fmt::format("{} '{}' ", what, raw);
  if (error.message.starts_with(prefix)) return error.message.substr(prefix.size());
  return error.message;
}

Expected<void> apply_byte_size(const SettingInfo& info, const std::optional<RawSetting>& raw,
                               int64_t min_bytes, int64_t* out) {
  if (!raw) return {};
  auto size = parse_byte_size(raw->value);
  if (!size) return setting_error(info, *raw, problem_of(size.error(), "byte size", raw->value));
  if (*size < min_bytes) {
    return setting_error(
        info, *raw,
        fmt::format("must be at least {} byte{}", min_bytes, min_bytes == 1 ? "" : "s"));
  }
  *out = *size;
  return {};
}

// A memory tier threshold: bytes or a percent.
Expected<void> apply_threshold(const SettingInfo& info, const std::optional<RawSetting>& raw,
                               memory::Threshold* out) {
  if (!raw) return {};
  auto threshold = memory::parse_threshold(raw->value);
  if (!threshold) {
    return setting_error(
        info, *raw, "is not a byte size (1GiB, 700MB, 123456789) or a percent from 0 to 100 (10%)");
  }
  *out = *threshold;
  return {};
}

// A duration; negative ones only when `allow_negative` (keep_alive's "-1" = never).
Expected<void> apply_duration(const SettingInfo& info, const std::optional<RawSetting>& raw,
                              bool allow_negative, std::chrono::milliseconds* out) {
  if (!raw) return {};
  auto duration = parse_duration(raw->value);
  if (!duration)
    return setting_error(info, *raw, problem_of(duration.error(), "duration", raw->value));
  if (!allow_negative && duration->count() < 0) return setting_error(info, *raw, "is negative");
  *out = *duration;
  return {};
}

// One of `choices`, any case, stored as the choice is spelled.
Expected<void> apply_choice(const SettingInfo& info, const std::optional<RawSetting>& raw,
                            std::initializer_list<std::string_view> choices, std::string* out) {
  if (!raw) return {};
  std::string lower = to_lower(trim(raw->value));
  std::string names;
  for (std::string_view canonical : choices) {
    if (to_lower(canonical) == lower) {
      *out = std::string(canonical);
      return {};
    }
    names.append(names.empty() ? "" : ", ").append(canonical);
  }
  return setting_error(info, *raw, "is not one of " + names);
}

Expected<void> apply_log_level(const SettingInfo& info, const std::optional<RawSetting>& raw,
                               std::string* out) {
  if (!raw) return {};
  std::string lower = to_lower(trim(raw->value));
  log::Level level{};
  if (!log::parse_level(lower, &level)) {
    return setting_error(info, *raw, "is not one of trace, debug, info, warn, error, off");
  }
  *out = lower;
  return {};
}

// "auto" (-1) or a number in lo..2147483647.
Expected<void> apply_auto_or_int(const SettingInfo& info, const std::optional<RawSetting>& raw,
                                 int64_t lo, int64_t* out) {
  if (!raw) return {};
  const std::string text = to_lower(trim(raw->value));
  if (text == "auto") {
    *out = -1;
    return {};
  }
  std::optional<int64_t> value = parse_int(text);
  if (!value || *value < lo || *value > std::numeric_limits<int>::max()) {
    return setting_error(info, *raw, fmt::format("is not auto or a number in {}..2147483647", lo));
  }
  *out = *value;
  return {};
}

// Applies one setting to `config`; the switch keeps key -> field in one place.
Expected<void> apply_setting(const SettingInfo& info, const std::optional<RawSetting>& raw,
                             ServerConfig* config) {
  constexpr int64_t kDay = 86400;
  constexpr int64_t kIntMax = std::numeric_limits<int>::max();
  std::string_view key = info.key;
  if (key == "host") {
    if (raw && trim(raw->value).empty()) return setting_error(info, *raw, "is empty");
    if (raw) config->host = std::string(trim(raw->value));
    return {};
  }
  if (key == "port") return apply_int(info, raw, 0, 65535, &config->port);
  if (key == "model") return apply_string(raw, &config->model_path);
  if (key == "model_name") return apply_string(raw, &config->model_name);
  if (key == "models_dir") return apply_string(raw, &config->models_dir);
  if (key == "default_model") return apply_string(raw, &config->default_model);
  if (key == "api_key") return apply_string(raw, &config->api_key);
  if (key == "insecure") return apply_bool(info, raw, &config->insecure);
  if (key == "ctx") return apply_int(info, raw, 0, kIntMax, &config->ctx);
  if (key == "attention_window") return apply_auto_or_int(info, raw, 0, &config->attention_window);
  if (key == "threads") return apply_int(info, raw, 0, 4096, &config->threads);
  if (key == "kv_type") return apply_choice(info, raw, {"F16", "Q8_0", "F32"}, &config->kv_type);
  if (key == "device") return apply_choice(info, raw, {"cpu", "cuda"}, &config->device);
  if (key == "gpu_layers") return apply_auto_or_int(info, raw, 1, &config->gpu_layers);
  if (key == "gpu_memory_budget") {
    return apply_byte_size(info, raw, 0, &config->gpu_memory_budget);
  }
  if (key == "mmap") return apply_bool(info, raw, &config->mmap);
  if (key == "chat_template") return apply_string(raw, &config->chat_template);
  if (key == "tool_first") return apply_bool(info, raw, &config->tool_first);
  if (key == "max_queue") return apply_int(info, raw, 0, 1000000, &config->max_queue);
  if (key == "parallel") return apply_int(info, raw, 1, 64, &config->parallel);
  if (key == "max_body_bytes") return apply_byte_size(info, raw, 1, &config->max_body_bytes);
  if (key == "read_timeout_s") return apply_int(info, raw, 1, kDay, &config->read_timeout_s);
  if (key == "idle_timeout_s") return apply_int(info, raw, 1, kDay, &config->idle_timeout_s);
  if (key == "ping_interval_s") return apply_int(info, raw, 1, 300, &config->ping_interval_s);
  if (key == "log_level") return apply_log_level(info, raw, &config->log_level);
  if (key == "memory_budget") return apply_byte_size(info, raw, 0, &config->memory_budget);
  if (key == "memory_reserve") {
    if (raw && to_lower(trim(raw->value)) == "auto") return {};
    return apply_byte_size(info, raw, 0, &config->memory_reserve);
  }
  if (key == "memory_caution") return apply_threshold(info, raw, &config->tiers.caution);
  if (key == "memory_warning") return apply_threshold(info, raw, &config->tiers.warning);
  if (key == "memory_critical") return apply_threshold(info, raw, &config->tiers.critical);
  if (key == "memory_emergency") return apply_threshold(info, raw, &config->tiers.emergency);
  if (key == "memory_poll_ms") return apply_int(info, raw, 10, 60000, &config->memory_poll_ms);
  if (key == "emergency_shutdown_s") {
    return apply_int(info, raw, 0, kDay, &config->emergency_shutdown_s);
  }
  if (key == "keep_alive") return apply_duration(info, raw, true, &config->keep_alive);
  if (key == "drain_timeout") return apply_duration(info, raw, false, &config->drain_timeout);
  if (key == "request_timeout") {
    return apply_duration(info, raw, false, &config->request_timeout);
  }
  if (key == "runtime_dir") return apply_string(raw, &config->runtime_dir);
  if (key == "log_requests") return apply_string(raw, &config->log_requests);
  if (key == "debug_token_delay_ms") {
    return apply_int(info, raw, 0, 60000, &config->debug_token_delay_ms);
  }
  PV_CHECK(false, "config: setting '{}' has no field", key);
  return {};
}

// "models/qwen2-0.5b.Q8_0.gguf" -> "qwen2-0.5b.Q8_0".
std::string model_name_from_path(const std::string& path) {
  std::string name = std::filesystem::path(path).filename().string();
  constexpr std::string_view kExt = ".gguf";
  if (name.size() > kExt.size() && to_lower(name.substr(name.size() - kExt.size())) == kExt) {
    name.resize(name.size() - kExt.size());
  }
  return name;
}

const SettingInfo* find_setting(std::string_view key) {
  for (const SettingInfo& info : kSettings) {
    if (info.key == key) return &info;
  }
  return nullptr;
}

// A TOML scalar as the string the resolver parses; nullopt for tables and arrays.
std::optional<std::string> toml_scalar_text(const toml::node& node) {
  if (auto s = node.value_exact<std::string>()) return *s;
  if (auto b = node.value_exact<bool>()) return *b ? "true" : "false";
  if (auto i = node.value_exact<int64_t>()) return std::to_string(*i);
  if (auto d = node.value_exact<double>()) return fmt::format("{}", *d);
  if (node.is_date() || node.is_time() || node.is_date_time()) {
    std::ostringstream out;
    node.visit([&out](const auto& v) { out << v; });
    return out.str();
  }
  return std::nullopt;
}

}  // namespace

std::span<const SettingInfo> server_settings() { return kSettings; }

std::string setting_flag_name(std::string_view key) {
  std::string flag = "--";
  for (char c : key) flag += c == '_' ? '-' : c;
  return flag;
}

SettingLookup environment_lookup() {
  return [](std::string_view key) -> std::optional<std::string> {
    std::string name = "PENSIEVE_";
    for (char c : key) name += (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
    const char* value = std::getenv(name.c_str());
    if (value == nullptr || *value == '\0') return std::nullopt;
    return std::string(value);
  };
}

Expected<SettingLookup> toml_lookup(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return make_error(ErrorCode::kInvalidArgument, "config: config file '{}' is a directory", path);
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return make_error(errno == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
                      "config: cannot open config file '{}': {}", path, std::strerror(errno));
  }
  std::stringstream content;
  content << file.rdbuf();
  if (file.bad()) {
    return make_error(ErrorCode::kIo, "config: cannot read config file '{}'", path);
  }
  std::string text = content.str();
  toml::table table;
  try {
    table = toml::parse(text, std::string_view(path));
  } catch (const toml::parse_error& e) {
    return make_error(ErrorCode::kInvalidFormat, "config: {}:{}:{}: {}", path,
                      e.source().begin.line, e.source().begin.column, e.description());
  }
  auto values = std::make_shared<std::map<std::string, std::string, std::less<>>>();
  for (const auto& [key, node] : table) {
    std::string_view name = key.str();
    if (find_setting(name) == nullptr) {
      return make_error(ErrorCode::kInvalidArgument, "config: unknown setting '{}' in {}", name,
                        path);
    }
    std::optional<std::string> value = toml_scalar_text(node);
    if (!value) {
      return make_error(ErrorCode::kInvalidArgument,
                        "config: setting '{}' in {} must be a string, number or boolean", name,
                        path);
    }
    values->emplace(std::string(name), std::move(*value));
  }
  return SettingLookup([values](std::string_view key) -> std::optional<std::string> {
    auto it = values->find(key);
    if (it == values->end()) return std::nullopt;
    return it->second;
  });
}

Expected<ServerConfig> resolve_server_config(const SettingLookup& flags, const SettingLookup& env,
                                             const SettingLookup& file) {
  Sources sources(flags, env, file);
  ServerConfig config;
  for (const SettingInfo& info : kSettings) {
    PV_TRY_VOID(apply_setting(info, sources.find(info), &config));
  }
  if (config.model_name.empty() && !config.model_path.empty()) {
    config.model_name = model_name_from_path(config.model_path);
  }
  if (!is_loopback_host(config.host) && config.api_key.empty() && !config.insecure) {
    return make_error(ErrorCode::kInvalidArgument,
                      "config: binding to {} exposes the server: set an API key (--api-key or "
                      "PENSIEVE_API_KEY) or pass --insecure",
                      config.host);
  }
  return config;
}

int64_t resolve_attention_window(int64_t setting, int64_t n_ctx, int64_t n_ctx_train) {
  if (setting >= 0) return setting;
  return n_ctx_train > 0 && n_ctx > n_ctx_train ? n_ctx_train : 0;
}

Expected<void> resolve_default_model(ServerConfig* config) {
  if (!config->model_path.empty()) return {};
  PV_TRY(config->model_path,
         hub::default_serve_model(config->default_model,
                                  hub::models_dir_or_default(config->models_dir)));
  if (config->model_name.empty()) config->model_name = model_name_from_path(config->model_path);
  return {};
}

}  // namespace pensieve::server
