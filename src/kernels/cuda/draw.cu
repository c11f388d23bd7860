// Each row's next token picked on the device, so that a sampled decode step sends back one id a
// sequence instead of its logits: greedily (temperature 0), or drawn from softmax(logits /
// temperature) by inverse transform with the uniform number the host drew from the sequence's
// seeded generator. One thread block a row; each thread owns a contiguous run of ids, so the
// running sum goes in id order as on the host (sampling::draw_token): float logits divided by the
// temperature, float exponentials, a double sum, float probabilities and a double running sum.
// The runs' sums are scanned across the block; the thread whose run holds the uniform walks it.
// The exponentials may differ from the host's in the last bits, so a uniform within about 1e-6 of
// an interval's edge may give the neighbouring token.
#include <cstdint>

#include "kernels/cuda/best.cuh"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.h"

namespace pensieve::cuda {
namespace {

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / detail::kWarp;
static_assert(kWarps == detail::kWarp, "the scan of the warps' sums is one warp's");

using detail::Best;
using detail::better;

__device__ __forceinline__ Best block_best(Best best, Best* shared) {
  for (int offset = detail::kWarp / 2; offset > 0; offset >>= 1) {
    const Best other{__shfl_xor_sync(detail::kFullMask, best.value, offset),
                     __shfl_xor_sync(detail::kFullMask, best.index, offset)};
    best = better(best, other);
  }
  const int warp = threadIdx.x / detail::kWarp;
  const int lane = threadIdx.x % detail::kWarp;
  if (lane == 0) shared[warp] = best;
  __syncthreads();
  Best all = shared[0];
  for (int w = 1; w < kWarps; ++w) all = better(all, shared[w]);
  return all;
}

__device__ __forceinline__ double block_sum(double v, double* shared) {
  for (int offset = detail::kWarp / 2; offset > 0; offset >>= 1) {
    v += __shfl_xor_sync(detail::kFullMask, v, offset);
  }
  const int warp = threadIdx.x / detail::kWarp;
  if (threadIdx.x % detail::kWarp == 0) shared[warp] = v;
  __syncthreads();
  double total = 0;
  for (int w = 0; w < kWarps; ++w) total += shared[w];  // the same order in every thread
  __syncthreads();
  return total;
}

// The sum of the values of the lanes before this one in its warp; the warp's total in *total.
__device__ __forceinline__ double warp_exclusive_scan(double v, double* total) {
  const int lane = threadIdx.x % detail::kWarp;
  double inclusive = v;
  for (int offset = 1; offset < detail::kWarp; offset <<= 1) {
    const double before = __shfl_up_sync(detail::kFullMask, inclusive, offset);
    if (lane >= offset) inclusive += before;
  }
  *total = __shfl_sync(detail::kFullMask, inclusive, detail::kWarp - 1);
  const double exclusive = __shfl_up_sync(detail::kFullMask, inclusive, 1);
  return lane == 0 ? 0.0 : exclusive;
}

// The sum of the values of the threads before this one.
__device__ __forceinline__ double block_exclusive_scan(double v, double* shared) {
  const int warp = threadIdx.x / detail::kWarp;
  const int lane = threadIdx.x % detail::kWarp;
  double warp_total = 0;
  const double in_warp = warp_exclusive_scan(v, &warp_total);
  if (lane == 0) shared[warp] = warp_total;
  __syncthreads();
  if (warp == 0) {
    double all = 0;
    // Each lane rewrites only the warp's sum it read.
    shared[lane] = warp_exclusive_scan(shared[lane], &all);
  }
  __syncthreads();
  return shared[warp] + in_warp;
}

__global__ void __launch_bounds__(kThreads)
    draw_rows_kernel(const float* x, int64_t n_cols, const double* draws, int32_t* out) {
  __shared__ Best bests[kWarps];
  __shared__ double sums[kWarps];
  __shared__ int not_finite;  // the row is refused
  __shared__ int picked;
  if (threadIdx.x == 0) {
    not_finite = 0;
    picked = static_cast<int>(n_cols - 1);  // rounding left the uniform past the total
  }
  __syncthreads();
  const float* row = x + static_cast<int64_t>(blockIdx.x) * n_cols;
  const auto temperature = static_cast<float>(draws[2 * blockIdx.x]);
  const double uniform = draws[2 * blockIdx.x + 1];
  const bool greedy = temperature <= 0.0f;
  const int64_t per_thread = (n_cols + kThreads - 1) / kThreads;
  const int64_t begin = min(n_cols, threadIdx.x * per_thread);
  const int64_t end = min(n_cols, begin + per_thread);

  // A greedy row refuses any value that is not finite; a draw only NaN and +infinity (-infinity
  // is a token of probability 0), or a row of nothing but -infinity.
  Best best{0.0f, -1};
  bool refused = false;
  for (int64_t i = begin; i < end; ++i) {
    const float logit = row[i];
    refused = refused || (greedy ? !isfinite(logit) : isnan(logit) || logit == INFINITY);
    const float v = greedy ? logit : logit / temperature;
    if (best.index < 0 || v > best.value) best = {v, i};
  }
  if (refused) not_finite = 1;
  const Best top = block_best(best, bests);  // ends with a barrier: not_finite is settled
  if (not_finite != 0 || greedy || top.value == -INFINITY) {
    if (threadIdx.x == 0) {
      out[blockIdx.x] =
          not_finite != 0 || top.value == -INFINITY ? -1 : static_cast<int32_t>(top.index);
    }
    return;
  }
  const float max = top.value;
  double run = 0;
  for (int64_t i = begin; i < end; ++i) run += expf(row[i] / temperature - max);
  const double sum = block_sum(run, sums);
  double mass = 0;
  for (int64_t i = begin; i < end; ++i) {
    mass += static_cast<float>(expf(row[i] / temperature - max) / sum);
  }
  const double before = block_exclusive_scan(mass, sums);
  // The run that holds the uniform walks it; near an edge two may walk, and the earlier pick
  // wins. A token of probability 0 is never picked.
  constexpr double kEdge = 1e-9;
  if (begin < end && before - kEdge <= uniform && uniform < before + mass + kEdge) {
    double cumulative = before;
    for (int64_t i = begin; i < end; ++i) {
      const float p = static_cast<float>(expf(row[i] / temperature - max) / sum);
      cumulative += p;
      if (uniform < cumulative && p > 0.0f) {
        atomicMin(&picked, static_cast<int>(i));
        break;
      }
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) out[blockIdx.x] = picked;
}

}  // namespace

void draw_rows(const float* x, int64_t n_rows, int64_t n_cols, const double* draws, int32_t* out,
               cudaStream_t stream) {
  if (n_rows <= 0 || n_cols <= 0) return;
  draw_rows_kernel<<<static_cast<unsigned>(n_rows), kThreads, 0, stream>>>(x, n_cols, draws, out);
}

}  // namespace pensieve::cuda
