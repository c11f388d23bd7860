// c = a b^T on the tensor cores (WMMA, F16 x F16 -> F32). A thread block computes a BM x 128
// tile of c with 8 warps (2 x 4, each (BM/2) x 32); k advances 64 at a time through three shared
// memory stages filled with 16-byte cp.async copies, so two slices load while one multiplies
// (the loop is bound by memory latency with fewer). Rows past m or n and columns past k load as
// zeros; the tile's outputs go through shared memory so edge tiles store only what lies inside c.
// Consecutive blocks share a b tile (the weights): it is read from memory once and from L2 for the
// other m tiles. With few tiles (a few tokens) k is split over more blocks, each summing its
// columns into a plane of a workspace, and the planes are added in order afterwards.
#include <mma.h>

#include <algorithm>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.h"

namespace pensieve::cuda {
namespace {

namespace wmma = nvcuda::wmma;

constexpr int kBn = 128;
constexpr int kBk = 64;
constexpr int kStride = kBk + 8;  // halves per shared row: 144 bytes, no bank conflicts
constexpr int kStages = 3;
constexpr int kThreads = 256;
constexpr int kFrag = 16;

__device__ __forceinline__ void copy16(void* smem, const void* gmem, bool valid) {
  const auto dst = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  const int src_bytes = valid ? 16 : 0;  // 0: zero-fill
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(gmem),
               "r"(src_bytes));
}

__device__ __forceinline__ void copy_commit() { asm volatile("cp.async.commit_group;\n" ::); }

template <int N>
__device__ __forceinline__ void copy_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// rows [r0, r0 + kRows) x columns [k0, k0 + kBk) of a [n_rows, k] matrix into shared memory.
// Columns from k_end on load as zeros (a split's end).
template <int kRows>
__device__ __forceinline__ void load_tile(half* s, const half* g, int64_t r0, int64_t n_rows,
                                          int64_t k0, int64_t k, int64_t k_end) {
  constexpr int kChunks = kRows * kBk / 8;  // 16-byte pieces
#pragma unroll
  for (int c = threadIdx.x; c < kChunks; c += kThreads) {
    const int row = c / (kBk / 8);
    const int col = c % (kBk / 8) * 8;
    const int64_t gr = r0 + row;
    const int64_t gk = k0 + col;
    const bool valid = gr < n_rows && gk < k_end;  // k % 8 == 0: a piece is all in or all out
    copy16(s + row * kStride + col, valid ? g + gr * k + gk : g, valid);
  }
}

template <int BM>
constexpr size_t smem_bytes() {
  return static_cast<size_t>(kStages) * (BM + kBn) * kStride * sizeof(half);
}

// Two blocks an SM: 2 x 108 KiB of shared memory at BM = 128.
template <int BM>
__global__ void __launch_bounds__(kThreads, 2)
    gemm_kernel(const half* a, const half* b, int64_t m, int64_t n, int64_t k, float* c,
                bool accumulate, int64_t k_split) {
  constexpr int kFm = BM / 2 / kFrag;  // fragments per warp along m
  constexpr int kFn = 32 / kFrag;      // along n
  constexpr int kStage = (BM + kBn) * kStride;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  half* smem = reinterpret_cast<half*>(smem_raw);  // [kStages][BM + kBn][kStride]
  const int warp = threadIdx.x / detail::kWarp;
  const int lane = threadIdx.x % detail::kWarp;
  const int warp_m = warp / 4;
  const int warp_n = warp % 4;
  const int64_t m0 = static_cast<int64_t>(blockIdx.x) * BM;
  const int64_t n0 = static_cast<int64_t>(blockIdx.y) * kBn;
  // Split z takes columns [k_begin, k_end) and writes its partial sums to its own c plane.
  const int64_t k_begin = static_cast<int64_t>(blockIdx.z) * k_split;
  const int64_t k_end = k_begin + k_split < k ? k_begin + k_split : k;
  c += static_cast<int64_t>(blockIdx.z) * m * n;

  wmma::fragment<wmma::accumulator, kFrag, kFrag, kFrag, float> acc[kFm][kFn];
#pragma unroll
  for (int i = 0; i < kFm; ++i) {
#pragma unroll
    for (int j = 0; j < kFn; ++j) wmma::fill_fragment(acc[i][j], 0.0f);
  }

  // Slice kt goes to stage kt % kStages; one commit group per slice, empty past the end, so
  // that waiting for all but kStages - 2 groups always means slice kt has landed.
  auto load_slice = [&](int64_t kt) {
    if (k_begin + kt * kBk < k_end) {
      half* stage = smem + (kt % kStages) * kStage;
      load_tile<BM>(stage, a, m0, m, k_begin + kt * kBk, k, k_end);
      load_tile<kBn>(stage + BM * kStride, b, n0, n, k_begin + kt * kBk, k, k_end);
    }
    copy_commit();
  };
  const int64_t n_k = (k_end - k_begin + kBk - 1) / kBk;
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) load_slice(s);
  for (int64_t kt = 0; kt < n_k; ++kt) {
    copy_wait<kStages - 2>();
    __syncthreads();  // slice kt is visible; slice kt - 1's stage is free
    load_slice(kt + kStages - 1);
    const half* sa = smem + (kt % kStages) * kStage;  // [BM, kStride]
    const half* sb = sa + BM * kStride;               // [kBn, kStride]
#pragma unroll
    for (int kk = 0; kk < kBk; kk += kFrag) {
      // One a fragment live at a time keeps the block within 128 registers a thread.
      wmma::fragment<wmma::matrix_b, kFrag, kFrag, kFrag, half, wmma::col_major> fb[kFn];
#pragma unroll
      for (int j = 0; j < kFn; ++j) {
        wmma::load_matrix_sync(fb[j], sb + (warp_n * 32 + j * kFrag) * kStride + kk, kStride);
      }
#pragma unroll
      for (int i = 0; i < kFm; ++i) {
        wmma::fragment<wmma::matrix_a, kFrag, kFrag, kFrag, half, wmma::row_major> fa;
        wmma::load_matrix_sync(fa, sa + (warp_m * (BM / 2) + i * kFrag) * kStride + kk, kStride);
#pragma unroll
        for (int j = 0; j < kFn; ++j) wmma::mma_sync(acc[i][j], fa, fb[j], acc[i][j]);
      }
    }
  }

