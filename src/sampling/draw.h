// A token drawn from softmax(logits / temperature) by inverse transform: the first id, in id
// order, at which the running sum of probabilities passes `uniform`. The sampler's chain ends
// here when only a temperature applies, and a backend that draws where the logits are (the GPU)
// is tested against it.
#pragma once

#include <cstdint>
#include <span>

namespace pensieve::sampling {

// temperature > 0, uniform in [0, 1). A logit of -infinity is a token that may not come (a
// constraint's mask). -1 when a logit is NaN or +infinity, or every one is -infinity; the last
// id when rounding leaves `uniform` above the total.
int32_t draw_token(std::span<const float> logits, float temperature, double uniform);
// The same draw, keeping each exponential in `scratch` (at least logits.size()) so that they are
// computed once.
int32_t draw_token(std::span<const float> logits, float temperature, double uniform,
                   std::span<float> scratch);

}  // namespace pensieve::sampling
