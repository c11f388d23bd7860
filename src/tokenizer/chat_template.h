// Chat templates: turn a conversation into the prompt text a model was trained on.
// Built-in renderers for the common families, chosen by name or recognized from the GGUF's
// tokenizer.chat_template; a general Jinja implementation can later sit behind the same interface.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace pensieve {

enum class ChatRole { kSystem, kUser, kAssistant, kTool };

// "system", "user", "assistant", "tool": the names templates see as message['role'].
std::string_view chat_role_name(ChatRole role);

// A tool invocation made by the assistant. Templates that render tools (renders_tools()) see
// them as message['tool_calls']; the built-in ones reject messages that have any (the prompt
// renderer writes calls as text for them).
struct ChatToolCall {
  std::string id;
  std::string name;
  std::string arguments_json;  // a JSON object
};

struct ChatMessage {
  ChatRole role = ChatRole::kUser;
  std::string content;                   // text; what templates see as message['content']
  std::vector<ChatToolCall> tool_calls;  // assistant messages that call tools
  std::string tool_call_id;              // tool messages: the call this result answers
  bool tool_error = false;               // tool messages: the call failed
};

// A tool the client offers the model.
struct ChatTool {
  std::string name;
  std::string description;
  std::string parameters_json;  // its input's JSON Schema, serialized compactly
};

struct ChatRequest {
  std::vector<ChatMessage> messages;
  // Open an assistant turn after the conversation, for the model to write.
  bool add_generation_prompt = true;
  // Leave the final (assistant) message open so generation continues it: a response prefill.
  // Excludes add_generation_prompt.
  bool continue_final_message = false;
  // Offered tools, for templates that render them (renders_tools()).
  std::vector<ChatTool> tools;
  // The client's choice to reason first (Anthropic `thinking`), for templates that take
  // enable_thinking; unset: the template's default.
  std::optional<bool> enable_thinking;
  // The model's special-token texts, as templates see bos_token and eos_token.
  std::string bos_token;
  std::string eos_token;
};

// How a template was chosen, so the caller can tell a guess from a match.
enum class ChatTemplateSource {
  kOverride,      // named by the operator (--chat-template)
  kModel,         // the GGUF's tokenizer.chat_template, run by the Jinja engine
  kDetected,      // recognized from the GGUF's tokenizer.chat_template
  kNoTemplate,    // the GGUF has no template: plain text
  kUnrecognized,  // the GGUF's template was not recognized: ChatML as a best guess
};

class ChatTemplate {
 public:
  explicit ChatTemplate(ChatTemplateSource source) : source_(source) {}
  virtual ~ChatTemplate() = default;
  ChatTemplate(const ChatTemplate&) = delete;
  ChatTemplate& operator=(const ChatTemplate&) = delete;

  // Validates what every template needs (at least one message; continue_final_message only
  // with a final assistant message and without add_generation_prompt), then renders.
  Expected<std::string> render(const ChatRequest& request) const;

  // The template's name ("chatml", ...), for logs and errors.
  virtual std::string_view name() const = 0;
  // Whether the rendered text already starts with bos_token, so the tokenizer must not add one.
  virtual bool renders_bos() const = 0;
  // The texts that end an assistant turn in this format ("<|im_end|>"). Usually they are single
  // end-of-generation tokens; as stop strings they also end a turn the model spells out as text.
  virtual std::span<const std::string_view> stop_strings() const = 0;
  ChatTemplateSource source() const { return source_; }
  // Whether the template renders ChatRequest::tools, assistant tool calls and tool messages
  // itself; the built-ins do not.
  virtual bool renders_tools() const { return false; }

 protected:
  // Renders a request that render() has validated.
  virtual Expected<std::string> render_validated(const ChatRequest& request) const = 0;

 private:
  ChatTemplateSource source_;
};

// For templates that do not render tools: assistant tool calls become
// "<tool_call>{"name": .., "arguments": {input}}</tool_call>" lines after the text (the form
// describe_tools() asks for), tool results "[tool_result id=..( error)] text" user messages,
// joined with the user text of the same turn.
std::vector<ChatMessage> tools_as_text(const std::vector<ChatMessage>& messages);
// The text of a leading system message describing `tools`; empty when there are none.
std::string describe_tools(const std::vector<ChatTool>& tools);
// Whether any message carries tool calls or is a tool result.
bool has_tool_messages(const ChatRequest& request);
// The request with tools_as_text() messages and the tools described in the system message
// (joined to the first one, since several templates keep only one), and no `tools`.
ChatRequest with_tools_as_text(const ChatRequest& request);

// The built-in names, in the order error messages list them (details in chat_template.cpp):
//   chatml   "<|im_start|>{role}\n{content}<|im_end|>\n"; no BOS
//   llama3   "<|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>" after BOS
//   phi3     the Phi-3-mini GGUF template exactly: system messages are dropped
//   mistral  v1 "[INST] ... [/INST]"; system text goes before the first user message
//   gemma    "<start_of_turn>user|model"; system text goes before the next user message
//   plain    the messages' text joined by blank lines, for models without a template
std::span<const std::string_view> chat_template_names();

// The built-in whose markers appear in a GGUF tokenizer.chat_template; "" when none does.
std::string_view detect_chat_template(std::string_view template_text);

// Chooses a template. A non-empty `name_override` must be a built-in name (else an error that
// lists them). Otherwise: no template text -> plain; text the Jinja engine parses -> the model's
// own template (kModel), with the built-in it looks like (or chatml) as its fallback; text it
// cannot parse -> the recognized built-in (kDetected), else chatml with source kUnrecognized
// (the most widespread format; the caller should warn and point at --chat-template).
Expected<std::unique_ptr<ChatTemplate>> make_chat_template(std::string_view template_text,
                                                           std::string_view name_override);

}  // namespace pensieve
