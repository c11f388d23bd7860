#include "tokenizer/chat_template.h"
#include "tokenizer/jinja_chat_template.h"

#include <string>

#include <gtest/gtest.h>

#include "gguf/reader.h"

namespace pensieve {
namespace {

const std::string kVocab = std::string(PENSIEVE_SHARED_DIR) + "/vocab/";
const std::string kModels = std::string(PENSIEVE_SHARED_DIR) + "/models/";

ChatMessage msg(ChatRole role, std::string content) {
  return {role, std::move(content), {}, {}, false};
}

ChatRequest request(std::vector<ChatMessage> messages, bool add_generation_prompt,
                    std::string bos = "<s>", std::string eos = "</s>") {
  ChatRequest r;
  r.messages = std::move(messages);
  r.add_generation_prompt = add_generation_prompt;
  r.bos_token = std::move(bos);
  r.eos_token = std::move(eos);
  return r;
}

// The conversations every template is checked on.
std::vector<ChatMessage> single_user() { return {msg(ChatRole::kUser, "Hello")}; }
std::vector<ChatMessage> system_user() {
  return {msg(ChatRole::kSystem, "Be brief."), msg(ChatRole::kUser, "Hi")};
}
std::vector<ChatMessage> multi_turn() {
  return {msg(ChatRole::kSystem, "Be brief."), msg(ChatRole::kUser, "Hi"),
          msg(ChatRole::kAssistant, "Hello!"), msg(ChatRole::kUser, "How are you?")};
}

std::string render(std::string_view name, const ChatRequest& r) {
  auto chat_template = make_chat_template("", name);
  EXPECT_TRUE(chat_template.has_value()) << chat_template.error().message;
  auto text = (*chat_template)->render(r);
  EXPECT_TRUE(text.has_value()) << text.error().message;
  return text.has_value() ? *text : std::string("<error>");
}

TEST(ChatTemplate, ChatMl) {
  EXPECT_EQ(render("chatml", request(single_user(), true)),
            "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(render("chatml", request(single_user(), false)), "<|im_start|>user\nHello<|im_end|>\n");
  EXPECT_EQ(render("chatml", request(system_user(), true)),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(render("chatml", request(multi_turn(), true)),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nHow are you?<|im_end|>\n"
            "<|im_start|>assistant\n");
  auto with_tool = request({msg(ChatRole::kUser, "Hi"), msg(ChatRole::kTool, "42")}, false);
  EXPECT_EQ(render("chatml", with_tool),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>tool\n42<|im_end|>\n");
}

TEST(ChatTemplate, Llama3) {
  const std::string bos = "<|begin_of_text|>";
  const std::string eos = "<|eot_id|>";
  EXPECT_EQ(render("llama3", request(single_user(), true, bos, eos)),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(render("llama3", request(single_user(), false, bos, eos)),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>");
  EXPECT_EQ(render("llama3", request(system_user(), true, bos, eos)),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(render("llama3", request(multi_turn(), true, bos, eos)),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHow are you?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  // Content is trimmed, as the template's `| trim` does.
  EXPECT_EQ(render("llama3", request({msg(ChatRole::kUser, "  Hi \n")}, false, bos, eos)),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>");
}

TEST(ChatTemplate, Phi3) {
  // Identical with and without a generation prompt: the template always opens the assistant
  // turn after a user message. System messages are dropped.
  for (bool generation_prompt : {true, false}) {
    EXPECT_EQ(render("phi3", request(single_user(), generation_prompt)),
              "<s><|user|>\nHello<|end|>\n<|assistant|>\n");
    EXPECT_EQ(render("phi3", request(system_user(), generation_prompt)),
              "<s><|user|>\nHi<|end|>\n<|assistant|>\n");
    EXPECT_EQ(render("phi3", request(multi_turn(), generation_prompt)),
              "<s><|user|>\nHi<|end|>\n<|assistant|>\nHello!<|end|>\n"
              "<|user|>\nHow are you?<|end|>\n<|assistant|>\n");
  }
  EXPECT_EQ(render("phi3",
                   request({msg(ChatRole::kUser, "Hi"), msg(ChatRole::kAssistant, "Hey")}, false)),
            "<s><|user|>\nHi<|end|>\n<|assistant|>\nHey<|end|>\n");
}

TEST(ChatTemplate, Mistral) {
  // [/INST] is the generation prompt: the flag changes nothing.
  for (bool generation_prompt : {true, false}) {
    EXPECT_EQ(render("mistral", request(single_user(), generation_prompt)),
              "<s> [INST] Hello [/INST]");
    EXPECT_EQ(render("mistral", request(system_user(), generation_prompt)),
              "<s> [INST] Be brief.\n\nHi [/INST]");
    EXPECT_EQ(render("mistral", request(multi_turn(), generation_prompt)),
              "<s> [INST] Be brief.\n\nHi [/INST] Hello!</s> [INST] How are you? [/INST]");
  }
  // System text with no user message after it stands alone as a user turn.
  EXPECT_EQ(render("mistral", request({msg(ChatRole::kSystem, "Be brief.")}, true)),
            "<s> [INST] Be brief. [/INST]");
}

TEST(ChatTemplate, Gemma) {
  const std::string bos = "<bos>";
  const std::string eos = "<eos>";
  EXPECT_EQ(render("gemma", request(single_user(), true, bos, eos)),
            "<bos><start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n");
  EXPECT_EQ(render("gemma", request(single_user(), false, bos, eos)),
            "<bos><start_of_turn>user\nHello<end_of_turn>\n");
  EXPECT_EQ(render("gemma", request(system_user(), true, bos, eos)),
            "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\n");
  EXPECT_EQ(render("gemma", request(multi_turn(), true, bos, eos)),
            "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n"
            "<start_of_turn>model\nHello!<end_of_turn>\n"
            "<start_of_turn>user\nHow are you?<end_of_turn>\n<start_of_turn>model\n");
}

TEST(ChatTemplate, Plain) {
  // A single user message is exactly its text, for a story model to continue.
  for (bool generation_prompt : {true, false}) {
    EXPECT_EQ(
        render("plain", request({msg(ChatRole::kUser, "Once upon a time")}, generation_prompt)),
        "Once upon a time");
  }
  EXPECT_EQ(render("plain", request(system_user(), true)), "Be brief.\n\nHi");
  EXPECT_EQ(render("plain", request(multi_turn(), true)),
            "Be brief.\n\nHi\n\nHello!\n\nHow are you?");
  EXPECT_EQ(
      render("plain", request({msg(ChatRole::kSystem, ""), msg(ChatRole::kUser, "Hi")}, true)),
      "Hi");
}

TEST(ChatTemplate, RendersBos) {
  const std::pair<std::string_view, bool> expected[] = {{"chatml", false}, {"llama3", true},
                                                        {"phi3", true},    {"mistral", true},
                                                        {"gemma", true},   {"plain", false}};
  for (const auto& [name, renders_bos] : expected) {
    auto chat_template = make_chat_template("", name);
    ASSERT_TRUE(chat_template.has_value());
    EXPECT_EQ((*chat_template)->name(), name);
    EXPECT_EQ((*chat_template)->renders_bos(), renders_bos) << name;
    EXPECT_EQ((*chat_template)->source(), ChatTemplateSource::kOverride);
  }
}

TEST(ChatTemplate, ContinuesFinalAssistantMessage) {
  std::vector<ChatMessage> prefill = {msg(ChatRole::kUser, "Hi"),
                                      msg(ChatRole::kAssistant, "Well,")};
  ChatRequest r = request(prefill, false, "<s>", "</s>");
  r.continue_final_message = true;
  EXPECT_EQ(render("chatml", r), "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nWell,");
  EXPECT_EQ(render("phi3", r), "<s><|user|>\nHi<|end|>\n<|assistant|>\nWell,");
  EXPECT_EQ(render("mistral", r), "<s> [INST] Hi [/INST] Well,");
  EXPECT_EQ(render("gemma", r),
            "<s><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nWell,");
  EXPECT_EQ(render("llama3", r),
            "<s><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nWell,");
}

TEST(ChatTemplate, RejectsInvalidRequests) {
  auto chat_template = make_chat_template("", "chatml");
  ASSERT_TRUE(chat_template.has_value());
  const ChatTemplate& t = **chat_template;

  auto empty = t.render(request({}, true));
  ASSERT_FALSE(empty.has_value());
  EXPECT_EQ(empty.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(empty.error().message, "chat template 'chatml': no messages to render");

  ChatRequest continue_user = request(single_user(), false);
  continue_user.continue_final_message = true;
  EXPECT_EQ(t.render(continue_user).error().code, ErrorCode::kInvalidArgument);

  ChatRequest continue_and_prompt = request(
      {msg(ChatRole::kUser, "Hi"), msg(ChatRole::kAssistant, "Well,")}, /*add_generation_prompt=*/
      true);
  continue_and_prompt.continue_final_message = true;
  EXPECT_EQ(t.render(continue_and_prompt).error().code, ErrorCode::kInvalidArgument);

  ChatRequest with_call =
      request({msg(ChatRole::kUser, "Hi"), msg(ChatRole::kAssistant, "")}, true);
  with_call.messages.back().tool_calls.push_back({"call_1", "get_weather", "{}"});
  for (std::string_view name : chat_template_names()) {
    auto builtin = make_chat_template("", name);
    ASSERT_TRUE(builtin.has_value());
    auto rendered = (*builtin)->render(with_call);
    ASSERT_FALSE(rendered.has_value()) << name;
    EXPECT_EQ(rendered.error().code, ErrorCode::kUnsupported) << name;
  }

  // Formats without a tool turn refuse tool results; phi3 drops them like its template does.
  ChatRequest with_result = request({msg(ChatRole::kUser, "Hi"), msg(ChatRole::kTool, "42")}, true);
  for (std::string_view name : {"mistral", "gemma"}) {
    auto builtin = make_chat_template("", name);
    ASSERT_TRUE(builtin.has_value());
    auto rendered = (*builtin)->render(with_result);
    ASSERT_FALSE(rendered.has_value()) << name;
    EXPECT_EQ(rendered.error().message,
              fmt::format("chat template '{}': tool result messages are not supported", name));
  }
  EXPECT_EQ(render("phi3", with_result), "<s><|user|>\nHi<|end|>\n<|assistant|>\n");
}

// Each format's stop string is what its rendering puts right after an assistant message.
TEST(ChatTemplate, StopStringsEndAssistantTurns) {
  for (std::string_view name : chat_template_names()) {
    auto chat_template = make_chat_template("", name);
    ASSERT_TRUE(chat_template.has_value());
    const auto stops = (*chat_template)->stop_strings();
    if (name == "plain") {
      EXPECT_TRUE(stops.empty());
      continue;
    }
    ASSERT_EQ(stops.size(), 1u) << name;
    const std::string text = render(name, request(multi_turn(), true));
    EXPECT_NE(text.find("Hello!" + std::string(stops[0])), std::string::npos)
        << name << ": " << text;
  }
}

TEST(ChatTemplate, ListsNames) {
  std::vector<std::string_view> names(chat_template_names().begin(), chat_template_names().end());
  EXPECT_EQ(names, (std::vector<std::string_view>{"chatml", "llama3", "phi3", "mistral", "gemma",
                                                  "plain"}));
}

TEST(ChatTemplate, UnknownOverrideListsValidNames) {
  auto chat_template = make_chat_template("{{ bos_token }}", "vicuna");
  ASSERT_FALSE(chat_template.has_value());
  EXPECT_EQ(chat_template.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(chat_template.error().message,
            "chat template: unknown name 'vicuna' (valid names: chatml, llama3, phi3, mistral, "
            "gemma, plain)");
}

TEST(ChatTemplate, OverrideWinsOverDetection) {
  auto chat_template = make_chat_template("{{ '<|im_start|>' }}", "gemma");
  ASSERT_TRUE(chat_template.has_value());
  EXPECT_EQ((*chat_template)->name(), "gemma");
  EXPECT_EQ((*chat_template)->source(), ChatTemplateSource::kOverride);
}

TEST(ChatTemplate, DetectsFromTemplateSnippets) {
  EXPECT_EQ(detect_chat_template("{{'<|im_start|>' + message['role'] + '\\n'}}"), "chatml");
  EXPECT_EQ(detect_chat_template("{{ '<|start_header_id|>' + message['role'] }}"), "llama3");
  EXPECT_EQ(detect_chat_template("{{'<|user|>' + '\\n' + message['content'] + '<|end|>'}}"),
            "phi3");
  EXPECT_EQ(detect_chat_template("{{ '[INST] ' + message['content'] + ' [/INST]' }}"), "mistral");
  EXPECT_EQ(detect_chat_template("{{ '<start_of_turn>' + role + '\\n' }}"), "gemma");
  // Zephyr's <|user|> turns end with eos_token, not <|end|>.
  EXPECT_EQ(detect_chat_template("{{ '<|user|>\\n' + message['content'] + eos_token }}"), "");
  EXPECT_EQ(detect_chat_template("{{ message['content'] }}"), "");
  EXPECT_EQ(detect_chat_template(""), "");
}

TEST(ChatTemplate, ChoosesBySource) {
  auto none = make_chat_template("", "");
  ASSERT_TRUE(none.has_value());
  EXPECT_EQ((*none)->name(), "plain");
  EXPECT_EQ((*none)->source(), ChatTemplateSource::kNoTemplate);

  // A template the Jinja engine reads is the model's own, with its family's built-in behind it.
  auto own = make_chat_template("{{ '<start_of_turn>user\\n' }}", "");
  ASSERT_TRUE(own.has_value());
  EXPECT_EQ((*own)->name(), "model");
  EXPECT_EQ((*own)->source(), ChatTemplateSource::kModel);
  EXPECT_EQ(dynamic_cast<const JinjaChatTemplate&>(**own).fallback().name(), "gemma");

  // One it cannot read: the recognized built-in, else chatml.
  auto detected = make_chat_template("{% for %}<start_of_turn>user", "");
  ASSERT_TRUE(detected.has_value());
  EXPECT_EQ((*detected)->name(), "gemma");
  EXPECT_EQ((*detected)->source(), ChatTemplateSource::kDetected);

  auto unknown = make_chat_template("{% if %}### Human: ", "");
  ASSERT_TRUE(unknown.has_value());
  EXPECT_EQ((*unknown)->name(), "chatml");
  EXPECT_EQ((*unknown)->source(), ChatTemplateSource::kUnrecognized);
}

// The template stored in ggml-vocab-phi-3.gguf (tokenizer.chat_template); each "\n" is a newline
// character inside a Jinja string literal. The Phi3 expectations above are what it renders:
//
// {{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') %}{{'<|user|>' +
// '\n' + message['content'] + '<|end|>' + '\n' + '<|assistant|>' + '\n'}}{% elif
// (message['role'] == 'assistant') %}{{message['content'] + '<|end|>' + '\n'}}{% endif %}{%
// endfor %}
constexpr std::string_view kPhi3Template =
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') %}{{'<|user|>' "
    "+ '\n' + message['content'] + '<|end|>' + '\n' + '<|assistant|>' + '\n'}}{% elif "
    "(message['role'] == 'assistant') %}{{message['content'] + '<|end|>' + '\n'}}{% endif %}{% "
    "endfor %}";

TEST(ChatTemplate, DetectsRealPhi3Template) {
  auto file = GgufFile::open(kVocab + "ggml-vocab-phi-3.gguf");
  ASSERT_TRUE(file.has_value()) << file.error().message;
  auto text = (*file)->get_string("tokenizer.chat_template");
  ASSERT_TRUE(text.has_value()) << text.error().message;
  // The expectations in ChatTemplate.Phi3 were worked out from this exact text.
  EXPECT_EQ(*text, kPhi3Template);
  EXPECT_EQ(detect_chat_template(*text), "phi3");
  auto own = make_chat_template(*text, "");
  ASSERT_TRUE(own.has_value());
  EXPECT_EQ((*own)->source(), ChatTemplateSource::kModel);
  EXPECT_TRUE((*own)->renders_bos());
  // The Jinja engine renders the real template exactly as the built-in phi3 does.
  auto builtin = make_chat_template(*text, "phi3");
  ASSERT_TRUE(builtin.has_value());
  for (const auto& messages : {single_user(), system_user(), multi_turn()}) {
    const ChatRequest r = request(messages, true, "<s>", "<|endoftext|>");
    auto a = (*own)->render(r);
    auto b = (*builtin)->render(r);
    ASSERT_TRUE(a.has_value()) << a.error().message;
    ASSERT_TRUE(b.has_value()) << b.error().message;
    EXPECT_EQ(*a, *b);
  }
  // A prefill is continued: the text ends right after it.
  ChatRequest prefill = request({msg(ChatRole::kUser, "Hi"), msg(ChatRole::kAssistant, "Sure,")},
                                false, "<s>", "<|endoftext|>");
  prefill.continue_final_message = true;
  auto cut = (*own)->render(prefill);
  ASSERT_TRUE(cut.has_value()) << cut.error().message;
  EXPECT_EQ(*cut, "<s><|user|>\nHi<|end|>\n<|assistant|>\nSure,");
}

TEST(ChatTemplate, StoryModelWithoutTemplateIsPlain) {
  auto file = GgufFile::open(kModels + "TinyStories-656K-Q8_0.gguf");
  ASSERT_TRUE(file.has_value()) << file.error().message;
  EXPECT_EQ((*file)->find("tokenizer.chat_template"), nullptr);
  auto chat_template =
      make_chat_template((*file)->get_string_or("tokenizer.chat_template", ""), "");
  ASSERT_TRUE(chat_template.has_value());
  EXPECT_EQ((*chat_template)->name(), "plain");
  EXPECT_EQ((*chat_template)->source(), ChatTemplateSource::kNoTemplate);
}

}  // namespace
}  // namespace pensieve
