// The decode step's matrix-vector products, for one token or a few (each warp then takes its row
// against every token in turn, reading the row from memory once): one warp per weight row, lanes
// striding over the row in units (a quantized block of 32, 64 elements of a K-quant, 8 F16 or BF16
// or 4 F32 values when rows are 16-byte aligned, else single elements), F32 sums per lane reduced
// across the warp (F16 and BF16 rows: two warps a row, outside SwiGLU). Q8_0 and Q4_0 rows are in
// the device layout, so a lane's block codes are one or two 16-byte loads. Quantized rows multiply
// the 8-bit codes of x with __dp4a; the block scales apply once per block (K-quants: per sub-block,
// kquants.cuh). F16, BF16 and F32 lanes issue the loads of 4 units before using any; F16 and BF16
// rows are read past the L1 cache, which keeps x. Up to three matrices share a launch, their rows
// numbered one after another; SwiGLU reads the gate and up rows of one index in one warp, in one
// loop. Thread blocks of 8 warps: fewer, fuller blocks start faster. Each warp asks for its rows in
// L2 before it waits for the kernel before (griddepcontrol), so the weights stream in while that
// kernel finishes. A residual product can also write its new values times the next norm's
// weight (MatvecJob::norm_out).
#include <cstdio>
#include <cstdlib>
#include <type_traits>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/kquants.cuh"
#include "kernels/cuda/ops.h"

namespace pensieve::cuda {
namespace {

constexpr int kWarpsPerBlock = 8;  // warps per thread block: a weight row each, or part of one
// Warps that share an F16 or BF16 row, each taking every second 16-byte unit; their sums meet in
// shared memory, added in a fixed order. On an H200 this took the 4096 x 11008 product of
// Llama-7B from 3.5 to 3.85 TB/s and TinyLlama's 2048 x 5632 from 2.0 to 3.1.
constexpr int kSplitWarps = 2;
constexpr unsigned kThreads = kWarpsPerBlock * detail::kWarp;

struct Targets {
  const uint8_t* w[kMaxMatvecs];
  size_t row_bytes[kMaxMatvecs];
  int64_t first_row[kMaxMatvecs + 1];  // matrix i's rows are [first_row[i], first_row[i + 1])
  float* y[kMaxMatvecs];
};

// Block b of a Q4_0 row (device layout) times block b of x:
// d_w * (d_x * sum(nibble * q_x) - 8 * d_x * sum(q_x)).
template <bool kAligned>
__device__ __forceinline__ float q4_0_block_dot(const uint8_t* row, int64_t n_blocks, int64_t b,
                                                const Q8Act& xq) {
  int v[4];
  detail::load_16_bytes<kAligned>(detail::block_codes<GgmlType::kQ4_0>(row, b), v);
  const float dw = detail::block_scale<GgmlType::kQ4_0>(row, n_blocks, b);
  const auto* xv = reinterpret_cast<const int4*>(xq.qs + b * detail::kQk);
  const int4 lo = xv[0];  // x codes 0..15, against the low nibbles
  const int4 hi = xv[1];  // x codes 16..31, against the high nibbles
  const int xs_lo[4] = {lo.x, lo.y, lo.z, lo.w};
  const int xs_hi[4] = {hi.x, hi.y, hi.z, hi.w};
  int s = 0;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    s = __dp4a(v[i] & 0x0F0F0F0F, xs_lo[i], s);
    s = __dp4a((v[i] >> 4) & 0x0F0F0F0F, xs_hi[i], s);
  }
  const float2 ds = xq.ds[b];
  return dw * (ds.x * static_cast<float>(s) - 8.0f * ds.y);
}

template <bool kAligned>
__device__ __forceinline__ float q8_0_block_dot(const uint8_t* row, int64_t n_blocks, int64_t b,
                                                const Q8Act& xq) {
  int v[8];
  detail::load_32_bytes<kAligned>(detail::block_codes<GgmlType::kQ8_0>(row, b), v);
  const float dw = detail::block_scale<GgmlType::kQ8_0>(row, n_blocks, b);
  const auto* xv = reinterpret_cast<const int4*>(xq.qs + b * detail::kQk);
  const int4 x0 = xv[0];
  const int4 x1 = xv[1];
  const int xs[8] = {x0.x, x0.y, x0.z, x0.w, x1.x, x1.y, x1.z, x1.w};
  int s = 0;
#pragma unroll
  for (int i = 0; i < 8; ++i) s = __dp4a(v[i], xs[i], s);
  return dw * xq.ds[b].x * static_cast<float>(s);
}

// The two BF16 values in a 32-bit word, the first in the low half.
__device__ __forceinline__ float bf16_lo(uint32_t w) { return __uint_as_float(w << 16); }
__device__ __forceinline__ float bf16_hi(uint32_t w) { return __uint_as_float(w & 0xFFFF0000u); }

// acc += 8 F16 or BF16 weights (16 bytes) times 8 values of x.
template <GgmlType T>
__device__ __forceinline__ void add_dot8(float& acc, const uint4& w, const float4& xa,
                                         const float4& xb) {
  if constexpr (T == GgmlType::kBF16) {
    acc += bf16_lo(w.x) * xa.x + bf16_hi(w.x) * xa.y + bf16_lo(w.y) * xa.z + bf16_hi(w.y) * xa.w;
    acc += bf16_lo(w.z) * xb.x + bf16_hi(w.z) * xb.y + bf16_lo(w.w) * xb.z + bf16_hi(w.w) * xb.w;
  } else {
    const auto* h2 = reinterpret_cast<const __half2*>(&w);
    const float2 w0 = __half22float2(h2[0]);
    const float2 w1 = __half22float2(h2[1]);
    const float2 w2 = __half22float2(h2[2]);
    const float2 w3 = __half22float2(h2[3]);
    acc += w0.x * xa.x + w0.y * xa.y + w1.x * xa.z + w1.y * xa.w;
    acc += w2.x * xb.x + w2.y * xb.y + w3.x * xb.z + w3.y * xb.w;
  }
}

// A 16-byte unit of a weight row through the read-only path without a place in L1: each is read
// once, and the L1 cache is left to x, which every warp of the block reads.
__device__ __forceinline__ uint4 load_streamed(const uint4* p) {
  uint4 v;
  asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
      : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
      : "l"(p));
  return v;
}

