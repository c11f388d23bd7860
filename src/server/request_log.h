// Debugging aid (`--log-requests DIR`): every API request the server receives saved as one JSON
// file, so what a client really sends can be read and replayed. Credentials are never written.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "core/result.h"
#include "server/http_types.h"

namespace pensieve::server {

// Whether requests to `path` are saved: /v1/messages, /v1/messages/count_tokens and
// /v1/chat/completions (the routes whose bodies say what a client asks for).
bool logged_route(std::string_view path);

// Headers that may carry credentials and are never written: authorization, x-api-key, cookies,
// and any name containing "key", "token", "secret", "auth" or "password".
bool secret_header(std::string_view name);

// "20260102T030405.678Z-req_abc-count_tokens.json": UTC time to the millisecond (file names sort
// in arrival order), the request id, the route's last path segment(s) joined by '_'.
std::string request_log_name(std::chrono::system_clock::time_point received,
                             std::string_view request_id, std::string_view path);

// The file's text, a JSON object: received_at, request_id, method, path, query, headers (names
// in lower case, secrets left out), status (of the response; 200 for a stream that started),
// error (the error body, for a status >= 400), body_bytes and body (the request body as JSON, or
// as a string when it is not valid JSON). Pretty-printed.
std::string request_log_text(std::chrono::system_clock::time_point received,
                             const HttpRequest& request, std::string_view request_id,
                             const HttpResponse& response);

// Writes the request into `dir` (created, owner-only, when missing) as a file readable by its
// owner only; returns the file's path. Errors start with "request log: " and name the path.
Expected<std::string> write_request_log(const std::string& dir, const HttpRequest& request,
                                        std::string_view request_id, const HttpResponse& response);

}  // namespace pensieve::server
