// A CUDA runtime status as an Expected, for the CUDA forward pass's .cpp files: success, or
// kInternal naming what was being done and the runtime's own words.
#pragma once

#include <cuda_runtime.h>

#include "core/result.h"

namespace pensieve {

inline Expected<void> cuda_ok(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return {};
  return make_error(ErrorCode::kInternal, "cuda: {}: {}", what, cudaGetErrorString(err));
}

}  // namespace pensieve
