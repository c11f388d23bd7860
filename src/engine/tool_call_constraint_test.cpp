// Calls the model chooses (tool_choice auto) and calls of any tool (tool_choice any): whatever
// is sampled under ToolCallConstraint, ToolCallParser reads the same calls out of the text,
// each naming one of the tools with input valid against that tool's schema.
#include "engine/tool_call_constraint.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/prompt.h"
#include "engine/test_support.h"
#include "engine/tool_call.h"
#include "engine/tool_call_parser.h"
#include "model/forward_cpu.h"

namespace pensieve {
namespace {

using engine_test::greedy;
using engine_test::load;

const std::vector<ToolSpec> kTools = {
    {"get_weather", "The weather in a city",
     R"({"type":"object","properties":{"city":{"type":"string"},"unit":{"enum":["c","f"]}},)"
     R"("required":["city","unit"],"additionalProperties":false})"},
    {"get_time", "The time", R"({"type":"object","properties":{},"additionalProperties":false})"},
    {"note", "Anything", R"({"description":"any input"})"}};

const ToolCallSyntax kHermes{"<tool_call>", "</tool_call>", "arguments", false};

// Whether `input` is what `tool`'s schema allows (the three schemas above, checked by hand).
::testing::AssertionResult valid_input(const std::string& tool, const std::string& input) {
  const auto json = nlohmann::json::parse(input, nullptr, false);
  if (json.is_discarded()) return ::testing::AssertionFailure() << "not JSON: " << input;
  if (tool == "note") return ::testing::AssertionSuccess();
  if (!json.is_object()) return ::testing::AssertionFailure() << "not an object: " << input;
  if (tool == "get_time") {
    return json.empty() ? ::testing::AssertionSuccess()
                        : ::testing::AssertionFailure() << "extra keys: " << input;
  }
  if (tool != "get_weather") return ::testing::AssertionFailure() << "unknown tool " << tool;
  if (!json.contains("city") || !json["city"].is_string() || !json.contains("unit") ||
      (json["unit"] != "c" && json["unit"] != "f") || json.size() != 2) {
    return ::testing::AssertionFailure() << "invalid weather input: " << input;
  }
  return ::testing::AssertionSuccess();
}

struct Call {
  std::string name, input;
};

// The calls and the text the parser reads out of `reply`.
std::vector<Call> read_calls(const std::string& reply, ToolCallParser::Start start, bool parallel,
                             std::string* text) {
  std::vector<std::string> names;
  for (const ToolSpec& t : kTools) names.push_back(t.name);
  ToolCallParser parser(kHermes, names, start, parallel);
  std::vector<ReplyPart> parts = parser.feed(reply);
  for (ReplyPart& p : parser.finish()) parts.push_back(std::move(p));
  std::vector<Call> calls;
  for (const ReplyPart& p : parts) {
    if (p.kind == ReplyPart::Kind::kText) *text += p.text;
    if (p.kind == ReplyPart::Kind::kToolCall) calls.push_back({p.text, {}});
    if (p.kind == ReplyPart::Kind::kToolInput) calls.back().input += p.text;
  }
  return calls;
}

class ToolCallConstraintTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    loaded_ = new engine_test::Loaded(load("stories260K.gguf"));
    ASSERT_NE(loaded_->model, nullptr);
    mask_ = new std::shared_ptr<const TokenMask>(make_token_mask(*loaded_->tokenizer));
    auto grammar = ToolCallGrammar::make(kTools, kHermes);
    ASSERT_TRUE(grammar) << grammar.error().message;
    grammar_ = new std::shared_ptr<const ToolCallGrammar>(*grammar);
  }
  static inline engine_test::Loaded* loaded_ = nullptr;
  static inline std::shared_ptr<const TokenMask>* mask_ = nullptr;
  static inline std::shared_ptr<const ToolCallGrammar>* grammar_ = nullptr;
};

