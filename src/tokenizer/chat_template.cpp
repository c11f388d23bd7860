#include "tokenizer/chat_template.h"

#include "core/log.h"
#include "tokenizer/jinja_chat_template.h"

#include <array>

#include <fmt/ranges.h>

namespace pensieve {
namespace {

constexpr std::array<std::string_view, 6> kNames = {"chatml",  "llama3", "phi3",
                                                    "mistral", "gemma",  "plain"};

// What Jinja's `trim` filter removes.
std::string_view trim(std::string_view text) {
  constexpr std::string_view kSpace = " \t\n\r\f\v";
  const size_t begin = text.find_first_not_of(kSpace);
  if (begin == std::string_view::npos) return {};
  const size_t end = text.find_last_not_of(kSpace);
  return text.substr(begin, end - begin + 1);
}

bool is_open_final(const ChatRequest& request, size_t i) {
  return request.continue_final_message && i + 1 == request.messages.size();
}

Expected<void> reject_tool_calls(std::string_view name, const ChatRequest& request) {
  for (const ChatMessage& message : request.messages) {
    if (!message.tool_calls.empty()) {
      return make_error(ErrorCode::kUnsupported,
                        "chat template '{}': assistant tool calls are not supported", name);
    }
  }
  return {};
}

// A user or assistant turn, for the formats that have no system or tool turns.
struct Turn {
  ChatRole role = ChatRole::kUser;
  std::string system;        // system text to put before a user turn's content
  std::string_view content;  // into request.messages
  bool open = false;         // the final message, left open
};

// Folds system messages into the next user turn (the formats with only user and assistant
// turns). System text with no user turn after it becomes a user turn of its own. Several system
// messages in a row are joined with a blank line. Tool results have no place: an error.
Expected<std::vector<Turn>> fold_system_into_user(std::string_view name,
                                                  const ChatRequest& request) {
  std::vector<Turn> turns;
  std::string system;
  for (size_t i = 0; i < request.messages.size(); ++i) {
    const ChatMessage& message = request.messages[i];
    switch (message.role) {
      case ChatRole::kSystem:
        if (!system.empty()) system += "\n\n";
        system += message.content;
        break;
      case ChatRole::kTool:
        return make_error(ErrorCode::kUnsupported,
                          "chat template '{}': tool result messages are not supported", name);
      case ChatRole::kUser:
        turns.push_back({ChatRole::kUser, std::move(system), message.content, false});
        system.clear();
        break;
      case ChatRole::kAssistant:
        turns.push_back({ChatRole::kAssistant, {}, message.content, is_open_final(request, i)});
        break;
    }
  }
  if (!system.empty()) {
    turns.push_back({ChatRole::kUser, {}, {}, false});
    turns.back().system = std::move(system);
  }
  return turns;
}

// The user text of a folded turn: "system\n\ncontent", or either alone.
std::string folded_user_text(const Turn& turn, std::string_view content) {
  if (turn.system.empty()) return std::string(content);
  if (content.empty()) return turn.system;
  return turn.system + "\n\n" + std::string(content);
}

// ChatML: "<|im_start|>{role}\n{content}<|im_end|>\n" per message, every role by its name, and
// "<|im_start|>assistant\n" as the generation prompt. No BOS. Qwen2, SmolLM, Hermes, many more
// (model-specific default system prompts are not reproduced).
class ChatMlTemplate final : public ChatTemplate {
 public:
  using ChatTemplate::ChatTemplate;
  std::string_view name() const override { return "chatml"; }
  bool renders_bos() const override { return false; }
  std::span<const std::string_view> stop_strings() const override { return kStops; }

 protected:
  Expected<std::string> render_validated(const ChatRequest& request) const override {
    PV_TRY_VOID(reject_tool_calls(name(), request));
    std::string out;
    for (size_t i = 0; i < request.messages.size(); ++i) {
      const ChatMessage& message = request.messages[i];
      out += "<|im_start|>";
      out += chat_role_name(message.role);
      out += "\n";
      out += message.content;
      if (!is_open_final(request, i)) out += "<|im_end|>\n";
    }
    if (request.add_generation_prompt) out += "<|im_start|>assistant\n";
    return out;
  }

