// Test helpers for the Jinja engine: render a template string with a JSON context.
#pragma once

#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "jinja/jinja.h"
#include "jinja/json.h"

namespace pensieve::jinja::testing_support {

// The rendered text, or "ERROR: " + the message.
inline std::string render(std::string_view source, std::string_view context_json = "{}",
                          const Options& options = {}, const RenderLimits& limits = {}) {
  auto context = parse_json(context_json);
  if (!context) return "BAD TEST CONTEXT: " + context.error().message;
  auto tmpl = Template::parse(source, options);
  if (!tmpl) return "ERROR: " + tmpl.error().message;
  auto out = tmpl->render(*context, limits);
  if (!out) return "ERROR: " + out.error().message;
  return *out;
}

inline Error render_error(std::string_view source, std::string_view context_json = "{}",
                          const RenderLimits& limits = {}) {
  auto context = parse_json(context_json);
  EXPECT_TRUE(context.has_value());
  auto tmpl = Template::parse(source);
  if (!tmpl) return tmpl.error();
  auto out = tmpl->render(*context, limits);
  EXPECT_FALSE(out.has_value()) << "rendered: " << (out ? *out : "");
  return out ? Error{} : out.error();
}

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace pensieve::jinja::testing_support
