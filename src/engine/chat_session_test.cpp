// ChatSession on a synthetic Phi-3 model with the real Phi-3 vocabulary and chat template: a
// later turn feeds only what it adds, its prompt is the template's rendering of the whole
// conversation, greedy replies equal a one-shot generate over that prompt, and reset and context
// overflow start over.
#include "engine/chat_session.h"

#include <filesystem>
#include <memory>

#include <unistd.h>

#include <gtest/gtest.h>

#include "model/forward_ref.h"
#include "model/model.h"
#include "model/synth.h"

namespace pensieve {
namespace {

// Records every token fed and every reset, for checking what a turn evaluates.
class CountingForward final : public Forward {
 public:
  explicit CountingForward(Forward& inner) : inner_(inner) {}
  Expected<std::span<const float>> eval(std::span<const int32_t> tokens) override {
    fed.insert(fed.end(), tokens.begin(), tokens.end());
    return inner_.eval(tokens);
  }
  int64_t n_past() const override { return inner_.n_past(); }
  int64_t n_ctx() const override { return inner_.n_ctx(); }
  void reset() override {
    ++n_resets;
    inner_.reset();
  }

  std::vector<int32_t> fed;
  int n_resets = 0;

 private:
  Forward& inner_;
};

// Phi-3's layout, with the number of messages so far in front: every turn changes the start.
class CountingTemplate final : public ChatTemplate {
 public:
  CountingTemplate() : ChatTemplate(ChatTemplateSource::kOverride) {}
  std::string_view name() const override { return "counting"; }
  bool renders_bos() const override { return true; }
  std::span<const std::string_view> stop_strings() const override { return {}; }

 protected:
  Expected<std::string> render_validated(const ChatRequest& request) const override {
    std::string out = request.bos_token + std::to_string(request.messages.size()) + " messages";
    for (const ChatMessage& m : request.messages) {
      out += m.role == ChatRole::kUser ? "<|user|>\n" + m.content + "<|end|>\n<|assistant|>\n"
                                       : m.content + "<|end|>\n";
    }
    return out;
  }
};

class ChatSessionTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    SynthOptions o;
    o.preset = "tiny-phi3";
    o.output_path = (std::filesystem::temp_directory_path() /
                     ("pensieve_chat_" + std::to_string(::getpid()) + ".gguf"))
                        .string();
    o.shared_dir = PENSIEVE_SHARED_DIR;
    ASSERT_TRUE(synth_model(o).has_value());
    auto model = Model::load(o.output_path);
    ASSERT_TRUE(model.has_value()) << model.error().message;
    model_ = std::move(*model).release();
    std::filesystem::remove(o.output_path);  // the mapping stays valid
    auto tokenizer = Tokenizer::from_gguf(model_->file());
    ASSERT_TRUE(tokenizer.has_value()) << tokenizer.error().message;
    tokenizer_ = std::move(*tokenizer).release();
    auto text = model_->file().get_string("tokenizer.chat_template");
    ASSERT_TRUE(text.has_value());
    auto chat_template = make_chat_template(*text, "");
    ASSERT_TRUE(chat_template.has_value());
    // The model's own (Phi-3) template, through the Jinja engine.
    ASSERT_EQ((*chat_template)->source(), ChatTemplateSource::kModel);
    template_ = std::move(*chat_template).release();
  }
  static void TearDownTestSuite() {
    delete template_;
    delete tokenizer_;
    delete model_;
  }

  static GenerateOptions greedy(int64_t max_tokens) {
    GenerateOptions o;
    o.max_tokens = max_tokens;
    o.sampling.temperature = 0;
    return o;
  }

  std::unique_ptr<ReferenceForward> make_forward(int64_t n_ctx) const {
    return std::make_unique<ReferenceForward>(model_->hparams(), model_->weights(), n_ctx);
  }

  // What a one-shot generate on a fresh context makes of `prompt`.
  std::vector<int32_t> one_shot(std::span<const int32_t> prompt, const GenerateOptions& o) const {
    auto forward = make_forward(256);
    GenerateOptions with_stops = o;
    with_stops.stop_strings = {"<|end|>"};  // what the session adds for the phi3 template
    auto result =
        generate(*forward, *tokenizer_, prompt, with_stops, [](std::string_view) { return true; });
    EXPECT_TRUE(result.has_value()) << result.error().message;
    return result.has_value() ? result->tokens : std::vector<int32_t>{};
  }

  static std::string render(const std::vector<ChatMessage>& messages) {
    ChatRequest request;
    request.messages = messages;
    request.bos_token = "<s>";
    request.eos_token = "<|endoftext|>";
    auto text = template_->render(request);
    EXPECT_TRUE(text.has_value());
    return text.has_value() ? *text : std::string();
  }

  static ChatMessage msg(ChatRole role, std::string content) {
    return {role, std::move(content), {}, {}, false};
  }