template <class Unit>
__device__ __forceinline__ Unit load_unit(const Unit* p) {
  if constexpr (std::is_same_v<Unit, uint4>) {
    return load_streamed(p);
  } else {
    return *p;
  }
}

// Units u = lane, lane + 32, ... of n_units 16-byte units of each row: the loads of 4 / kRows
// units of every row are issued before any is used, so a lane has 4 in flight (a loop that loads
// and uses each in turn waits for memory once a unit). add(acc[r], unit, u) uses one.
template <class Unit, int kRows, class Add>
__device__ __forceinline__ void batched_units(const uint8_t* const* rows, int64_t n_units,
                                              int64_t first, int step, float* acc, Add add) {
  constexpr int kBatch = 4 / kRows;
  int64_t u = first;
  for (; u + (kBatch - 1) * step < n_units; u += kBatch * step) {
    Unit w[kRows][kBatch];
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
#pragma unroll
      for (int i = 0; i < kBatch; ++i) {
        w[r][i] = load_unit(reinterpret_cast<const Unit*>(rows[r]) + u + i * step);
      }
    }
#pragma unroll
    for (int i = 0; i < kBatch; ++i) {
#pragma unroll
      for (int r = 0; r < kRows; ++r) add(acc[r], w[r][i], u + i * step);
    }
  }
  for (; u < n_units; u += step) {
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      add(acc[r], load_unit(reinterpret_cast<const Unit*>(rows[r]) + u), u);
    }
  }
}

