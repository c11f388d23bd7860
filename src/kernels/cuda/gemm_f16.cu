// c = a b^T on the tensor cores for F16 operands (gemm_tiles.cuh), and how a product is cut into
// tiles and k splits.
#include <algorithm>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/gemm_tiles.cuh"
#include "kernels/cuda/ops.h"

namespace pensieve::cuda {
namespace {

int sm_count() {
  static const int count = [] {
    int device = 0;
    int n = 0;
    cudaGetDevice(&device);
    cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device);
    return n > 0 ? n : 1;
  }();
  return count;
}

__global__ void sum_splits_kernel(const float* planes, int64_t size, int n_splits, float* c,
                                  bool accumulate) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= size) return;
  float sum = accumulate ? c[i] : 0.0f;
  for (int s = 0; s < n_splits; ++s) sum += planes[s * size + i];
  c[i] = sum;
}

}  // namespace

namespace detail::gemm {

Plan plan(int64_t m, int64_t n, int64_t k, int64_t workspace_floats) {
  Plan p;
  p.n_tiles = grid_for(n, kBn);
  p.k_split = k;
  // Tall tiles when they still give every SM a block; else half as tall, twice as many.
  if (static_cast<int64_t>(grid_for(m, 128)) * p.n_tiles >= sm_count()) return p;
  p.bm = 64;
  // Fewer tiles than SMs (few tokens): split k so that about two blocks run on every SM, each
  // split at least kMinSlices slices long, when the workspace holds every split's partials.
  constexpr int64_t kMinSlices = 4;
  constexpr int64_t kMaxSplits = 16;
  const int64_t tiles = static_cast<int64_t>(grid_for(m, 64)) * p.n_tiles;
  const int64_t slices = (k + kBk - 1) / kBk;
  const int64_t splits =
      tiles >= sm_count() ? 1
                          : std::min({(2 * sm_count() + tiles - 1) / tiles, slices / kMinSlices,
                                      kMaxSplits, workspace_floats / std::max<int64_t>(1, m * n)});
  if (splits < 2) return p;
  p.k_split = (slices + splits - 1) / splits * kBk;
  p.n_splits = static_cast<unsigned>((k + p.k_split - 1) / p.k_split);
  return p;
}

void sum_splits(const float* planes, int64_t size, int n_splits, float* c, bool accumulate,
                cudaStream_t stream) {
  constexpr int kSumThreads = 256;
  sum_splits_kernel<<<grid_for(size, kSumThreads), kSumThreads, 0, stream>>>(planes, size, n_splits,
                                                                             c, accumulate);
}

}  // namespace detail::gemm

void gemm_f16(const uint16_t* a, const uint16_t* b, int64_t m, int64_t n, int64_t k, float* c,
              bool accumulate, cudaStream_t stream, float* workspace, int64_t workspace_floats) {
  const detail::gemm::F16Weights w{reinterpret_cast<const half*>(b), n, k};
  detail::gemm::gemm_tiles(reinterpret_cast<const half*>(a), w, m, n, k, c, accumulate, stream,
                           workspace, workspace_floats);
}

}  // namespace pensieve::cuda
