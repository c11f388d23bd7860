// Compiles a JSON Schema (the subset tool input_schemas use) into grammar::Node graphs.
#include "grammar/json_schema.h"

#include <map>

#include <nlohmann/json.hpp>

namespace pensieve {

using grammar::Node;
using grammar::NodeKind;
using Json = nlohmann::json;

namespace {

constexpr int kMaxSchemaDepth = 128;  // bounds the compiler's recursion on hostile input

class Compiler {
 public:
  explicit Compiler(const Json& document) : document_(document) {
    Node any;
    any.types = grammar::kTypeAny;
    any.additional = grammar::kAnyNode;
    any.items = grammar::kAnyNode;
    nodes_.push_back(any);
    Node boolean;
    boolean.kind = NodeKind::kLiteral;
    boolean.literals = {"true", "false"};
    nodes_.push_back(boolean);
    Node null;
    null.kind = NodeKind::kLiteral;
    null.literals = {"null"};
    nodes_.push_back(null);
  }

  Expected<uint32_t> compile(const Json& schema, const std::string& path, int depth);
  std::vector<Node> take() { return std::move(nodes_); }

 private:
  Expected<uint32_t> compile_ref(const std::string& ref, const std::string& path, int depth);
  Expected<uint8_t> parse_types(const Json& type, const std::string& path);
  Expected<void> compile_object(const Json& schema, const std::string& path, int depth, Node* node);

  uint32_t add(Node node) {
    nodes_.push_back(std::move(node));
    return static_cast<uint32_t>(nodes_.size() - 1);
  }

