// The greedy pick of each row of logits on the device, so that a batched decode step sends back
// one id a sequence instead of its logits: one thread block a row, each thread keeping the
// largest value it strides over (the first of equal ones, as its indices only grow), then the
// warps' and the block's pairs combined. A row holding a value that is not finite gives -1, so
// the caller can refuse it as it refuses such logits on the host.
#include <cstdint>

#include "kernels/cuda/best.cuh"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.h"

namespace pensieve::cuda {
namespace {

constexpr int kThreads = 1024;

using detail::Best;
using detail::better;

__global__ void __launch_bounds__(kThreads)
    argmax_rows_kernel(const float* x, int64_t n_cols, int32_t* out) {
  __shared__ Best warps[kThreads / detail::kWarp];
  __shared__ int not_finite;
  if (threadIdx.x == 0) not_finite = 0;
  __syncthreads();
  const float* row = x + static_cast<int64_t>(blockIdx.x) * n_cols;
  Best best{0.0f, -1};
  bool finite = true;
#pragma unroll 8
  for (int64_t i = threadIdx.x; i < n_cols; i += kThreads) {
    const float v = row[i];
    finite = finite && isfinite(v);
    if (best.index < 0 || v > best.value) best = {v, i};
  }
  if (!finite) not_finite = 1;
  for (int offset = detail::kWarp / 2; offset > 0; offset >>= 1) {
    const Best other{__shfl_xor_sync(detail::kFullMask, best.value, offset),
                     __shfl_xor_sync(detail::kFullMask, best.index, offset)};
    best = better(best, other);
  }
  const int warp = threadIdx.x / detail::kWarp;
  if (threadIdx.x % detail::kWarp == 0) warps[warp] = best;
  __syncthreads();
  if (threadIdx.x == 0) {
    Best all = warps[0];
    for (int w = 1; w < kThreads / detail::kWarp; ++w) all = better(all, warps[w]);
    out[blockIdx.x] = not_finite != 0 ? -1 : static_cast<int32_t>(all.index);
  }
}

}  // namespace

void argmax_rows(const float* x, int64_t n_rows, int64_t n_cols, int32_t* out,
                 cudaStream_t stream) {
  if (n_rows <= 0 || n_cols <= 0) return;
  argmax_rows_kernel<<<static_cast<unsigned>(n_rows), kThreads, 0, stream>>>(x, n_cols, out);
}

}  // namespace pensieve::cuda
