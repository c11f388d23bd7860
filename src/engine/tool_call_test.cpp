// Forced tool calls in the engine: the prompt ends where the call's arguments begin, and the
// arguments sampled under the schema's constraint are a valid instance, whatever the model.
#include "engine/tool_call.h"

#include <cmath>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/prompt.h"
#include "engine/test_support.h"
#include "model/forward_cpu.h"
#include "tokenizer/chat_template.h"

namespace pensieve {
namespace {

using engine_test::greedy;
using engine_test::load;

constexpr std::string_view kSchema =
    R"({"type":"object","properties":{"city":{"type":"string"},"unit":{"enum":["c","f"]},)"
    R"("days":{"type":"integer"}},"required":["city","unit"],"additionalProperties":false})";

InferenceRequest weather_request() {
  InferenceRequest r;
  r.messages = {{ChatRole::kUser, "What is the weather in Paris?", {}, {}, false}};
  r.tools = {{"get_weather", "The weather in a city", std::string(kSchema)}};
  return r;
}

// A model with the plain template (its GGUF has none), and the renderer over them.
struct CallModel {
  explicit CallModel(const std::string& model)
      : loaded(load(model)), plain(std::move(make_chat_template("", "").value())) {}
  engine_test::Loaded loaded;
  std::unique_ptr<ChatTemplate> plain;
  PromptRenderer renderer() const { return PromptRenderer(*loaded.tokenizer, *plain); }
};

// Generates the call's arguments for `prompt` under the weather schema.
Expected<GenerateResult> generate_call(const CallModel& s, const PromptRenderer& renderer,
                                       const std::vector<int32_t>& prompt, GenerateOptions options,
                                       std::string* text,
                                       std::shared_ptr<JsonConstraint>* constraint) {
  PV_TRY(*constraint, JsonConstraint::make(kSchema, renderer.token_mask(), *s.loaded.tokenizer));
  options.constraint = *constraint;
  CpuForward forward(s.loaded.model->hparams(), s.loaded.model->weights(), 512, 1, 64);
  return generate(forward, *s.loaded.tokenizer, prompt, options, [&](std::string_view t) {
    *text += t;
    return true;
  });
}

TEST(ToolCall, PromptEndsWhereTheArgumentsBegin) {
  const CallModel s("stories260K.gguf");
  ASSERT_NE(s.loaded.model, nullptr);
  const PromptRenderer renderer = s.renderer();
  const auto& l = s.loaded;
  auto ids = renderer.tool_call_tokens(weather_request(), "get_weather");
  ASSERT_TRUE(ids.has_value()) << ids.error().message;
  const std::string text = l.tokenizer->decode(*ids, true);
  EXPECT_TRUE(text.ends_with(R"(<tool_call>{"name": "get_weather", "arguments": )") ||
              text.ends_with(R"(<tool_call>{"name": "get_weather", "arguments":)"))
      << text;
}

TEST(ToolCall, ConstrainedArgumentsAreAValidInstance) {
  const CallModel s("stories260K.gguf");
  ASSERT_NE(s.loaded.model, nullptr);
  const PromptRenderer renderer = s.renderer();
  auto prompt = renderer.tool_call_tokens(weather_request(), "get_weather");
  ASSERT_TRUE(prompt.has_value());
  for (const float temperature : {0.0f, 1.0f}) {
    GenerateOptions options = greedy(300);
    options.sampling.temperature = temperature;
    options.sampling.seed = 7;
    std::string text;
    std::shared_ptr<JsonConstraint> constraint;
    auto result = generate_call(s, renderer, *prompt, options, &text, &constraint);
    ASSERT_TRUE(result.has_value()) << result.error().message;
    EXPECT_EQ(result->reason, StopReason::kEndOfGeneration) << text;
    EXPECT_TRUE(constraint->complete());
    const auto json = nlohmann::json::parse(text, nullptr, false);
    ASSERT_FALSE(json.is_discarded()) << text;
    ASSERT_TRUE(json.is_object()) << text;
    EXPECT_TRUE(json.contains("city") && json["city"].is_string()) << text;
    EXPECT_TRUE(json.contains("unit") && (json["unit"] == "c" || json["unit"] == "f")) << text;
    for (const auto& [key, value] : json.items()) {
      EXPECT_TRUE(key == "city" || key == "unit" || key == "days") << text;
      if (key == "days") {  // an integer in JSON Schema's sense (it may exceed int64)
        ASSERT_TRUE(value.is_number()) << text;
        const double v = value.get<double>();
        EXPECT_EQ(v, std::floor(v)) << text;
      }
    }
  }
}

TEST(ToolCall, AVocabularyThatCannotSpellTheJsonIsAClearError) {
  // TinyStories-656K: no '{' in its vocabulary, no byte fallback.
  const CallModel s("TinyStories-656K-Q8_0.gguf");
  ASSERT_NE(s.loaded.model, nullptr);
  const PromptRenderer renderer = s.renderer();
  auto prompt = renderer.tool_call_tokens(weather_request(), "get_weather");
  ASSERT_TRUE(prompt.has_value());
  std::string text;
  std::shared_ptr<JsonConstraint> constraint;
  auto result = generate_call(s, renderer, *prompt, greedy(50), &text, &constraint);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, ErrorCode::kUnsupported);
  EXPECT_NE(result.error().message.find("cannot spell"), std::string::npos);
}

}  // namespace
}  // namespace pensieve
