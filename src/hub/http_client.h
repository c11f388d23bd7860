// A small HTTP(S) client over libcurl for the hub: one request at a time, redirects followed by
// hand so that the Authorization header goes only to the origin it was meant for.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace pensieve::hub {

// Header names in lower case; the last value wins for repeated names.
using HttpHeaders = std::map<std::string, std::string, std::less<>>;

struct HttpResponse {
  int status = 0;
  std::string url;      // of the response that ended the redirect chain
  HttpHeaders headers;  // of that response
  std::string body;     // when no sink took it (capped; errors keep their start)

  std::optional<std::string> header(std::string_view lower_name) const;
};

enum class Redirects {
  kNone,        // answer the first response, 3xx included
  kSameOrigin,  // follow redirects within the first URL's origin, answer the first one leaving it
  kAll,         // follow every redirect (up to a limit)
};

struct HttpRequest {
  std::string method = "GET";  // GET or HEAD
  std::string url;
  std::vector<std::string> headers;  // "Name: value", sent to every hop
  Redirects redirects = Redirects::kAll;
  // Receives the body of a 2xx response that ends the chain, chunk by chunk; returning false
  // aborts the transfer (send then fails with kInternal; the sink keeps its own reason).
  // Unset: the body lands in HttpResponse::body.
  std::function<bool(const HttpResponse& head, std::string_view chunk)> sink;
};

struct HttpClientOptions {
  std::string bearer_token;  // sent as Authorization: Bearer to the first URL's origin only
  std::string user_agent = "pensieve";
  long connect_timeout_s = 30;
  long stall_timeout_s = 60;  // abort when no byte arrives for this long
  int max_redirects = 10;
  size_t max_body_bytes = 32 << 20;  // bodies kept in memory (API answers, error pages)
};

class HttpClient {
 public:
  explicit HttpClient(HttpClientOptions options);

  // Errors (kUnavailable): the transfer failed (DNS, connect, TLS, interrupted), naming the URL
  // and curl's reason; *n_body_bytes, when given, says how many body bytes reached the sink.
  // Any HTTP status is a response, not an error.
  Expected<HttpResponse> send(const HttpRequest& request, int64_t* n_body_bytes = nullptr) const;

  // "scheme://host:port" with the scheme's default port filled in; "" when `url` is not valid.
  static std::string origin_of(const std::string& url);
  // `location` (absolute or relative) resolved against `base`; "" when it cannot be.
  static std::string resolve_url(const std::string& base, const std::string& location);

 private:
  HttpClientOptions options_;
};

// Percent-encodes everything but unreserved characters (and '/' when keep_slash).
std::string url_encode(std::string_view text, bool keep_slash);

}  // namespace pensieve::hub
