// The wire formats without a server: Anthropic and OpenAI request parsing (every field, every
// error path naming its field, Claude Code's captured requests) and the reply formats (SSE frame
// order and index discipline, stop reasons).
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "engine/prompt.h"
#include "server/anthropic/format.h"
#include "server/anthropic/parse.h"
#include "server/json_fields.h"
#include "server/openai/format.h"
#include "server/openai/parse.h"

namespace pensieve::server {
namespace {

using anthropic::Endpoint;
using anthropic::parse_messages_request;

std::string error_of(std::string_view body, Endpoint endpoint = Endpoint::kMessages) {
  auto parsed = parse_messages_request(body, endpoint);
  return parsed ? "" : parsed.error().message;
}

TEST(AnthropicParse, ReadsTextSystemTurnsAndSampling) {
  auto r = parse_messages_request(R"({
    "model": "claude-sonnet-4-5", "max_tokens": 32000, "stream": true,
    "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
      {"role": "user", "content": "Hi"},
      {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": "x"},
                                        {"type": "text", "text": "Hello"}]},
      {"role": "system", "content": "Mid-conversation note"},
      {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
    "temperature": 0.5, "top_p": 0.9, "top_k": 7, "stop_sequences": ["END"],
    "unknown_field": {"ignored": true}, "thinking": {"type": "adaptive"}})",
                                  Endpoint::kMessages);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->model, "claude-sonnet-4-5");
  EXPECT_EQ(r->max_tokens, 32000);
  EXPECT_TRUE(r->stream);
  ASSERT_EQ(r->messages.size(), 5u);
  EXPECT_EQ(r->messages[0].role, ChatRole::kSystem);
  EXPECT_EQ(r->messages[0].content, "Be brief.");
  EXPECT_EQ(r->messages[2].content, "Hello");  // the thinking block is dropped
  EXPECT_EQ(r->messages[3].role, ChatRole::kSystem);
  EXPECT_EQ(r->messages[4].content, "a\nb");
  EXPECT_FLOAT_EQ(r->sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(r->sampling.top_p, 0.9f);
  EXPECT_EQ(r->sampling.top_k, 7);
  EXPECT_EQ(r->stop_sequences, std::vector<std::string>{"END"});
}

TEST(AnthropicParse, ReadsToolUseAndResults) {
  auto r = parse_messages_request(R"({"max_tokens": 5, "messages": [
    {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Read",
                                       "input": {"file_path": "/x"}}]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                  "content": [{"type": "text", "text": "hello"}],
                                  "is_error": true}]}],
    "tools": [{"name": "Read", "description": "Reads", "input_schema": {"type": "object"}},
              {"type": "web_search_20250305", "name": "web_search"}]})",
                                  Endpoint::kMessages);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->messages.size(), 2u);
  EXPECT_EQ(r->messages[0].role, ChatRole::kAssistant);
  ASSERT_EQ(r->messages[0].tool_calls.size(), 1u);
  EXPECT_EQ(r->messages[0].tool_calls[0].id, "toolu_1");
  EXPECT_EQ(r->messages[0].tool_calls[0].name, "Read");
  EXPECT_EQ(r->messages[0].tool_calls[0].arguments_json, R"({"file_path":"/x"})");
  EXPECT_EQ(r->messages[1].role, ChatRole::kTool);
  EXPECT_EQ(r->messages[1].tool_call_id, "toolu_1");
  EXPECT_TRUE(r->messages[1].tool_error);
  EXPECT_EQ(r->messages[1].content, "hello");
  // Templates without tools see them as text.
  const std::vector<ChatMessage> text = tools_as_text(r->messages);
  ASSERT_EQ(text.size(), 2u);
  EXPECT_EQ(text[0].content,
            R"(<tool_call>{"name": "Read", "arguments": {"file_path":"/x"}}</tool_call>)");
  EXPECT_EQ(text[1].role, ChatRole::kUser);
  EXPECT_EQ(text[1].content, "[tool_result id=toolu_1 error] hello");
  ASSERT_EQ(r->tools.size(), 1u);  // the server tool has no schema to render
  EXPECT_EQ(r->tools[0].parameters_json, R"({"type":"object"})");
}