// This lane's parts of rows[r] . x for kRows rows (SwiGLU: the gate and up rows, read in one
// loop so the loads of both are in flight together). kVec: x and the rows are 16-byte aligned
// (quantized types: the rows).
template <GgmlType T, bool kVec, int kRows, int kSplit = 1>
__device__ __forceinline__ void row_dots(const uint8_t* const* rows, int64_t n_cols, const float* x,
                                         const Q8Act& xq, int lane, float* acc, int part = 0) {
#pragma unroll
  for (int r = 0; r < kRows; ++r) acc[r] = 0.0f;
  if constexpr (T == GgmlType::kQ4_0 || T == GgmlType::kQ8_0) {
    const int64_t n_blocks = n_cols / detail::kQk;
#pragma unroll(4 / kRows)
    for (int64_t b = lane; b < n_blocks; b += detail::kWarp) {
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        acc[r] += T == GgmlType::kQ4_0 ? q4_0_block_dot<kVec>(rows[r], n_blocks, b, xq)
                                       : q8_0_block_dot<kVec>(rows[r], n_blocks, b, xq);
      }
    }
  } else if constexpr (detail::is_k_quant(T)) {
    const int64_t n_units = n_cols / 64;
#pragma unroll(2 / kRows)
    for (int64_t u = lane; u < n_units; u += detail::kWarp) {
#pragma unroll
      for (int r = 0; r < kRows; ++r) acc[r] += detail::k_quant_unit_dot<T, kVec>(rows[r], u, xq);
    }
  } else if constexpr (kVec && (T == GgmlType::kBF16 || T == GgmlType::kF16)) {
    const auto* x4 = reinterpret_cast<const float4*>(x);
    batched_units<uint4, kRows>(
        rows, n_cols / 8, lane + part * detail::kWarp, kSplit * detail::kWarp, acc,
        [&](float& a, const uint4& w, int64_t u) { add_dot8<T>(a, w, x4[2 * u], x4[2 * u + 1]); });
  } else if constexpr (kVec && T == GgmlType::kF32) {
    const auto* x4 = reinterpret_cast<const float4*>(x);
    batched_units<float4, kRows>(rows, n_cols / 4, lane, detail::kWarp, acc,
                                 [&](float& a, const float4& w, int64_t u) {
                                   const float4 v = x4[u];
                                   a += w.x * v.x + w.y * v.y + w.z * v.z + w.w * v.w;
                                 });
  } else {
    for (int64_t i = lane; i < n_cols; i += detail::kWarp) {
#pragma unroll
      for (int r = 0; r < kRows; ++r) acc[r] += detail::load_element<T>(rows[r], n_cols, i) * x[i];
    }
  }
}

