#include "engine/tool_call_constraint.h"

#include <algorithm>

#include <fmt/format.h>

#include "engine/tool_call.h"
#include "grammar/json_schema.h"

namespace pensieve {
namespace {

// Whitespace a call may start with ("<tool_call>\n{...").
constexpr size_t kMaxLeadSpace = 2;

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

}  // namespace

Expected<std::shared_ptr<const ToolCallGrammar>> ToolCallGrammar::make(
    const std::vector<ToolSpec>& tools, const ToolCallSyntax& syntax) {
  if (tools.empty()) return make_error(ErrorCode::kInvalidArgument, "tool calls: no tools");
  auto grammar = std::make_shared<ToolCallGrammar>();
  grammar->syntax_ = syntax;
  const std::string key = json_quote(syntax.arguments_key);
  for (size_t i = 0; i < tools.size(); ++i) {
    const ToolSpec& tool = tools[i];
    const std::string name = json_quote(tool.name);
    const std::string& input = tool.parameters_json.empty() ? "{}" : tool.parameters_json;
    const std::string schema = fmt::format(
        R"({{"type":"object","properties":{{"name":{{"const":{}}},{}:{}}},"required":["name",{}],)"
        R"("additionalProperties":false}})",
        name, key, input, key);
    PV_TRY(JsonSchema compiled, JsonSchema::compile(schema));
    grammar->matchers_.emplace_back(std::move(compiled));
    for (std::string_view colon : {": ", ":"}) {
      Head head;
      head.text = "{\"name\"";
      head.text += colon;
      head.text += name;
      head.tool = i;
      head.state = grammar->matchers_.back().start();
      if (!grammar->matchers_.back().advance(head.state, head.text)) {
        return make_error(ErrorCode::kInternal, "tool calls: the call grammar of '{}' rejects {}",
                          tool.name, head.text);
      }
      grammar->heads_.push_back(std::move(head));
    }
  }
  return std::shared_ptr<const ToolCallGrammar>(std::move(grammar));
}

ToolCallConstraint::ToolCallConstraint(std::shared_ptr<const ToolCallGrammar> grammar,
                                       std::shared_ptr<const TokenMask> mask,
                                       const Tokenizer& tokenizer, Start start, bool parallel)
    : grammar_(std::move(grammar)),
      mask_(std::move(mask)),
      tokenizer_(tokenizer),
      parallel_(parallel),
      state_(State::kFree) {
  if (start == Start::kInCall) enter_head({""}, {});
}

void ToolCallConstraint::enter_head(const std::vector<std::string>& leads,
                                    const std::vector<std::string>& ends) {
  state_ = State::kHead;
  head_.clear();
  head_space_ = 0;
  candidates_.clear();
  for (const std::string& lead : leads) {
    for (size_t i = 0; i < grammar_->heads().size(); ++i) {
      candidates_.push_back({lead + grammar_->heads()[i].text, i});
    }
  }
  for (const std::string& end : ends) candidates_.push_back({end, std::nullopt});
}

bool ToolCallConstraint::head_accepts(std::string_view bytes) const {
  std::string text = head_;
  size_t space = head_space_;
  for (const char c : bytes) {
    if (text.empty() && is_space(c)) {
      if (++space > kMaxLeadSpace) return false;
      continue;
    }
    text.push_back(c);
  }
  for (const Candidate& candidate : candidates_) {
    if (candidate.text.starts_with(text)) return true;
    if (!candidate.head || !text.starts_with(candidate.text)) continue;
    const std::string_view rest = std::string_view(text).substr(candidate.text.size());
    const ToolCallGrammar::Head& head = grammar_->heads()[*candidate.head];
    JsonMatcher::State state = head.state;
    if (grammar_->matcher(head.tool).advance(state, rest)) return true;
  }
  return false;
}

bool ToolCallConstraint::head_may_end() const {
  return std::any_of(candidates_.begin(), candidates_.end(),
                     [&](const Candidate& c) { return !c.head && c.text == head_; });
}

bool ToolCallConstraint::feed_head(std::string_view bytes) {
  for (const char c : bytes) {
    if (head_.empty() && is_space(c)) {
      if (++head_space_ > kMaxLeadSpace) return false;
      continue;
    }
    head_.push_back(c);
  }
  for (const Candidate& candidate : candidates_) {
    if (!candidate.head || !head_.starts_with(candidate.text)) continue;
    const std::string_view rest = std::string_view(head_).substr(candidate.text.size());
    const ToolCallGrammar::Head& head = grammar_->heads()[*candidate.head];
    JsonMatcher::State state = head.state;
    if (!grammar_->matcher(head.tool).advance(state, rest)) continue;
    tool_ = head.tool;
    call_state_ = std::move(state);
    state_ = State::kCall;
    if (grammar_->matcher(tool_).complete(call_state_)) call_done();
    return true;
  }
  // Only the candidates the head can still become stay.
  std::erase_if(candidates_, [&](const Candidate& c) { return !c.text.starts_with(head_); });
  if (candidates_.empty()) return false;
  // An end text nothing else extends: the reply is over.
  if (candidates_.size() == 1 && head_may_end()) state_ = State::kDone;
  return true;
}

void ToolCallConstraint::call_done() {
  // After a call: another call, or the end of the reply (no free text).
  ++calls_;
  const ToolCallSyntax& syntax = grammar_->syntax();
  if (!parallel_ || (syntax.open.empty() && !syntax.list)) {
    state_ = State::kDone;
  } else if (syntax.list) {
    enter_head({",", ", "}, {"]"});
  } else {
    std::vector<std::string> leads, ends = {""};
    const std::vector<std::string> closes = syntax.close.empty()
                                                ? std::vector<std::string>{""}
                                                : std::vector<std::string>{syntax.close, ""};
    for (const std::string& close : closes) {
      for (std::string_view between : {"", "\n"}) {
        for (std::string_view after : {"", "\n"}) {
          std::string lead = close;
          lead += between;
          lead += syntax.open;
          lead += after;
          leads.push_back(std::move(lead));
        }
      }
      if (!close.empty()) {
        ends.push_back(close);
        ends.push_back(close + "\n");
      }
    }
    enter_head(leads, ends);
  }
}

void ToolCallConstraint::allowed(std::vector<uint8_t>* mask) const {
  switch (state_) {
    case State::kFree:
      std::fill(mask->begin(), mask->end(), uint8_t{1});
      return;
    case State::kDone:
      std::fill(mask->begin(), mask->end(), uint8_t{0});
      return;
    case State::kCall:
      mask_->allowed(grammar_->matcher(tool_), call_state_, mask);
      if (tokens_left_ <= kClosingTokens) steer_to_close(call_state_, tokenizer_, mask);
      return;
    case State::kHead:
      break;
  }
  for (size_t id = 0; id < mask->size(); ++id) {
    const auto token = static_cast<int32_t>(id);
    bool ok = false;
    if (token < tokenizer_.n_vocab() && !tokenizer_.is_control(token) &&
        !tokenizer_.is_eog(token)) {
      const std::string& piece = tokenizer_.token_piece(token);
      ok = !piece.empty() && head_accepts(piece);
    }
    (*mask)[id] = ok ? 1 : 0;
  }
}

bool ToolCallConstraint::complete() const {
  return state_ == State::kFree || state_ == State::kDone ||
         (state_ == State::kHead && head_may_end());
}

void ToolCallConstraint::accept(int32_t token) {
  const std::string& piece = tokenizer_.token_piece(token);
  switch (state_) {
    case State::kDone:
      return;
    case State::kHead:
      if (!feed_head(piece)) state_ = State::kFree;
      return;
    case State::kCall:
      if (!grammar_->matcher(tool_).advance(call_state_, piece)) {
        state_ = State::kDone;  // cannot happen for a token allowed() permitted
        return;
      }
      if (grammar_->matcher(tool_).complete(call_state_)) call_done();
      return;
    case State::kFree:
      break;
  }
  const std::string& open = grammar_->syntax().open;
  if (open.empty()) {
    // A call is a reply that starts with its object.
    if (!at_start_) return;
    const size_t first = piece.find_first_not_of(" \t\r\n");
    if (first == std::string::npos) return;
    at_start_ = false;
    if (piece[first] != '{') return;
    enter_head({""}, {});
    if (!feed_head(std::string_view(piece).substr(first))) state_ = State::kFree;
    return;
  }
  tail_ += piece;
  const size_t at = tail_.find(open);
  if (at == std::string::npos) {
    if (tail_.size() > open.size()) tail_.erase(0, tail_.size() - open.size());
    return;
  }
  const std::string rest = tail_.substr(at + open.size());
  tail_.clear();
  enter_head({grammar_->syntax().list ? "[" : ""}, {});
  if (!feed_head(rest)) state_ = State::kFree;
}

}  // namespace pensieve