TEST(AnthropicParse, ToolResultsComeBeforeTheTurnsTextAndJoinItAsText) {
  auto r = parse_messages_request(R"({"max_tokens": 5, "messages": [
    {"role": "user", "content": "list files"},
    {"role": "assistant", "content": [{"type": "text", "text": "Sure."},
      {"type": "tool_use", "id": "a", "name": "Bash", "input": {"command": "ls"}},
      {"type": "tool_use", "id": "b", "name": "Bash", "input": {"command": "pwd"}}]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "a", "content": "x.txt"},
      {"type": "tool_result", "tool_use_id": "b", "content": "/tmp"},
      {"type": "text", "text": "thanks"}]}]})",
                                  Endpoint::kMessages);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->messages.size(), 5u);
  EXPECT_EQ(r->messages[1].content, "Sure.");
  EXPECT_EQ(r->messages[1].tool_calls.size(), 2u);
  EXPECT_EQ(r->messages[2].role, ChatRole::kTool);
  EXPECT_EQ(r->messages[3].role, ChatRole::kTool);
  EXPECT_EQ(r->messages[4].role, ChatRole::kUser);
  const std::vector<ChatMessage> text = tools_as_text(r->messages);
  ASSERT_EQ(text.size(), 3u);
  EXPECT_EQ(
      text[1].content,
      "Sure.\n<tool_call>{\"name\": \"Bash\", \"arguments\": {\"command\":\"ls\"}}</tool_call>\n"
      "<tool_call>{\"name\": \"Bash\", \"arguments\": {\"command\":\"pwd\"}}</tool_call>");
  EXPECT_EQ(text[2].content, "[tool_result id=a] x.txt\n[tool_result id=b] /tmp\nthanks");
  EXPECT_EQ(error_of(R"({"max_tokens": 1, "messages": [{"role": "user", "content": [
              {"type": "tool_use", "id": "a", "name": "f", "input": {}}]}]})"),
            "messages.0.content.0: tool_use blocks belong in assistant messages");
  EXPECT_EQ(error_of(R"({"max_tokens": 1, "messages": [{"role": "assistant", "content": [
              {"type": "tool_result", "tool_use_id": "a", "content": "x"}]}]})"),
            "messages.0.content.0: tool_result blocks belong in user messages");
}

// Document blocks: a text source is read; any other source, of any JSON type, is a clear 400.
TEST(AnthropicParse, DocumentBlocksNeedATextSource) {
  auto r = parse_messages_request(R"({"max_tokens": 1, "messages": [{"role": "user", "content": [
    {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "Notes"}},
    {"type": "text", "text": "Summarize"}]}]})",
                                  Endpoint::kMessages);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->messages[0].content, "Notes\nSummarize");
  const std::string want =
      "messages.0.content.0: document blocks are supported only with a text source (the loaded "
      "model reads text only)";
  for (const char* source : {R"({"type": 122122, "data": "x"})", R"({"type": "base64"})", R"({})",
                             R"("text")", R"(null)"}) {
    EXPECT_EQ(error_of(std::string(R"({"max_tokens": 1, "messages": [{"role": "user", "content": [
                {"type": "document", "source": )") +
                       source + "}]}]}"),
              want)
        << source;
  }
}

// Requests Claude Code 2.1.197 sent to pensieve (captured with --log-requests): every one parses,
// with all its tools, and none keeps the billing header.
TEST(AnthropicParse, CapturedClaudeCodeRequests) {
  const std::string dir = std::string(PENSIEVE_TEST_DATA_DIR) + "/fixtures/claude-code-captured/";
  int n_files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".json") continue;
    ++n_files;
    const std::string name = entry.path().filename().string();
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    const Json capture = Json::parse(text.str());
    const Json& body = capture["body"];
    auto r = parse_messages_request(dump_json(body), Endpoint::kMessages);
    ASSERT_TRUE(r) << name << ": " << r.error().message;
    EXPECT_EQ(r->tools.size(), body["tools"].size()) << name;
    EXPECT_GE(r->tools.size(), 20u) << name;
    for (const ChatMessage& m : r->messages) {
      EXPECT_EQ(m.content.find("x-anthropic-billing-header"), std::string::npos) << name;
    }
  }
  EXPECT_GE(n_files, 5);
}

TEST(AnthropicParse, DropsClaudeCodesBillingHeaderFromTheSystemPrompt) {
  auto r = parse_messages_request(R"({"max_tokens": 5,
    "system": [{"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197.3bb; cc_entrypoint=sdk-cli;"},
               {"type": "text", "text": "You are Claude Code."}],
    "messages": [{"role": "user", "content": "x-anthropic-billing-header: stays in user text"}]})",
                                  Endpoint::kMessages);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->messages.size(), 2u);
  EXPECT_EQ(r->messages[0].content, "You are Claude Code.");
  EXPECT_EQ(r->messages[1].content, "x-anthropic-billing-header: stays in user text");
}

