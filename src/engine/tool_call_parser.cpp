#include "engine/tool_call_parser.h"

#include <algorithm>
#include <utility>

namespace pensieve {
namespace {

constexpr size_t kMaxLeadSpace = 2;  // as ToolCallConstraint allows

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

// The length of the longest suffix of `text` that is a proper prefix of `marker`.
size_t partial_suffix(std::string_view text, std::string_view marker) {
  for (size_t n = std::min(text.size(), marker.size() - 1); n > 0; --n) {
    if (text.substr(text.size() - n) == marker.substr(0, n)) return n;
  }
  return 0;
}

}  // namespace

ToolCallParser::ToolCallParser(ToolCallSyntax syntax, std::vector<std::string> tool_names,
                               Start start, bool parallel, std::string forced_tool)
    : syntax_(std::move(syntax)),
      parallel_(parallel),
      forced_tool_(std::move(forced_tool)),
      state_(State::kFree) {
  for (const std::string& name : tool_names) {
    for (std::string_view colon : {": ", ":"}) {
      std::string head = "{\"name\"";
      head += colon;
      head += json_quote(name);
      heads_.push_back(std::move(head));
      names_.push_back(name);
    }
  }
  if (start == Start::kInCall) enter_head("");
  if (start == Start::kArguments) state_ = State::kArguments;
}

void ToolCallParser::emit(ReplyPart::Kind kind, std::string_view text) {
  const bool joins = kind == ReplyPart::Kind::kText || kind == ReplyPart::Kind::kToolInput;
  if (joins && text.empty()) return;
  if (joins && !out_.empty() && out_.back().kind == kind) {
    out_.back().text += text;
    return;
  }
  out_.push_back({kind, std::string(text)});
}

std::vector<ReplyPart> ToolCallParser::feed(std::string_view text) {
  for (const char c : text) step(c);
  return std::exchange(out_, {});
}

void ToolCallParser::enter_head(std::string_view lead) {
  state_ = State::kHead;
  lead_ = lead;
  head_.clear();
  head_raw_.clear();
  head_space_ = 0;
}

void ToolCallParser::fall_back_to_text() {
  // Not a call after all: what was held is text, and the reply stays text.
  emit(ReplyPart::Kind::kText, opener_);
  emit(ReplyPart::Kind::kText, head_raw_);
  opener_.clear();
  state_ = syntax_.open.empty() ? State::kText : State::kFree;
}

void ToolCallParser::head_byte(char c) {
  head_raw_.push_back(c);
  if (head_.empty() && is_space(c)) {
    if (++head_space_ > kMaxLeadSpace) fall_back_to_text();
    return;
  }
  head_.push_back(c);
  bool open = false;
  for (size_t i = 0; i < heads_.size(); ++i) {
    const std::string candidate = lead_ + heads_[i];
    if (head_ == candidate) {
      ++calls_;
      emit(ReplyPart::Kind::kToolCall, names_[i]);
      opener_.clear();
      state_ = State::kKey;
      return;
    }
    if (candidate.starts_with(head_)) open = true;
  }
  if (!open) fall_back_to_text();
}

void ToolCallParser::value_byte(char c) {
  const bool scalar = depth_ == 0;
  if (in_string_) {
    if (escaped_) {
      escaped_ = false;
    } else if (c == '\\') {
      escaped_ = true;
    } else if (c == '"') {
      in_string_ = false;
    }
  } else if (c == '"') {
    in_string_ = true;
  } else if (c == '{' || c == '[') {
    ++depth_;
  } else if (c == '}' || c == ']') {
    if (scalar) {  // the call object's '}' ends a scalar input
      emit(ReplyPart::Kind::kToolInput, scalar_);
      scalar_.clear();
      call_end();
      return;
    }
    --depth_;
  } else if (scalar && c == ',') {
    emit(ReplyPart::Kind::kToolInput, scalar_);
    scalar_.clear();
    state_ = State::kObjectEnd;
    return;
  }
  if (scalar && depth_ == 0) {
    if (!is_space(c)) scalar_.push_back(c);
    return;
  }
  emit(ReplyPart::Kind::kToolInput, std::string_view(&c, 1));
  if (depth_ == 0) state_ = State::kObjectEnd;
}

void ToolCallParser::call_end() {
  emit(ReplyPart::Kind::kToolEnd, "");
  held_.clear();
  if (!parallel_) {
    state_ = State::kDone;
  } else if (syntax_.list) {
    state_ = State::kListNext;
  } else {
    state_ = State::kClose;
  }
}

void ToolCallParser::step(char c) {
  switch (state_) {
    case State::kText:
      emit(ReplyPart::Kind::kText, std::string_view(&c, 1));
      return;
    case State::kDone:
      return;
    case State::kArguments:
      if (calls_ == 0) {
        ++calls_;
        emit(ReplyPart::Kind::kToolCall, forced_tool_);
      }
      emit(ReplyPart::Kind::kToolInput, std::string_view(&c, 1));
      return;
    case State::kHead:
      head_byte(c);
      return;
    case State::kKey:
      if (c == ':') {
        state_ = State::kValue;
        depth_ = 0;
        in_string_ = escaped_ = false;
      }
      return;
    case State::kValue:
      if (depth_ == 0 && scalar_.empty() && !in_string_ && is_space(c)) return;
      value_byte(c);
      return;
    case State::kObjectEnd:
      if (c == '}') call_end();
      return;
    case State::kListNext:
      if (is_space(c)) return;
      if (c == ',') {
        enter_head("");
      } else {
        state_ = State::kFree;
        skip_space_ = true;
        if (c != ']') step(c);
      }
      return;
    case State::kClose: {
      if (held_.empty() && is_space(c)) return;
      held_.push_back(c);
      if (!syntax_.close.empty() && syntax_.close.starts_with(held_)) {
        if (held_ == syntax_.close) {
          held_.clear();
          state_ = State::kFree;
          skip_space_ = true;
        }
        return;
      }
      // Not the closing text: it is free text again.
      const std::string text = std::exchange(held_, {});
      state_ = State::kFree;
      skip_space_ = true;
      for (const char h : text) step(h);
      return;
    }
    case State::kFree:
      break;
  }
  // Whitespace between calls, or between a call and the text after it, is no text.
  if (skip_space_ && is_space(c)) return;
  skip_space_ = false;
  const std::string& open = syntax_.open;
  if (open.empty()) {
    if (at_start_ && is_space(c)) {
      held_.push_back(c);
      return;
    }
    if (at_start_ && c == '{') {
      at_start_ = false;
      opener_ = std::exchange(held_, {});
      enter_head("");
      head_byte(c);
      return;
    }
    at_start_ = false;
    emit(ReplyPart::Kind::kText, std::exchange(held_, {}));
    state_ = State::kText;
    emit(ReplyPart::Kind::kText, std::string_view(&c, 1));
    return;
  }
  held_.push_back(c);
  if (held_.ends_with(open)) {
    emit(ReplyPart::Kind::kText, std::string_view(held_).substr(0, held_.size() - open.size()));
    held_.clear();
    opener_ = open;
    enter_head(syntax_.list ? "[" : "");
    return;
  }
  const size_t keep = partial_suffix(held_, open);
  emit(ReplyPart::Kind::kText, std::string_view(held_).substr(0, held_.size() - keep));
  held_.erase(0, held_.size() - keep);
}

std::vector<ReplyPart> ToolCallParser::finish() {
  switch (state_) {
    case State::kFree:
    case State::kClose:
      emit(ReplyPart::Kind::kText, std::exchange(held_, {}));
      break;
    case State::kHead:
      fall_back_to_text();
      break;
    case State::kKey:
    case State::kValue:
    case State::kObjectEnd:
      emit(ReplyPart::Kind::kToolInput, std::exchange(scalar_, {}));
      emit(ReplyPart::Kind::kToolEnd, "");
      break;
    case State::kArguments:
      if (calls_ > 0) emit(ReplyPart::Kind::kToolEnd, "");
      break;
    case State::kText:
    case State::kListNext:
    case State::kDone:
      break;
  }
  state_ = State::kDone;
  return std::exchange(out_, {});
}

}  // namespace pensieve
