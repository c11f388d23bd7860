#include "jinja/json.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "jinja/text.h"

namespace pensieve::jinja {

namespace {

constexpr int kMaxJsonDepth = 128;

void write_hex4(std::string& out, uint32_t v) {
  static const char* hex = "0123456789abcdef";
  out += "\\u";
  for (int shift = 12; shift >= 0; shift -= 4) out += hex[(v >> shift) & 15];
}

void write_string(std::string& out, std::string_view s, bool ensure_ascii) {
  out += '"';
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"') {
      out += "\\\"";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\b') {
      out += "\\b";
    } else if (c == '\f') {
      out += "\\f";
    } else if (c < 0x20) {
      write_hex4(out, c);
    } else if (c >= 0x80 && ensure_ascii) {
      // Decode one code point; write it as \uXXXX (a surrogate pair above the BMP).
      const auto bounds = utf8_boundaries(s.substr(i, 4));
      const size_t n = bounds.size() > 1 ? bounds[1] : 1;
      uint32_t cp = 0xfffd;
      if (n == 2) cp = ((c & 0x1f) << 6) | (s[i + 1] & 0x3f);
      if (n == 3) cp = ((c & 0x0f) << 12) | ((s[i + 1] & 0x3f) << 6) | (s[i + 2] & 0x3f);
      if (n == 4) {
        cp = ((c & 0x07) << 18) | ((s[i + 1] & 0x3f) << 12) | ((s[i + 2] & 0x3f) << 6) |
             (s[i + 3] & 0x3f);
      }
      if (cp >= 0x10000) {
        cp -= 0x10000;
        write_hex4(out, 0xd800 + (cp >> 10));
        write_hex4(out, 0xdc00 + (cp & 0x3ff));
      } else {
        write_hex4(out, cp);
      }
      i += n;
      continue;
    } else {
      out += static_cast<char>(c);
    }
    ++i;
  }
  out += '"';
}

class JsonWriter {
 public:
  explicit JsonWriter(const JsonStyle& style) : style_(style) {
    item_sep_ =
        !style.item_separator.empty() ? style.item_separator : (style.indent >= 0 ? "," : ", ");
    key_sep_ = !style.key_separator.empty() ? style.key_separator : ": ";
  }

  Expected<void> write(const Value& v, int depth) {
    if (depth > kMaxJsonDepth) {
      return make_error(ErrorCode::kInvalidArgument, "tojson: value nested too deeply");
    }
    switch (v.kind()) {
      case Value::Kind::kNone:
        out_ += "null";
        return {};
      case Value::Kind::kBool:
        out_ += v.as_bool() ? "true" : "false";
        return {};
      case Value::Kind::kInt:
        out_ += std::to_string(v.as_int());
        return {};
      case Value::Kind::kFloat: {
        const double d = v.as_float();
        if (std::isnan(d)) {
          out_ += "NaN";
        } else if (std::isinf(d)) {
          out_ += d < 0 ? "-Infinity" : "Infinity";
        } else {
          out_ += python_float_repr(d);
        }
        return {};
      }
      case Value::Kind::kString:
        write_string(out_, v.str(), style_.ensure_ascii);
        return {};
      case Value::Kind::kArray:
        return write_array(v.array(), depth);
      case Value::Kind::kObject:
        return write_object(v.object(), depth);
      default:
        return make_error(ErrorCode::kInvalidArgument,
                          "tojson: object of type {} is not JSON serializable", v.type_name());
    }
  }

  std::string take() { return std::move(out_); }

 private:
  void newline(int depth) {
    if (style_.indent < 0) return;
    out_ += '\n';
    out_.append(static_cast<size_t>(style_.indent) * static_cast<size_t>(depth), ' ');
  }

  Expected<void> write_array(const Array& items, int depth) {
    if (items.empty()) {
      out_ += "[]";
      return {};
    }
    out_ += '[';
    for (size_t i = 0; i < items.size(); ++i) {
      if (i > 0) out_ += item_sep_;
      newline(depth + 1);
      PV_TRY_VOID(write(items[i], depth + 1));
    }
    newline(depth);
    out_ += ']';
    return {};
  }

  Expected<void> write_object(const Object& object, int depth) {
    if (object.empty()) {
      out_ += "{}";
      return {};
    }
    std::vector<const std::pair<std::string, Value>*> entries;
    for (const auto& e : object.entries()) entries.push_back(&e);
    if (style_.sort_keys) {
      std::stable_sort(entries.begin(), entries.end(),
                       [](const auto* a, const auto* b) { return a->first < b->first; });
    }
    out_ += '{';
    for (size_t i = 0; i < entries.size(); ++i) {
      if (i > 0) out_ += item_sep_;
      newline(depth + 1);
      write_string(out_, entries[i]->first, style_.ensure_ascii);
      out_ += key_sep_;
      PV_TRY_VOID(write(entries[i]->second, depth + 1));
    }
    newline(depth);
    out_ += '}';
    return {};
  }

  const JsonStyle& style_;
  std::string item_sep_;
  std::string key_sep_;
  std::string out_;
};

class JsonParser {
 public:
  explicit JsonParser(std::string_view text) : s_(text) {}