// Samples from the constraint's allowed tokens at random (leaning to tokens that close strings
// and brackets, so that the walk ends) until the output may end; returns the text.
std::string random_walk(ToolCallConstraint& constraint, const Tokenizer& tokenizer,
                        std::mt19937& rng) {
  std::string text;
  std::vector<uint8_t> mask(static_cast<size_t>(tokenizer.n_vocab()));
  for (int step = 0; step < 2000 && !constraint.complete(); ++step) {
    constraint.allowed(&mask);
    std::vector<int32_t> any, closing;
    for (size_t id = 0; id < mask.size(); ++id) {
      if (mask[id] == 0) continue;
      const auto token = static_cast<int32_t>(id);
      any.push_back(token);
      if (tokenizer.token_piece(token).find_first_of("\"}],") != std::string::npos) {
        closing.push_back(token);
      }
    }
    if (any.empty()) break;
    const auto& pool = !closing.empty() && rng() % 2 == 0 ? closing : any;
    const int32_t token = pool[rng() % pool.size()];
    constraint.accept(token);
    text += tokenizer.token_piece(token);
  }
  return text;
}

TEST_F(ToolCallConstraintTest, FreeTextUntilTheOpenerThenAValidCall) {
  const Tokenizer& tokenizer = *loaded_->tokenizer;
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    std::mt19937 rng(seed);
    ToolCallConstraint constraint(*grammar_, *mask_, tokenizer, ToolCallConstraint::Start::kFree,
                                  /*parallel=*/true);
    std::string reply;
    for (int32_t token : tokenizer.encode("Let me check. <tool_call>", EncodeOptions{})) {
      EXPECT_FALSE(constraint.constrains());
      constraint.accept(token);
      reply += tokenizer.token_piece(token);
    }
    ASSERT_TRUE(constraint.constrains()) << "the opener was not noticed: " << reply;
    EXPECT_FALSE(constraint.complete());
    reply += random_walk(constraint, tokenizer, rng);
    ASSERT_TRUE(constraint.complete()) << "the call did not end: " << reply;
    EXPECT_EQ(constraint.calls(), 1);
    // After a call: another call or the end, no free text.
    std::vector<uint8_t> mask(static_cast<size_t>(tokenizer.n_vocab()));
    constraint.allowed(&mask);
    for (int32_t token : tokenizer.encode("Hello", EncodeOptions{})) {
      const std::string& piece = tokenizer.token_piece(token);
      if (piece.find_first_not_of(" \n") == std::string::npos) continue;  // may lead a call
      EXPECT_EQ(mask[static_cast<size_t>(token)], 0) << piece;
    }
    for (int32_t token : tokenizer.encode("</", EncodeOptions{})) {
      EXPECT_EQ(mask[static_cast<size_t>(token)], 1) << tokenizer.token_piece(token);
      break;
    }

    std::string text;
    const auto calls = read_calls(reply, ToolCallParser::Start::kFree, true, &text);
    ASSERT_EQ(calls.size(), 1u) << reply;
    EXPECT_TRUE(valid_input(calls[0].name, calls[0].input)) << reply;
    EXPECT_EQ(text, reply.substr(0, reply.find("<tool_call>"))) << reply;
  }
}

TEST_F(ToolCallConstraintTest, WithoutParallelCallsTheReplyEndsAfterTheCall) {
  const Tokenizer& tokenizer = *loaded_->tokenizer;
  std::mt19937 rng(3);
  ToolCallConstraint constraint(*grammar_, *mask_, tokenizer, ToolCallConstraint::Start::kInCall,
                                /*parallel=*/false);
  const std::string reply = random_walk(constraint, tokenizer, rng);
  EXPECT_TRUE(constraint.complete());
  std::vector<uint8_t> mask(static_cast<size_t>(tokenizer.n_vocab()));
  constraint.allowed(&mask);
  EXPECT_EQ(std::count(mask.begin(), mask.end(), 1), 0) << "tokens allowed after the call";
  std::string text;
  const auto calls = read_calls(reply, ToolCallParser::Start::kInCall, false, &text);
  ASSERT_EQ(calls.size(), 1u) << reply;
  EXPECT_TRUE(valid_input(calls[0].name, calls[0].input)) << reply;
  EXPECT_EQ(text, "");
}

