// The Router on the real TinyStories-656K model, without sockets: authentication, error bodies,
// count_tokens against usage.input_tokens, a stream written in order, and a client that goes
// away mid-stream cancelling its generation.
#include "server/routes.h"

#include <gtest/gtest.h>

#include "model/forward_cpu.h"
#include "model/model.h"
#include "server/json_fields.h"

namespace pensieve::server {
namespace {

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto model = Model::load(PENSIEVE_SHARED_DIR "/models/TinyStories-656K-Q8_0.gguf");
    ASSERT_TRUE(model) << model.error().message;
    model_ = std::move(*model);
    auto tokenizer = Tokenizer::from_gguf(model_->file());
    ASSERT_TRUE(tokenizer);
    tokenizer_ = std::move(*tokenizer);
    auto chat_template = make_chat_template("", "");
    ASSERT_TRUE(chat_template);
    template_ = std::move(*chat_template);
    config_.api_key = "sekrit";
    config_.ping_interval_s = 1;
  }

  void start(SchedulerOptions options) {
    forward_ = std::make_unique<CpuForward>(model_->hparams(), model_->weights(), 512, 1, 64,
                                            GgmlType::kF16);
    scheduler_ = std::make_unique<Scheduler>(*forward_, *tokenizer_, options);
    renderer_ = std::make_unique<PromptRenderer>(*tokenizer_, *template_);
    router_ = std::make_unique<Router>(config_, *scheduler_, *renderer_, metrics_,
                                       ServedModel{"tiny", "2026-01-01T00:00:00Z", 0});
  }

  HttpRequest post(std::string path, std::string body) {
    HttpRequest r;
    r.method = "POST";
    r.path = std::move(path);
    r.body = std::move(body);
    r.headers = {{"X-Api-Key", "sekrit"}};
    return r;
  }

  std::unique_ptr<Model> model_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<ChatTemplate> template_;
  ServerConfig config_;
  Metrics metrics_;
  std::unique_ptr<CpuForward> forward_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<PromptRenderer> renderer_;
  std::unique_ptr<Router> router_;
};

constexpr const char* kGreedy =
    R"({"model":"claude-haiku","max_tokens":12,"temperature":0,"system":"Tell a story.",)"
    R"("messages":[{"role":"user","content":"Once upon a time"}]})";

// Collects what a stream writes; `fail_after` writes, it reports the client gone.
class RecordingSink : public StreamSink {
 public:
  explicit RecordingSink(int fail_after = -1) : fail_after_(fail_after) {}
  bool write(std::string_view data) override {
    if (fail_after_ >= 0 && n_writes_ >= fail_after_) return false;
    ++n_writes_;
    text += data;
    return true;
  }
  std::string text;

 private:
  int fail_after_;
  int n_writes_ = 0;
};

TEST_F(RouterTest, AuthenticatesWithEitherHeader) {
  start({});
  HttpRequest r = post("/v1/messages/count_tokens", kGreedy);
  EXPECT_EQ(router_->handle(r).status, 200);
  r.headers = {{"Authorization", "Bearer sekrit"}};
  EXPECT_EQ(router_->handle(r).status, 200);
  r.headers = {{"x-api-key", "sekrit2"}};
  HttpResponse denied = router_->handle(r);
  EXPECT_EQ(denied.status, 401);
  const Json body = Json::parse(denied.body);
  EXPECT_EQ(body["type"], "error");
  EXPECT_EQ(body["error"]["type"], "authentication_error");
  EXPECT_EQ(body["request_id"], *find_header(denied.headers, "request-id"));
  r.headers.clear();
  EXPECT_EQ(router_->handle(r).status, 401);
  // Health needs no key, for launchers and load balancers.
  HttpRequest health{"GET", "/health", {}, {}, "", ""};
  EXPECT_EQ(router_->handle(health).status, 200);
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("abc", "abcd"));
  EXPECT_FALSE(constant_time_equal("", "a"));
}

