// The tensor-core variant of attention() for prompt chunks (attention.cu dispatches to it).
#pragma once

#include "kernels/cuda/ops.h"

namespace pensieve::cuda::detail {

// Head sizes the tensor-core kernel is built for.
inline bool attention_tc_supported(int64_t head_dim) { return head_dim == 64 || head_dim == 128; }

void attention_tc(const AttentionJob& job, cudaStream_t stream);

}  // namespace pensieve::cuda::detail
