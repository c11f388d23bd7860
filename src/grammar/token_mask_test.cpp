#include "grammar/token_mask.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "grammar/test_util.h"

namespace pensieve {
namespace {

using Json = nlohmann::json;
using grammar_test::matcher_for;

// A small reference validator for the keywords the random walk exercises.
bool valid(const Json& v, const Json& s) {
  if (s.is_boolean()) return s.get<bool>();
  if (s.contains("const")) return v == s["const"];
  if (s.contains("enum")) {
    for (const Json& e : s["enum"]) {
      if (v == e) return true;
    }
    return false;
  }
  if (s.contains("anyOf")) {
    for (const Json& alt : s["anyOf"]) {
      if (valid(v, alt)) return true;
    }
    return false;
  }
  if (s.contains("type")) {
    const Json types = s["type"].is_array() ? s["type"] : Json::array({s["type"]});
    bool ok = false;
    for (const Json& t : types) {
      const std::string name = t;
      ok = ok || (name == "string" && v.is_string()) || (name == "number" && v.is_number()) ||
           (name == "integer" && v.is_number() && std::floor(v.get<double>()) == v.get<double>()) ||
           (name == "boolean" && v.is_boolean()) || (name == "null" && v.is_null()) ||
           (name == "object" && v.is_object()) || (name == "array" && v.is_array());
    }
    if (!ok) return false;
  }
  if (v.is_object()) {
    for (const Json& r : s.value("required", Json::array())) {
      if (!v.contains(r.get<std::string>())) return false;
    }
    const Json props = s.value("properties", Json::object());
    for (auto& [key, value] : v.items()) {
      if (props.contains(key)) {
        if (!valid(value, props[key])) return false;
      } else if (s.contains("additionalProperties") && !valid(value, s["additionalProperties"])) {
        return false;
      }
    }
  }
  if (v.is_array()) {
    if (v.size() < s.value("minItems", size_t{0})) return false;
    if (v.size() > s.value("maxItems", size_t{1} << 30)) return false;
    for (const Json& item : v) {
      if (s.contains("items") && !valid(item, s["items"])) return false;
    }
  }
  return true;
}

std::vector<std::string> toy_vocab() {
  std::vector<std::string> v;
  for (int c = 0x20; c < 0x7f; ++c) v.push_back(std::string(1, char(c)));
  for (const char* t : {"{\"",         "\":",     "\": ",        "\",",     "\", \"",
                        "\"}",         "true",    "false",       "null",    "12",
                        "0.5",         "e-3",     "\\n",         "\\u00e9", "\xc3\xa9",
                        "\"pending\"", "command", "\"command\"", "content", "status",
                        "todos",       "}]",      "[{",          "\n",      ""}) {
    v.push_back(t);
  }
  return v;
}

const char* const kWalkSchemas[] = {
    R"({"type": "object", "additionalProperties": false, "required": ["todos"],
        "properties": {"todos": {"type": "array", "maxItems": 3, "items": {
          "type": "object", "additionalProperties": false, "required": ["content", "status"],
          "properties": {"content": {"type": "string"},
                         "status": {"enum": ["pending", "in_progress", "completed"]},
                         "priority": {"type": ["integer", "null"]}}}}}})",
    R"({"type": "object", "required": ["command"], "additionalProperties": true, "properties": {
        "command": {"type": "string"}, "timeout": {"type": "number"},
        "run_in_background": {"type": "boolean"}}})",
    R"({"type": "object", "properties": {"status": {"anyOf": [
        {"type": "string", "enum": ["pending", "completed"]}, {"const": "deleted"}]},
        "metadata": {"type": "object", "additionalProperties": {}}},
        "additionalProperties": false})",
    R"({"type": "array", "items": {"type": ["number", "string"]}})",
    "{}",
};

