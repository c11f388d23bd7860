// Activations to 8-bit blocks of 32 for the __dp4a products of matvec(): one warp per block, each
// lane one element; rms_norm_q8 also normalizes first (the decode step's norms feed quantized
// weights directly), with one block of 32 warps that keeps the row in registers between the sum
// of squares and the quantization (one round trip to memory: this runs twice a layer).
#include <cstdio>
#include <cstdlib>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.h"

namespace pensieve::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / detail::kWarp;
constexpr int kNormThreads = 1024;
constexpr int kNormWarps = kNormThreads / detail::kWarp;

// Block b of x (row b / row_blocks, block b % row_blocks) goes to place b, or with a token
// stride to place (b % row_blocks) * token_stride + b / row_blocks (gemm_q8's layout).
__global__ void quantize_kernel(const float* x, int64_t n_blocks, int64_t row_blocks,
                                int64_t token_stride, Q8Act out) {
  detail::begin_dependent();
  const int64_t b = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / detail::kWarp;
  if (b >= n_blocks) return;  // the whole warp leaves together
  const int lane = threadIdx.x % detail::kWarp;
  const int64_t at = token_stride == 0 ? b : b % row_blocks * token_stride + b / row_blocks;
  detail::quantize_block_q8(x[b * detail::kQk + lane], lane, out.qs + at * detail::kQk,
                            out.ds + at);
}

// Warp w holds quantization blocks w, w + 32, ... (kPer of them) of the row in registers.
template <int kPer>
__global__ void __launch_bounds__(kNormThreads)
    rms_norm_q8_kernel(const float* x, const float* weight, int64_t n, float eps, float* out,
                       Q8Act q) {
  __shared__ float partial[kNormWarps];
  const int warp = threadIdx.x / detail::kWarp;
  const int lane = threadIdx.x % detail::kWarp;
  const int64_t n_blocks = n / detail::kQk;
  float v[kPer];
  float w[kPer];
  // The weights are read before the wait for the kernel before (they are not its output): they
  // come from device memory, as the decode step's weight stream has pushed them out of L2.
#pragma unroll
  for (int k = 0; k < kPer; ++k) {
    const int64_t b = warp + static_cast<int64_t>(k) * kNormWarps;
    w[k] = b < n_blocks ? weight[b * detail::kQk + lane] : 0.0f;
  }
  detail::begin_dependent();
  float sum_sq = 0.0f;
#pragma unroll
  for (int k = 0; k < kPer; ++k) {
    const int64_t b = warp + static_cast<int64_t>(k) * kNormWarps;
    v[k] = b < n_blocks ? x[b * detail::kQk + lane] : 0.0f;
    sum_sq += v[k] * v[k];
  }
  sum_sq = detail::warp_sum(sum_sq);
  if (lane == 0) partial[warp] = sum_sq;
  __syncthreads();
  if (warp == 0) {
    sum_sq = detail::warp_sum(partial[lane]);  // kNormWarps == 32: one value a lane
    if (lane == 0) partial[0] = sum_sq;
  }
  __syncthreads();
  const float scale = 1.0f / sqrtf(partial[0] / static_cast<float>(n) + eps);
#pragma unroll
  for (int k = 0; k < kPer; ++k) {
    const int64_t b = warp + static_cast<int64_t>(k) * kNormWarps;
    if (b < n_blocks) {  // the same for the whole warp
      const int64_t i = b * detail::kQk + lane;
      const float y = v[k] * scale * w[k];
      out[i] = y;
      detail::quantize_block_q8(y, lane, q.qs + b * detail::kQk, q.ds + b);
    }
  }
}

template <int kPer>
void launch_norm(const float* x, const float* weight, int64_t n, float eps, float* out, Q8Act q,
                 cudaStream_t stream) {
  detail::launch_dependent(rms_norm_q8_kernel<kPer>, 1, kNormThreads, 0, stream, x, weight, n, eps,
                           out, q);
}

}  // namespace

void quantize_q8(const float* x, int64_t n_rows, int64_t n, Q8Act out, cudaStream_t stream) {
  const int64_t n_blocks = n_rows * (n / detail::kQk);
  if (n_blocks == 0) return;
  detail::launch_dependent(quantize_kernel, detail::grid_for(n_blocks, kWarps), kThreads, 0, stream,
                           x, n_blocks, n / detail::kQk, int64_t{0}, out);
}

void quantize_q8_by_block(const float* x, int64_t n_rows, int64_t n, Q8Act out,
                          cudaStream_t stream) {
  const int64_t n_blocks = n_rows * (n / detail::kQk);
  if (n_blocks == 0) return;
  detail::launch_dependent(quantize_kernel, detail::grid_for(n_blocks, kWarps), kThreads, 0, stream,
                           x, n_blocks, n / detail::kQk, q8_token_stride(n_rows), out);
}

void rms_norm_q8(const float* x, const float* weight, int64_t n, float eps, float* out, Q8Act q,
                 cudaStream_t stream) {
  if (n == 0) return;
  const int64_t per_warp = (n / detail::kQk + kNormWarps - 1) / kNormWarps;
  if (per_warp <= 1) return launch_norm<1>(x, weight, n, eps, out, q, stream);
  if (per_warp <= 2) return launch_norm<2>(x, weight, n, eps, out, q, stream);
  if (per_warp <= 4) return launch_norm<4>(x, weight, n, eps, out, q, stream);
  if (per_warp <= 8) return launch_norm<8>(x, weight, n, eps, out, q, stream);
  if (per_warp <= kRmsNormQ8MaxWidth / detail::kQk / kNormWarps) {
    return launch_norm<16>(x, weight, n, eps, out, q, stream);
  }
  std::fprintf(stderr, "cuda rms_norm_q8: rows of %lld are too wide\n", static_cast<long long>(n));
  std::abort();
}

}  // namespace pensieve::cuda
