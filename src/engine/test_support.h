// Shared by the engine tests: the real TinyStories-656K model and tokenizer, greedy options,
// and draining a sequence's text.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "engine/scheduler.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace pensieve::engine_test {

struct Loaded {
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
};

inline Loaded load(const std::string& name = "TinyStories-656K-Q8_0.gguf",
                   MmapFile::Mode mode = MmapFile::Mode::kResident) {
  auto model = Model::load(PENSIEVE_SHARED_DIR "/models/" + name, mode);
  EXPECT_TRUE(model) << model.error().message;
  if (!model) return {};
  auto tokenizer = Tokenizer::from_gguf((*model)->file());
  EXPECT_TRUE(tokenizer) << tokenizer.error().message;
  if (!tokenizer) return {};
  return {std::move(*model), std::move(*tokenizer)};
}

inline GenerateOptions greedy(int64_t max_tokens) {
  GenerateOptions o;
  o.max_tokens = max_tokens;
  o.sampling.temperature = 0;
  return o;
}

// Drains a sequence to the end; returns its text.
inline std::string drain(Sequence& sequence) {
  std::string text;
  while (true) {
    Sequence::Update u = sequence.wait(std::chrono::milliseconds(1000));
    for (const std::string& piece : u.pieces) text += piece;
    if (u.finished) return text;
  }
}

}  // namespace pensieve::engine_test