TEST(AnthropicParse, ErrorsNameTheField) {
  EXPECT_EQ(error_of(R"({"messages": [{"role": "user", "content": "x"}]})"),
            "max_tokens: required");
  EXPECT_EQ(error_of(R"({"max_tokens": 0, "messages": []})"),
            "max_tokens: 0 is outside 1..9223372036854775807");
  EXPECT_EQ(error_of(R"({"max_tokens": 1, "messages": []})"),
            "messages: expected a non-empty array");
  EXPECT_EQ(error_of(R"({"max_tokens": 1, "messages": [{"role": "bot", "content": "x"}]})"),
            "messages.0.role: 'bot' is not one of user, assistant, system");
  EXPECT_EQ(error_of(R"({"max_tokens": 1, "messages": [{"role": "user", "content": [
              {"type": "text", "text": "x"}, {"type": "image", "source": {}}]}]})"),
            "messages.0.content.1: image blocks are not supported: the loaded model reads text "
            "only");
  EXPECT_EQ(error_of(R"({"max_tokens": 1, "messages": [{"role": "user", "content": 5}]})"),
            "messages.0.content: expected a string or an array of blocks");
  EXPECT_EQ(error_of(R"({"max_tokens": 1, "temperature": 3, "messages": [
              {"role": "user", "content": "x"}]})"),
            "temperature: 3 is outside 0..2");
  EXPECT_EQ(error_of(R"({"max_tokens": 1, "stop_sequences": [""], "messages": [
              {"role": "user", "content": "x"}]})"),
            "stop_sequences.0: expected a non-empty string");
  EXPECT_EQ(error_of(R"([1, 2])"), "request body: expected a JSON object");
  EXPECT_TRUE(error_of("{\"max_tokens\": 1").starts_with("request body is not valid JSON: "));
  EXPECT_TRUE(error_of("{\"model\": \"a\xff\"}").find("UTF-8") != std::string::npos);
  // count_tokens has no max_tokens.
  EXPECT_EQ(error_of(R"({"messages": [{"role": "user", "content": "x"}]})", Endpoint::kCountTokens),
            "");
}

// Claude Code's own requests (every field it sends, a role:"system" message at the end, a tool
// round trip) parse.
TEST(AnthropicParse, ClaudeCodeFixtures) {
  for (const char* name :
       {"first-request.json", "tool-round-trip-1.json", "tool-round-trip-2.json"}) {
    std::ifstream in(std::string(PENSIEVE_SHARED_DIR "/fixtures/claude-code-2.1.197/") + name);
    ASSERT_TRUE(in) << name;
    std::stringstream text;
    text << in.rdbuf();
    const Json fixture = Json::parse(text.str());
    const std::string body = dump_json(fixture["body"]);
    auto r = parse_messages_request(body, Endpoint::kMessages);
    ASSERT_TRUE(r) << name << ": " << r.error().message;
    EXPECT_TRUE(r->stream) << name;
    EXPECT_GE(r->tools.size(), 1u) << name;
    EXPECT_EQ(r->messages[0].role, ChatRole::kSystem) << name;
  }
}

TEST(OpenAIParse, ReadsFunctionTools) {
  auto r = openai::parse_chat_request(R"({"messages": [{"role": "user", "content": "x"}],
    "tools": [{"type": "function", "function": {"name": "f", "description": "d",
               "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}}},
              {"type": "function", "function": {"name": "g"}}]})");
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->tools.size(), 2u);
  EXPECT_EQ(r->tools[0].name, "f");
  EXPECT_EQ(r->tools[0].description, "d");
  EXPECT_EQ(r->tools[0].parameters_json,
            R"({"type":"object","properties":{"a":{"type":"integer"}}})");
  EXPECT_EQ(r->tools[1].parameters_json, "{}");
  auto bad = openai::parse_chat_request(R"({"messages": [{"role": "user", "content": "x"}],
    "tools": [{"type": "function", "function": {"description": "no name"}}]})");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message, "tools.0.function.name: required");
}

