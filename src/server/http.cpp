#include "server/http.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>

#include <httplib.h>

#include "core/log.h"

namespace pensieve::server {
namespace {

// The record of the request this HTTP thread is serving: httplib handles a request, writes its
// response and calls the logger on one thread, so the logger finds it here.
thread_local std::shared_ptr<RequestRecord> t_record;

HttpRequest to_request(const httplib::Request& req) {
  HttpRequest r;
  r.method = req.method;
  r.path = req.path;
  r.headers.assign(req.headers.begin(), req.headers.end());
  r.params.assign(req.params.begin(), req.params.end());
  r.body = req.body;
  r.remote_addr = req.remote_addr;
  return r;
}

class SinkAdapter : public StreamSink {
 public:
  explicit SinkAdapter(httplib::DataSink& sink) : sink_(sink) {}
  bool write(std::string_view data) override {
    if (!ok_) return false;
    ok_ = sink_.is_writable() && sink_.write(data.data(), data.size());
    return ok_;
  }
  bool ok() const { return ok_; }

 private:
  httplib::DataSink& sink_;
  bool ok_ = true;
};

void apply(HttpResponse response, httplib::Response& res) {
  res.status = response.status;
  for (const auto& [key, value] : response.headers) res.set_header(key, value);
  t_record = response.record;
  if (!response.stream) {
    res.set_content(response.body, response.content_type);
    return;
  }
  auto stream = std::make_shared<std::function<void(StreamSink&)>>(std::move(response.stream));
  auto ran = std::make_shared<bool>(false);
  res.set_chunked_content_provider(
      response.content_type,
      [stream, ran](size_t, httplib::DataSink& sink) {
        *ran = true;
        SinkAdapter adapter(sink);
        (*stream)(adapter);
        if (!adapter.ok()) return false;
        sink.done();
        return true;
      },
      [abandon = std::move(response.abandon), ran](bool) {
        if (!*ran && abandon) abandon();
      });
}

// Why binding failed, from the operating system, for the error message.
std::string bind_failure(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (::getaddrinfo(host.c_str(), service.c_str(), &hints, &found) != 0 || found == nullptr) {
    return fmt::format("the address '{}' could not be resolved", host);
  }
  std::string why = "the listener could not be created";
  const int fd = ::socket(found->ai_family, found->ai_socktype, found->ai_protocol);
  if (fd >= 0) {
    const int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    if (::bind(fd, found->ai_addr, found->ai_addrlen) != 0) {
      why = errno == EADDRINUSE ? fmt::format("port {} is already in use", port)
            : errno == EACCES   ? fmt::format("port {} needs privileges", port)
                                : std::strerror(errno);
    }
    ::close(fd);
  }
  ::freeaddrinfo(found);
  return why;
}

}  // namespace

struct HttpServer::Impl {
  const ServerConfig& config;
  Router& router;
  httplib::Server server;
};

HttpServer::HttpServer(const ServerConfig& config, Router& router)
    : impl_(new Impl{config, router, {}}) {
  httplib::Server& s = impl_->server;
  // Every waiting or running request holds a thread; a few more serve health, metrics and
  // token counts while the queue is full.
  const auto n_threads = static_cast<size_t>(n_workers(config));
  s.new_task_queue = [n_threads] { return new httplib::ThreadPool(n_threads); };
  s.set_payload_max_length(static_cast<size_t>(config.max_body_bytes));
  s.set_read_timeout(config.read_timeout_s, 0);
  s.set_write_timeout(config.read_timeout_s, 0);
  s.set_keep_alive_timeout(config.idle_timeout_s);
  s.set_tcp_nodelay(true);
  // SO_REUSEADDR only: the library's default adds SO_REUSEPORT, which would let a second server
  // bind the same port and share its connections instead of failing.
  s.set_socket_options([](socket_t sock) {
    const int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  s.set_keep_alive_max_count(1000);

  auto handler = [this](const httplib::Request& req, httplib::Response& res) {
    try {
      apply(impl_->router.handle(to_request(req)), res);
    } catch (const std::exception& e) {  // bad_alloc and library errors: a 500, not a crash
      log::error("http: {} {} failed: {}", req.method, req.path, e.what());
      apply(impl_->router.library_error(to_request(req), 500), res);
    }
  };
  for (const char* pattern : {".*"}) {
    s.Get(pattern, handler);
    s.Post(pattern, handler);
    s.Put(pattern, handler);
    s.Patch(pattern, handler);
    s.Delete(pattern, handler);
    s.Options(pattern, handler);
  }
  // Errors httplib finds before a handler runs (413 body too large, 400 bad request line): an
  // API error body, unless a handler already wrote one.
  const httplib::Server::HandlerWithResponse on_error = [this](const httplib::Request& req,
                                                               httplib::Response& res) {
    if (!res.body.empty() || res.has_header("request-id")) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    HttpRequest request;
    request.method = req.method;
    request.path = req.path;
    HttpResponse response = impl_->router.library_error(request, res.status);
    response.status = res.status;
    apply(std::move(response), res);
    return httplib::Server::HandlerResponse::Handled;
  };
  s.set_error_handler(on_error);
  s.set_logger([this](const httplib::Request&, const httplib::Response& res) {
    if (t_record) {
      t_record->status = res.status;
      impl_->router.complete(*t_record);
      t_record.reset();
    }
  });
}

HttpServer::~HttpServer() = default;

Expected<int> HttpServer::bind() {
  const ServerConfig& c = impl_->config;
  if (c.port == 0) {
    const int port = impl_->server.bind_to_any_port(c.host);
    if (port > 0) return port;
  } else if (impl_->server.bind_to_port(c.host, c.port)) {
    return c.port;
  }
  return make_error(ErrorCode::kIo, "serve: cannot listen on {}:{}: {}", c.host, c.port,
                    bind_failure(c.host, c.port));
}

bool HttpServer::run() { return impl_->server.listen_after_bind(); }

void HttpServer::stop() { impl_->server.stop(); }

}  // namespace pensieve::server
