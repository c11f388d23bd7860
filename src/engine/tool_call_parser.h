// Reads the tool calls out of a reply's text as it streams, in the syntax the model's template
// uses (see tool_syntax.h): text before, between and after calls stays text; each call becomes
// kToolCall (its name, as soon as the name is written), kToolInput pieces (its input JSON, as
// written) and kToolEnd. It follows the same rules as ToolCallConstraint, which keeps the calls
// valid while they are generated, so the two agree on what is a call.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "engine/reply_parts.h"
#include "engine/tool_syntax.h"

namespace pensieve {

class ToolCallParser {
 public:
  enum class Start {
    kFree,       // free text that may contain calls
    kInCall,     // the prompt ends where a call object begins (tool_choice any)
    kArguments,  // the whole reply is the input of `forced_tool` (tool_choice tool)
  };
  ToolCallParser(ToolCallSyntax syntax, std::vector<std::string> tool_names, Start start,
                 bool parallel, std::string forced_tool = {});

  std::vector<ReplyPart> feed(std::string_view text);
  // Text still held back; a call cut short (the reply ran out of tokens) is closed.
  std::vector<ReplyPart> finish();
  // Calls opened so far.
  int calls() const { return calls_; }

 private:
  enum class State {
    kFree,       // text; watching for the opener
    kText,       // text for good (a reply that did not start with a call)
    kHead,       // after an opener: {"name": "<tool>"
    kKey,        // after the name: up to the input's key and colon
    kValue,      // the input JSON
    kObjectEnd,  // after the input: up to the call object's '}'
    kClose,      // after a call: whitespace and the closing text
    kListNext,   // after a call in a list: ',' or ']'
    kArguments,  // the forced call's input
    kDone,       // nothing more is read
  };
  void step(char c);
  void enter_head(std::string_view lead);
  void head_byte(char c);
  void value_byte(char c);
  void call_end();
  void fall_back_to_text();
  void emit(ReplyPart::Kind kind, std::string_view text);

  ToolCallSyntax syntax_;
  std::vector<std::string> heads_;  // {"name": "<tool>" and {"name":"<tool>"
  std::vector<std::string> names_;  // the tool of each head
  bool parallel_;
  std::string forced_tool_;
  State state_;
  std::string held_;         // kFree: a possible start of the opener; kClose: of the closer
  bool at_start_ = true;     // kFree without an opener: only whitespace so far
  bool skip_space_ = false;  // kFree: right after a call
  std::string lead_;         // kHead: text that must precede the head ("[")
  std::string head_;         // kHead: bytes after leading whitespace
  std::string head_raw_;     // kHead: every byte since the opener, to give back as text
  std::string opener_;       // kHead: the opener as written
  size_t head_space_ = 0;
  int depth_ = 0;           // kValue: brackets open
  bool in_string_ = false;  // kValue
  bool escaped_ = false;    // kValue
  std::string scalar_;      // kValue: a scalar input, written when it ends
  int calls_ = 0;
  std::vector<ReplyPart> out_;
};

}  // namespace pensieve