TEST(OpenAIParse, ReadsMessagesStopAndOptions) {
  auto r = openai::parse_chat_request(R"({"model": "m", "max_completion_tokens": 9,
    "messages": [{"role": "developer", "content": "sys"},
                 {"role": "user", "content": [{"type": "text", "text": "hi"}]},
                 {"role": "assistant", "content": null, "tool_calls": [
                   {"id": "c1", "type": "function",
                    "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
                 {"role": "tool", "tool_call_id": "c1", "content": "42"}],
    "stop": "END", "stream": true, "stream_options": {"include_usage": true}, "seed": 3})");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->max_tokens, 9);
  EXPECT_TRUE(r->stream);
  EXPECT_TRUE(r->include_usage);
  EXPECT_EQ(r->sampling.seed, 3u);
  ASSERT_EQ(r->messages.size(), 4u);
  EXPECT_EQ(r->messages[0].role, ChatRole::kSystem);
  ASSERT_EQ(r->messages[2].tool_calls.size(), 1u);
  EXPECT_EQ(r->messages[2].tool_calls[0].arguments_json, R"({"a":1})");
  EXPECT_EQ(r->messages[3].role, ChatRole::kTool);
  EXPECT_EQ(r->messages[3].tool_call_id, "c1");
  const std::vector<ChatMessage> text = tools_as_text(r->messages);
  EXPECT_EQ(text[2].content, R"(<tool_call>{"name": "f", "arguments": {"a":1}}</tool_call>)");
  EXPECT_EQ(text[3].content, "[tool_result id=c1] 42");
  EXPECT_EQ(r->stop_sequences, std::vector<std::string>{"END"});

  auto bad = openai::parse_chat_request(
      R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message,
            "messages.0.content.0: image_url parts are not supported: the loaded model reads "
            "text only");
  EXPECT_FALSE(openai::parse_chat_request(R"({"n": 2, "messages": [{"role": "user"}]})"));
}

// Splits SSE text into (event, data) pairs.
std::vector<std::pair<std::string, Json>> frames(const std::string& sse) {
  std::vector<std::pair<std::string, Json>> out;
  size_t at = 0;
  while (at < sse.size()) {
    const size_t end = sse.find("\n\n", at);
    EXPECT_NE(end, std::string::npos);
    const std::string frame = sse.substr(at, end - at);
    const size_t newline = frame.find('\n');
    EXPECT_TRUE(frame.starts_with("event: "));
    EXPECT_EQ(frame.substr(newline, 7), "\ndata: ");
    out.emplace_back(frame.substr(7, newline - 7), Json::parse(frame.substr(newline + 7)));
    at = end + 2;
  }
  return out;
}

TEST(AnthropicStream, FramesInProtocolOrder) {
  anthropic::MessageStream stream("msg_1", "claude-x");
  std::string sse = stream.start(12);
  sse += anthropic::MessageStream::ping();
  sse += stream.text("Hel");
  sse += stream.text("lo");
  Outcome outcome{Finish::kStopSequence, "END", 12, 3};
  sse += stream.finish(outcome);
  auto f = frames(sse);
  std::vector<std::string> events;
  for (auto& [event, data] : f) {
    events.push_back(event);
    EXPECT_EQ(data["type"], event);
  }
  EXPECT_EQ(events,
            (std::vector<std::string>{"message_start", "ping", "content_block_start",
                                      "content_block_delta", "content_block_delta",
                                      "content_block_stop", "message_delta", "message_stop"}));
  const Json& usage = f[0].second["message"]["usage"];
  EXPECT_EQ(usage["input_tokens"], 12);
  EXPECT_EQ(usage["output_tokens"], 0);
  EXPECT_EQ(usage["cache_creation_input_tokens"], 0);
  EXPECT_EQ(usage["cache_read_input_tokens"], 0);
  EXPECT_EQ(f[2].second["index"], 0);
  EXPECT_EQ(f[2].second["content_block"], Json::parse(R"({"type":"text","text":""})"));
  EXPECT_EQ(f[4].second["delta"]["text"], "lo");
  EXPECT_EQ(f[5].second["index"], 0);
  EXPECT_EQ(f[6].second["delta"]["stop_reason"], "stop_sequence");
  EXPECT_EQ(f[6].second["delta"]["stop_sequence"], "END");
  EXPECT_EQ(f[6].second["usage"]["output_tokens"], 3);
}

TEST(AnthropicStream, ThinkingBlockEndsWithSignatureBeforeTheText) {
  anthropic::MessageStream stream("msg_1", "m");
  std::string sse = stream.start(5);
  for (const ReplyPart& part : split_reply("<think>Plan it.</think>\nDone.", false)) {
    sse += stream.part(part, [] { return std::string("toolu_x"); });
  }
  sse += stream.finish(Outcome{Finish::kEndTurn, "", 5, 4});
  auto f = frames(sse);
  std::vector<std::string> events;
  for (auto& [event, data] : f) events.push_back(event);
  EXPECT_EQ(events,
            (std::vector<std::string>{"message_start", "content_block_start", "content_block_delta",
                                      "content_block_delta", "content_block_stop",
                                      "content_block_start", "content_block_delta",
                                      "content_block_stop", "message_delta", "message_stop"}));
  EXPECT_EQ(f[1].second["content_block"],
            Json::parse(R"({"type":"thinking","thinking":"","signature":""})"));
  EXPECT_EQ(f[2].second["delta"],
            Json::parse(R"({"type":"thinking_delta","thinking":"Plan it."})"));
  EXPECT_EQ(f[3].second["delta"]["type"], "signature_delta");
  EXPECT_EQ(f[3].second["delta"]["signature"], anthropic::thinking_signature("Plan it."));
  EXPECT_EQ(f[4].second["index"], 0);
  EXPECT_EQ(f[5].second["index"], 1);
  EXPECT_EQ(f[5].second["content_block"]["type"], "text");
  EXPECT_EQ(f[6].second["delta"]["text"], "Done.");

  const Json body = Json::parse(anthropic::message_body(
      "msg_2", "m", split_reply("<think>Plan it.</think>Done.", false),
      Outcome{Finish::kEndTurn, "", 5, 4}, [] { return std::string("toolu_x"); }));
  ASSERT_EQ(body["content"].size(), 2u);
  EXPECT_EQ(body["content"][0]["type"], "thinking");
  EXPECT_EQ(body["content"][0]["thinking"], "Plan it.");
  EXPECT_EQ(body["content"][0]["signature"], anthropic::thinking_signature("Plan it."));
  EXPECT_EQ(body["content"][1], Json::parse(R"({"type":"text","text":"Done."})"));
}

TEST(AnthropicStream, NoTextMeansNoBlock) {
  anthropic::MessageStream stream("msg_1", "m");
  std::string sse = stream.start(1) + stream.finish(Outcome{Finish::kEndTurn, "", 1, 0});
  auto f = frames(sse);
  ASSERT_EQ(f.size(), 3u);
  EXPECT_EQ(f[1].first, "message_delta");
  EXPECT_TRUE(f[1].second["delta"]["stop_sequence"].is_null());
}

TEST(Outcome, MapsStopReasons) {
  GenerateResult r;
  r.n_prompt = 4;
  r.tokens = {1, 2, 3};
  r.reason = StopReason::kMaxTokens;
  EXPECT_EQ(outcome_of(r, {}, 3).finish, Finish::kMaxTokens);
  // max_tokens was clamped to the context left: the context ended it.
  EXPECT_EQ(outcome_of(r, {}, 32000).finish, Finish::kContextWindow);
  r.reason = StopReason::kContextFull;
  EXPECT_EQ(anthropic_stop_reason(outcome_of(r, {}, 32000).finish),
            "model_context_window_exceeded");
  r.reason = StopReason::kStopString;
  r.stop_string = "<|im_end|>";  // the template's end of turn, not the client's
  EXPECT_EQ(outcome_of(r, {"END"}, 10).finish, Finish::kEndTurn);
  r.stop_string = "END";
  Outcome o = outcome_of(r, {"END"}, 10);
  EXPECT_EQ(o.finish, Finish::kStopSequence);
  EXPECT_EQ(o.stop_sequence, "END");
  EXPECT_EQ(openai_finish_reason(Finish::kContextWindow), "length");
  EXPECT_EQ(openai_finish_reason(Finish::kStopSequence), "stop");
}

TEST(OpenAIStream, ChunksThenDone) {
  openai::CompletionStream stream("chatcmpl-1", "m", 7);
  std::string out = stream.start() + stream.text("Hi") +
                    stream.finish(Outcome{Finish::kMaxTokens, "", 3, 1}, true);
  EXPECT_TRUE(out.ends_with("data: [DONE]\n\n"));
  EXPECT_NE(out.find(R"("delta":{"content":"Hi"})"), std::string::npos);
  EXPECT_NE(out.find(R"("finish_reason":"length")"), std::string::npos);
  EXPECT_NE(
      out.find(
          R"("usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4,"prompt_tokens_details":{"cached_tokens":0}})"),
      std::string::npos);
}

}  // namespace
}  // namespace pensieve::server

