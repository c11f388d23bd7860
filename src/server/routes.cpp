#include "server/routes.h"

#include <algorithm>
#include <cctype>
#include <thread>

#include "core/log.h"
#include "server/anthropic/parse.h"
#include "server/json_fields.h"
#include "server/openai/format.h"
#include "server/request_log.h"

namespace pensieve::server {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

// The route template a path belongs to, as a metrics label.
std::string route_of(std::string_view path) {
  for (std::string_view route : {"/v1/messages", "/v1/messages/count_tokens", "/v1/models",
                                 "/v1/chat/completions", "/health", "/metrics"}) {
    if (path == route) return std::string(route);
  }
  if (path.starts_with("/v1/models/")) return "/v1/models/{id}";
  return "other";
}

// `claude-*` names (what Claude Code asks for) and the served id both mean the loaded model.
bool names_loaded_model(std::string_view id, std::string_view served) {
  return id == served || id.starts_with("claude-");
}

// A request's record, from its arrival.
std::shared_ptr<RequestRecord> new_record(const HttpRequest& request) {
  auto record = std::make_shared<RequestRecord>();
  record->method = request.method;
  record->path = request.path;
  record->route = route_of(request.path);
  record->request_id = random_id("req_");
  record->started = std::chrono::steady_clock::now();
  return record;
}

}  // namespace

std::optional<std::string_view> find_header(const Headers& headers, std::string_view name) {
  for (const auto& [key, value] : headers) {
    if (iequals(key, name)) return std::string_view(value);
  }
  return std::nullopt;
}

std::optional<std::string_view> find_query_param(const HttpRequest& request,
                                                 std::string_view name) {
  for (const auto& [key, value] : request.params) {
    if (key == name) return std::string_view(value);
  }
  return std::nullopt;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  const size_t n = std::max(a.size(), b.size());
  unsigned diff = a.size() == b.size() ? 0u : 1u;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned>(x ^ y);
  }
  return diff == 0;
}

Router::Router(const ServerConfig& config, Scheduler& scheduler, const PromptRenderer& renderer,
               Metrics& metrics, ServedModel model, MemoryContext memory)
    : config_(config),
      scheduler_(scheduler),
      renderer_(renderer),
      metrics_(metrics),
      model_(std::move(model)),
      model_info_{model_.id, model_.id, model_.created_at},
      memory_(std::move(memory)) {}

HttpResponse Router::handle(const HttpRequest& request) {
  auto record = new_record(request);
  // In flight from here until complete(); a handler that throws never gets there.
  ++in_flight_;
  HttpResponse response;
  try {
    response = dispatch(request, record);
  } catch (...) {
    --in_flight_;
    throw;
  }
  record->status = response.status;
  if (!config_.log_requests.empty() && logged_route(request.path)) {
    if (auto saved = write_request_log(config_.log_requests, request, record->request_id, response);
        !saved) {
      log::warn("{}", saved.error().message);
    }
  }
  response.headers.emplace_back("request-id", record->request_id);
  response.record = record;
  return response;
}

HttpResponse Router::dispatch(const HttpRequest& request,
                              const std::shared_ptr<RequestRecord>& record) {
  const std::string_view path = request.path;
  const bool get = request.method == "GET" || request.method == "HEAD";
  const bool post = request.method == "POST";
  if (get && path == "/health") return health();
  if (get && path == "/") {
    HttpResponse response;
    response.body = R"({"name":"pensieve"})";
    return response;
  }
  if (!authorized(request)) {
    return error_response(request, *record,
                          api_error(401, "invalid x-api-key: a valid API key is required"));
  }
  if (post && path == "/v1/messages") return messages(request, record);
  if (post && path == "/v1/messages/count_tokens") return count_tokens(request, *record);
  if (post && path == "/v1/chat/completions") return chat_completions(request, record);
  if (get && path == "/v1/models") return models(request);
  if (get && path.starts_with("/v1/models/")) return model(request, *record, path.substr(11));
  if (get && path == "/metrics") return metrics_text();
  return error_response(
      request, *record,
      api_error(404, fmt::format("{} {}: no such route", request.method, request.path)));
}

bool Router::authorized(const HttpRequest& request) const {
  if (config_.api_key.empty()) return true;
  if (auto key = find_header(request.headers, "x-api-key")) {
    return constant_time_equal(*key, config_.api_key);
  }
  if (auto auth = find_header(request.headers, "authorization")) {
    constexpr std::string_view kBearer = "Bearer ";
    if (auth->size() > kBearer.size() && iequals(auth->substr(0, kBearer.size()), kBearer)) {
      return constant_time_equal(auth->substr(kBearer.size()), config_.api_key);
    }
  }
  return false;
}