TEST_F(RouterTest, CountTokensEqualsInputTokens) {
  start({});
  HttpResponse count = router_->handle(post("/v1/messages/count_tokens", kGreedy));
  ASSERT_EQ(count.status, 200) << count.body;
  HttpResponse message = router_->handle(post("/v1/messages", kGreedy));
  ASSERT_EQ(message.status, 200) << message.body;
  const Json m = Json::parse(message.body);
  EXPECT_EQ(Json::parse(count.body)["input_tokens"], m["usage"]["input_tokens"]);
  EXPECT_EQ(m["model"], "claude-haiku");
  EXPECT_EQ(m["stop_reason"], "max_tokens");
  EXPECT_EQ(m["usage"]["output_tokens"], 12);
  EXPECT_TRUE(m["id"].get<std::string>().starts_with("msg_"));
}

TEST_F(RouterTest, ErrorsHaveTheirStatusAndType) {
  start({});
  HttpResponse missing = router_->handle(post("/v1/nothing", "{}"));
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(Json::parse(missing.body)["error"]["type"], "not_found_error");
  std::string words;
  for (int i = 0; i < 700; ++i) words += "word ";
  HttpResponse overflow = router_->handle(
      post("/v1/messages",
           R"({"max_tokens":5,"messages":[{"role":"user","content":")" + words + R"("}]})"));
  EXPECT_EQ(overflow.status, 400);
  const std::string message = Json::parse(overflow.body)["error"]["message"];
  EXPECT_TRUE(message.starts_with("prompt is too long: ")) << message;
  EXPECT_TRUE(message.ends_with(" tokens > 511 maximum")) << message;
  HttpResponse openai = router_->handle(post("/v1/chat/completions", "{"));
  EXPECT_EQ(openai.status, 400);
  EXPECT_EQ(Json::parse(openai.body)["error"]["type"], "invalid_request_error");
}

TEST_F(RouterTest, StreamsAndStopsWhenTheClientLeaves) {
  // 10 ms per token, so the stream is still generating when the client leaves.
  start({4, 10});
  std::string body = kGreedy;
  body.replace(body.find("\"max_tokens\":12"), 15, "\"max_tokens\":300,\"stream\":true");
  HttpResponse whole = router_->handle(post("/v1/messages", body));
  ASSERT_EQ(whole.status, 200);
  EXPECT_EQ(whole.content_type, "text/event-stream");
  RecordingSink sink;
  whole.stream(sink);
  EXPECT_TRUE(sink.text.starts_with("event: message_start\n"));
  EXPECT_TRUE(sink.text.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));

  HttpResponse left = router_->handle(post("/v1/messages", body));
  RecordingSink leaving(4);  // message_start and three more writes, then gone
  left.stream(leaving);
  EXPECT_EQ(leaving.text.find("message_stop"), std::string::npos);
  EXPECT_LT(left.record->output_tokens, 20);
  const std::string metrics = metrics_.render();
  EXPECT_NE(metrics.find("pensieve_generations_total{stop_reason=\"cancelled\"} 1"),
            std::string::npos)
      << metrics;
}

TEST_F(RouterTest, FullQueueIs429WithRetryAfter) {
  start({0, 20});
  std::string body = kGreedy;
  body.replace(body.find("\"max_tokens\":12"), 15, "\"max_tokens\":300,\"stream\":true");
  HttpResponse first = router_->handle(post("/v1/messages", body));
  ASSERT_EQ(first.status, 200);
  HttpResponse second = router_->handle(post("/v1/messages", kGreedy));
  EXPECT_EQ(second.status, 429);
  EXPECT_EQ(Json::parse(second.body)["error"]["type"], "rate_limit_error");
  EXPECT_EQ(find_header(second.headers, "retry-after"), "1");
  first.abandon();  // the client never read it
  RecordingSink sink;
  first.stream(sink);  // ends at once: the sequence was cancelled
  EXPECT_EQ(sink.text.find("message_stop"), std::string::npos);
}

}  // namespace
}  // namespace pensieve::server
