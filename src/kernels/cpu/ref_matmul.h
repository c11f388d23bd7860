// The oracle for matmul tests: each weight row dequantized by the scalar reference and dotted
// with the float activations in double precision.
#pragma once

#include <cstdint>

#include "kernels/kernels.h"

namespace pensieve::cpu {

// y[n_tokens, w.n_rows] = x[n_tokens, w.n_cols] * W^T, single-threaded.
void ref_matmul(const Matrix& w, const float* x, int64_t n_tokens, float* y);

}  // namespace pensieve::cpu
