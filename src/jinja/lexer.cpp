#include "jinja/lexer.h"

#include <charconv>

#include "jinja/jinja.h"
#include "jinja/text.h"

namespace pensieve::jinja {

namespace {

enum class TagKind { kVar, kBlock, kComment };

class Lexer {
 public:
  Lexer(std::string_view src, const Options& options) : src_(src), opt_(options) {}

  Expected<std::vector<Token>> run() {
    while (pos_ < src_.size()) {
      const size_t p = find_tag_start(pos_);
      if (p == std::string_view::npos) {
        emit_text(src_.substr(pos_), line_);
        break;
      }
      const char c = src_[p + 1];
      const TagKind kind = c == '{'   ? TagKind::kVar
                           : c == '%' ? TagKind::kBlock
                                      : TagKind::kComment;
      const char sign =
          (p + 2 < src_.size() && (src_[p + 2] == '-' || src_[p + 2] == '+')) ? src_[p + 2] : '\0';
      const int text_line = line_;
      emit_text(strip_before_tag(src_.substr(pos_, p - pos_), kind, sign), text_line);
      advance_to(p + 2 + (sign ? 1 : 0));
      const int tag_line = line_;
      if (kind == TagKind::kComment) {
        PV_TRY_VOID(lex_comment(tag_line));
      } else {
        PV_TRY_VOID(lex_tag(kind, tag_line));
      }
    }
    Token eof;
    eof.kind = TokenKind::kEof;
    eof.line = line_;
    out_.push_back(std::move(eof));
    return std::move(out_);
  }

 private:
  Unexpected<Error> fail(int line, std::string_view what) {
    return make_error(ErrorCode::kInvalidFormat, "jinja: line {}: {}", line, what);
  }

