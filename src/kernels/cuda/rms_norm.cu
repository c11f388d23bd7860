// RMSNorm: one thread block per row; the sum of squares is reduced over warps.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.h"

namespace pensieve::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void rms_norm_kernel(const float* x, const float* weight, int64_t n, float eps,
                                float* out) {
  detail::begin_dependent();
  const int64_t row = blockIdx.x;
  const float* xr = x + row * n;  // [n]
  float* yr = out + row * n;      // [n]
  float sum_sq = 0.0f;
  for (int64_t i = threadIdx.x; i < n; i += kThreads) sum_sq += xr[i] * xr[i];
  __shared__ float partial[kThreads / detail::kWarp];
  sum_sq = detail::warp_sum(sum_sq);
  const int warp = threadIdx.x / detail::kWarp;
  const int lane = threadIdx.x % detail::kWarp;
  if (lane == 0) partial[warp] = sum_sq;
  __syncthreads();
  if (warp == 0) {
    sum_sq = lane < kThreads / detail::kWarp ? partial[lane] : 0.0f;
    sum_sq = detail::warp_sum(sum_sq);
    if (lane == 0) partial[0] = sum_sq;
  }
  __syncthreads();
  const float scale = 1.0f / sqrtf(partial[0] / static_cast<float>(n) + eps);
  for (int64_t i = threadIdx.x; i < n; i += kThreads) yr[i] = xr[i] * scale * weight[i];
}

}  // namespace

void rms_norm(const float* x, const float* weight, int64_t n_rows, int64_t n, float eps, float* out,
              cudaStream_t stream) {
  if (n_rows == 0 || n == 0) return;
  detail::launch_dependent(rms_norm_kernel, static_cast<unsigned>(n_rows), kThreads, 0, stream, x,
                           weight, n, eps, out);
}

}  // namespace pensieve::cuda
