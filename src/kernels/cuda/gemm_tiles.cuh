// The tiled tensor-core product behind gemm_f16() and gemm_quantized(): c = a w^T (WMMA, F16 x F16
// -> F32). A thread block computes a BM x 128 tile of c with 8 warps (2 x 4, each (BM/2) x 32);
// k advances 64 at a time through three shared memory stages, so two slices load while one
// multiplies. a comes in with 16-byte cp.async copies. The weights come in through a Weights
// source: F16 rows copied the same way, or quantized rows whose blocks each thread fetches into
// registers before the current slice multiplies and decodes into the stage after, so no F16 copy
// of w is ever written. Rows past m or n and columns past k load as zeros; the tile's outputs go
// through shared memory so edge tiles store only what lies inside c. Consecutive blocks share a
// weight tile: it is read from memory once and from L2 for the other m tiles. With few tiles (a
// few tokens) k is split over more blocks, each summing its columns into a plane of a workspace,
// and the planes are added in order afterwards.
#pragma once

#include <mma.h>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/weight_blocks.cuh"

namespace pensieve::cuda::detail::gemm {

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

// rows [r0, r0 + kRows) x columns [k0, k0 + kBk) of a [n_rows, k] F16 matrix into shared memory.
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

// F16 weight rows [n, k], copied like a.
struct F16Weights {
  const half* b;
  int64_t n;
  int64_t k;
  struct Fetched {};
  __device__ __forceinline__ void fetch(Fetched& /*f*/, half* sb, int64_t n0, int64_t k0,
                                        int64_t k_end) const {
    load_tile<kBn>(sb, b, n0, n, k0, k, k_end);
  }
  __device__ __forceinline__ void store(const Fetched& /*f*/, half* /*sb*/) const {}
};

// Quantized weight rows of type T: thread t fetches block 2 * k0 / 64 + t % 2 of tile row t / 2,
// one 32-element block, and decodes it into its 64 bytes of the stage.
template <GgmlType T, bool kAligned>
struct QuantWeights {
  static_assert(kThreads == 2 * kBn && kBk == 2 * kQk);
  const uint8_t* w;
  size_t row_bytes;
  int64_t n;
  int64_t n_blocks;  // per row
  struct Fetched {
    WeightBlock<T, kAligned> block;
    bool valid;
  };
  __device__ __forceinline__ void fetch(Fetched& f, half* /*sb*/, int64_t n0, int64_t k0,
                                        int64_t k_end) const {
    const int64_t r = n0 + threadIdx.x / 2;
    const int64_t b = k0 / kQk + threadIdx.x % 2;
    f.valid = r < n && b * kQk < k_end;  // k_end is a multiple of 32
    if (f.valid) f.block.fetch(w + static_cast<size_t>(r) * row_bytes, n_blocks, b);
  }
  __device__ __forceinline__ void store(const Fetched& f, half* sb) const {
    alignas(16) uint16_t h[kQk] = {};
    if (f.valid) decode_f16(f.block, h);
    auto* dst = reinterpret_cast<uint4*>(sb + threadIdx.x / 2 * kStride + threadIdx.x % 2 * kQk);
    const auto* src = reinterpret_cast<const uint4*>(h);
#pragma unroll
    for (int j = 0; j < kQk * 2 / 16; ++j) dst[j] = src[j];
  }
};

template <int BM>
constexpr size_t smem_bytes() {
  return static_cast<size_t>(kStages) * (BM + kBn) * kStride * sizeof(half);
}

// Two blocks an SM: 2 x 108 KiB of shared memory at BM = 128.
template <int BM, class Weights>
__global__ void __launch_bounds__(kThreads, 2)
    gemm_kernel(const half* a, Weights w, int64_t m, int64_t n, int64_t k, float* c,
                bool accumulate, int64_t k_split) {
  namespace wmma = nvcuda::wmma;
  constexpr int kFm = BM / 2 / kFrag;  // fragments per warp along m
  constexpr int kFn = 32 / kFrag;      // along n
  constexpr int kStage = (BM + kBn) * kStride;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  half* smem = reinterpret_cast<half*>(smem_raw);  // [kStages][BM + kBn][kStride]
  const int warp = threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
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
  // that waiting for all but kStages - 2 groups always means slice kt's copies have landed.
  // fetch_slice starts the copies and the weights' fetch; store_slice finishes the weights.
  auto stage_of = [&](int64_t kt) { return smem + (kt % kStages) * kStage; };
  auto in_range = [&](int64_t kt) { return k_begin + kt * kBk < k_end; };
  auto fetch_slice = [&](int64_t kt, typename Weights::Fetched& f) {
    if (in_range(kt)) {
      half* stage = stage_of(kt);
      load_tile<BM>(stage, a, m0, m, k_begin + kt * kBk, k, k_end);
      w.fetch(f, stage + BM * kStride, n0, k_begin + kt * kBk, k_end);
    }
    copy_commit();
  };
  auto store_slice = [&](int64_t kt, const typename Weights::Fetched& f) {
    if (in_range(kt)) w.store(f, stage_of(kt) + BM * kStride);
  };
  const int64_t n_k = (k_end - k_begin + kBk - 1) / kBk;
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    typename Weights::Fetched f;
    fetch_slice(s, f);
    store_slice(s, f);
  }
  for (int64_t kt = 0; kt < n_k; ++kt) {
    copy_wait<kStages - 2>();
    __syncthreads();  // slice kt is visible; slice kt - 1's stage is free
    typename Weights::Fetched next;
    fetch_slice(kt + kStages - 1, next);
    const half* sa = stage_of(kt);       // [BM, kStride]
    const half* sb = sa + BM * kStride;  // [kBn, kStride]
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
    store_slice(kt + kStages - 1, next);  // into the stage freed at this iteration's barrier
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

// How gemm_tiles() cuts an m x n x k product: tile height, tiles along n, and the k split.
struct Plan {
  int bm = 128;
  unsigned n_tiles = 0;
  int64_t k_split = 0;  // columns per split
  unsigned n_splits = 1;
};
Plan plan(int64_t m, int64_t n, int64_t k, int64_t workspace_floats);  // gemm_f16.cu

// c[i] = sum of the n_splits planes' [i] in order (+ c[i]): deterministic, unlike atomics.
void sum_splits(const float* planes, int64_t size, int n_splits, float* c, bool accumulate,
                cudaStream_t stream);

// The stages take more than the 48 KiB of shared memory a block gets unasked.
template <int BM, class Weights>
void launch(const half* a, const Weights& w, int64_t m, int64_t n, int64_t k, float* c,
            bool accumulate, const Plan& p, cudaStream_t stream) {
  static const bool sized = [] {
    cudaFuncSetAttribute(gemm_kernel<BM, Weights>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                         static_cast<int>(smem_bytes<BM>()));
    return true;
  }();
  (void)sized;
  gemm_kernel<BM, Weights>
      <<<dim3(grid_for(m, BM), p.n_tiles, p.n_splits), kThreads, smem_bytes<BM>(), stream>>>(
          a, w, m, n, k, c, accumulate, p.k_split);
}

// c = a w^T (+ c) for a: [m, k] F16, the weights' rows [n, k], c: [m, n] F32.
template <class Weights>
void gemm_tiles(const half* a, const Weights& w, int64_t m, int64_t n, int64_t k, float* c,
                bool accumulate, cudaStream_t stream, float* workspace, int64_t workspace_floats) {
  if (m == 0 || n == 0) return;
  const Plan p = plan(m, n, k, workspace_floats);
  if (p.bm == 128) {
    launch<128>(a, w, m, n, k, c, accumulate, p, stream);
  } else if (p.n_splits == 1) {
    launch<64>(a, w, m, n, k, c, accumulate, p, stream);
  } else {
    launch<64>(a, w, m, n, k, workspace, false, p, stream);
    sum_splits(workspace, m * n, static_cast<int>(p.n_splits), c, accumulate, stream);
  }
}

}  // namespace pensieve::cuda::detail::gemm
