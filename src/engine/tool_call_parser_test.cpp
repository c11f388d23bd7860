// Tool calls read out of streamed replies: the same events whatever the chunking, for each
// family's syntax; text that only looks like a call start stays text.
#include "engine/tool_call_parser.h"

#include <gtest/gtest.h>

namespace pensieve {
namespace {

const ToolCallSyntax kHermes{"<tool_call>", "</tool_call>", "arguments", false};
const ToolCallSyntax kLlama{"", "", "parameters", false};
const ToolCallSyntax kMistral{"[TOOL_CALLS]", "", "arguments", true};
const std::vector<std::string> kTools = {"Read", "ReadAll", "Bash"};

// The events as one compact string: text as is, calls as «name|input».
std::string summarize(const std::vector<ReplyPart>& parts) {
  std::string out;
  for (const ReplyPart& p : parts) {
    switch (p.kind) {
      case ReplyPart::Kind::kText:
      case ReplyPart::Kind::kThinking:
        out += p.text;
        break;
      case ReplyPart::Kind::kToolCall:
        out += "«" + p.text + "|";
        break;
      case ReplyPart::Kind::kToolInput:
        out += p.text;
        break;
      case ReplyPart::Kind::kToolEnd:
        out += "»";
        break;
    }
  }
  return out;
}

// Feeds `reply` in chunks of `chunk` bytes (0: all at once).
std::string parse(const ToolCallSyntax& syntax, std::string_view reply, size_t chunk,
                  ToolCallParser::Start start = ToolCallParser::Start::kFree,
                  bool parallel = true) {
  ToolCallParser parser(syntax, kTools, start, parallel, "Bash");
  std::vector<ReplyPart> all;
  if (chunk == 0) chunk = reply.size() + 1;
  for (size_t at = 0; at < reply.size(); at += chunk) {
    auto parts = parser.feed(reply.substr(at, chunk));
    all.insert(all.end(), parts.begin(), parts.end());
  }
  auto rest = parser.finish();
  all.insert(all.end(), rest.begin(), rest.end());
  return summarize(all);
}

struct Case {
  const ToolCallSyntax* syntax;
  std::string reply;
  std::string expected;
};

TEST(ToolCallParser, SameEventsWhateverTheChunking) {
  const Case cases[] = {
      {&kHermes, "No tools needed.", "No tools needed."},
      {&kHermes,
       "Let me look.\n<tool_call>\n{\"name\": \"Read\", \"arguments\": {\"path\": "
       "\"a}\\\"b\"}}\n</tool_call>",
       "Let me look.\n«Read|{\"path\": \"a}\\\"b\"}»"},
      {&kHermes,
       "<tool_call>{\"name\":\"ReadAll\",\"arguments\":{}}</tool_call>\n<tool_call>{\"name\": "
       "\"Bash\", \"arguments\": {\"command\": [1, {\"x\": \"]\"}]}}</tool_call>",
       "«ReadAll|{}»«Bash|{\"command\": [1, {\"x\": \"]\"}]}»"},
      // An opener not followed by a call is text.
      {&kHermes, "I write <tool_call> tags like <tool_call>{\"nom\": 1}.",
       "I write <tool_call> tags like <tool_call>{\"nom\": 1}."},
      {&kHermes, "<tool_call>{\"name\": \"Unknown\"", "<tool_call>{\"name\": \"Unknown\""},
      // Text after a call's closer is text again.
      {&kHermes, "<tool_call>{\"name\": \"Read\", \"arguments\": {}}</tool_call> done",
       "«Read|{}»done"},
      {&kLlama, "{\"name\": \"Bash\", \"parameters\": {\"command\": \"ls\"}}",
       "«Bash|{\"command\": \"ls\"}»"},
      {&kLlama, "  {\"title\": 1}", "  {\"title\": 1}"},
      {&kLlama, "Sure: {\"name\": \"Bash\"}", "Sure: {\"name\": \"Bash\"}"},
      {&kMistral,
       "[TOOL_CALLS][{\"name\": \"Read\", \"arguments\": {\"p\": 1}}, {\"name\": \"Bash\", "
       "\"arguments\": {\"c\": \"x\"}}]",
       "«Read|{\"p\": 1}»«Bash|{\"c\": \"x\"}»"},
  };
  for (const Case& c : cases) {
    for (size_t chunk : {0, 1, 2, 3, 7}) {
      EXPECT_EQ(parse(*c.syntax, c.reply, chunk), c.expected) << c.reply << " chunk " << chunk;
    }
  }
}

TEST(ToolCallParser, NoParallelCallsStopsAfterTheFirst) {
  const std::string reply =
      "<tool_call>{\"name\": \"Read\", \"arguments\": {}}</tool_call><tool_call>{\"name\": "
      "\"Bash\", \"arguments\": {}}</tool_call>";
  EXPECT_EQ(parse(kHermes, reply, 1, ToolCallParser::Start::kFree, false), "«Read|{}»");
}

TEST(ToolCallParser, ForcedStarts) {
  EXPECT_EQ(parse(kHermes, "{\"name\": \"Bash\", \"arguments\": {\"c\": 1}}", 2,
                  ToolCallParser::Start::kInCall),
            "«Bash|{\"c\": 1}»");
  EXPECT_EQ(parse(kHermes, "{\"c\": 1}", 3, ToolCallParser::Start::kArguments),
            "«Bash|{\"c\": 1}»");
}

TEST(ToolCallParser, CallCutShortIsClosed) {
  EXPECT_EQ(parse(kHermes, "<tool_call>{\"name\": \"Read\", \"arguments\": {\"pa", 1),
            "«Read|{\"pa»");
}

TEST(ToolCallParser, NameKnownBeforeArgumentsStream) {
  ToolCallParser parser(kHermes, kTools, ToolCallParser::Start::kFree, true);
  auto parts = parser.feed("<tool_call>{\"name\": \"Read\"");
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].kind, ReplyPart::Kind::kToolCall);
  EXPECT_EQ(parts[0].text, "Read");
  parts = parser.feed(", \"arguments\": {\"a\"");
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].kind, ReplyPart::Kind::kToolInput);
  EXPECT_EQ(parts[0].text, "{\"a\"");
  EXPECT_EQ(parser.calls(), 1);
}

}  // namespace
}  // namespace pensieve