// kSplit warps a row (1, or kSplitWarps for float rows): warp `part` of a row takes units part,
// part + kSplit, ... of each 32 (row_dots); part 0 adds the others' sums and writes y.
template <GgmlType T, bool kVec, MatvecOut O, int kSplit = 1>
__global__ void __launch_bounds__(kThreads)
    matvec_kernel(Targets t, int64_t n_cols, int64_t n_tokens, const float* x, Q8Act xq,
                  const float* norm_weight, float* weighted) {
  const int lane = threadIdx.x % detail::kWarp;
  const int warp = threadIdx.x / detail::kWarp;
  const int64_t gw = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + warp;
  const int64_t total = t.first_row[kMaxMatvecs];
  const int part = static_cast<int>(gw % kSplit);
  const bool active = gw / kSplit < total;
  if constexpr (kSplit == 1) {
    if (!active) return;  // the whole warp leaves together
  }
  // Past the last row (a split grid's last block): take part in the block's barriers only.
  const int64_t g = active ? gw / kSplit : total - 1;
  // Which matrix, by selects: indexing the parameter arrays would copy them to local memory.
  const int i = g < t.first_row[1] ? 0 : g < t.first_row[2] ? 1 : 2;
  const uint8_t* w = i == 0 ? t.w[0] : i == 1 ? t.w[1] : t.w[2];
  const size_t row_bytes = i == 0 ? t.row_bytes[0] : i == 1 ? t.row_bytes[1] : t.row_bytes[2];
  float* y = i == 0 ? t.y[0] : i == 1 ? t.y[1] : t.y[2];
  const int64_t first = i == 0 ? 0 : i == 1 ? t.first_row[1] : t.first_row[2];
  const int64_t n_rows = (i == 0   ? t.first_row[1]
                          : i == 1 ? t.first_row[2]
                                   : t.first_row[3]) -
                         first;
  const int64_t r = g - first;
  constexpr int kRows = O == MatvecOut::kSwiglu ? 2 : 1;  // SwiGLU: the gate row and the up row
  const uint8_t* rows[kRows];
  rows[0] = w + static_cast<size_t>(r) * row_bytes;
  detail::prefetch_l2(rows[0], row_bytes, lane);
  if constexpr (kRows == 2) {
    rows[1] = t.w[1] + static_cast<size_t>(r) * t.row_bytes[1];
    detail::prefetch_l2(rows[1], t.row_bytes[1], lane);
  }
  __shared__ float partial[kWarpsPerBlock][kRows];
  detail::begin_dependent();
  // Token after token on the same row: after the first, its bytes come from the L1 cache.
  for (int64_t j = 0; j < n_tokens; ++j) {
    const float* x_j = x != nullptr ? x + j * n_cols : nullptr;
    Q8Act xq_j = xq;
    if (xq.qs != nullptr) {
      xq_j.qs += j * n_cols;
      xq_j.ds += j * (n_cols / detail::kQk);
    }
    float* y_j = y + j * n_rows;
    float part_sum[kRows];
    row_dots<T, kVec, kRows, kSplit>(rows, n_cols, x_j, xq_j, lane, part_sum, part);
    float sum = detail::warp_sum(part_sum[0]);
    float up = 0.0f;  // SwiGLU's up row
    if constexpr (kRows == 2) up = detail::warp_sum(part_sum[1]);
    if constexpr (kSplit > 1) {
      if (lane == 0) {
        partial[warp][0] = sum;
        partial[warp][kRows - 1] = kRows == 2 ? up : sum;
      }
      __syncthreads();
      if (part == 0) {
        for (int p = 1; p < kSplit; ++p) {
          sum += partial[warp + p][0];
          if constexpr (kRows == 2) up += partial[warp + p][1];
        }
      }
      __syncthreads();
      if (part != 0 || !active) continue;
    }
    if constexpr (O == MatvecOut::kSwiglu) {
      if (lane == 0) y_j[r] = sum / (1.0f + expf(-sum)) * up;
    } else if (lane == 0) {
      if constexpr (O == MatvecOut::kAdd) {
        const float added = y_j[r] + sum;
        y_j[r] = added;
        if (weighted != nullptr) weighted[j * n_rows + r] = added * norm_weight[r];
      } else {
        y_j[r] = sum;
      }
    }
  }
}

[[noreturn]] void bad_job(const char* what) {
  std::fprintf(stderr, "cuda matvec: %s\n", what);
  std::abort();
}

template <GgmlType T, bool kVec, int kSplit = 1>
void launch(const Targets& t, int64_t n_cols, const MatvecJob& job, dim3 grid,
            cudaStream_t stream) {
  if constexpr (kSplit > 1) {  // kSplit warps a row
    grid = dim3(detail::grid_for(t.first_row[kMaxMatvecs] * kSplit, kWarpsPerBlock));
  }
  switch (job.out) {
    case MatvecOut::kStore:
      detail::launch_dependent(matvec_kernel<T, kVec, MatvecOut::kStore, kSplit>, grid, kThreads, 0,
                               stream, t, n_cols, job.n_tokens, job.x, job.xq, job.norm_out.weight,
                               job.norm_out.weighted);
      return;
    case MatvecOut::kAdd:
      detail::launch_dependent(matvec_kernel<T, kVec, MatvecOut::kAdd, kSplit>, grid, kThreads, 0,
                               stream, t, n_cols, job.n_tokens, job.x, job.xq, job.norm_out.weight,
                               job.norm_out.weighted);
      return;
    case MatvecOut::kSwiglu:
      detail::launch_dependent(matvec_kernel<T, kVec, MatvecOut::kSwiglu, kSplit>, grid, kThreads,
                               0, stream, t, n_cols, job.n_tokens, job.x, job.xq,
                               job.norm_out.weight, job.norm_out.weighted);
      return;
  }
}