// From the start state, append random allowed tokens until the value may end; at every step the
// mask must agree with the matcher token by token, and the result must be valid JSON that the
// reference validator accepts.
void random_walks(const std::string& schema_text, int n_walks, uint32_t seed) {
  static const std::vector<std::string> vocab = toy_vocab();
  static const TokenMask mask(vocab);
  std::mt19937 rng(seed);
  const std::vector<std::string> closers = {"\"command\"", "\"pending\"", "\"",     "}",
                                            "]",           "0",           "null",   ":",
                                            ",",           "content",     "status", "todos"};
  {
    const Json schema = Json::parse(schema_text);
    const JsonMatcher m = matcher_for(schema_text);
    for (int walk = 0; walk < n_walks; ++walk) {
      auto state = m.start();
      std::string text;
      std::vector<uint8_t> allowed;
      for (int step = 0;; ++step) {
        ASSERT_LT(step, 5000) << text;
        if (mask.can_end(m, state) && rng() % 4 == 0) break;
        mask.allowed(m, state, &allowed);
        std::vector<size_t> ids;
        for (size_t id = 0; id < vocab.size(); ++id) {
          auto copy = state;
          const bool ok = !vocab[id].empty() && m.advance(copy, vocab[id]);
          ASSERT_EQ(allowed[id] != 0, ok) << "token '" << vocab[id] << "' after " << text;
          if (ok) ids.push_back(id);
        }
        if (ids.empty()) {
          ASSERT_TRUE(mask.can_end(m, state)) << "dead end after " << text;
          break;
        }
        size_t pick = ids[rng() % ids.size()];
        if (step > 150) {
          // Steer so every walk ends: a closer that shrinks the stack, else the first allowed
          // closer or key word (required keys of open objects need their names written).
          size_t best = state.frames.size();
          std::vector<size_t> preferred;
          for (const std::string& c : closers) {
            const auto id =
                static_cast<size_t>(std::find(vocab.begin(), vocab.end(), c) - vocab.begin());
            auto copy = state;
            if (!allowed[id] || !m.advance(copy, c)) continue;
            preferred.push_back(id);
            if (copy.frames.size() < best) {
              best = copy.frames.size();
              pick = id;
            }
          }
          if (best == state.frames.size() && !preferred.empty()) pick = preferred[0];
        }
        ASSERT_TRUE(m.advance(state, vocab[pick]));
        text += vocab[pick];
      }
      const Json value = Json::parse(text, nullptr, false);
      ASSERT_FALSE(value.is_discarded()) << text;
      EXPECT_TRUE(valid(value, schema)) << schema_text << "\n" << text;
    }
  }
}

TEST(TokenMask, MaskMatchesMatcherAndRandomWalksProduceValidJson) {
  uint32_t seed = 42;
  for (const char* schema : kWalkSchemas) random_walks(schema, 40, seed++);
}

TEST(TokenMask, RandomWalksOverClaudeCodeToolSchemas) {
  std::ifstream in(PENSIEVE_SHARED_DIR "/fixtures/claude-code-2.1.197/first-request.json");
  ASSERT_TRUE(in) << "missing fixture";
  std::stringstream text;
  text << in.rdbuf();
  const Json fixture = Json::parse(text.str());
  uint32_t seed = 1;
  for (const Json& tool : fixture["body"]["tools"]) {
    SCOPED_TRACE(tool["name"].get<std::string>());
    random_walks(tool["input_schema"].dump(), 5, seed++);
  }
}

TEST(TokenMask, EmptyTokensAndDeadStatesAllowNothing) {
  const TokenMask mask({"", "a", "1"});
  const JsonMatcher m = matcher_for(R"({"type": "integer"})");
  std::vector<uint8_t> allowed;
  mask.allowed(m, m.start(), &allowed);
  EXPECT_EQ(allowed, (std::vector<uint8_t>{0, 0, 1}));
  EXPECT_FALSE(mask.can_end(m, m.start()));
  JsonMatcher::State dead;
  mask.allowed(m, dead, &allowed);
  EXPECT_EQ(allowed, (std::vector<uint8_t>{0, 0, 0}));
}

// A 32K vocabulary shaped like a BPE one: bytes, words with and without a leading space,
// punctuation runs, digits and JSON fragments. Prints the time per mask (not asserted).
TEST(TokenMask, TimingFor32kVocabulary) {
  std::vector<std::string> vocab;
  std::set<std::string> seen;
  auto add = [&](std::string t) {
    if (seen.insert(t).second) vocab.push_back(std::move(t));
  };
  for (int b = 1; b < 256; ++b) add(std::string(1, char(b)));
  std::mt19937 rng(7);
  const std::string punct = "{}[]\":,.-_/\\()'!?;";
  while (vocab.size() < 32000) {
    std::string t;
    const int kind = rng() % 10;
    if (kind < 7) {
      if (rng() % 2) t += ' ';
      const int n = 2 + rng() % 8;
      for (int i = 0; i < n; ++i) t += char('a' + rng() % 26);
    } else if (kind == 7) {
      for (int i = 0, n = 1 + rng() % 4; i < n; ++i) t += char('0' + rng() % 10);
    } else {
      for (int i = 0, n = 2 + rng() % 3; i < n; ++i) t += punct[rng() % punct.size()];
    }
    add(t);
  }
  const TokenMask mask(vocab);
  const JsonMatcher m = matcher_for(kWalkSchemas[1]);
  std::vector<uint8_t> allowed;
  for (const char* prefix : {"", "{", "{\"command\": \"ls -la", "{\"command\":\"ls\",\"timeout\":1",
                             "{\"command\":\"ls\",\"extra\":{\"a\":[1,", "{\"command\":\"ls\",\"t",
                             "{\"command\":\"ls\",\"x"}) {
    auto state = m.start();
    ASSERT_TRUE(m.advance(state, prefix)) << prefix;
    const int reps = 20;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i) mask.allowed(m, state, &allowed);
    const auto t1 = std::chrono::steady_clock::now();
    const double us = std::chrono::duration<double, std::micro>(t1 - t0).count() / reps;
    size_t n = 0;
    for (uint8_t a : allowed) n += a;
    std::printf("[ timing ] 32K vocab, after '%s': %.0f us per mask, %zu allowed\n", prefix, us, n);
  }
}

}  // namespace
}  // namespace pensieve
