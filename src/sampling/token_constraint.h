// A constraint on what a sequence may generate next (for example a tool call's arguments that
// must stay valid JSON of a schema): the generation loop masks the logits with it before
// sampling and tells it each token it picked. One instance per sequence; not thread-safe.
#pragma once

#include <cstdint>
#include <vector>

namespace pensieve {

class TokenConstraint {
 public:
  virtual ~TokenConstraint() = default;
  // mask[id] = 1 for every token that may come next, 0 otherwise (mask has n_vocab entries).
  virtual void allowed(std::vector<uint8_t>* mask) const = 0;
  // Whether what was generated so far is a whole valid output, so the sequence may end here.
  virtual bool complete() const = 0;
  // The token the sampler picked (one allowed() permitted).
  virtual void accept(int32_t token) = 0;
  // How many more tokens the output may have (the client's max_tokens or the context, whichever
  // ends first), told before each allowed(); a constraint may steer towards ending when few are
  // left.
  virtual void set_tokens_left(int64_t left) { (void)left; }
  // False while the constraint allows every token (free text between constrained parts), so the
  // generation loop can skip masking.
  virtual bool constrains() const { return true; }
};

}  // namespace pensieve
