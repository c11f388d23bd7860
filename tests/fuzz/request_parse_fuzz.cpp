// libFuzzer target: any request body (JSON or not, valid UTF-8 or not) through the Anthropic and
// OpenAI parsers never crashes; what parses renders to prompt tokens and reply JSON without error.
// The same bytes also go through every setting's parser (sizes, durations, tier thresholds).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string_view>

#include "core/byte_size.h"
#include "core/duration.h"
#include "engine/prompt.h"
#include "gguf/reader.h"
#include "memory/tiers.h"
#include "server/anthropic/format.h"
#include "server/anthropic/parse.h"
#include "server/config.h"
#include "server/openai/parse.h"

namespace {

struct Renderer {
  std::unique_ptr<pensieve::Tokenizer> tokenizer;
  std::unique_ptr<pensieve::ChatTemplate> chat_template;
  std::unique_ptr<pensieve::PromptRenderer> renderer;
};

Renderer load() {
  const std::string path = std::string(PENSIEVE_SHARED_DIR) + "/models/TinyStories-656K-Q8_0.gguf";
  auto file = pensieve::GgufFile::open(path);
  auto tokenizer = file ? pensieve::Tokenizer::from_gguf(**file)
                        : pensieve::Expected<std::unique_ptr<pensieve::Tokenizer>>(
                              pensieve::Unexpected<pensieve::Error>(file.error()));
  auto chat_template = pensieve::make_chat_template("", "chatml");
  if (!tokenizer || !chat_template) {
    std::fprintf(stderr, "request_parse_fuzz: cannot load %s\n", path.c_str());
    std::abort();
  }
  Renderer r{std::move(*tokenizer), std::move(*chat_template), nullptr};
  r.renderer = std::make_unique<pensieve::PromptRenderer>(*r.tokenizer, *r.chat_template);
  return r;
}

void render(const pensieve::PromptRenderer& renderer, const pensieve::InferenceRequest& request) {
  auto tokens = renderer.tokens(request);
  if (tokens && tokens->empty()) std::abort();  // a rendering always has at least BOS
}

// The same bytes as every setting's value: sizes, durations, thresholds, numbers, booleans.
void settings(std::string_view text) {
  (void)pensieve::parse_byte_size(text);
  (void)pensieve::parse_duration(text);
  (void)pensieve::memory::parse_threshold(text);
  for (const pensieve::server::SettingInfo& info : pensieve::server::server_settings()) {
    const pensieve::server::SettingLookup one =
        [&](std::string_view key) -> std::optional<std::string> {
      if (key == info.key) return std::string(text);
      return std::nullopt;
    };
    (void)pensieve::server::resolve_server_config(one, {}, {});
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Renderer r = load();
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  using pensieve::server::anthropic::Endpoint;
  for (Endpoint endpoint : {Endpoint::kMessages, Endpoint::kCountTokens}) {
    auto request = pensieve::server::anthropic::parse_messages_request(body, endpoint);
    if (!request) continue;
    render(*r.renderer, *request);
    pensieve::server::anthropic::MessageStream stream("msg_1", request->model);
    for (const auto& message : request->messages) (void)stream.text(message.content);
  }
  if (auto request = pensieve::server::openai::parse_chat_request(body))
    render(*r.renderer, *request);
  settings(body);
  return 0;
}
