#include "grammar/json_schema.h"

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "grammar/test_util.h"

namespace pensieve {
namespace {

using grammar_test::accepts;
using grammar_test::matcher_for;

std::string error_of(std::string_view schema) {
  auto r = JsonSchema::compile(schema);
  return r ? std::string("ok") : r.error().message;
}

TEST(JsonSchema, RejectsBadSchemasWithClearErrors) {
  EXPECT_EQ(error_of("{\"type\": "), "grammar: the schema is not valid JSON");
  EXPECT_EQ(error_of("42"), "grammar: #: a schema must be an object or a boolean");
  EXPECT_EQ(error_of(R"({"type": "strin"})"), "grammar: #: unknown type 'strin'");
  EXPECT_EQ(error_of(R"({"type": []})"), "grammar: #: 'type' is an empty array");
  EXPECT_EQ(error_of(R"({"type": [1]})"), "grammar: #: 'type' entries must be strings");
  EXPECT_EQ(error_of(R"({"properties": []})"), "grammar: #: 'properties' must be an object");
  EXPECT_EQ(error_of(R"({"required": "a"})"), "grammar: #: 'required' must be an array");
  EXPECT_EQ(error_of(R"({"enum": []})"), "grammar: #: 'enum' must be a non-empty array");
  EXPECT_EQ(error_of(R"({"anyOf": {}})"), "grammar: #: 'anyOf' must be a non-empty array");
  EXPECT_EQ(error_of(R"({"properties": {"a": {"type": 3}}})"),
            "grammar: #/a: 'type' entries must be strings");
  EXPECT_EQ(error_of(R"({"$ref": "#/$defs/missing"})"),
            "grammar: #: cannot resolve $ref '#/$defs/missing'");
  EXPECT_EQ(error_of("false"), "grammar: #: the 'false' schema is not supported");
  std::string many = R"({"type":"object","properties":{)";
  for (int i = 0; i < 65; ++i) many += (i ? ",\"p" : "\"p") + std::to_string(i) + "\":{}";
  many += "}}";
  EXPECT_EQ(error_of(many), "grammar: #: 65 properties (at most 64 supported)");
  std::string deep;
  for (int i = 0; i < 200; ++i) deep += R"({"items":)";
  deep += "{}" + std::string(200, '}');
  EXPECT_TRUE(error_of(deep).starts_with("grammar: ")) << error_of(deep);
}

TEST(JsonSchema, AcceptsPermissiveSchemas) {
  EXPECT_EQ(error_of("{}"), "ok");
  EXPECT_EQ(error_of("true"), "ok");
  EXPECT_EQ(error_of(R"({"description": "anything", "format": "uri", "minimum": 3})"), "ok");
  EXPECT_EQ(error_of(R"({"$schema": "x", "title": "t", "default": 1, "examples": [1]})"), "ok");
}

TEST(JsonSchema, RecursiveRefsTerminate) {
  auto m = matcher_for(R"({"$ref": "#"})");
  EXPECT_FALSE(accepts(m, "1"));  // a schema that is only itself admits nothing
  auto tree = matcher_for(R"({"$defs": {"node": {"type": "object", "properties": {
      "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
      "additionalProperties": false}}, "$ref": "#/$defs/node"})");
  EXPECT_TRUE(accepts(tree, R"({"kids":[{"kids":[]},{}]})"));
  EXPECT_FALSE(accepts(tree, R"({"kids":[{"x":1}]})"));
}

// A plausible instance for a schema: required properties only, first enum value, etc.
nlohmann::json instance_of(const nlohmann::json& s) {
  if (s.contains("const")) return s["const"];
  if (s.contains("enum")) return s["enum"][0];
  if (s.contains("anyOf")) return instance_of(s["anyOf"][0]);
  std::string type = "string";
  if (s.contains("type")) type = s["type"].is_array() ? s["type"][0] : s["type"];
  if (type == "object") {
    nlohmann::json o = nlohmann::json::object();
    for (const auto& name : s.value("required", nlohmann::json::array())) {
      o[name.get<std::string>()] = instance_of(s["properties"][name.get<std::string>()]);
    }
    return o;
  }
  if (type == "array") {
    nlohmann::json item = s.contains("items") ? instance_of(s["items"]) : nlohmann::json(1);
    return nlohmann::json::array({item});
  }
  if (type == "integer") return 7;
  if (type == "number") return 2.5;
  if (type == "boolean") return true;
  if (type == "null") return nullptr;
  return "text with \"quotes\", \\ and é";
}

TEST(JsonSchema, ClaudeCodeToolSchemasCompileAndAcceptInstances) {
  std::ifstream in(PENSIEVE_SHARED_DIR "/fixtures/claude-code-2.1.197/first-request.json");
  ASSERT_TRUE(in) << "missing fixture";
  std::stringstream text;
  text << in.rdbuf();
  const auto fixture = nlohmann::json::parse(text.str());
  const auto& tools = fixture["body"]["tools"];
  ASSERT_GE(tools.size(), 20u);
  for (const auto& tool : tools) {
    SCOPED_TRACE(tool["name"].get<std::string>());
    auto schema = JsonSchema::compile(tool["input_schema"].dump());
    ASSERT_TRUE(schema) << schema.error().message;
    JsonMatcher m(std::move(schema).value());
    const auto instance = instance_of(tool["input_schema"]);
    EXPECT_TRUE(accepts(m, instance.dump())) << instance.dump();
    EXPECT_FALSE(accepts(m, R"({"no_such_parameter_anywhere":1})"));
  }
}

}  // namespace
}  // namespace pensieve
