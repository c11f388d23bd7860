// The HTTP request and response as the routes see them, so that only http.cpp knows the HTTP
// library and the routes can be tested without sockets.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pensieve::server {

using Headers = std::vector<std::pair<std::string, std::string>>;

// The first header named `name`, compared case-insensitively.
std::optional<std::string_view> find_header(const Headers& headers, std::string_view name);

struct HttpRequest {
  std::string method;
  std::string path;  // without the query string
  Headers headers;
  Headers params;  // the query string's parameters
  std::string body;
  std::string remote_addr;
};

// The query parameter `name`, if given.
std::optional<std::string_view> find_query_param(const HttpRequest& request, std::string_view name);

// Where a streamed body goes; write() returns false once the client is gone.
class StreamSink {
 public:
  virtual ~StreamSink() = default;
  virtual bool write(std::string_view data) = 0;
};

// What the access log and the metrics learn of a request once its response is complete.
struct RequestRecord {
  std::string method;
  std::string path;
  std::string route;  // route template for metrics ("/v1/models/{id}")
  std::string request_id;
  int status = 0;
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  std::chrono::steady_clock::time_point started;
  // Streams: when the first text was written to the socket.
  std::optional<std::chrono::steady_clock::time_point> first_text_sent;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  Headers headers;
  std::string body;
  // When set, the body is streamed by calling this once, after the status and headers went out.
  std::function<void(StreamSink&)> stream;
  // Called when a stream was set but never ran (the client left before it started).
  std::function<void()> abandon;
  std::shared_ptr<RequestRecord> record;
};

}  // namespace pensieve::server
