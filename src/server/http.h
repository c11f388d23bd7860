// The HTTP listener: the only code that knows the HTTP library. It turns requests into
// HttpRequest for the Router, writes HttpResponses (streams chunk by chunk, each flushed), and
// enforces the body limit and the timeouts.
#pragma once

#include <memory>

#include "core/result.h"
#include "server/config.h"
#include "server/routes.h"

namespace pensieve::server {

class HttpServer {
 public:
  // Worker threads: one per waiting and per running request, and a few more for streams
  // finishing and quick routes (health, metrics, count_tokens) while the queue is full.
  static int n_workers(const ServerConfig& config) {
    return config.max_queue + config.parallel + 5;
  }

  // Both must outlive the server.
  HttpServer(const ServerConfig& config, Router& router);
  ~HttpServer();

  // Binds config.host:config.port (port 0: any free port) and returns the port. Errors name the
  // address and why ("port 7777 is already in use").
  Expected<int> bind();
  // Serves until stop(); returns false if the listener failed.
  bool run();
  // From any thread: stops accepting and returns run() once the workers finish.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pensieve::server
