// The engine's own request types: what the wire parsers (Anthropic, OpenAI) fill in directly and
// the scheduler runs. Nothing here knows JSON or HTTP.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/generate.h"
#include "tokenizer/chat_template.h"

namespace pensieve {

// A tool the client offers the model.
using ToolSpec = ChatTool;

// Whether and which tool the reply must call (Anthropic tool_choice, OpenAI tool_choice).
struct ToolChoice {
  enum class Kind { kAuto, kAny, kTool, kNone };
  Kind kind = Kind::kAuto;
  std::string name;      // kTool
  bool parallel = true;  // several calls in one reply (Anthropic disable_parallel_tool_use,
                         // OpenAI parallel_tool_calls)
};

// One chat completion request, whichever API it came through.
struct InferenceRequest {
  std::string model;                  // the name the client asked for, echoed back
  std::vector<ChatMessage> messages;  // system messages included, in order
  std::vector<ToolSpec> tools;
  ToolChoice tool_choice;
  // Anthropic `thinking`: enabled or disabled by the client; unset: the template's default.
  std::optional<bool> thinking;
  std::optional<int64_t> max_tokens;  // absent: as many as the context allows
  SamplingParams sampling;
  std::vector<std::string> stop_sequences;
  bool stream = false;
  bool include_usage = false;  // OpenAI stream_options.include_usage
};

}  // namespace pensieve
