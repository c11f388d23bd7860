// The server's routes: authentication, dispatch by method and path, and the handlers of every
// endpoint except the generating ones (generation.cpp). One Router per server; its methods are
// called from many HTTP threads at once.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>

#include "engine/prompt.h"
#include "engine/scheduler.h"
#include "memory/budget.h"
#include "memory/device_budget.h"
#include "memory/governor.h"
#include "server/anthropic/format.h"
#include "server/config.h"
#include "server/errors.h"
#include "server/http_types.h"
#include "server/metrics.h"

namespace pensieve::server {

struct ServedModel {
  std::string id;            // the name /v1/models reports
  std::string created_at;    // RFC 3339, from the file's modification time
  int64_t created_unix = 0;  // the same, for the OpenAI shape
};

// What the router knows of memory: the governor that admits work (null: always admit) and the
// startup budget; /health and /metrics report both.
struct MemoryContext {
  const memory::Governor* governor = nullptr;
  memory::Budget budget;
  // K and V of one position in host memory: every layer's on the CPU, the CPU's layers' in a
  // split with the GPU, 0 with the whole model on the GPU.
  int64_t kv_bytes_per_position = 0;
  // Set when the model runs on a GPU: its budget, made at start.
  struct Gpu {
    memory::DeviceRoom room;
    memory::DeviceKvPlan plan;
    int64_t kv_bytes_per_position = 0;
    // The layers the GPU runs, [first_layer, n_layer); those before run on the CPU.
    int64_t first_layer = 0;
    int64_t n_layer = 0;
  };
  std::optional<Gpu> gpu;
};

class Router {
 public:
  // All must outlive the router.
  Router(const ServerConfig& config, Scheduler& scheduler, const PromptRenderer& renderer,
         Metrics& metrics, ServedModel model, MemoryContext memory = {});

  HttpResponse handle(const HttpRequest& request);
  // The response went out (or the client left): one access-log line and the request metrics.
  void complete(const RequestRecord& record);
  // A response for errors the HTTP library detects itself (413, 404 before routing).
  HttpResponse library_error(const HttpRequest& request, int status);

  // Requests handled whose response is not complete yet (streams included).
  int64_t n_in_flight() const { return in_flight_.load(); }
  // Blocks until n_in_flight() is 0.
  void wait_idle() const;

 private:
  HttpResponse dispatch(const HttpRequest& request, const std::shared_ptr<RequestRecord>& record);
  bool authorized(const HttpRequest& request) const;
  HttpResponse error_response(const HttpRequest& request, const RequestRecord& record,
                              const ApiError& error) const;

  // The generating routes fill `record` in when their (possibly streamed) response completes.
  HttpResponse messages(const HttpRequest& request, std::shared_ptr<RequestRecord> record);
  HttpResponse chat_completions(const HttpRequest& request, std::shared_ptr<RequestRecord> record);
  HttpResponse count_tokens(const HttpRequest& request, RequestRecord& record);
  HttpResponse models(const HttpRequest& request) const;
  HttpResponse model(const HttpRequest& request, const RequestRecord& record,
                     std::string_view id) const;
  HttpResponse health() const;
  // The 529 a generating route answers while the governor refuses work; nullopt: admitted.
  std::optional<ApiError> memory_refusal() const;
  HttpResponse metrics_text();

  const ServerConfig& config_;
  Scheduler& scheduler_;
  const PromptRenderer& renderer_;
  Metrics& metrics_;
  ServedModel model_;
  anthropic::ModelInfo model_info_;
  MemoryContext memory_;
  std::atomic<int64_t> in_flight_{0};
};

// Compares without an early exit, so the time taken does not tell how much of a key matched.
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace pensieve::server
