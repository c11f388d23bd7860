// How a model writes tool calls: read off its chat template by rendering one call, so the
// server knows what to watch for in the reply (Hermes/Qwen "<tool_call>{...}</tool_call>",
// Llama 3.1's bare JSON object, Mistral's "[TOOL_CALLS][{...}]", or the generic text form that
// describe_tools() teaches templates without tool support).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace pensieve {

struct ToolCallSyntax {
  // The text that starts a call (or a list of calls), e.g. "<tool_call>"; empty: a call is a
  // reply that starts with the call object itself.
  std::string open;
  // The text that ends a call, e.g. "</tool_call>"; may be empty.
  std::string close;
  // The call object is {"name": "...", "<arguments_key>": {...}}.
  std::string arguments_key = "arguments";
  // Calls are written as a JSON array of call objects after `open`.
  bool list = false;
};

// Reads the syntax from two renderings of one conversation: `prompt` with the generation
// prompt, `with_call` with an assistant turn instead that calls a tool named `name_marker` with
// arguments {"<args_marker>": 1}. `stop_strings` end an assistant turn. nullopt: the template does
// not write a call as a JSON object whose first key is "name".
std::optional<ToolCallSyntax> read_tool_call_syntax(std::string_view prompt,
                                                    std::string_view with_call,
                                                    std::string_view name_marker,
                                                    std::string_view args_marker,
                                                    std::span<const std::string_view> stop_strings);

// The JSON text of a string (quotes included), as call objects spell tool names.
std::string json_quote(std::string_view text);

}  // namespace pensieve