 private:
  static constexpr std::array<std::string_view, 1> kStops = {"<|im_end|>"};
};

// Llama 3: bos_token, then "<|start_header_id|>{role}<|end_header_id|>\n\n{content|trim}<|eot_id|>"
// per message, every role by its name; the generation prompt is an open assistant header.
class Llama3Template final : public ChatTemplate {
 public:
  using ChatTemplate::ChatTemplate;
  std::string_view name() const override { return "llama3"; }
  bool renders_bos() const override { return true; }
  std::span<const std::string_view> stop_strings() const override { return kStops; }

 protected:
  Expected<std::string> render_validated(const ChatRequest& request) const override {
    PV_TRY_VOID(reject_tool_calls(name(), request));
    std::string out = request.bos_token;
    for (size_t i = 0; i < request.messages.size(); ++i) {
      const ChatMessage& message = request.messages[i];
      out += "<|start_header_id|>";
      out += chat_role_name(message.role);
      out += "<|end_header_id|>\n\n";
      out += trim(message.content);
      if (!is_open_final(request, i)) out += "<|eot_id|>";
    }
    if (request.add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
    return out;
  }

 private:
  static constexpr std::array<std::string_view, 1> kStops = {"<|eot_id|>"};
};

// Phi-3, exactly as the template in Phi-3-mini GGUFs renders: bos_token; a user message is
// "<|user|>\n{content}<|end|>\n<|assistant|>\n" (so the assistant turn is always opened, and
// add_generation_prompt changes nothing); an assistant message is "{content}<|end|>\n"; system
// and tool messages are dropped, as that template drops them.
class Phi3Template final : public ChatTemplate {
 public:
  using ChatTemplate::ChatTemplate;
  std::string_view name() const override { return "phi3"; }
  bool renders_bos() const override { return true; }
  std::span<const std::string_view> stop_strings() const override { return kStops; }

 protected:
  Expected<std::string> render_validated(const ChatRequest& request) const override {
    PV_TRY_VOID(reject_tool_calls(name(), request));
    std::string out = request.bos_token;
    for (size_t i = 0; i < request.messages.size(); ++i) {
      const ChatMessage& message = request.messages[i];
      if (message.role == ChatRole::kUser) {
        out += "<|user|>\n";
        out += message.content;
        out += "<|end|>\n<|assistant|>\n";
      } else if (message.role == ChatRole::kAssistant) {
        out += message.content;
        if (!is_open_final(request, i)) out += "<|end|>\n";
      }
    }
    return out;
  }

 private:
  static constexpr std::array<std::string_view, 1> kStops = {"<|end|>"};
};

// Mistral, tokenizer v1 (Mistral 7B Instruct v0.1/v0.2, Mixtral 8x7B Instruct):
// "{bos} [INST] {user} [/INST] {assistant}{eos} [INST] {user} [/INST]". Closing [/INST] is the
// generation prompt, so add_generation_prompt changes nothing. System text goes before the
// first user message after it, separated by a blank line; the first (not the last, as later
// Mistral tokenizers do) so that the prompt prefix stays the same as the conversation grows.
class MistralTemplate final : public ChatTemplate {
 public:
  using ChatTemplate::ChatTemplate;
  std::string_view name() const override { return "mistral"; }
  bool renders_bos() const override { return true; }
  std::span<const std::string_view> stop_strings() const override { return kStops; }

 protected:
  Expected<std::string> render_validated(const ChatRequest& request) const override {
    PV_TRY_VOID(reject_tool_calls(name(), request));
    PV_TRY(std::vector<Turn> turns, fold_system_into_user(name(), request));
    std::string out = request.bos_token;
    for (const Turn& turn : turns) {
      if (turn.role == ChatRole::kUser) {
        out += " [INST] ";
        out += folded_user_text(turn, turn.content);
        out += " [/INST]";
      } else {
        out += " ";
        out += turn.content;
        if (!turn.open) out += request.eos_token;
      }
    }
    return out;
  }