TEST_F(ToolCallConstraintTest, TextThatOnlyLooksLikeACallStaysFree) {
  const Tokenizer& tokenizer = *loaded_->tokenizer;
  ToolCallConstraint constraint(*grammar_, *mask_, tokenizer, ToolCallConstraint::Start::kFree,
                                true);
  for (int32_t token : tokenizer.encode("a <tool_ call> b", EncodeOptions{})) {
    constraint.accept(token);
    EXPECT_FALSE(constraint.constrains());
  }
  EXPECT_TRUE(constraint.complete());
}

// tool_choice any through the model: the prompt stops where the call object begins, and the
// model (greedy and sampled) writes one valid call of one of the tools.
TEST_F(ToolCallConstraintTest, AnyToolThroughTheModel) {
  auto plain = make_chat_template("", "");
  ASSERT_TRUE(plain);
  const PromptRenderer renderer(*loaded_->tokenizer, **plain);
  InferenceRequest request;
  request.messages = {{ChatRole::kUser, "What is the weather in Paris?", {}, {}, false}};
  request.tools = kTools;
  auto prompt = renderer.call_start_tokens(request);
  ASSERT_TRUE(prompt) << prompt.error().message;
  const std::string prompt_text = loaded_->tokenizer->decode(*prompt, true);
  EXPECT_TRUE(prompt_text.ends_with("<tool_call>")) << prompt_text;
  ASSERT_TRUE(renderer.tool_call_syntax());
  auto grammar = ToolCallGrammar::make(kTools, *renderer.tool_call_syntax());
  ASSERT_TRUE(grammar);
  for (const float temperature : {0.0f, 1.0f}) {
    GenerateOptions options = greedy(300);
    options.sampling.temperature = temperature;
    options.sampling.seed = 11;
    auto constraint = std::make_shared<ToolCallConstraint>(
        *grammar, *mask_, *loaded_->tokenizer, ToolCallConstraint::Start::kInCall, false);
    options.constraint = constraint;
    CpuForward forward(loaded_->model->hparams(), loaded_->model->weights(), 512, 1, 64);
    std::string reply;
    auto result = generate(forward, *loaded_->tokenizer, *prompt, options, [&](std::string_view t) {
      reply += t;
      return true;
    });
    ASSERT_TRUE(result) << result.error().message;
    EXPECT_EQ(result->reason, StopReason::kEndOfGeneration) << reply;
    std::string text;
    const auto calls = read_calls(reply, ToolCallParser::Start::kInCall, false, &text);
    ASSERT_EQ(calls.size(), 1u) << reply;
    EXPECT_TRUE(valid_input(calls[0].name, calls[0].input)) << reply;
  }
}

// Every tool Claude Code sends compiles into the call grammar of its request (generic syntax and
// Llama 3.1's), and quickly: it is built for each request.
TEST(ToolCallGrammarTest, ClaudeCodeToolSetsCompile) {
  const std::filesystem::path dir =
      std::filesystem::path(PENSIEVE_TEST_DATA_DIR) / "fixtures" / "claude-code-captured";
  int sets = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".json") continue;
    std::ifstream in(entry.path());
    const auto captured = nlohmann::json::parse(in, nullptr, false);
    ASSERT_FALSE(captured.is_discarded()) << entry.path();
    std::vector<ToolSpec> tools;
    for (const auto& tool : captured["body"]["tools"]) {
      tools.push_back({tool["name"], tool.value("description", ""), tool["input_schema"].dump()});
    }
    ASSERT_GE(tools.size(), 20u) << entry.path();
    for (const ToolCallSyntax& syntax : {kHermes, ToolCallSyntax{"", "", "parameters", false}}) {
      const auto t0 = std::chrono::steady_clock::now();
      auto grammar = ToolCallGrammar::make(tools, syntax);
      const auto t1 = std::chrono::steady_clock::now();
      ASSERT_TRUE(grammar) << entry.path() << ": " << grammar.error().message;
      EXPECT_EQ((*grammar)->heads().size(), 2 * tools.size());
      std::printf("[ timing ] %zu tools of %s: call grammar in %.2f ms\n", tools.size(),
                  entry.path().filename().c_str(),
                  std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
    ++sets;
  }
  EXPECT_GE(sets, 5);
}

}  // namespace
}  // namespace pensieve