HttpResponse Router::error_response(const HttpRequest& request, const RequestRecord& record,
                                    const ApiError& error) const {
  HttpResponse response;
  response.status = error.status;
  response.body = request.path == "/v1/chat/completions"
                      ? openai_error_body(error)
                      : anthropic_error_body(error, record.request_id);
  if (error.retry_after_s > 0) {
    response.headers.emplace_back("retry-after", std::to_string(error.retry_after_s));
  }
  for (const auto& header : error.headers) response.headers.push_back(header);
  return response;
}

HttpResponse Router::library_error(const HttpRequest& request, int status) {
  ++in_flight_;
  auto record = new_record(request);
  const std::string message =
      status == 413
          ? fmt::format("request body is larger than the limit of {} bytes", config_.max_body_bytes)
      : status == 404 ? fmt::format("{} {}: no such route", request.method, request.path)
                      : fmt::format("the request could not be read (HTTP {})", status);
  HttpResponse response = error_response(request, *record, api_error(status, message));
  record->status = response.status;
  response.headers.emplace_back("request-id", record->request_id);
  response.record = record;
  return response;
}

void Router::wait_idle() const {
  while (in_flight_.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

void Router::complete(const RequestRecord& record) {
  --in_flight_;
  metrics_.record_request(record.route, record.status);
  log::info("access: {} {} {} in={} out={} ms={:.1f} request_id={}", record.method, record.path,
            record.status, record.input_tokens, record.output_tokens, ms_since(record.started),
            record.request_id);
}

HttpResponse Router::count_tokens(const HttpRequest& request, RequestRecord& record) {
  auto parsed = anthropic::parse_messages_request(request.body, anthropic::Endpoint::kCountTokens);
  if (!parsed) return error_response(request, record, api_error_from(parsed.error()));
  auto tokens = renderer_.tokens(*parsed);
  if (!tokens) return error_response(request, record, api_error_from(tokens.error()));
  record.input_tokens = static_cast<int64_t>(tokens->size());
  HttpResponse response;
  response.body = anthropic::count_tokens_body(record.input_tokens);
  return response;
}

HttpResponse Router::models(const HttpRequest& request) const {
  HttpResponse response;
  // OpenAI clients send a bearer token and no anthropic-version; they get OpenAI's shape.
  const bool openai = find_header(request.headers, "authorization").has_value() &&
                      !find_header(request.headers, "anthropic-version").has_value();
  if (openai) {
    response.body = openai::models_list_body(model_.id, model_.created_unix);
    return response;
  }
  // One model: a page after or before it is empty.
  const bool paged_away = find_query_param(request, "after_id") == model_.id ||
                          find_query_param(request, "before_id") == model_.id;
  response.body = anthropic::models_list_body(model_info_, !paged_away);
  return response;
}

HttpResponse Router::model(const HttpRequest& request, const RequestRecord& record,
                           std::string_view id) const {
  if (!names_loaded_model(id, model_.id)) {
    return error_response(request, record,
                          api_error(404, fmt::format("model: '{}' is not served here (this "
                                                     "server serves '{}')",
                                                     id, model_.id)));
  }
  anthropic::ModelInfo info = model_info_;
  info.id = std::string(id);
  HttpResponse response;
  response.body = anthropic::model_body(info);
  return response;
}

namespace {

Json budget_json(const memory::Budget& b, int64_t kv_bytes_per_position) {
  return Json{{"weights_bytes", b.weights_bytes},
              {"kv_bytes", b.kv_bytes},
              {"kv_bytes_per_position", kv_bytes_per_position},
              {"scratch_bytes", b.scratch_bytes},
              {"buffers_bytes", b.buffers_bytes},
              {"total_bytes", b.total_bytes()},
              {"n_ctx", b.n_ctx},
              {"n_parallel", b.n_parallel}};
}

}  // namespace

HttpResponse Router::health() const {
  HttpResponse response;
  Json body = {{"status", "ok"}, {"model", model_.id}};
  bool accepting = true;
  if (memory_.governor != nullptr) {
    const memory::Governor::Status status = memory_.governor->status();
    accepting = memory_.governor->accepting();
    body["status"] = accepting ? "ok" : "overloaded";
    body["tier"] = memory::tier_name(status.tier);
    body["available_bytes"] = status.snapshot.usable_bytes();
    body["mem_available_bytes"] = status.snapshot.available_bytes;
    if (status.snapshot.cgroup_limit_bytes) {
      body["cgroup_limit_bytes"] = *status.snapshot.cgroup_limit_bytes;
    }
    if (!status.read_error.empty()) body["memory_read_error"] = status.read_error;
    response.headers.emplace_back("x-memory-status", std::string(memory::tier_name(status.tier)));
  }
  body["accepting_requests"] = accepting;
  body["model_loaded"] = scheduler_.model_resident();
  body["budget"] = budget_json(memory_.budget, memory_.kv_bytes_per_position);
  if (memory_.gpu) {
    const MemoryContext::Gpu& gpu = *memory_.gpu;
    body["gpu_budget"] = Json{{"device", gpu.room.name},
                              {"weights_bytes", gpu.plan.weights_bytes},
                              {"kv_bytes", gpu.plan.kv_bytes},
                              {"kv_blocks", gpu.plan.n_blocks},
                              {"kv_bytes_per_position", gpu.kv_bytes_per_position},
                              {"scratch_bytes", gpu.plan.scratch_bytes},
                              {"total_bytes", gpu.plan.total_bytes()},
                              {"free_at_start_bytes", gpu.room.free_bytes},
                              {"device_bytes", gpu.room.total_bytes},
                              {"reserve_bytes", gpu.plan.reserve_bytes},
                              {"gpu_layers", gpu.n_layer - gpu.first_layer},
                              {"cpu_layers", gpu.first_layer}};
  }
  const Scheduler::CacheStats cache = scheduler_.cache_stats();
  body["kv_blocks"] = Json{{"total", cache.n_blocks},
                           {"used", cache.n_referenced},
                           {"cached", cache.n_cached},
                           {"free", cache.n_free}};
  body["queue_depth"] = scheduler_.n_waiting();
  body["in_flight"] = scheduler_.n_running();
  // Load balancers and launchers take a 503 as "send elsewhere / wait".
  if (!accepting) response.status = 503;
  response.body = dump_json(body);
  return response;
}

std::optional<ApiError> Router::memory_refusal() const {
  if (memory_.governor == nullptr || memory_.governor->accepting()) return std::nullopt;
  const memory::Governor::Status status = memory_.governor->status();
  const int64_t usable = status.snapshot.usable_bytes();
  ApiError error = api_error(
      529, fmt::format("memory: the machine is low on memory ({} free, tier {}); pensieve refuses "
                       "new requests until it recovers",
                       memory::format_gb(usable), memory::tier_name(status.tier)));
  error.headers.emplace_back("x-memory-status", std::string(memory::tier_name(status.tier)));
  error.headers.emplace_back("x-available-memory-gb", memory::format_gb(usable, false));
  metrics_.record_rejection("memory");
  return error;
}

HttpResponse Router::metrics_text() {
  metrics_.set_queue_depth(scheduler_.n_waiting());
  metrics_.set_in_flight(scheduler_.n_running());
  Metrics::MemoryGauges gauges;
  gauges.budget_weights_bytes = memory_.budget.weights_bytes;
  gauges.budget_kv_bytes = memory_.budget.kv_bytes;
  gauges.budget_scratch_bytes = memory_.budget.scratch_bytes;
  gauges.budget_buffers_bytes = memory_.budget.buffers_bytes;
  if (memory_.governor != nullptr) {
    const memory::Governor::Status status = memory_.governor->status();
    gauges.usable_bytes = status.snapshot.usable_bytes();
    gauges.tier = static_cast<int>(status.tier);
    gauges.shed_total = status.shed_total;
  }
  if (auto self = memory::read_process_memory(0)) {
    gauges.rss_anon_bytes = self->rss_anon_bytes;
    gauges.swap_bytes = self->swap_bytes;
  }
  gauges.model_loaded = scheduler_.model_resident();
  metrics_.set_memory(gauges);
  const Scheduler::CacheStats cache = scheduler_.cache_stats();
  Metrics::KvGauges kv;
  kv.blocks_free = cache.n_free;
  kv.blocks_cached = cache.n_cached;
  kv.blocks_used = cache.n_referenced;
  // A block's K and V in host memory (the CPU's layers) and on the GPU (its layers).
  kv.block_bytes =
      (memory_.kv_bytes_per_position + (memory_.gpu ? memory_.gpu->kv_bytes_per_position : 0)) *
      Scheduler::kBlockPositions;
  kv.prefix_hit_tokens = cache.hit_tokens;
  kv.prefix_lookup_tokens = cache.lookup_tokens;
  kv.preemptions = cache.preemptions;
  kv.trimmed_blocks = cache.trimmed_blocks;
  metrics_.set_kv(kv);
  HttpResponse response;
  response.content_type = "text/plain; version=0.0.4; charset=utf-8";
  response.body = metrics_.render();
  return response;
}

}  // namespace pensieve::server