  Expected<Value> parse_document() {
    PV_TRY(Value v, parse_value(0));
    skip_ws();
    if (i_ != s_.size()) return fail("unexpected trailing characters");
    return v;
  }

 private:
  Unexpected<Error> fail(std::string_view what) {
    return make_error(ErrorCode::kInvalidFormat, "json: offset {}: {}", i_, what);
  }

  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
  }

  bool consume(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }

  Expected<Value> parse_value(int depth) {
    if (depth > kMaxJsonDepth) return fail("nested too deeply");
    skip_ws();
    if (i_ >= s_.size()) return fail("unexpected end of input");
    const char c = s_[i_];
    if (c == '{') return parse_object(depth);
    if (c == '[') return parse_array(depth);
    if (c == '"') {
      PV_TRY(std::string str, parse_string());
      return Value(std::move(str));
    }
    if (consume("true")) return Value(true);
    if (consume("false")) return Value(false);
    if (consume("null")) return Value::none();
    if (c == '-' || is_digit(c)) return parse_number();
    return fail("unexpected character");
  }

  Expected<Value> parse_number() {
    const size_t start = i_;
    if (s_[i_] == '-') ++i_;
    bool is_float = false;
    while (i_ < s_.size() && (is_digit(s_[i_]) || s_[i_] == '.' || s_[i_] == 'e' || s_[i_] == 'E' ||
                              s_[i_] == '+' || s_[i_] == '-')) {
      if (!is_digit(s_[i_])) is_float = true;
      ++i_;
    }
    const char* b = s_.data() + start;
    const char* e = s_.data() + i_;
    if (!is_float) {
      int64_t v = 0;
      auto res = std::from_chars(b, e, v);
      if (res.ec == std::errc() && res.ptr == e) return Value(v);
      // Integers beyond int64 fall through to double, as a lenient reader would.
    }
    double d = 0;
    auto res = std::from_chars(b, e, d);
    if (res.ec != std::errc() || res.ptr != e) return fail("invalid number");
    return Value(d);
  }

  Expected<uint32_t> parse_hex4() {
    if (i_ + 4 > s_.size()) return fail("truncated \\u escape");
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      const char h = s_[i_++];
      v <<= 4;
      if (is_digit(h)) {
        v |= static_cast<uint32_t>(h - '0');
      } else if (h >= 'a' && h <= 'f') {
        v |= static_cast<uint32_t>(h - 'a' + 10);
      } else if (h >= 'A' && h <= 'F') {
        v |= static_cast<uint32_t>(h - 'A' + 10);
      } else {
        return fail("invalid \\u escape");
      }
    }
    return v;
  }

  Expected<std::string> parse_string() {
    ++i_;  // opening quote
    std::string out;
    while (true) {
      if (i_ >= s_.size()) return fail("unterminated string");
      const char c = s_[i_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) return fail("control character in string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= s_.size()) return fail("unterminated string");
      const char e = s_[i_++];
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          PV_TRY(uint32_t cp, parse_hex4());
          if (cp >= 0xd800 && cp <= 0xdbff && s_.substr(i_, 2) == "\\u") {
            const size_t save = i_;
            i_ += 2;
            PV_TRY(uint32_t lo, parse_hex4());
            if (lo >= 0xdc00 && lo <= 0xdfff) {
              cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            } else {
              i_ = save;
            }
          }
          append_utf8(out, cp);
          break;
        }
        default:
          return fail("invalid escape");
      }
    }
  }

  Expected<Value> parse_array(int depth) {
    ++i_;
    Value arr = Value::list();
    skip_ws();
    if (i_ < s_.size() && s_[i_] == ']') {
      ++i_;
      return arr;
    }
    while (true) {
      PV_TRY(Value item, parse_value(depth + 1));
      arr.push_back(std::move(item));
      skip_ws();
      if (i_ < s_.size() && s_[i_] == ',') {
        ++i_;
        continue;
      }
      if (i_ < s_.size() && s_[i_] == ']') {
        ++i_;
        return arr;
      }
      return fail("expected ',' or ']'");
    }
  }

  Expected<Value> parse_object(int depth) {
    ++i_;
    Value obj = Value::dict();
    skip_ws();
    if (i_ < s_.size() && s_[i_] == '}') {
      ++i_;
      return obj;
    }
    while (true) {
      skip_ws();
      if (i_ >= s_.size() || s_[i_] != '"') return fail("expected a string key");
      PV_TRY(std::string key, parse_string());
      skip_ws();
      if (i_ >= s_.size() || s_[i_] != ':') return fail("expected ':'");
      ++i_;
      PV_TRY(Value item, parse_value(depth + 1));
      obj.set(std::move(key), std::move(item));
      skip_ws();
      if (i_ < s_.size() && s_[i_] == ',') {
        ++i_;
        continue;
      }
      if (i_ < s_.size() && s_[i_] == '}') {
        ++i_;
        return obj;
      }
      return fail("expected ',' or '}'");
    }
  }

  std::string_view s_;
  size_t i_ = 0;
};

}  // namespace

Expected<std::string> to_json(const Value& value, const JsonStyle& style) {
  JsonWriter writer(style);
  PV_TRY_VOID(writer.write(value, 0));
  return writer.take();
}

Expected<Value> parse_json(std::string_view text) { return JsonParser(text).parse_document(); }

}  // namespace pensieve::jinja
