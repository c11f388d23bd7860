// The tool call syntax read off real chat templates (tests/fixtures/chat_templates) and off the
// built-in ones, which write calls in the generic text form describe_tools() teaches.
#include "engine/tool_syntax.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "engine/prompt.h"
#include "gguf/reader.h"

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

class ToolSyntax : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto file = GgufFile::open(PENSIEVE_SHARED_DIR "/vocab/ggml-vocab-llama-spm.gguf");
    ASSERT_TRUE(file) << file.error().message;
    file_ = file->release();
    auto tokenizer = Tokenizer::from_gguf(*file_);
    ASSERT_TRUE(tokenizer) << tokenizer.error().message;
    tokenizer_ = tokenizer->release();
  }

  // The syntax PromptRenderer reads off `template_text` (or a built-in's name).
  static std::optional<ToolCallSyntax> syntax_of(const std::string& template_text,
                                                 std::string_view builtin = {}) {
    auto chat_template = make_chat_template(template_text, builtin);
    EXPECT_TRUE(chat_template) << chat_template.error().message;
    if (!chat_template) return std::nullopt;
    PromptRenderer renderer(*tokenizer_, **chat_template);
    return renderer.tool_call_syntax();
  }

  static inline GgufFile* file_ = nullptr;
  static inline Tokenizer* tokenizer_ = nullptr;
};

TEST_F(ToolSyntax, HermesQwen) {
  auto syntax = syntax_of(read(kFixtures + "qwen2.5-tools.jinja"));
  ASSERT_TRUE(syntax);
  EXPECT_EQ(syntax->open, "<tool_call>");
  EXPECT_EQ(syntax->close, "</tool_call>");
  EXPECT_EQ(syntax->arguments_key, "arguments");
  EXPECT_FALSE(syntax->list);
}

TEST_F(ToolSyntax, Llama31BareJsonWithParameters) {
  auto syntax = syntax_of(read(kFixtures + "llama3.1-tools.jinja"));
  ASSERT_TRUE(syntax);
  EXPECT_EQ(syntax->open, "");
  EXPECT_EQ(syntax->close, "");
  EXPECT_EQ(syntax->arguments_key, "parameters");
  EXPECT_FALSE(syntax->list);
}

TEST_F(ToolSyntax, MistralList) {
  auto syntax = syntax_of(read(kFixtures + "mistral-v3-tools.jinja"));
  ASSERT_TRUE(syntax);
  EXPECT_EQ(syntax->open, "[TOOL_CALLS]");
  EXPECT_EQ(syntax->arguments_key, "arguments");
  EXPECT_TRUE(syntax->list);
}

TEST_F(ToolSyntax, BuiltinsUseTheGenericTextForm) {
  for (std::string_view name : {"chatml", "llama3", "phi3", "mistral", "gemma"}) {
    auto syntax = syntax_of("", name);
    ASSERT_TRUE(syntax) << name;
    EXPECT_EQ(syntax->open, "<tool_call>") << name;
    EXPECT_EQ(syntax->close, "</tool_call>") << name;
    EXPECT_EQ(syntax->arguments_key, "arguments") << name;
    EXPECT_FALSE(syntax->list) << name;
  }
}

TEST(ToolSyntaxRead, NoCallObjectMeansNoSyntax) {
  // Calls written as "name[ARGS]{...}" carry no "name" key.
  EXPECT_FALSE(read_tool_call_syntax("P", R"(P[TOOL_CALLS]tool_x[ARGS]{"args_x": 1})", "tool_x",
                                     "args_x", {}));
  EXPECT_FALSE(read_tool_call_syntax("P", "P no call here", "tool_x", "args_x", {}));
}

TEST(ToolSyntaxRead, FunctionKeyAndCloser) {
  const std::string_view stops[] = {"<|end|>"};
  auto syntax = read_tool_call_syntax(
      "<|user|>hi<|assistant|>",
      R"(<|user|>hi<|assistant|><call> {"name":"tool_x","input":{"args_x": 1}} </call><|end|>)",
      "tool_x", "args_x", stops);
  ASSERT_TRUE(syntax);
  EXPECT_EQ(syntax->open, "<call>");
  EXPECT_EQ(syntax->close, "</call>");
  EXPECT_EQ(syntax->arguments_key, "input");
}

TEST(ToolSyntaxRead, JsonQuote) { EXPECT_EQ(json_quote("a\"b\\c\n"), R"("a\"b\\c\u000a")"); }

}  // namespace
}  // namespace pensieve