  copy_wait<0>();  // nothing is in flight when k is 0 either
  __syncthreads();
  // Each warp writes its fragments through its own 16 x 16 floats of shared memory.
  float* out_s = reinterpret_cast<float*>(smem) + warp * kFrag * kFrag;
#pragma unroll
  for (int i = 0; i < kFm; ++i) {
#pragma unroll
    for (int j = 0; j < kFn; ++j) {
      wmma::store_matrix_sync(out_s, acc[i][j], kFrag, wmma::mem_row_major);
      __syncwarp();
      const int row = lane / 2;      // 16 rows, two lanes each
      const int col = lane % 2 * 8;  // 8 columns per lane
      const int64_t gr = m0 + warp_m * (BM / 2) + i * kFrag + row;
      const int64_t gc = n0 + warp_n * 32 + j * kFrag + col;
      if (gr < m) {
        float* dst = c + gr * n + gc;
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          if (gc + e < n) dst[e] = out_s[row * kFrag + col + e] + (accumulate ? dst[e] : 0.0f);
        }
      }
      __syncwarp();
    }
  }
}

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

// The stages take more than the 48 KiB of shared memory a block gets unasked.
template <int BM>
void launch(const half* a, const half* b, int64_t m, int64_t n, int64_t k, float* c,
            bool accumulate, unsigned n_tiles, int64_t k_split, unsigned n_splits,
            cudaStream_t stream) {
  static const bool sized = [] {
    cudaFuncSetAttribute(gemm_kernel<BM>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                         static_cast<int>(smem_bytes<BM>()));
    return true;
  }();
  (void)sized;
  gemm_kernel<BM>
      <<<dim3(detail::grid_for(m, BM), n_tiles, n_splits), kThreads, smem_bytes<BM>(), stream>>>(
          a, b, m, n, k, c, accumulate, k_split);
}

// c[i] = sum of the n_splits planes' [i] in order (+ c[i]): deterministic, unlike atomics.
__global__ void sum_splits_kernel(const float* planes, int64_t size, int n_splits, float* c,
                                  bool accumulate) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= size) return;
  float sum = accumulate ? c[i] : 0.0f;
  for (int s = 0; s < n_splits; ++s) sum += planes[s * size + i];
  c[i] = sum;
}

}  // namespace

void gemm_f16(const uint16_t* a, const uint16_t* b, int64_t m, int64_t n, int64_t k, float* c,
              bool accumulate, cudaStream_t stream, float* workspace, int64_t workspace_floats) {
  if (m == 0 || n == 0) return;
  const auto* ah = reinterpret_cast<const half*>(a);
  const auto* bh = reinterpret_cast<const half*>(b);
  const unsigned n_tiles = detail::grid_for(n, kBn);
  // Tall tiles when they still give every SM a block; else half as tall, twice as many.
  if (static_cast<int64_t>(detail::grid_for(m, 128)) * n_tiles >= sm_count()) {
    launch<128>(ah, bh, m, n, k, c, accumulate, n_tiles, k, 1, stream);
    return;
  }
  // Fewer tiles than SMs (few tokens): split k so that about two blocks run on every SM, each
  // split at least kMinSlices slices long, when the workspace holds every split's partials.
  constexpr int64_t kMinSlices = 4;
  constexpr int64_t kMaxSplits = 16;
  const int64_t tiles = static_cast<int64_t>(detail::grid_for(m, 64)) * n_tiles;
  const int64_t slices = (k + kBk - 1) / kBk;
  int64_t splits = tiles >= sm_count()
                       ? 1
                       : std::min({(2 * sm_count() + tiles - 1) / tiles, slices / kMinSlices,
                                   kMaxSplits, workspace_floats / std::max<int64_t>(1, m * n)});
  if (splits < 2) {
    launch<64>(ah, bh, m, n, k, c, accumulate, n_tiles, k, 1, stream);
    return;
  }
  const int64_t k_split = (slices + splits - 1) / splits * kBk;
  splits = (k + k_split - 1) / k_split;
  launch<64>(ah, bh, m, n, k, workspace, false, n_tiles, k_split, static_cast<unsigned>(splits),
             stream);
  constexpr int kSumThreads = 256;
  sum_splits_kernel<<<detail::grid_for(m * n, kSumThreads), kSumThreads, 0, stream>>>(
      workspace, m * n, static_cast<int>(splits), c, accumulate);
}

}  // namespace pensieve::cuda