  size_t find_tag_start(size_t from) const {
    for (size_t i = src_.find('{', from); i != std::string_view::npos; i = src_.find('{', i + 1)) {
      if (i + 1 < src_.size() && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#'))
        return i;
    }
    return std::string_view::npos;
  }

  void advance_to(size_t p) {
    for (; pos_ < p; ++pos_) {
      if (src_[pos_] == '\n') ++line_;
    }
  }

  bool starts_with(std::string_view s) const { return src_.substr(pos_, s.size()) == s; }

  // {%- strips all whitespace before a tag; lstrip_blocks strips the spaces and tabs that
  // begin the line of a block or comment tag (unless the tag starts with {%+).
  std::string_view strip_before_tag(std::string_view text, TagKind kind, char sign) const {
    if (sign == '-') return strip(text, "", false, true);
    if (sign == '+' || !opt_.lstrip_blocks || kind == TagKind::kVar) return text;
    const size_t nl = text.rfind('\n');
    const size_t l_pos = nl == std::string_view::npos ? 0 : nl + 1;
    if (l_pos == 0 && !line_starting_) return text;
    const std::string_view tail = text.substr(l_pos);
    if (tail.empty()) return text;
    for (char ch : tail) {
      if (!is_space(ch)) return text;
    }
    return text.substr(0, l_pos);
  }

  // After a tag: -%} eats all following whitespace; trim_blocks eats one newline after a block
  // or comment (unless the tag ends with +%}).
  void after_tag(TagKind kind, char end_sign, bool allow_trim) {
    if (end_sign == '-') {
      size_t p = pos_;
      while (p < src_.size() && is_space(src_[p])) ++p;
      line_starting_ = p > pos_ && src_[p - 1] == '\n';
      advance_to(p);
      return;
    }
    if (allow_trim && kind != TagKind::kVar && end_sign != '+' && opt_.trim_blocks &&
        pos_ < src_.size() && src_[pos_] == '\n') {
      advance_to(pos_ + 1);
      line_starting_ = true;
      return;
    }
    line_starting_ = false;
  }

  void emit_text(std::string_view text, int line) {
    if (text.empty()) return;
    Token t;
    t.kind = TokenKind::kText;
    t.line = line;
    t.text = std::string(text);
    out_.push_back(std::move(t));
  }

  void emit(TokenKind kind, int line, std::string text = {}) {
    Token t;
    t.kind = kind;
    t.line = line;
    t.text = std::move(text);
    out_.push_back(std::move(t));
  }

  Expected<void> lex_comment(int tag_line) {
    const size_t body_start = pos_;
    const size_t end = src_.find("#}", pos_);
    if (end == std::string_view::npos) return fail(tag_line, "unterminated comment");
    char sign = '\0';
    if (end > body_start && (src_[end - 1] == '-' || src_[end - 1] == '+')) sign = src_[end - 1];
    advance_to(end + 2);
    after_tag(TagKind::kComment, sign, true);
    return {};
  }

  Expected<void> lex_tag(TagKind kind, int tag_line) {
    const size_t first_token = out_.size();
    emit(kind == TagKind::kVar ? TokenKind::kVarBegin : TokenKind::kBlockBegin, tag_line);
    int depth = 0;
    while (true) {
      while (pos_ < src_.size() && is_space(src_[pos_])) advance_to(pos_ + 1);
      if (pos_ >= src_.size()) {
        return fail(tag_line, kind == TagKind::kVar ? "unterminated '{{' (expected '}}')"
                                                    : "unterminated '{%' (expected '%}')");
      }
      if (depth == 0) {
        char end_sign = '\0';
        size_t end_len = 0;
        if (kind == TagKind::kVar) {
          if (starts_with("-}}"))
            end_sign = '-', end_len = 3;
          else if (starts_with("}}"))
            end_len = 2;
        } else {
          if (starts_with("-%}") || starts_with("+%}"))
            end_sign = src_[pos_], end_len = 3;
          else if (starts_with("%}"))
            end_len = 2;
        }
        if (end_len > 0) {
          const int end_line = line_;
          advance_to(pos_ + end_len);
          const bool raw = kind == TagKind::kBlock && out_.size() == first_token + 2 &&
                           out_.back().kind == TokenKind::kName && out_.back().text == "raw";
          if (raw) {
            out_.resize(first_token);
            after_tag(kind, end_sign, /*allow_trim=*/false);
            return lex_raw(tag_line);
          }
          emit(kind == TagKind::kVar ? TokenKind::kVarEnd : TokenKind::kBlockEnd, end_line);
          after_tag(kind, end_sign, true);
          return {};
        }
      }
      PV_TRY_VOID(lex_token(depth));
    }
  }

  // {% raw %}...{% endraw %}: the text between is literal.
  Expected<void> lex_raw(int tag_line) {
    for (size_t p = src_.find("{%", pos_); p != std::string_view::npos;
         p = src_.find("{%", p + 1)) {
      size_t q = p + 2;
      const char sign = (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) ? src_[q] : '\0';
      if (sign) ++q;
      while (q < src_.size() && is_space(src_[q])) ++q;
      if (src_.substr(q, 6) != "endraw") continue;
      q += 6;
      while (q < src_.size() && is_space(src_[q])) ++q;
      char end_sign = '\0';
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) end_sign = src_[q++];
      if (src_.substr(q, 2) != "%}") continue;
      const int text_line = line_;
      emit_text(strip_before_tag(src_.substr(pos_, p - pos_), TagKind::kBlock, sign), text_line);
      advance_to(q + 2);
      after_tag(TagKind::kBlock, end_sign, true);
      return {};
    }
    return fail(tag_line, "unterminated 'raw' block (expected '{% endraw %}')");
  }

  Expected<void> lex_token(int& depth) {
    const int line = line_;
    const char c = src_[pos_];
    if (is_alpha(c) || c == '_') {
      size_t e = pos_;
      while (e < src_.size() && (is_alpha(src_[e]) || is_digit(src_[e]) || src_[e] == '_')) ++e;
      emit(TokenKind::kName, line, std::string(src_.substr(pos_, e - pos_)));
      advance_to(e);
      return {};
    }
    if (is_digit(c)) return lex_number(line);
    if (c == '\'' || c == '"') return lex_string(line);
    static constexpr std::string_view kTwo[] = {"//", "**", "==", "!=", "<=", ">="};
    for (std::string_view op : kTwo) {
      if (starts_with(op)) {
        emit(TokenKind::kOp, line, std::string(op));
        advance_to(pos_ + 2);
        return {};
      }
    }
    static constexpr std::string_view kOne = "+-*/%~<>=.,:|()[]{}";
    if (kOne.find(c) == std::string_view::npos) {
      const auto u = static_cast<unsigned char>(c);
      if (u >= 0x20 && u < 0x7f) return fail(line, fmt::format("unexpected character '{}'", c));
      return fail(line, fmt::format("unexpected byte 0x{:02x}", u));
    }
    if (c == '(' || c == '[' || c == '{') ++depth;
    if ((c == ')' || c == ']' || c == '}') && depth > 0) --depth;
    emit(TokenKind::kOp, line, std::string(1, c));
    advance_to(pos_ + 1);
    return {};
  }

