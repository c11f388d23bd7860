// The forward-pass interface the generation loop drives: the scalar reference and the fast
// CPU path (and later other backends) implement it.
#pragma once

#include <cstdint>
#include <span>

#include "core/result.h"

namespace pensieve {

class Forward {
 public:
  virtual ~Forward() = default;

  // Feeds tokens at positions n_past().. and returns the logits [n_vocab] after the last one.
  // Errors: a token id out of range, or tokens that do not fit in the context.
  virtual Expected<std::span<const float>> eval(std::span<const int32_t> tokens) = 0;
  virtual int64_t n_past() const = 0;
  virtual int64_t n_ctx() const = 0;
  // Forgets the sequence (the KV cache is reused from position 0).
  virtual void reset() = 0;
};

}  // namespace pensieve
