// Reasoning and answer split from a reply streamed in pieces of every size: markers cut across
// pieces, replies without markers, and the prompt that opens the reasoning itself.
#include "engine/reply_parts.h"

#include <gtest/gtest.h>

namespace pensieve {
namespace {

using Kind = ReplyPart::Kind;

// Feeds `text` in pieces of `size` bytes; returns the merged parts.
std::vector<ReplyPart> in_pieces(std::string_view text, size_t size, bool starts_thinking) {
  ReplySplitter splitter(starts_thinking);
  std::vector<ReplyPart> all;
  auto add = [&](std::vector<ReplyPart> parts) {
    for (ReplyPart& p : parts) {
      if (!all.empty() && all.back().kind == p.kind) {
        all.back().text += p.text;
      } else {
        all.push_back(std::move(p));
      }
    }
  };
  for (size_t i = 0; i < text.size(); i += size) add(splitter.feed(text.substr(i, size)));
  add(splitter.finish());
  return all;
}

void expect_parts(std::string_view text, bool starts_thinking,
                  const std::vector<std::pair<Kind, std::string>>& want) {
  for (size_t size : {1, 2, 3, 5, 7, 64}) {
    const std::vector<ReplyPart> got = in_pieces(text, size, starts_thinking);
    ASSERT_EQ(got.size(), want.size()) << "pieces of " << size << ": " << text;
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_EQ(got[i].kind, want[i].first) << "pieces of " << size;
      EXPECT_EQ(got[i].text, want[i].second) << "pieces of " << size;
    }
  }
}

TEST(ReplySplitter, ThinkingThenAnswer) {
  expect_parts("<think>\nThe user greets.\n</think>\n\nHello!", false,
               {{Kind::kThinking, "The user greets.\n"}, {Kind::kText, "Hello!"}});
  expect_parts("  <thinking>plan</thinking>Answer", false,
               {{Kind::kThinking, "plan"}, {Kind::kText, "Answer"}});
}

TEST(ReplySplitter, PlainRepliesAreTextAsWritten) {
  expect_parts("Hello <think> is just text here", false,
               {{Kind::kText, "Hello <think> is just text here"}});
  expect_parts("\n<thi", false, {{Kind::kText, "\n<thi"}});  // ended inside a maybe-marker
  expect_parts("<b>bold</b>", false, {{Kind::kText, "<b>bold</b>"}});
}

TEST(ReplySplitter, PromptThatOpensTheReasoning) {
  EXPECT_TRUE(ReplySplitter::prompt_opens_thinking("<|Assistant|><think>\n"));
  EXPECT_FALSE(ReplySplitter::prompt_opens_thinking("<|im_start|>assistant\n"));
  expect_parts("step 1</think>42", true, {{Kind::kThinking, "step 1"}, {Kind::kText, "42"}});
  // Never closed: all reasoning (the answer was cut off).
  expect_parts("step 1 </thin", true, {{Kind::kThinking, "step 1 </thin"}});
}

TEST(ReplySplitter, SplitReplyWhole) {
  const std::vector<ReplyPart> parts = split_reply("<think>a</think>b", false);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].text, "a");
  EXPECT_EQ(parts[1].text, "b");
  EXPECT_TRUE(split_reply("", false).empty());
}

}  // namespace
}  // namespace pensieve