  Expected<void> lex_number(int line) {
    std::string digits;
    bool is_float = false;
    size_t e = pos_;
    auto take_digits = [&] {
      while (e < src_.size() && (is_digit(src_[e]) || (src_[e] == '_' && e + 1 < src_.size() &&
                                                       is_digit(src_[e + 1])))) {
        if (src_[e] != '_') digits += src_[e];
        ++e;
      }
    };
    take_digits();
    if (e + 1 < src_.size() && src_[e] == '.' && is_digit(src_[e + 1])) {
      is_float = true;
      digits += src_[e++];
      take_digits();
    }
    if (e < src_.size() && (src_[e] == 'e' || src_[e] == 'E')) {
      size_t f = e + 1;
      if (f < src_.size() && (src_[f] == '+' || src_[f] == '-')) ++f;
      if (f < src_.size() && is_digit(src_[f])) {
        is_float = true;
        digits += 'e';
        digits.append(src_.substr(e + 1, f - e - 1));
        e = f;
        take_digits();
      }
    }
    Token t;
    t.line = line;
    t.text = digits;
    const char* b = digits.data();
    const char* end = b + digits.size();
    if (is_float) {
      t.kind = TokenKind::kFloat;
      auto res = std::from_chars(b, end, t.float_value);
      if (res.ec != std::errc()) return fail(line, "invalid number '" + digits + "'");
    } else {
      t.kind = TokenKind::kInt;
      auto res = std::from_chars(b, end, t.int_value);
      if (res.ec != std::errc()) return fail(line, "integer literal too large: " + digits);
    }
    out_.push_back(std::move(t));
    advance_to(e);
    return {};
  }

  Expected<void> lex_string(int line) {
    const char quote = src_[pos_];
    size_t i = pos_ + 1;
    std::string out;
    while (true) {
      if (i >= src_.size()) return fail(line, "unterminated string literal");
      const char c = src_[i++];
      if (c == quote) break;
      if (c != '\\' || i >= src_.size()) {
        out += c;
        continue;
      }
      const char e = src_[i++];
      switch (e) {
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'v':
          out += '\v';
          break;
        case 'a':
          out += '\a';
          break;
        case '0':
          out += '\0';
          break;
        case '\\':
          out += '\\';
          break;
        case '\'':
          out += '\'';
          break;
        case '"':
          out += '"';
          break;
        case '\n':
          break;  // line continuation
        case 'x':
        case 'u':
        case 'U': {
          const size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          uint32_t cp = 0;
          if (i + n > src_.size()) return fail(line, "truncated escape in string literal");
          auto res = std::from_chars(src_.data() + i, src_.data() + i + n, cp, 16);
          if (res.ec != std::errc() || res.ptr != src_.data() + i + n) {
            return fail(line, "invalid escape in string literal");
          }
          append_utf8(out, cp);
          i += n;
          break;
        }
        default:  // unknown escapes stay as written, as in Python
          out += '\\';
          out += e;
      }
    }
    emit(TokenKind::kString, line, std::move(out));
    advance_to(i);
    return {};
  }

  std::string_view src_;
  const Options& opt_;
  size_t pos_ = 0;
  int line_ = 1;
  bool line_starting_ = true;  // the previous tag ended a line (lstrip_blocks applies)
  std::vector<Token> out_;
};

}  // namespace

Expected<std::vector<Token>> tokenize(std::string_view source, const Options& options) {
  // Jinja reads "\r\n" and "\r" as "\n" everywhere (text, tags and string literals).
  std::string text;
  text.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      text += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      text += source[i];
    }
  }
  if (!options.keep_trailing_newline && !text.empty() && text.back() == '\n') text.pop_back();
  return Lexer(text, options).run();
}

}  // namespace pensieve::jinja
