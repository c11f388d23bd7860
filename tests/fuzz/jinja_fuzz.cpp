// libFuzzer target: parsing and rendering any template text with a chat-like context never
// crashes, never exceeds the render limits, and every failure is a "jinja: line N: " error.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "jinja/jinja.h"

namespace {

pensieve::jinja::Value make_context() {
  auto parsed = pensieve::jinja::parse_json(R"({
    "bos_token": "<s>", "eos_token": "</s>", "add_generation_prompt": true,
    "tools": [{"type": "function", "function": {"name": "f", "description": "d",
               "parameters": {"type": "object", "properties": {"a": {"type": "string"}}}}}],
    "messages": [
      {"role": "system", "content": "sys"},
      {"role": "user", "content": "hi é"},
      {"role": "assistant", "content": "", "tool_calls": [
        {"id": "abcdefghi", "type": "function", "function": {"name": "f", "arguments": {"a": "x"}}}]},
      {"role": "tool", "tool_call_id": "abcdefghi", "content": "42"},
      {"role": "assistant", "content": "done"}]})");
  if (!parsed) std::abort();
  return std::move(parsed).value();
}

bool is_jinja_error(const pensieve::Error& e) { return e.message.rfind("jinja: line ", 0) == 0; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const pensieve::jinja::Value context = make_context();
  if (size == 0) return 0;
  pensieve::jinja::Options options;
  options.trim_blocks = (data[0] & 1) == 0;
  options.lstrip_blocks = (data[0] & 2) == 0;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  auto tmpl = pensieve::jinja::Template::parse(text, options);
  if (!tmpl) {
    if (!is_jinja_error(tmpl.error())) std::abort();
    return 0;
  }
  pensieve::jinja::RenderLimits limits;
  limits.max_output_bytes = 1 << 16;
  limits.max_steps = 200'000;
  limits.max_call_depth = 16;
  auto out = tmpl->render(context, limits);
  if (out && out->size() > limits.max_output_bytes) std::abort();
  if (!out && !is_jinja_error(out.error())) std::abort();
  return 0;
}