  const Json& document_;
  std::vector<Node> nodes_;
  std::map<std::string, uint32_t> refs_;
};

Expected<uint8_t> Compiler::parse_types(const Json& type, const std::string& path) {
  auto one = [&](const Json& name) -> Expected<uint8_t> {
    if (!name.is_string())
      return make_error(ErrorCode::kInvalidFormat, "grammar: {}: 'type' entries must be strings",
                        path);
    const std::string& s = name.get_ref<const std::string&>();
    if (s == "string") return grammar::kTypeString;
    if (s == "number") return static_cast<uint8_t>(grammar::kTypeNumber | grammar::kTypeInteger);
    if (s == "integer") return grammar::kTypeInteger;
    if (s == "boolean") return grammar::kTypeBoolean;
    if (s == "null") return grammar::kTypeNull;
    if (s == "object") return grammar::kTypeObject;
    if (s == "array") return grammar::kTypeArray;
    return make_error(ErrorCode::kInvalidFormat, "grammar: {}: unknown type '{}'", path, s);
  };
  if (!type.is_array()) return one(type);
  uint8_t mask = 0;
  for (const Json& t : type) {
    PV_TRY(uint8_t bit, one(t));
    mask |= bit;
  }
  if (mask == 0)
    return make_error(ErrorCode::kInvalidFormat, "grammar: {}: 'type' is an empty array", path);
  return mask;
}

Expected<uint32_t> Compiler::compile_ref(const std::string& ref, const std::string& path,
                                         int depth) {
  auto it = refs_.find(ref);
  if (it != refs_.end()) return it->second;
  const Json* target = nullptr;
  if (ref == "#") {
    target = &document_;
  } else {
    for (const char* prefix : {"#/$defs/", "#/definitions/"}) {
      std::string_view p(prefix);
      if (ref.compare(0, p.size(), p) != 0) continue;
      const std::string section(p.substr(2, p.size() - 3));
      const std::string name = ref.substr(p.size());
      auto sec = document_.find(section);
      if (sec != document_.end() && sec->is_object() && sec->contains(name)) target = &(*sec)[name];
    }
  }
  if (target == nullptr)
    return make_error(ErrorCode::kUnsupported, "grammar: {}: cannot resolve $ref '{}'", path, ref);
  // A placeholder first, so recursive schemas refer to themselves through a union of one.
  const uint32_t id = add(Node{});
  nodes_[id].kind = NodeKind::kUnion;
  refs_[ref] = id;
  PV_TRY(uint32_t inner, compile(*target, ref, depth + 1));
  nodes_[id].alternatives = {inner};
  return id;
}

Expected<void> Compiler::compile_object(const Json& schema, const std::string& path, int depth,
                                        Node* node) {
  std::vector<grammar::Property> props;
  if (auto it = schema.find("properties"); it != schema.end()) {
    if (!it->is_object())
      return make_error(ErrorCode::kInvalidFormat, "grammar: {}: 'properties' must be an object",
                        path);
    for (auto& [name, sub] : it->items()) {
      PV_TRY(uint32_t id, compile(sub, path + "/" + name, depth + 1));
      const std::string quoted = Json(name).dump();
      props.push_back({quoted.substr(1, quoted.size() - 2), id});
    }
  }
  uint64_t required = 0;
  if (auto it = schema.find("required"); it != schema.end()) {
    if (!it->is_array())
      return make_error(ErrorCode::kInvalidFormat, "grammar: {}: 'required' must be an array",
                        path);
    for (const Json& name : *it) {
      if (!name.is_string())
        return make_error(ErrorCode::kInvalidFormat,
                          "grammar: {}: 'required' entries must be strings", path);
      const std::string quoted = name.dump();
      const std::string raw = quoted.substr(1, quoted.size() - 2);
      size_t i = 0;
      while (i < props.size() && props[i].raw_name != raw) ++i;
      if (i == props.size()) props.push_back({raw, grammar::kAnyNode});
      if (i < 64) required |= uint64_t{1} << i;
    }
  }
  if (props.size() > grammar::kMaxProperties) {
    return make_error(ErrorCode::kUnsupported, "grammar: {}: {} properties (at most {} supported)",
                      path, props.size(), grammar::kMaxProperties);
  }
  node->properties = std::move(props);
  node->required_mask = required;
  // Without additionalProperties, an object that declares properties gets only those: a
  // subset of its valid instances, and what a model calling a tool means to write.
  node->additional = node->properties.empty() ? grammar::kAnyNode : grammar::kNoNode;
  if (auto it = schema.find("additionalProperties"); it != schema.end()) {
    if (it->is_boolean()) {
      node->additional = it->get<bool>() ? grammar::kAnyNode : grammar::kNoNode;
    } else {
      PV_TRY(uint32_t id, compile(*it, path + "/additionalProperties", depth + 1));
      node->additional = id;
    }
  }
  return {};
}

Expected<uint32_t> Compiler::compile(const Json& schema, const std::string& path, int depth) {
  if (depth > kMaxSchemaDepth)
    return make_error(ErrorCode::kUnsupported, "grammar: {}: schema nested deeper than {}", path,
                      kMaxSchemaDepth);
  if (schema.is_boolean()) {
    if (schema.get<bool>()) return grammar::kAnyNode;
    return make_error(ErrorCode::kUnsupported, "grammar: {}: the 'false' schema is not supported",
                      path);
  }
  if (!schema.is_object())
    return make_error(ErrorCode::kInvalidFormat,
                      "grammar: {}: a schema must be an object or a boolean", path);
  if (auto it = schema.find("$ref"); it != schema.end()) {
    if (!it->is_string())
      return make_error(ErrorCode::kInvalidFormat, "grammar: {}: '$ref' must be a string", path);
    return compile_ref(it->get<std::string>(), path, depth);
  }
  if (auto it = schema.find("const"); it != schema.end()) {
    Node node;
    node.kind = NodeKind::kLiteral;
    node.literals = {it->dump()};
    return add(std::move(node));
  }
  if (auto it = schema.find("enum"); it != schema.end()) {
    if (!it->is_array() || it->empty())
      return make_error(ErrorCode::kInvalidFormat, "grammar: {}: 'enum' must be a non-empty array",
                        path);
    if (it->size() <= grammar::kMaxLiterals) {
      Node node;
      node.kind = NodeKind::kLiteral;
      for (const Json& v : *it) node.literals.push_back(v.dump());
      return add(std::move(node));
    }
  }
  for (const char* key : {"anyOf", "oneOf", "allOf"}) {
    auto it = schema.find(key);
    if (it == schema.end()) continue;
    if (!it->is_array() || it->empty())
      return make_error(ErrorCode::kInvalidFormat, "grammar: {}: '{}' must be a non-empty array",
                        path, key);
    if (std::string_view(key) == "allOf" && it->size() != 1) continue;  // intersections: ignored
    Node node;
    node.kind = NodeKind::kUnion;
    for (size_t i = 0; i < it->size(); ++i) {
      PV_TRY(uint32_t id, compile((*it)[i], fmt::format("{}/{}/{}", path, key, i), depth + 1));
      node.alternatives.push_back(id);
    }
    return add(std::move(node));
  }
  Node node;
  if (auto it = schema.find("type"); it != schema.end()) {
    PV_TRY(node.types, parse_types(*it, path));
  } else if (schema.contains("properties") || schema.contains("required") ||
             schema.contains("additionalProperties")) {
    node.types = grammar::kTypeObject;
  } else if (schema.contains("items")) {
    node.types = grammar::kTypeArray;
  }
  if (node.types == grammar::kTypeAny && !schema.contains("type")) {
    // No constraint at all (description only, {}, format, ...): any JSON value.
    return grammar::kAnyNode;
  }
  if (node.types & grammar::kTypeObject) PV_TRY_VOID(compile_object(schema, path, depth, &node));
  if (node.types & grammar::kTypeArray) {
    if (auto it = schema.find("items"); it != schema.end() && !it->is_array()) {
      PV_TRY(node.items, compile(*it, path + "/items", depth + 1));
    }
    auto count = [&](const char* key, uint32_t fallback) {
      auto it = schema.find(key);
      if (it == schema.end() || !it->is_number_unsigned()) return fallback;
      return static_cast<uint32_t>(std::min<uint64_t>(it->get<uint64_t>(), 0xffffffffu));
    };
    node.min_items = count("minItems", 0);
    node.max_items = count("maxItems", 0xffffffffu);
    if (node.min_items > node.max_items) node.min_items = 0;  // unsatisfiable: keep it writable
  }
  return add(std::move(node));
}

}  // namespace

Expected<JsonSchema> JsonSchema::compile(std::string_view schema_json) {
  Json document = Json::parse(schema_json, nullptr, /*allow_exceptions=*/false);
  if (document.is_discarded()) {
    return make_error(ErrorCode::kInvalidFormat, "grammar: the schema is not valid JSON");
  }
  Compiler compiler(document);
  PV_TRY(uint32_t root, compiler.compile(document, "#", 0));
  JsonSchema schema;
  schema.nodes_ = std::make_shared<const std::vector<grammar::Node>>(compiler.take());
  schema.root_ = root;
  return schema;
}

}  // namespace pensieve
