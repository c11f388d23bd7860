// The largest value of a row and its first index, as argmax_rows and draw_rows find it: each
// thread keeps the best it has seen, then warps and the block combine pairs.
#pragma once

#include <cstdint>

namespace pensieve::cuda::detail {

struct Best {
  float value;
  int64_t index;  // -1: nothing seen yet
};

// b's pick over a's: larger, or equal and earlier; anything over nothing.
__device__ __forceinline__ Best better(Best a, Best b) {
  if (b.index < 0) return a;
  if (a.index < 0 || b.value > a.value || (b.value == a.value && b.index < a.index)) return b;
  return a;
}

}  // namespace pensieve::cuda::detail
