// JSON for templates: `tojson` output exactly as Python's json.dumps writes it (what HF chat
// templates are rendered with), and a small parser that builds Values from JSON text (keys keep
// their order; integers stay integers), e.g. for tool-call arguments or test fixtures.
#pragma once

#include <string>
#include <string_view>

#include "core/result.h"
#include "jinja/value.h"

namespace pensieve::jinja {

struct JsonStyle {
  // Spaces per level; < 0: everything on one line (json.dumps(indent=None)).
  int indent = -1;
  // Separators; empty means json.dumps's defaults: ", " and ": " on one line, "," and ": "
  // when indenting.
  std::string item_separator;
  std::string key_separator;
  bool sort_keys = false;
  // json.dumps(ensure_ascii=False), as HF's tojson: non-ASCII text is written as is.
  bool ensure_ascii = false;
};

// Fails on undefined values and callables (json.dumps cannot serialize them either) and on
// containers nested too deeply (a list that contains itself).
Expected<std::string> to_json(const Value& value, const JsonStyle& style = {});

// Parses one JSON document. Errors start with "json: ".
Expected<Value> parse_json(std::string_view text);

}  // namespace pensieve::jinja