namespace pensieve::server {
namespace {

// A reply with text, then one call whose input arrives in pieces, then a call cut short.
std::vector<ReplyPart> reply_with_calls() {
  using K = ReplyPart::Kind;
  return {{K::kText, "Looking."},         {K::kToolCall, "Read"}, {K::kToolInput, "{\"path\":"},
          {K::kToolInput, " \"a.txt\"}"}, {K::kToolEnd, ""},      {K::kToolCall, "Bash"},
          {K::kToolInput, "{\"comm"},     {K::kToolEnd, ""}};
}

TEST(AnthropicToolUse, BlocksInOrderAndCutCallsLeftOut) {
  int n = 0;
  const auto ids = [&n] { return "toolu_" + std::to_string(++n); };
  const Json body = Json::parse(anthropic::message_body("msg_1", "m", reply_with_calls(),
                                                        Outcome{Finish::kToolUse, "", 5, 9}, ids));
  ASSERT_EQ(body["content"].size(), 2u) << body.dump();
  EXPECT_EQ(body["content"][0], Json::parse(R"({"type":"text","text":"Looking."})"));
  EXPECT_EQ(
      body["content"][1],
      Json::parse(R"({"type":"tool_use","id":"toolu_1","name":"Read","input":{"path":"a.txt"}})"));
  EXPECT_EQ(body["stop_reason"], "tool_use");

  anthropic::MessageStream stream("msg_1", "m");
  std::string sse = stream.start(5);
  for (const ReplyPart& part : reply_with_calls()) sse += stream.part(part, ids);
  sse += stream.finish(Outcome{Finish::kToolUse, "", 5, 9});
  auto f = frames(sse);
  std::vector<std::string> events;
  for (auto& [event, data] : f) events.push_back(event);
  EXPECT_EQ(events,
            (std::vector<std::string>{
                "message_start", "content_block_start", "content_block_delta", "content_block_stop",
                "content_block_start", "content_block_delta", "content_block_delta",
                "content_block_stop", "content_block_start", "content_block_delta",
                "content_block_stop", "message_delta", "message_stop"}));
  EXPECT_EQ(f[4].second["content_block"],
            Json::parse(R"({"type":"tool_use","id":"toolu_2","name":"Read","input":{}})"));
  EXPECT_EQ(f[5].second["delta"],
            Json::parse(R"({"type":"input_json_delta","partial_json":"{\"path\":"})"));
  EXPECT_EQ(f[6].second["index"], 1);
  EXPECT_EQ(f[11].second["delta"]["stop_reason"], "tool_use");
}

TEST(OpenAiToolCalls, MessageAndChunks) {
  int n = 0;
  const auto ids = [&n] { return "call_" + std::to_string(++n); };
  const Json body = Json::parse(openai::completion_body("c1", "m", 0, reply_with_calls(),
                                                        Outcome{Finish::kToolUse, "", 5, 9}, ids));
  const Json& message = body["choices"][0]["message"];
  EXPECT_EQ(message["content"], "Looking.");
  ASSERT_EQ(message["tool_calls"].size(), 1u);
  EXPECT_EQ(message["tool_calls"][0],
            Json::parse(R"({"id":"call_1","type":"function","function":{"name":"Read",)"
                        R"("arguments":"{\"path\": \"a.txt\"}"}})"));
  EXPECT_EQ(body["choices"][0]["finish_reason"], "tool_calls");

  openai::CompletionStream stream("c1", "m", 0);
  std::string arguments;
  for (const ReplyPart& part : reply_with_calls()) {
    const std::string chunk = stream.part(part, ids);
    if (chunk.empty()) continue;
    const Json data = Json::parse(chunk.substr(6));  // "data: {...}\n\n"
    const Json& delta = data["choices"][0]["delta"];
    if (!delta.contains("tool_calls")) continue;
    const Json& call = delta["tool_calls"][0];
    if (call.contains("id")) {
      EXPECT_EQ(call["function"]["arguments"], "");
      EXPECT_EQ(call["index"], part.text == "Read" ? 0 : 1);
    } else if (call["index"] == 0) {
      arguments += call["function"]["arguments"].get<std::string>();
    }
  }
  EXPECT_EQ(arguments, "{\"path\": \"a.txt\"}");
}

}  // namespace
}  // namespace pensieve::server
