#include "hub/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <memory>
#include <mutex>

namespace pensieve::hub {
namespace {

std::string to_lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() &&
         (text.back() == ' ' || text.back() == '\t' || text.back() == '\r' || text.back() == '\n'))
    text.remove_suffix(1);
  return text;
}

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct CurlDeleter {
  void operator()(CURL* curl) const { curl_easy_cleanup(curl); }
  void operator()(CURLU* url) const { curl_url_cleanup(url); }
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using CurlPtr = std::unique_ptr<CURL, CurlDeleter>;
using CurlUrlPtr = std::unique_ptr<CURLU, CurlDeleter>;
using CurlListPtr = std::unique_ptr<curl_slist, CurlDeleter>;

// One hop's state, shared with curl's callbacks.
struct Hop {
  const HttpRequest* request = nullptr;
  size_t max_body_bytes = 0;
  HttpResponse response;
  int64_t n_sink_bytes = 0;
  bool sink_aborted = false;
};

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* hop = static_cast<Hop*>(user);
  const size_t n = size * count;
  std::string_view line = trim(std::string_view(data, n));
  if (line.starts_with("HTTP/")) {
    // A new response (an interim 1xx, or a proxy's CONNECT answer, came before): start over.
    hop->response.headers.clear();
    const size_t space = line.find(' ');
    hop->response.status = space == std::string_view::npos
                               ? 0
                               : std::atoi(std::string(line.substr(space + 1, 3)).c_str());
    return n;
  }
  const size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    hop->response.headers[to_lower(trim(line.substr(0, colon)))] =
        std::string(trim(line.substr(colon + 1)));
  }
  return n;
}

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* hop = static_cast<Hop*>(user);
  const size_t n = size * count;
  const std::string_view chunk(data, n);
  const int status = hop->response.status;
  if (status >= 200 && status < 300 && hop->request->sink) {
    if (!hop->request->sink(hop->response, chunk)) {
      hop->sink_aborted = true;
      return 0;  // any count but n aborts the transfer
    }
    hop->n_sink_bytes += static_cast<int64_t>(n);
    return n;
  }
  std::string& body = hop->response.body;
  if (body.size() < hop->max_body_bytes) {
    body.append(chunk.substr(0, hop->max_body_bytes - body.size()));
  }
  return n;
}

bool is_redirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

}  // namespace

std::optional<std::string> HttpResponse::header(std::string_view lower_name) const {
  auto it = headers.find(lower_name);
  if (it == headers.end()) return std::nullopt;
  return it->second;
}

HttpClient::HttpClient(HttpClientOptions options) : options_(std::move(options)) { global_init(); }

std::string HttpClient::origin_of(const std::string& url) {
  global_init();
  CurlUrlPtr handle(curl_url());
  if (!handle || curl_url_set(handle.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) return "";
  auto part = [&](CURLUPart which, unsigned flags) -> std::string {
    char* text = nullptr;
    if (curl_url_get(handle.get(), which, &text, flags) != CURLUE_OK || text == nullptr) return "";
    std::string out = to_lower(text);
    curl_free(text);
    return out;
  };
  const std::string scheme = part(CURLUPART_SCHEME, 0);
  const std::string host = part(CURLUPART_HOST, 0);
  const std::string port = part(CURLUPART_PORT, CURLU_DEFAULT_PORT);
  if (scheme.empty() || host.empty()) return "";
  return scheme + "://" + host + ":" + port;
}

std::string HttpClient::resolve_url(const std::string& base, const std::string& location) {
  global_init();
  CurlUrlPtr handle(curl_url());
  if (!handle || curl_url_set(handle.get(), CURLUPART_URL, base.c_str(), 0) != CURLUE_OK ||
      curl_url_set(handle.get(), CURLUPART_URL, location.c_str(), 0) != CURLUE_OK) {
    return "";
  }
  char* text = nullptr;
  if (curl_url_get(handle.get(), CURLUPART_URL, &text, 0) != CURLUE_OK || text == nullptr) {
    return "";
  }
  std::string out = text;
  curl_free(text);
  return out;
}

namespace {

// One request to `url`, no redirect followed. The token goes only where the caller says.
Expected<HttpResponse> perform(CURL* c, const HttpClientOptions& options,
                               const HttpRequest& request, const std::string& url, bool with_token,
                               int64_t* n_sink_bytes) {
  CurlListPtr headers;
  auto add = [&headers](const std::string& line) {
    curl_slist* grown = curl_slist_append(headers.get(), line.c_str());
    PV_CHECK(grown != nullptr, "http: curl_slist_append failed");
    (void)headers.release();
    headers.reset(grown);
  };
  for (const std::string& line : request.headers) add(line);
  if (with_token) add("Authorization: Bearer " + options.bearer_token);
  Hop hop;
  hop.request = &request;
  hop.max_body_bytes = options.max_body_bytes;
  hop.response.url = url;
  char error_text[CURL_ERROR_SIZE] = {0};
  curl_easy_reset(c);
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  if (request.method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  }
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_USERAGENT, options.user_agent.c_str());
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, options.connect_timeout_s);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, options.stall_timeout_s);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error_text);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &hop);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &hop);
  const CURLcode code = curl_easy_perform(c);
  if (n_sink_bytes != nullptr) *n_sink_bytes += hop.n_sink_bytes;
  if (hop.sink_aborted) {
    return make_error(ErrorCode::kInternal, "http: transfer of {} aborted", url);
  }
  if (code != CURLE_OK) {
    return make_error(ErrorCode::kUnavailable, "{}: {}", url,
                      error_text[0] != '\0' ? error_text : curl_easy_strerror(code));
  }
  return std::move(hop.response);
}

}  // namespace

Expected<HttpResponse> HttpClient::send(const HttpRequest& request, int64_t* n_body_bytes) const {
  if (n_body_bytes != nullptr) *n_body_bytes = 0;
  const std::string first_origin = origin_of(request.url);
  if (first_origin.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "http: '{}' is not a valid URL", request.url);
  }
  CurlPtr curl(curl_easy_init());
  PV_CHECK(curl != nullptr, "http: curl_easy_init failed");
  std::string url = request.url;
  for (int n_hops = 0;; ++n_hops) {
    const std::string origin = origin_of(url);
    if (!origin.starts_with("http://") && !origin.starts_with("https://")) {
      return make_error(ErrorCode::kInvalidArgument, "http: redirected to '{}', not an HTTP URL",
                        url);
    }
    // The token belongs to the first origin; a CDN (another host, or another port) never sees it.
    const bool with_token = !options_.bearer_token.empty() && origin == first_origin;
    PV_TRY(HttpResponse response,
           perform(curl.get(), options_, request, url, with_token, n_body_bytes));
    auto location = response.header("location");
    if (!is_redirect(response.status) || !location || request.redirects == Redirects::kNone) {
      return response;
    }
    const std::string next = resolve_url(url, *location);
    if (next.empty()) {
      return make_error(ErrorCode::kInvalidFormat, "http: {} redirected to a bad URL '{}'", url,
                        *location);
    }
    if (request.redirects == Redirects::kSameOrigin && origin_of(next) != first_origin) {
      return response;
    }
    if (n_hops + 1 > options_.max_redirects) {
      return make_error(ErrorCode::kInvalidFormat, "http: more than {} redirects from {}",
                        options_.max_redirects, request.url);
    }
    url = next;
  }
}

std::string url_encode(std::string_view text, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved || (keep_slash && c == '/')) {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace pensieve::hub
