// Jinja2-subset template engine for GGUF `tokenizer.chat_template` strings: parse once, render
// many times with a context of Values. Renders the way Hugging Face transformers'
// apply_chat_template does (trim_blocks, lstrip_blocks, loopcontrols, json.dumps-style tojson,
// raise_exception, strftime_now), with limits so a hostile template cannot hang or exhaust memory.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/result.h"
#include "jinja/json.h"
#include "jinja/value.h"

namespace pensieve::jinja {

struct Stmt;

// Environment options. The defaults are those of apply_chat_template.
struct Options {
  // Remove the first newline after a block tag {% ... %} or comment (Jinja trim_blocks).
  bool trim_blocks = true;
  // Remove spaces and tabs from the start of a line up to a block tag (Jinja lstrip_blocks).
  bool lstrip_blocks = true;
  // Keep a single trailing newline of the template text (Jinja keep_trailing_newline).
  bool keep_trailing_newline = false;
};

struct RenderLimits {
  // Output text larger than this fails; also caps every intermediate string.
  size_t max_output_bytes = size_t{16} << 20;
  // Evaluation steps (statements, expressions, loop iterations, 64 bytes of built text each)
  // before rendering fails: a template that loops forever stops here.
  uint64_t max_steps = 20'000'000;
  // Nested macro calls deeper than this fail.
  int max_call_depth = 64;
};

// Error codes: kInvalidFormat for template syntax errors and for run-time errors (type errors,
// unknown filters); kInvalidArgument when the template itself rejects the input through
// raise_exception(msg) (the message is the template's, after "jinja: line N: ");
// kResourceExhausted when a RenderLimits cap is hit. Every message starts "jinja: line N: ".
class Template {
 public:
  // Syntax errors are found here; nesting deeper than kMaxNesting fails cleanly.
  static Expected<Template> parse(std::string_view text, const Options& options = {});

  // context: an object whose keys become the template's variables (messages, tools,
  // add_generation_prompt, bos_token...). It is copied, so the template cannot change it.
  Expected<std::string> render(const Value& context, const RenderLimits& limits = {}) const;

  static constexpr int kMaxNesting = 200;

 private:
  explicit Template(std::shared_ptr<const std::vector<std::unique_ptr<Stmt>>> body)
      : body_(std::move(body)) {}
  std::shared_ptr<const std::vector<std::unique_ptr<Stmt>>> body_;
};

}  // namespace pensieve::jinja
