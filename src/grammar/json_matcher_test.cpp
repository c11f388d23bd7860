#include "grammar/json_matcher.h"

#include <gtest/gtest.h>

#include "grammar/test_util.h"

namespace pensieve {
namespace {

using grammar_test::accepts;
using grammar_test::complete_after;
using grammar_test::first_reject;
using grammar_test::kAccepted;
using grammar_test::matcher_for;

TEST(JsonMatcher, Strings) {
  auto m = matcher_for(R"({"type": "string"})");
  EXPECT_TRUE(accepts(m, R"("")"));
  EXPECT_TRUE(accepts(m, R"("a \"b\" \\ \/ \b\f\n\r\t \u00e9\uD83D")"));
  EXPECT_TRUE(accepts(m, "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""));
  EXPECT_EQ(first_reject(m, "\"a\nb\""), 2u);          // raw control character
  EXPECT_EQ(first_reject(m, R"("\x")"), 2u);           // unknown escape
  EXPECT_EQ(first_reject(m, R"("\u12g4")"), 5u);       // bad hex digit
  EXPECT_EQ(first_reject(m, "\"\xc0\x80\""), 1u);      // overlong lead byte
  EXPECT_EQ(first_reject(m, "\"\xed\xa0\x80\""), 2u);  // encoded surrogate
  EXPECT_EQ(first_reject(m, "\"\xc3\x28\""), 2u);      // missing continuation
  EXPECT_EQ(first_reject(m, "\"a\" "), 3u);            // nothing after the value
  EXPECT_EQ(first_reject(m, "1"), 0u);
  EXPECT_FALSE(complete_after(m, "\"abc"));
}

TEST(JsonMatcher, Numbers) {
  auto m = matcher_for(R"({"type": "number"})");
  for (const char* ok : {"0", "-0", "12", "-3.25", "1e9", "1E+9", "2.5e-3", "0.0"}) {
    EXPECT_TRUE(accepts(m, ok)) << ok;
  }
  EXPECT_EQ(first_reject(m, "01"), 1u);
  EXPECT_TRUE(accepts(m, "-12345678901234567890.5e-99"));
  EXPECT_EQ(first_reject(m, "123456789012345678901"), 20u);  // digit caps
  EXPECT_EQ(first_reject(m, "1e100"), 4u);
  EXPECT_EQ(first_reject(m, "-a"), 1u);
  EXPECT_EQ(first_reject(m, "1.e"), 2u);
  EXPECT_EQ(first_reject(m, "+1"), 0u);
  EXPECT_EQ(first_reject(m, "\"1\""), 0u);
  EXPECT_FALSE(complete_after(m, "-"));
  EXPECT_FALSE(complete_after(m, "1."));
  EXPECT_FALSE(complete_after(m, "1e+"));
  auto i = matcher_for(R"({"type": "integer"})");
  EXPECT_TRUE(accepts(i, "-120"));
  EXPECT_EQ(first_reject(i, "1.5"), 1u);
  EXPECT_EQ(first_reject(i, "1e5"), 1u);
}

TEST(JsonMatcher, BooleansNullsEnumsConst) {
  auto b = matcher_for(R"({"type": "boolean"})");
  EXPECT_TRUE(accepts(b, "true"));
  EXPECT_TRUE(accepts(b, "false"));
  EXPECT_EQ(first_reject(b, "trux"), 3u);
  EXPECT_EQ(first_reject(b, "null"), 0u);
  auto n = matcher_for(R"({"type": ["string", "null"]})");
  EXPECT_TRUE(accepts(n, "null"));
  EXPECT_TRUE(accepts(n, R"("x")"));
  EXPECT_EQ(first_reject(n, "true"), 0u);
  auto e = matcher_for(R"({"enum": ["pending", "in_progress", 12, 1, null]})");
  for (const char* ok : {R"("pending")", R"("in_progress")", "12", "1", "null"}) {
    EXPECT_TRUE(accepts(e, ok)) << ok;
  }
  EXPECT_EQ(first_reject(e, R"("pend")"), 5u);
  EXPECT_EQ(first_reject(e, "13"), 1u);
  EXPECT_FALSE(complete_after(e, R"("pending)"));
  auto c = matcher_for(R"({"const": {"a": [1, true]}})");
  EXPECT_TRUE(accepts(c, R"({"a":[1,true]})"));
  EXPECT_EQ(first_reject(c, R"({"a":[2)"), 6u);
}

TEST(JsonMatcher, ObjectsClosed) {
  auto m = matcher_for(R"({"type": "object", "additionalProperties": false,
      "properties": {"command": {"type": "string"}, "timeout": {"type": "integer"},
                     "background": {"type": "boolean"}},
      "required": ["command"]})");
  EXPECT_TRUE(accepts(m, R"({"command":"ls"})"));
  EXPECT_TRUE(accepts(m, R"({"timeout": 5, "command": "ls", "background": false})"));
  EXPECT_EQ(first_reject(m, "{}"), 1u);                                 // command is required
  EXPECT_EQ(first_reject(m, R"({"timeout":5})"), 12u);                  // still required
  EXPECT_EQ(first_reject(m, R"({"cmd":"ls"})"), 3u);                    // undeclared key
  EXPECT_EQ(first_reject(m, R"({"command":"a","command":"b"})"), 16u);  // key written twice
  EXPECT_EQ(first_reject(m, R"({"command":5})"), 11u);
  EXPECT_EQ(first_reject(m, R"({"command" :"a"})"), 10u);   // no space before ':'
  EXPECT_EQ(first_reject(m, R"({"command":  "a"})"), 12u);  // one space at most
  EXPECT_EQ(first_reject(m, R"({ "command":"a"})"), 1u);
  EXPECT_EQ(first_reject(m, R"({"command":"a" })"), 14u);
  // Once every declared key is written, ',' would lead nowhere.
  EXPECT_EQ(first_reject(m, R"({"command":"a","timeout":1,"background":true,)"), 44u);
}

TEST(JsonMatcher, ObjectsOpen) {
  auto m = matcher_for(
      R"({"type": "object", "additionalProperties": true, "properties": {"a": {"type": "integer"}}})");
  EXPECT_TRUE(accepts(m, R"({})"));
  EXPECT_TRUE(accepts(m, R"({"a":1,"ab":"x","b":[{"c":null}]})"));
  EXPECT_EQ(first_reject(m, R"({"a":"x"})"), 5u);  // declared keys keep their schema
  EXPECT_EQ(first_reject(m, R"({"a":1,"a":2})"), 9u);
  // Declared properties and no word on others: only the declared ones.
  auto closed = matcher_for(R"({"type": "object", "properties": {"a": {"type": "integer"}}})");
  EXPECT_TRUE(accepts(closed, R"({"a":1})"));
  EXPECT_EQ(first_reject(closed, R"({"a":1,"b":2})"), 6u);  // no key may follow
  auto any_keys = matcher_for(R"({"type": "object"})");
  EXPECT_TRUE(accepts(any_keys, R"({"b":[1]})"));
  auto typed = matcher_for(R"({"type": "object", "additionalProperties": {"type": "number"}})");
  EXPECT_TRUE(accepts(typed, R"({"x":1,"y":2.5})"));
  EXPECT_EQ(first_reject(typed, R"({"x":"1"})"), 5u);
}

TEST(JsonMatcher, NestedArraysOfObjects) {
  auto m = matcher_for(R"({"type": "object", "additionalProperties": false, "required": ["todos"],
      "properties": {"todos": {"type": "array", "minItems": 1, "maxItems": 2, "items": {
        "type": "object", "additionalProperties": false, "required": ["content", "status"],
        "properties": {"content": {"type": "string"},
                       "status": {"enum": ["pending", "completed"]}}}}}})");
  EXPECT_TRUE(accepts(m, R"({"todos":[{"content":"a","status":"pending"}]})"));
  EXPECT_TRUE(accepts(m, R"({"todos": [{"status": "completed", "content": "b"}, )"
                         R"({"content":"c","status":"pending"}]})"));
  EXPECT_EQ(first_reject(m, R"({"todos":[]})"), 10u);  // minItems
  EXPECT_EQ(first_reject(m, R"({"todos":[{"content":"a"}]})"), 24u);
  EXPECT_EQ(first_reject(m, R"({"todos":[{"content":"a","status":"done"}]})"), 35u);
  const std::string item = R"({"content":"a","status":"pending"})";
  EXPECT_EQ(first_reject(m, "{\"todos\":[" + item + "," + item + ","),
            10 + 2 * item.size() + 1);  // maxItems
}

TEST(JsonMatcher, UnionsKeepAlternatives) {
  auto m = matcher_for(R"({"anyOf": [
      {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"],
       "additionalProperties": false},
      {"type": "object", "properties": {"pattern": {"type": "string"}}, "required": ["pattern"],
       "additionalProperties": false},
      {"type": "string", "const": "deleted"}]})");
  EXPECT_TRUE(accepts(m, R"({"path":"a"})"));
  EXPECT_TRUE(accepts(m, R"({"pattern":"a"})"));
  EXPECT_TRUE(accepts(m, R"("deleted")"));
  EXPECT_EQ(first_reject(m, R"({"pa":1})"), 4u);
  EXPECT_EQ(first_reject(m, R"({"path":"a","pattern":"b"})"), 11u);
  EXPECT_EQ(first_reject(m, R"("other")"), 1u);
}

TEST(JsonMatcher, AnySchemaAcceptsAnyJson) {
  for (const char* schema : {"{}", R"({"description": "free-form"})", R"({"format": "x"})"}) {
    auto m = matcher_for(schema);
    for (const char* ok : {"1", "-2.5e3", "\"s\"", "true", "null", "[]", "{}",
                           R"({"a":[1,{"b":null}], "c": "d"})", R"([[], [{}], "x"])"}) {
      EXPECT_TRUE(accepts(m, ok)) << schema << " " << ok;
    }
    EXPECT_EQ(first_reject(m, "[1,]"), 3u);
    EXPECT_EQ(first_reject(m, "{\"a\"}"), 4u);
    EXPECT_EQ(first_reject(m, " 1"), 0u);
  }
}

TEST(JsonMatcher, DepthIsCapped) {
  auto m = matcher_for("{}");
  const size_t cap = JsonMatcher::kMaxDepth;
  EXPECT_EQ(first_reject(m, std::string(cap - 1, '[')), kAccepted);
  EXPECT_EQ(first_reject(m, std::string(cap + 5, '[')), cap - 1);
}

TEST(JsonMatcher, FailedAdvanceLeavesStateUnchanged) {
  auto m = matcher_for(R"({"type": "integer"})");
  auto state = m.start();
  ASSERT_TRUE(m.advance(state, "12"));
  EXPECT_FALSE(m.advance(state, "3x"));
  EXPECT_TRUE(m.advance(state, "3"));
  EXPECT_TRUE(m.complete(state));
}

}  // namespace
}  // namespace pensieve