 private:
  static constexpr std::array<std::string_view, 1> kStops = {"</s>"};  // v1's eos_token
};

// Gemma: bos_token, then "<start_of_turn>{user|model}\n{content|trim}<end_of_turn>\n" per turn
// and "<start_of_turn>model\n" as the generation prompt. Gemma has no system turn: system text
// goes before the next user message with a blank line, as Gemma 3's template does.
class GemmaTemplate final : public ChatTemplate {
 public:
  using ChatTemplate::ChatTemplate;
  std::string_view name() const override { return "gemma"; }
  bool renders_bos() const override { return true; }
  std::span<const std::string_view> stop_strings() const override { return kStops; }

 protected:
  Expected<std::string> render_validated(const ChatRequest& request) const override {
    PV_TRY_VOID(reject_tool_calls(name(), request));
    PV_TRY(std::vector<Turn> turns, fold_system_into_user(name(), request));
    std::string out = request.bos_token;
    for (const Turn& turn : turns) {
      if (turn.role == ChatRole::kUser) {
        out += "<start_of_turn>user\n";
        out += folded_user_text(turn, trim(turn.content));
      } else {
        out += "<start_of_turn>model\n";
        out += trim(turn.content);
      }
      if (!turn.open) out += "<end_of_turn>\n";
    }
    if (request.add_generation_prompt) out += "<start_of_turn>model\n";
    return out;
  }

 private:
  static constexpr std::array<std::string_view, 1> kStops = {"<end_of_turn>"};
};

// No template (base models such as TinyStories): the messages' text joined by blank lines,
// empty ones skipped, with no markers, BOS or generation prompt. A single user message renders
// as exactly its text, which the model then continues.
class PlainTemplate final : public ChatTemplate {
 public:
  using ChatTemplate::ChatTemplate;
  std::string_view name() const override { return "plain"; }
  bool renders_bos() const override { return false; }
  std::span<const std::string_view> stop_strings() const override { return {}; }

 protected:
  Expected<std::string> render_validated(const ChatRequest& request) const override {
    PV_TRY_VOID(reject_tool_calls(name(), request));
    std::string out;
    for (const ChatMessage& message : request.messages) {
      if (message.content.empty()) continue;
      if (!out.empty()) out += "\n\n";
      out += message.content;
    }
    return out;
  }
};

std::unique_ptr<ChatTemplate> make_builtin(std::string_view name, ChatTemplateSource source) {
  if (name == "chatml") return std::make_unique<ChatMlTemplate>(source);
  if (name == "llama3") return std::make_unique<Llama3Template>(source);
  if (name == "phi3") return std::make_unique<Phi3Template>(source);
  if (name == "mistral") return std::make_unique<MistralTemplate>(source);
  if (name == "gemma") return std::make_unique<GemmaTemplate>(source);
  if (name == "plain") return std::make_unique<PlainTemplate>(source);
  return nullptr;
}

}  // namespace

std::string_view chat_role_name(ChatRole role) {
  switch (role) {
    case ChatRole::kSystem:
      return "system";
    case ChatRole::kUser:
      return "user";
    case ChatRole::kAssistant:
      return "assistant";
    case ChatRole::kTool:
      return "tool";
  }
  PV_CHECK(false, "chat role {} out of range", static_cast<int>(role));
  return {};
}

Expected<std::string> ChatTemplate::render(const ChatRequest& request) const {
  if (request.messages.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "chat template '{}': no messages to render",
                      name());
  }
  if (request.continue_final_message) {
    if (request.add_generation_prompt) {
      return make_error(ErrorCode::kInvalidArgument,
                        "chat template '{}': continue_final_message and add_generation_prompt "
                        "exclude each other",
                        name());
    }
    if (request.messages.back().role != ChatRole::kAssistant) {
      return make_error(ErrorCode::kInvalidArgument,
                        "chat template '{}': continue_final_message needs a final assistant "
                        "message, not '{}'",
                        name(), chat_role_name(request.messages.back().role));
    }
  }
  return render_validated(request);
}

std::string describe_tools(const std::vector<ChatTool>& tools) {
  if (tools.empty()) return {};
  std::string text = "You can use these tools:\n";
  for (const ChatTool& tool : tools) {
    fmt::format_to(std::back_inserter(text), "\n- {}: {}\n  input schema: {}\n", tool.name,
                   tool.description, tool.parameters_json);
  }
  text +=
      "\nTo call a tool, write <tool_call>{\"name\": \"<tool name>\", \"arguments\": <input as "
      "JSON>}</tool_call> and end your turn; its result comes back as [tool_result ...].\n";
  return text;
}

std::vector<ChatMessage> tools_as_text(const std::vector<ChatMessage>& messages) {
  std::vector<ChatMessage> out;
  out.reserve(messages.size());
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& message = messages[i];
    ChatMessage m{message.role, message.content, {}, {}, false};
    for (const ChatToolCall& call : message.tool_calls) {
      if (!m.content.empty()) m.content.push_back('\n');
      fmt::format_to(std::back_inserter(m.content),
                     "<tool_call>{{\"name\": \"{}\", \"arguments\": {}}}</tool_call>", call.name,
                     call.arguments_json);
    }
    if (message.role == ChatRole::kTool) {
      m.role = ChatRole::kUser;
      m.content = fmt::format("[tool_result id={}{}] {}", message.tool_call_id,
                              message.tool_error ? " error" : "", message.content);
    }
    // A turn's tool results and its text: one user message, as the client sent them.
    if (m.role == ChatRole::kUser && i > 0 && messages[i - 1].role == ChatRole::kTool) {
      out.back().content += "\n" + m.content;
    } else {
      out.push_back(std::move(m));
    }
  }
  return out;
}