  static bool print(std::string_view) { return true; }

  static inline Model* model_ = nullptr;
  static inline Tokenizer* tokenizer_ = nullptr;
  static inline ChatTemplate* template_ = nullptr;
};

TEST_F(ChatSessionTest, SecondTurnFeedsOnlyWhatItAdds) {
  auto inner = make_forward(256);
  CountingForward forward(*inner);
  ChatSession chat(forward, *tokenizer_, *template_, "");
  auto first = chat.send("Hello", greedy(8), print);
  ASSERT_TRUE(first.has_value()) << first.error().message;
  EXPECT_EQ(first->n_reused_tokens, 0);
  const std::vector<int32_t> prompt1(chat.prompt_tokens().begin(), chat.prompt_tokens().end());
  const int64_t n_cached = chat.n_cached_tokens();
  ASSERT_EQ(n_cached, forward.n_past());
  ASSERT_GT(n_cached, std::ssize(prompt1));

  forward.fed.clear();
  const int n_resets = forward.n_resets;
  auto second = chat.send("How are you?", greedy(8), print);
  ASSERT_TRUE(second.has_value()) << second.error().message;
  EXPECT_EQ(forward.n_resets, n_resets);
  EXPECT_EQ(second->n_reused_tokens, n_cached);
  const std::span<const int32_t> prompt2 = chat.prompt_tokens();
  EXPECT_EQ(second->n_prompt_tokens, std::ssize(prompt2));
  EXPECT_EQ(second->generation.n_prompt, std::ssize(prompt2) - n_cached);
  // Turn 2's prompt continues turn 1's prompt and reply token for token.
  std::vector<int32_t> turn1 = prompt1;
  turn1.insert(turn1.end(), first->generation.tokens.begin(), first->generation.tokens.end());
  ASSERT_GT(prompt2.size(), turn1.size());
  EXPECT_TRUE(std::equal(turn1.begin(), turn1.end(), prompt2.begin()));
  // What was fed: the new tokens, then one per generated token after the first.
  ASSERT_GE(forward.fed.size(), prompt2.size() - n_cached);
  EXPECT_TRUE(std::equal(prompt2.begin() + n_cached, prompt2.end(), forward.fed.begin()));
  EXPECT_EQ(std::ssize(forward.fed), forward.n_past() - n_cached);
}

TEST_F(ChatSessionTest, PromptIsTheTemplatesRenderingOfTheConversation) {
  auto forward = make_forward(256);
  ChatSession chat(*forward, *tokenizer_, *template_, "");
  auto first = chat.send("Hello", greedy(8), print);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(chat.prompt_text(), "<s><|user|>\nHello<|end|>\n<|assistant|>\n");
  EXPECT_EQ(chat.prompt_text(), render({msg(ChatRole::kUser, "Hello")}));
  // The reply is its tokens' text, without the space SentencePiece starts text with.
  EXPECT_EQ(first->reply, tokenizer_->decode(first->generation.tokens, true));
  EXPECT_FALSE(first->reply.starts_with(' '));
  auto second = chat.send("How are you?", greedy(8), print);
  ASSERT_TRUE(second.has_value());
  const std::vector<ChatMessage> expected = {
      msg(ChatRole::kUser, "Hello"), msg(ChatRole::kAssistant, first->reply),
      msg(ChatRole::kUser, "How are you?"), msg(ChatRole::kAssistant, second->reply)};
  ASSERT_EQ(chat.messages().size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(chat.messages()[i].role, expected[i].role) << i;
    EXPECT_EQ(chat.messages()[i].content, expected[i].content) << i;
  }
  EXPECT_EQ(chat.prompt_text(), render({expected[0], expected[1], expected[2]}));
  // Turn 1 has nothing to reuse: its tokens are the tokenizer's for the rendered text.
  ChatSession fresh(*forward, *tokenizer_, *template_, "");
  ASSERT_TRUE(fresh.send("Hello", greedy(1), print).has_value());
  const auto encoded = tokenizer_->encode(render({expected[0]}), {.parse_special = true});
  EXPECT_TRUE(std::ranges::equal(fresh.prompt_tokens(), encoded));
}

TEST_F(ChatSessionTest, GreedyRepliesMatchOneShotGenerate) {
  auto forward = make_forward(256);
  ChatSession chat(*forward, *tokenizer_, *template_, "");
  bool first = true;
  for (const char* text : {"Hello", "How are you?", "Tell me a story."}) {
    auto turn = chat.send(text, greedy(12), print);
    ASSERT_TRUE(turn.has_value()) << turn.error().message;
    EXPECT_EQ(turn->n_reused_tokens > 0, !first) << text;
    first = false;
    ASSERT_FALSE(turn->generation.tokens.empty());
    EXPECT_EQ(turn->generation.tokens, one_shot(chat.prompt_tokens(), greedy(12))) << text;
  }
}

