// The request log (--log-requests): file names, the saved JSON, credentials left out, and a
// directory that cannot be written reported as an error rather than failing the request.
#include "server/request_log.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "server/json_fields.h"

namespace pensieve::server {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string temp_dir() {
  std::string pattern = ::testing::TempDir() + "request_log_XXXXXX";
  char* made = ::mkdtemp(pattern.data());
  EXPECT_NE(made, nullptr);
  return pattern;
}

HttpRequest messages_request() {
  HttpRequest r;
  r.method = "POST";
  r.path = "/v1/messages";
  r.params = {{"beta", "true"}};
  r.headers = {{"Content-Type", "application/json"},       {"X-Api-Key", "sk-secret-1"},
               {"Authorization", "Bearer sk-secret-2"},    {"anthropic-version", "2023-06-01"},
               {"anthropic-beta", "claude-code-20250219"}, {"X-Goog-Api-Key", "sk-secret-3"},
               {"x-session-token", "sk-secret-4"}};
  r.body = R"({"model":"claude-sonnet-4-5","max_tokens":32000,"messages":[]})";
  return r;
}

TEST(RequestLog, LogsOnlyTheApiRoutes) {
  EXPECT_TRUE(logged_route("/v1/messages"));
  EXPECT_TRUE(logged_route("/v1/messages/count_tokens"));
  EXPECT_TRUE(logged_route("/v1/chat/completions"));
  EXPECT_FALSE(logged_route("/health"));
  EXPECT_FALSE(logged_route("/v1/models"));
  EXPECT_FALSE(logged_route("/metrics"));
}

TEST(RequestLog, NamesFilesByTimeRequestAndRoute) {
  const auto when = std::chrono::system_clock::time_point(std::chrono::milliseconds(1767323045678));
  EXPECT_EQ(request_log_name(when, "req_abc", "/v1/messages"),
            "20260102T030405.678Z-req_abc-messages.json");
  EXPECT_EQ(request_log_name(when, "req_abc", "/v1/messages/count_tokens"),
            "20260102T030405.678Z-req_abc-count_tokens.json");
  EXPECT_EQ(request_log_name(when, "req_abc", "/v1/chat/completions"),
            "20260102T030405.678Z-req_abc-chat_completions.json");
}

TEST(RequestLog, LeavesCredentialsOut) {
  EXPECT_TRUE(secret_header("x-api-key"));
  EXPECT_TRUE(secret_header("Authorization"));
  EXPECT_TRUE(secret_header("Proxy-Authorization"));
  EXPECT_TRUE(secret_header("Cookie"));
  EXPECT_FALSE(secret_header("anthropic-beta"));
  EXPECT_FALSE(secret_header("user-agent"));
  EXPECT_FALSE(secret_header("x-stainless-retry-count"));
}

TEST(RequestLog, WritesTheRequestAsJson) {
  const std::string dir = temp_dir() + "/nested/requests";  // created on first use
  HttpResponse response;
  auto path = write_request_log(dir, messages_request(), "req_123", response);
  ASSERT_TRUE(path) << path.error().message;
  EXPECT_NE(path->find("-req_123-messages.json"), std::string::npos) << *path;
  const std::string text = read_file(*path);
  for (const char* secret : {"sk-secret-1", "sk-secret-2", "sk-secret-3", "sk-secret-4"}) {
    EXPECT_EQ(text.find(secret), std::string::npos) << secret << " in " << text;
  }
  auto entry = parse_json_object(text);
  ASSERT_TRUE(entry) << entry.error().message;
  EXPECT_EQ((*entry)["method"], "POST");
  EXPECT_EQ((*entry)["path"], "/v1/messages");
  EXPECT_EQ((*entry)["request_id"], "req_123");
  EXPECT_EQ((*entry)["status"], 200);
  EXPECT_EQ((*entry)["query"]["beta"], "true");
  EXPECT_EQ((*entry)["headers"]["anthropic-beta"], "claude-code-20250219");
  EXPECT_EQ((*entry)["headers"]["content-type"], "application/json");
  EXPECT_FALSE((*entry)["headers"].contains("x-api-key"));
  EXPECT_FALSE((*entry)["headers"].contains("authorization"));
  EXPECT_EQ((*entry)["body"]["max_tokens"], 32000);
  EXPECT_EQ((*entry)["body_bytes"], messages_request().body.size());
  EXPECT_FALSE(entry->contains("error"));
  struct stat st {};
  ASSERT_EQ(::stat(path->c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(RequestLog, KeepsABodyThatIsNotJsonAndTheErrorAnswered) {
  const std::string dir = temp_dir();
  HttpRequest request = messages_request();
  request.body = "{not json";
  HttpResponse response;
  response.status = 400;
  response.body = R"({"type":"error","error":{"type":"invalid_request_error","message":"bad"}})";
  auto path = write_request_log(dir, request, "req_9", response);
  ASSERT_TRUE(path) << path.error().message;
  auto entry = parse_json_object(read_file(*path));
  ASSERT_TRUE(entry) << entry.error().message;
  EXPECT_EQ((*entry)["body"], "{not json");
  EXPECT_EQ((*entry)["status"], 400);
  EXPECT_EQ((*entry)["error"]["error"]["message"], "bad");
}

TEST(RequestLog, ReportsADirectoryThatCannotBeMade) {
  const std::string dir = temp_dir();
  const std::string file = dir + "/plain-file";
  std::ofstream(file) << "x";
  auto path = write_request_log(file + "/sub", messages_request(), "req_1", HttpResponse{});
  ASSERT_FALSE(path);
  EXPECT_TRUE(path.error().message.starts_with("request log: cannot create directory '" + file))
      << path.error().message;
}

}  // namespace
}  // namespace pensieve::server
