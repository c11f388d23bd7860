// A streaming read of memory at the widest loads the CPU has: what `pensieve bench` measures
// the machine's read bandwidth with, so the bound decode is compared to is a real one.
#pragma once

#include <cstdint>

namespace pensieve::cpu {

// Sum of x[0..n); x 64-byte aligned, n a multiple of 64.
float stream_sum(const float* x, int64_t n);

}  // namespace pensieve::cpu