bool has_tool_messages(const ChatRequest& request) {
  for (const ChatMessage& message : request.messages) {
    if (!message.tool_calls.empty() || message.role == ChatRole::kTool) return true;
  }
  return false;
}

ChatRequest with_tools_as_text(const ChatRequest& request) {
  ChatRequest out = request;
  out.tools.clear();
  const std::vector<ChatMessage> messages = tools_as_text(request.messages);
  const std::string tools = describe_tools(request.tools);
  out.messages.clear();
  out.messages.reserve(messages.size() + 1);
  if (tools.empty()) {
    out.messages = messages;
    return out;
  }
  auto first = messages.begin();
  if (first != messages.end() && first->role == ChatRole::kSystem) {
    out.messages.push_back({ChatRole::kSystem, first->content + "\n\n" + tools, {}, {}, false});
    ++first;
  } else {
    out.messages.push_back({ChatRole::kSystem, tools, {}, {}, false});
  }
  out.messages.insert(out.messages.end(), first, messages.end());
  return out;
}

std::span<const std::string_view> chat_template_names() { return kNames; }

std::string_view detect_chat_template(std::string_view template_text) {
  auto has = [&](std::string_view marker) {
    return template_text.find(marker) != std::string_view::npos;
  };
  if (has("<|im_start|>")) return "chatml";
  if (has("<|start_header_id|>")) return "llama3";
  if (has("<start_of_turn>")) return "gemma";
  // Both markers: Zephyr-style templates also use <|user|>, but end turns with eos_token.
  if (has("<|user|>") && has("<|end|>")) return "phi3";
  // Llama 2 templates use [INST] too; they differ from Mistral v1 only in <<SYS>> system text.
  if (has("[INST]")) return "mistral";
  return {};
}

Expected<std::unique_ptr<ChatTemplate>> make_chat_template(std::string_view template_text,
                                                           std::string_view name_override) {
  if (!name_override.empty()) {
    std::unique_ptr<ChatTemplate> chosen =
        make_builtin(name_override, ChatTemplateSource::kOverride);
    if (chosen == nullptr) {
      return make_error(ErrorCode::kInvalidArgument,
                        "chat template: unknown name '{}' (valid names: {})", name_override,
                        fmt::join(kNames, ", "));
    }
    return chosen;
  }
  if (template_text.empty()) return make_builtin("plain", ChatTemplateSource::kNoTemplate);
  const std::string_view detected = detect_chat_template(template_text);
  const std::string_view family = detected.empty() ? "chatml" : detected;
  auto own =
      JinjaChatTemplate::make(template_text, make_builtin(family, ChatTemplateSource::kDetected));
  if (own) return std::unique_ptr<ChatTemplate>(std::move(*own));
  log::warn("chat template: the model's template cannot be used ({}); using the built-in '{}'",
            own.error().message, family);
  if (detected.empty()) return make_builtin("chatml", ChatTemplateSource::kUnrecognized);
  return make_builtin(detected, ChatTemplateSource::kDetected);
}

}  // namespace pensieve
