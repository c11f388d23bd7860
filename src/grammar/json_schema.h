// JsonSchema: a tool's `input_schema` compiled into a small node graph that JsonMatcher walks
// while a model writes the tool call's arguments (schema-constrained decoding).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace pensieve {

namespace grammar {

inline constexpr uint8_t kTypeString = 1 << 0;
inline constexpr uint8_t kTypeNumber = 1 << 1;
inline constexpr uint8_t kTypeInteger = 1 << 2;
inline constexpr uint8_t kTypeBoolean = 1 << 3;
inline constexpr uint8_t kTypeNull = 1 << 4;
inline constexpr uint8_t kTypeObject = 1 << 5;
inline constexpr uint8_t kTypeArray = 1 << 6;
inline constexpr uint8_t kTypeAny = 0x7f;

inline constexpr uint32_t kNoNode = 0xffffffffu;
inline constexpr size_t kMaxProperties = 64;  // seen keys live in a 64-bit mask
inline constexpr size_t kMaxLiterals = 64;    // enum candidates live in a 64-bit mask

enum class NodeKind : uint8_t { kTyped, kLiteral, kUnion };

struct Property {
  std::string raw_name;  // the key as written between quotes (JSON-escaped)
  uint32_t node = 0;
};

struct Node {
  NodeKind kind = NodeKind::kTyped;
  uint8_t types = kTypeAny;          // kTyped: which JSON types are allowed
  std::vector<Property> properties;  // kTyped object
  uint64_t required_mask = 0;        // bit i: properties[i] is required
  uint32_t additional = 0;           // node for other keys; kNoNode: no other keys
  uint32_t items = 0;                // kTyped array: node of every element
  uint32_t min_items = 0;
  uint32_t max_items = 0xffffffffu;
  std::vector<std::string> literals;   // kLiteral: the allowed compact JSON texts
  std::vector<uint32_t> alternatives;  // kUnion
};

// Fixed nodes every compiled schema starts with.
inline constexpr uint32_t kAnyNode = 0;   // any JSON value
inline constexpr uint32_t kBoolNode = 1;  // literals true / false
inline constexpr uint32_t kNullNode = 2;  // literal null

}  // namespace grammar

// Enforced: type (incl. type arrays), properties, required, additionalProperties (bool or
// schema), items, minItems/maxItems, enum/const (matched as compact JSON texts), anyOf/oneOf (as
// a union; sibling keywords are then ignored), allOf with one element, $ref to "#", "#/$defs/x"
// or "#/definitions/x". Everything else (format, pattern, minimum, maxLength, propertyNames,
// tuple `items` arrays, allOf with several elements, an enum of more than 64 values, ...) is
// ignored, which only makes the grammar more permissive. Objects may declare at most 64
// properties (a compile error otherwise); enum/const values must be written in compact form.
// An object that declares properties and says nothing of additionalProperties gets no other
// keys (valid instances all the same; models then do not invent keys).
class JsonSchema {
 public:
  // Parses and compiles a JSON Schema document. Errors start with "grammar: ".
  static Expected<JsonSchema> compile(std::string_view schema_json);

  uint32_t root() const { return root_; }
  const std::vector<grammar::Node>& nodes() const { return *nodes_; }

 private:
  std::shared_ptr<const std::vector<grammar::Node>> nodes_;
  uint32_t root_ = grammar::kAnyNode;
};

}  // namespace pensieve
