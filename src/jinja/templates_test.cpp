// Real chat templates: Phi-3's from its GGUF, and the tool-calling templates of the Qwen2.5,
// Llama 3.1 and Mistral v3 families from tests/fixtures/chat_templates, checked byte for byte.
#include <gtest/gtest.h>

#include <string>

#include "gguf/reader.h"
#include "jinja/test_support.h"

namespace pensieve::jinja {
namespace {

using testing_support::read_file;
using testing_support::render;

const std::string kFixtures = std::string(PENSIEVE_TEST_DATA_DIR) + "/fixtures/chat_templates/";

TEST(JinjaTemplates, Phi3FromGguf) {
  auto file = GgufFile::open(std::string(PENSIEVE_SHARED_DIR) + "/vocab/ggml-vocab-phi-3.gguf");
  ASSERT_TRUE(file.has_value()) << file.error().message;
  auto source = (*file)->get_string("tokenizer.chat_template");
  ASSERT_TRUE(source.has_value()) << source.error().message;
  const std::string context =
      R"({"bos_token": "<s>", "eos_token": "<|endoftext|>", "add_generation_prompt": true,
    "messages": [{"role": "system", "content": "ignored by this template"},
                 {"role": "user", "content": "Hello!"},
                 {"role": "assistant", "content": "Hi, how can I help?"},
                 {"role": "user", "content": "Tell me a joke."}]})";
  EXPECT_EQ(render(*source, context),
            "<s><|user|>\nHello!<|end|>\n<|assistant|>\nHi, how can I help?<|end|>\n"
            "<|user|>\nTell me a joke.<|end|>\n<|assistant|>\n");
}

struct Case {
  const char* template_name;
  const char* conversation;
};

class JinjaFixtureTest : public ::testing::TestWithParam<Case> {};

TEST_P(JinjaFixtureTest, RendersExactly) {
  const Case c = GetParam();
  const std::string source = read_file(kFixtures + c.template_name + ".jinja");
  const std::string context = read_file(kFixtures + c.conversation + ".json");
  const std::string expected = read_file(kFixtures + c.conversation + ".expected");
  ASSERT_FALSE(source.empty());
  ASSERT_FALSE(context.empty());
  ASSERT_FALSE(expected.empty());
  auto tmpl = Template::parse(source);
  ASSERT_TRUE(tmpl.has_value()) << tmpl.error().message;
  auto ctx = parse_json(context);
  ASSERT_TRUE(ctx.has_value()) << ctx.error().message;
  auto out = tmpl->render(*ctx);
  ASSERT_TRUE(out.has_value()) << out.error().message;
  EXPECT_EQ(*out, expected);
  // Parse once, render many: a second render gives the same text.
  EXPECT_EQ(*tmpl->render(*ctx), expected);
}

INSTANTIATE_TEST_SUITE_P(Families, JinjaFixtureTest,
                         ::testing::Values(Case{"qwen2.5-tools", "qwen2.5-tools"},
                                           Case{"llama3.1-tools", "llama3.1-tools"},
                                           Case{"llama3.1-tools", "llama3.1-builtin"},
                                           Case{"mistral-v3-tools", "mistral-v3-tools"}));

std::string fixture_render(const char* name, const std::string& context) {
  return render(read_file(kFixtures + name + ".jinja"), context);
}

TEST(JinjaTemplates, QwenWithoutToolsUsesTheDefaultSystemPrompt) {
  EXPECT_EQ(
      fixture_render("qwen2.5-tools", R"({"messages": [{"role": "user", "content": "Hi"}],
                                               "add_generation_prompt": false})"),
      "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant."
      "<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
}

TEST(JinjaTemplates, LlamaDefaultsTheDateAndRejectsParallelCalls) {
  const std::string out = fixture_render("llama3.1-tools", R"({"bos_token": "<B>",
      "messages": [{"role": "user", "content": "Hi"}], "add_generation_prompt": true})");
  EXPECT_EQ(
      out,
      "<B><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
      "Today Date: 26 Jul "
      "2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(fixture_render("llama3.1-tools", R"({"messages": [{"role": "user", "content": "Hi"},
      {"role": "assistant", "tool_calls": [{"function": {"name": "a", "arguments": {}}},
                                           {"function": {"name": "b", "arguments": {}}}]}]})"),
            "ERROR: jinja: line 71: This model only supports single tool-calls at once!");
}

TEST(JinjaTemplates, MistralEnforcesAlternation) {
  EXPECT_EQ(
      fixture_render("mistral-v3-tools", R"({"messages": [{"role": "user", "content": "a"},
      {"role": "user", "content": "b"}]})"),
      "ERROR: jinja: line 18: After the optional system message, conversation roles must alternate "
      "user/assistant/user/assistant/...");
}

}  // namespace
}  // namespace pensieve::jinja