TEST_F(ChatSessionTest, ResetStartsOver) {
  auto inner = make_forward(256);
  CountingForward forward(*inner);
  ChatSession chat(forward, *tokenizer_, *template_, "");
  auto first = chat.send("Hello", greedy(8), print);
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(chat.send("How are you?", greedy(8), print).has_value());
  chat.reset();
  EXPECT_TRUE(chat.messages().empty());
  EXPECT_EQ(forward.n_past(), 0);
  EXPECT_EQ(chat.n_cached_tokens(), 0);
  auto again = chat.send("Hello", greedy(8), print);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->n_reused_tokens, 0);
  EXPECT_EQ(again->generation.tokens, first->generation.tokens);
  EXPECT_EQ(again->reply, first->reply);
  EXPECT_EQ(chat.messages().size(), 2u);
}

TEST_F(ChatSessionTest, ChangedRenderingIsEvaluatedFromTheStart) {
  CountingTemplate counting;
  auto inner = make_forward(256);
  CountingForward forward(*inner);
  ChatSession chat(forward, *tokenizer_, counting, "");
  ASSERT_TRUE(chat.send("Hello", greedy(8), print).has_value());
  const int n_resets = forward.n_resets;
  auto second = chat.send("How are you?", greedy(8), print);
  ASSERT_TRUE(second.has_value()) << second.error().message;
  EXPECT_EQ(forward.n_resets, n_resets + 1);
  EXPECT_EQ(second->n_reused_tokens, 0);
  EXPECT_EQ(second->generation.n_prompt, second->n_prompt_tokens);
  EXPECT_TRUE(chat.prompt_text().starts_with("<s>3 messages<|user|>\nHello<|end|>\n"));
  EXPECT_EQ(second->generation.tokens, one_shot(chat.prompt_tokens(), greedy(8)));
}

TEST_F(ChatSessionTest, SystemPromptStaysAcrossReset) {
  auto forward = make_forward(256);
  ChatSession chat(*forward, *tokenizer_, *template_, "Be brief.");
  ASSERT_EQ(chat.messages().size(), 1u);
  ASSERT_TRUE(chat.send("Hello", greedy(2), print).has_value());
  EXPECT_EQ(chat.messages().size(), 3u);
  chat.reset();
  ASSERT_EQ(chat.messages().size(), 1u);
  EXPECT_EQ(chat.messages()[0].role, ChatRole::kSystem);
  EXPECT_EQ(chat.messages()[0].content, "Be brief.");
}

TEST_F(ChatSessionTest, ConversationThatOutgrowsTheContextStartsOver) {
  auto forward = make_forward(64);
  ChatSession chat(*forward, *tokenizer_, *template_, "");
  bool restarted = false;
  for (int turn = 0; turn < 10 && !restarted; ++turn) {
    auto result = chat.send("Tell me more about that, please.", greedy(8), print);
    ASSERT_TRUE(result.has_value()) << result.error().message;
    EXPECT_FALSE(result->context_full);
    if (result->restarted) {
      restarted = true;
      EXPECT_GE(result->n_dropped_tokens, 64);
      EXPECT_EQ(result->n_reused_tokens, 0);
      EXPECT_EQ(chat.messages().size(), 2u);
      EXPECT_EQ(chat.prompt_text(),
                "<s><|user|>\nTell me more about that, please.<|end|>\n"
                "<|assistant|>\n");
    }
  }
  EXPECT_TRUE(restarted);
}

TEST_F(ChatSessionTest, MessageLongerThanTheContextIsAnError) {
  auto forward = make_forward(64);
  ChatSession chat(*forward, *tokenizer_, *template_, "");
  ASSERT_TRUE(chat.send("Hello", greedy(4), print).has_value());
  std::string long_text;
  for (int i = 0; i < 100; ++i) long_text += "word ";
  auto result = chat.send(long_text, greedy(4), print);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, ErrorCode::kOutOfRange);
  EXPECT_NE(result.error().message.find("the context holds 64"), std::string::npos)
      << result.error().message;
  EXPECT_TRUE(chat.messages().empty());
  EXPECT_TRUE(chat.send("Hello", greedy(4), print).has_value());
  EXPECT_FALSE(chat.send("", greedy(4), print).has_value());
}

TEST_F(ChatSessionTest, ReplyThatFillsTheContextClearsTheConversation) {
  auto forward = make_forward(32);
  ChatSession chat(*forward, *tokenizer_, *template_, "");
  auto result = chat.send("Hello", greedy(100), print);
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_TRUE(result->context_full);
  EXPECT_EQ(result->generation.reason, StopReason::kContextFull);
  EXPECT_TRUE(chat.messages().empty());
  EXPECT_EQ(chat.n_cached_tokens(), 0);
  EXPECT_TRUE(chat.send("Hello", greedy(4), print).has_value());
}

}  // namespace
}  // namespace pensieve
