// libFuzzer target: any bytes as a model's reply, fed in chunks whose sizes the input also
// picks, never crash the tool call parser, for each family's syntax and start; its parts are
// well formed (input only inside a call, every call closed) and the same whatever the chunking.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "engine/tool_call_parser.h"

namespace {

using pensieve::ReplyPart;
using pensieve::ToolCallParser;
using pensieve::ToolCallSyntax;

const ToolCallSyntax kSyntaxes[] = {{"<tool_call>", "</tool_call>", "arguments", false},
                                    {"", "", "parameters", false},
                                    {"[TOOL_CALLS]", "", "arguments", true}};
const std::vector<std::string> kTools = {"Read", "ReadAll", "Bash"};

// The parts merged into one canonical sequence (adjacent text and input pieces joined).
std::vector<ReplyPart> merged(const std::vector<ReplyPart>& parts) {
  std::vector<ReplyPart> out;
  for (const ReplyPart& p : parts) {
    const bool joins = p.kind == ReplyPart::Kind::kText || p.kind == ReplyPart::Kind::kToolInput;
    if (joins && !out.empty() && out.back().kind == p.kind) {
      out.back().text += p.text;
    } else {
      out.push_back(p);
    }
  }
  return out;
}

std::vector<ReplyPart> parse(const ToolCallSyntax& syntax, ToolCallParser::Start start,
                             bool parallel, std::string_view text, size_t chunk) {
  ToolCallParser parser(syntax, kTools, start, parallel, "Bash");
  std::vector<ReplyPart> parts;
  for (size_t at = 0; at < text.size(); at += chunk) {
    for (ReplyPart& p : parser.feed(text.substr(at, chunk))) parts.push_back(std::move(p));
  }
  for (ReplyPart& p : parser.finish()) parts.push_back(std::move(p));
  return merged(parts);
}

void check_well_formed(const std::vector<ReplyPart>& parts) {
  bool open = false;
  for (const ReplyPart& p : parts) {
    switch (p.kind) {
      case ReplyPart::Kind::kToolCall:
        if (open) std::abort();
        open = true;
        break;
      case ReplyPart::Kind::kToolInput:
        if (!open) std::abort();
        break;
      case ReplyPart::Kind::kToolEnd:
        if (!open) std::abort();
        open = false;
        break;
      default:
        if (open) std::abort();
    }
  }
  if (open) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t chunk = 1 + data[0] % 7;
  const uint8_t mode = data[1];
  const std::string_view text(reinterpret_cast<const char*>(data) + 2, size - 2);
  const ToolCallSyntax& syntax = kSyntaxes[mode % 3];
  const auto start = static_cast<ToolCallParser::Start>((mode / 3) % 3);
  const bool parallel = (mode / 9) % 2 == 0;
  const auto whole = parse(syntax, start, parallel, text, text.size() + 1);
  check_well_formed(whole);
  const auto chunked = parse(syntax, start, parallel, text, chunk);
  if (chunked.size() != whole.size()) std::abort();
  for (size_t i = 0; i < whole.size(); ++i) {
    if (chunked[i].kind != whole[i].kind || chunked[i].text != whole[i].text) std::abort();
  }
  return 0;
}
