// The model's own template through the Jinja engine: the variables a ChatRequest becomes are the
// ones Hugging Face's apply_chat_template passes, so a tool-calling template renders tools, tool
// calls and tool results exactly as for the model's training (tests/fixtures/chat_templates).
#include "tokenizer/jinja_chat_template.h"

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

namespace pensieve {
namespace {

const std::string kFixtures = std::string(PENSIEVE_TEST_DATA_DIR) + "/fixtures/chat_templates/";

std::string read(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << path;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The conversation of qwen2.5-tools.json, as the wire parsers produce it.
ChatRequest weather_request() {
  ChatRequest r;
  r.add_generation_prompt = true;
  r.tools = {
      {"get_weather", "Get the current weather in a city.",
       R"({"type":"object","properties":{"city":{"type":"string","description":"City name, e.g. \"Paris\""},"unit":{"type":"string","enum":["celsius","fahrenheit"]}},"required":["city"]})"},
      {"get_time", "Current local time; ü and 東京 stay as written.",
       R"({"type":"object","properties":{"tz":{"type":"string"},"precision":{"type":"number","default":0.5}},"required":[]})"}};
  r.messages = {
      {ChatRole::kSystem, "You are a weather bot.", {}, {}, false},
      {ChatRole::kUser, "Weather in Paris and Tokyo?", {}, {}, false},
      {ChatRole::kAssistant,
       "",
       {{"call_1", "get_weather", R"({"city":"Paris","unit":"celsius"})"},
        {"call_2", "get_weather", R"({"city":"Tokyo","unit":null,"verbose":true,"days":2})"}},
       {},
       false},
      {ChatRole::kTool, R"({"temp": 18, "sky": "cloudy"})", {}, "call_1", false},
      {ChatRole::kTool, R"({"temp": 22.5})", {}, "call_2", false},
      {ChatRole::kAssistant, "Paris: 18°C, cloudy. Tokyo: 22.5°C.", {}, {}, false},
      {ChatRole::kUser, "Thanks!\nAnd tomorrow?", {}, {}, false}};
  return r;
}

TEST(JinjaChatTemplate, RendersToolsCallsAndResultsInTheModelsFormat) {
  const std::string text = read(kFixtures + "qwen2.5-tools.jinja");
  auto chat_template = make_chat_template(text, "");
  ASSERT_TRUE(chat_template.has_value()) << chat_template.error().message;
  EXPECT_EQ((*chat_template)->source(), ChatTemplateSource::kModel);
  EXPECT_TRUE((*chat_template)->renders_tools());
  ASSERT_EQ((*chat_template)->stop_strings().size(), 1u);
  EXPECT_EQ((*chat_template)->stop_strings()[0], "<|im_end|>");
  auto rendered = (*chat_template)->render(weather_request());
  ASSERT_TRUE(rendered.has_value()) << rendered.error().message;
  EXPECT_EQ(*rendered, read(kFixtures + "qwen2.5-tools.expected"));
}

TEST(JinjaChatTemplate, ToolMessagesKnowTheirToolsName) {
  const jinja::Value context = chat_context(weather_request());
  const jinja::Value& messages = *context.object().find("messages");
  const jinja::Value& result = messages.array()[3];
  EXPECT_EQ(result.object().find("name")->str(), "get_weather");
  EXPECT_EQ(result.object().find("tool_call_id")->str(), "call_1");
  const jinja::Value& call = messages.array()[2].object().find("tool_calls")->array()[0];
  const jinja::Value& arguments = *call.object().find("function")->object().find("arguments");
  EXPECT_TRUE(arguments.is_object()) << "arguments are a dict, as HF passes them";
}

TEST(JinjaChatTemplate, TemplateRefusalsAreErrorsAndEngineGapsFallBack) {
  auto strict = make_chat_template(
      "{% if messages[0]['role'] != 'user' %}{{ raise_exception('Conversation must start with "
      "user') }}{% endif %}<|im_start|>{{ messages[0]['content'] }}",
      "");
  ASSERT_TRUE(strict.has_value());
  ChatRequest r;
  r.messages = {{ChatRole::kAssistant, "x", {}, {}, false}, {ChatRole::kUser, "y", {}, {}, false}};
  auto refused = (*strict)->render(r);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(refused.error().message.find("Conversation must start with user"), std::string::npos);

  // A run-time failure of the engine (here a type error): the family's built-in renders.
  auto gap = make_chat_template("<|im_start|>{{ messages + 1 }}", "");
  ASSERT_TRUE(gap.has_value());
  EXPECT_EQ((*gap)->source(), ChatTemplateSource::kModel);
  r.messages = {{ChatRole::kUser, "Hi", {}, {}, false}};
  auto fallback = (*gap)->render(r);
  ASSERT_TRUE(fallback.has_value()) << fallback.error().message;
  EXPECT_EQ(*fallback, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

}  // namespace
}  // namespace pensieve
