#include "engine/tool_syntax.h"

#include <algorithm>

#include <fmt/format.h>

namespace pensieve {
namespace {

constexpr std::string_view kSpace = " \t\r\n";

std::string_view trim(std::string_view text) {
  const size_t first = text.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return {};
  const size_t last = text.find_last_not_of(kSpace);
  return text.substr(first, last - first + 1);
}

std::string_view trim_end(std::string_view text) {
  const size_t last = text.find_last_not_of(kSpace);
  return last == std::string_view::npos ? std::string_view() : text.substr(0, last + 1);
}

// The key of the last `"key":` in `text` (which ends right before a value).
std::optional<std::string> last_key(std::string_view text) {
  text = trim_end(text);
  if (!text.ends_with(':')) return std::nullopt;
  text = trim_end(text.substr(0, text.size() - 1));
  if (!text.ends_with('"')) return std::nullopt;
  text.remove_suffix(1);
  const size_t open = text.rfind('"');
  if (open == std::string_view::npos) return std::nullopt;
  return std::string(text.substr(open + 1));
}

}  // namespace

std::string json_quote(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (byte < 0x20) {
      fmt::format_to(std::back_inserter(out), "\\u{:04x}", byte);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
  return out;
}

std::optional<ToolCallSyntax> read_tool_call_syntax(
    std::string_view prompt, std::string_view with_call, std::string_view name_marker,
    std::string_view args_marker, std::span<const std::string_view> stop_strings) {
  const std::string quoted_name = json_quote(name_marker);
  const size_t name = with_call.rfind(quoted_name);
  if (name == std::string_view::npos) return std::nullopt;
  // The call object opens right before "name":
  const size_t object = with_call.rfind('{', name);
  if (object == std::string_view::npos) return std::nullopt;
  if (last_key(with_call.substr(object + 1, name - object - 1)) != "name") return std::nullopt;

  ToolCallSyntax syntax;
  const size_t args = with_call.find(args_marker, name);
  const size_t args_brace = args == std::string_view::npos ? args : with_call.rfind('{', args);
  if (args_brace == std::string_view::npos || args_brace < name) return std::nullopt;
  const size_t after_name = name + quoted_name.size();
  auto key = last_key(with_call.substr(after_name, args_brace - after_name));
  if (!key) return std::nullopt;
  syntax.arguments_key = *key;

  // What the assistant turn writes before the call object: the renderings agree up to there.
  const size_t common = static_cast<size_t>(
      std::mismatch(prompt.begin(), prompt.end(), with_call.begin(), with_call.end()).first -
      prompt.begin());
  std::string_view before =
      trim(with_call.substr(std::min(common, object), object - std::min(common, object)));
  if (before.ends_with('[')) {
    syntax.list = true;
    before = trim(before.substr(0, before.size() - 1));
  }
  syntax.open = std::string(before);

  // What it writes after the call object (and the list's ']'), up to the end of the turn.
  size_t end = with_call.find('}', args);  // the arguments' own closing brace
  if (end == std::string_view::npos) return std::nullopt;
  end = with_call.find('}', end + 1);  // the call object's
  if (end == std::string_view::npos) return std::nullopt;
  std::string_view after = with_call.substr(end + 1);
  if (syntax.list) {
    const size_t bracket = after.find(']');
    if (bracket != std::string_view::npos) after = after.substr(bracket + 1);
  }
  for (std::string_view stop : stop_strings) {
    if (stop.empty()) continue;
    const size_t at = after.find(stop);
    if (at != std::string_view::npos) after = after.substr(0, at);
  }
  after = trim(after);
  // Anything longer than a marker is the rest of the template, not a closing tag.
  if (after.size() <= 32 && after.find('\n') == std::string_view::npos) {
    syntax.close = std::string(after);
  }
  return syntax;
}

}  // namespace pensieve
