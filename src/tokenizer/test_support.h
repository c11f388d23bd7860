// Test helpers: the shared ggml vocabulary files and their .inp/.out vectors.
#pragma once

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "gguf/reader.h"
#include "tokenizer/tokenizer.h"

namespace pensieve::testing_support {

inline std::string vocab_path(const std::string& name) {
  return std::string(PENSIEVE_SHARED_DIR) + "/vocab/ggml-vocab-" + name + ".gguf";
}

// The tokenizer of a shared vocabulary; the GGUF file is closed before it is returned, which also
// checks that the tokenizer keeps no pointers into it. Null (with the error in *error) on failure.
inline std::unique_ptr<Tokenizer> load_vocab(const std::string& name, std::string* error) {
  auto file = GgufFile::open(vocab_path(name));
  if (!file) {
    *error = file.error().message;
    return nullptr;
  }
  auto tokenizer = Tokenizer::from_gguf(**file);
  if (!tokenizer) {
    *error = tokenizer.error().message;
    return nullptr;
  }
  return std::move(tokenizer).value();
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The .inp layout: every string is followed by "\n__ggml_vocab_test__\n".
inline std::vector<std::string> read_inputs(const std::string& path) {
  const std::string raw = read_file(path);
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < raw.size()) {
    const size_t next = raw.find(sep, pos);
    if (next == std::string::npos) {
      out.push_back(raw.substr(pos));
      break;
    }
    out.push_back(raw.substr(pos, next - pos));
    pos = next + sep.size();
  }
  return out;
}

// The .out layout: one line of space-separated ids per input string.
inline std::vector<std::vector<int32_t>> read_outputs(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::vector<int32_t>> out;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::vector<int32_t> ids;
    int32_t id = 0;
    while (ls >> id) ids.push_back(id);
    out.push_back(std::move(ids));
  }
  return out;
}

// Shows control characters and non-ASCII bytes so a failing string can be read in a log.
inline std::string escaped(const std::string& s) {
  std::string out;
  for (const char c : s) {
    const auto b = static_cast<unsigned char>(c);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (b < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02X", b);
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

inline std::string ids_string(const std::vector<int32_t>& ids) {
  std::string out;
  for (const int32_t id : ids) {
    if (!out.empty()) out += ' ';
    out += std::to_string(id);
  }
  return out;
}

}  // namespace pensieve::testing_support