// F16 and BF16 rows on the vector path: two warps a row (kSplitWarps), except SwiGLU's, whose
// warps already read two rows.
template <GgmlType T>
void launch_float(const Targets& t, int64_t n_cols, const MatvecJob& job, dim3 grid,
                  cudaStream_t stream) {
  if (job.out == MatvecOut::kSwiglu) return launch<T, true>(t, n_cols, job, grid, stream);
  launch<T, true, kSplitWarps>(t, n_cols, job, grid, stream);
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace

void matvec(const MatvecJob& job, cudaStream_t stream) {
  if (job.n_w < 1 || job.n_w > kMaxMatvecs) bad_job("between 1 and 3 matrices");
  if (job.out == MatvecOut::kSwiglu && job.n_w != 2) bad_job("SwiGLU takes two matrices");
  if (job.n_tokens < 1) bad_job("at least one token");
  if (job.norm_out.weighted != nullptr &&
      (job.out != MatvecOut::kAdd || job.n_w != 1 || job.norm_out.weight == nullptr)) {
    bad_job("a weighted output comes from a kAdd of one matrix, with the norm's weight");
  }
  const Matrix& w0 = *job.w[0];
  Targets t{};
  bool rows16 = true;  // every row starts 16-byte aligned
  for (int i = 0; i < job.n_w; ++i) {
    const Matrix& w = *job.w[i];
    if (w.type != w0.type || w.n_cols != w0.n_cols) bad_job("matrices differ in type or width");
    if (job.out == MatvecOut::kSwiglu && w.n_rows != w0.n_rows) bad_job("gate and up differ");
    t.w[i] = w.data;
    t.row_bytes[i] = w.row_bytes;
    t.y[i] = job.y[i];
    rows16 = rows16 && aligned16(w.data) && w.row_bytes % 16 == 0;
  }
  const bool vec = rows16 && aligned16(job.x);
  // SwiGLU's warps walk the gate's rows only (each reads the up row too).
  const int n_walked = job.out == MatvecOut::kSwiglu ? 1 : job.n_w;
  for (int i = 0; i < kMaxMatvecs; ++i) {
    t.first_row[i + 1] = t.first_row[i] + (i < n_walked ? job.w[i]->n_rows : 0);
  }
  const int64_t n_rows = t.first_row[kMaxMatvecs];
  if (n_rows == 0) return;
  const int64_t n_cols = w0.n_cols;
  const dim3 grid(detail::grid_for(n_rows, kWarpsPerBlock));
  switch (w0.type) {
    case GgmlType::kF32:
      if (vec && n_cols % 4 == 0) return launch<GgmlType::kF32, true>(t, n_cols, job, grid, stream);
      return launch<GgmlType::kF32, false>(t, n_cols, job, grid, stream);
    case GgmlType::kF16:
      if (vec && n_cols % 8 == 0) return launch_float<GgmlType::kF16>(t, n_cols, job, grid, stream);
      return launch<GgmlType::kF16, false>(t, n_cols, job, grid, stream);
    case GgmlType::kBF16:
      if (vec && n_cols % 8 == 0)
        return launch_float<GgmlType::kBF16>(t, n_cols, job, grid, stream);
      return launch<GgmlType::kBF16, false>(t, n_cols, job, grid, stream);
    case GgmlType::kQ8_0:  // device layout: the codes start 16-byte aligned with the row
      if (rows16) return launch<GgmlType::kQ8_0, true>(t, n_cols, job, grid, stream);
      return launch<GgmlType::kQ8_0, false>(t, n_cols, job, grid, stream);
    case GgmlType::kQ4_0:
      if (rows16) return launch<GgmlType::kQ4_0, true>(t, n_cols, job, grid, stream);
      return launch<GgmlType::kQ4_0, false>(t, n_cols, job, grid, stream);
    case GgmlType::kQ4_K:
      if (rows16) return launch<GgmlType::kQ4_K, true>(t, n_cols, job, grid, stream);
      return launch<GgmlType::kQ4_K, false>(t, n_cols, job, grid, stream);
    case GgmlType::kQ5_K:
      if (rows16) return launch<GgmlType::kQ5_K, true>(t, n_cols, job, grid, stream);
      return launch<GgmlType::kQ5_K, false>(t, n_cols, job, grid, stream);
    case GgmlType::kQ6_K:  // 210-byte blocks: 2-byte aligned loads whatever the row
      return launch<GgmlType::kQ6_K, false>(t, n_cols, job, grid, stream);
    default:
      detail::unsupported_type("matvec", w0.type);
  }
}

}  // namespace pensieve::cuda
