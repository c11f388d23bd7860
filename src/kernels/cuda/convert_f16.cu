// The F16 operands of gemm_f16(): activations converted element-wise, weight rows dequantized
// (one thread per quantized block or K-quant sub-block of 32, or per element) and packed densely.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.h"
#include "kernels/cuda/weight_blocks.cuh"

namespace pensieve::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void to_f16_kernel(const float* x, int64_t n, uint16_t* out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i < n) out[i] = detail::float_to_f16_bits(x[i]);
}

// Quantized rows: one thread per block, 32 halves written as four 16-byte stores when the
// output row allows it. kAligned: the rows start 16-byte aligned, so the codes of Q8_0, Q4_0
// (device layout), Q4_K and Q5_K load 16 bytes at a time.
template <GgmlType T, bool kAligned>
__global__ void dequantize_blocks_kernel(const uint8_t* w, size_t row_bytes, int64_t n_rows,
                                         int64_t n_cols, uint16_t* out) {
  const int64_t n_blocks = n_cols / detail::kQk;
  const int64_t g = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (g >= n_rows * n_blocks) return;
  const int64_t r = g / n_blocks;
  const int64_t b = g % n_blocks;
  const uint8_t* row = w + static_cast<size_t>(r) * row_bytes;
  detail::WeightBlock<T, kAligned> block;
  block.fetch(row, n_blocks, b);
  alignas(16) uint16_t h[detail::kQk];
  detail::decode_f16(block, h);
  auto* dst = reinterpret_cast<uint4*>(out + r * n_cols + b * detail::kQk);
  const auto* src = reinterpret_cast<const uint4*>(h);
#pragma unroll
  for (int j = 0; j < 4; ++j) dst[j] = src[j];
}

template <GgmlType T>
__global__ void dequantize_elements_kernel(const uint8_t* w, size_t row_bytes, int64_t n_rows,
                                           int64_t n_cols, uint16_t* out) {
  const int64_t g = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (g >= n_rows * n_cols) return;
  const int64_t r = g / n_cols;
  const int64_t c = g % n_cols;
  out[g] = detail::float_to_f16_bits(
      detail::load_element<T>(w + static_cast<size_t>(r) * row_bytes, n_cols, c));
}

template <GgmlType T>
void launch(const Matrix& w, uint16_t* out, cudaStream_t stream) {
  if constexpr (T == GgmlType::kQ8_0 || T == GgmlType::kQ4_0 || detail::is_k_quant(T)) {
    if (reinterpret_cast<uintptr_t>(out) % 16 == 0) {
      // n_cols is a multiple of 32, so every output block starts 64-byte aligned.
      const int64_t n = w.n_rows * (w.n_cols / detail::kQk);
      const unsigned grid = detail::grid_for(n, kThreads);
      if (T != GgmlType::kQ6_K && reinterpret_cast<uintptr_t>(w.data) % 16 == 0 &&
          w.row_bytes % 16 == 0) {
        dequantize_blocks_kernel<T, true>
            <<<grid, kThreads, 0, stream>>>(w.data, w.row_bytes, w.n_rows, w.n_cols, out);
      } else {
        dequantize_blocks_kernel<T, false>
            <<<grid, kThreads, 0, stream>>>(w.data, w.row_bytes, w.n_rows, w.n_cols, out);
      }
      return;
    }
  }
  const int64_t n = w.n_rows * w.n_cols;
  dequantize_elements_kernel<T><<<detail::grid_for(n, kThreads), kThreads, 0, stream>>>(
      w.data, w.row_bytes, w.n_rows, w.n_cols, out);
}

}  // namespace

void to_f16(const float* x, int64_t n, uint16_t* out, cudaStream_t stream) {
  if (n == 0) return;
  to_f16_kernel<<<detail::grid_for(n, kThreads), kThreads, 0, stream>>>(x, n, out);
}

void dequantize_f16(const Matrix& w, uint16_t* out, cudaStream_t stream) {
  if (w.n_rows == 0 || w.n_cols == 0) return;
  switch (w.type) {
    case GgmlType::kF32:
      return launch<GgmlType::kF32>(w, out, stream);
    case GgmlType::kF16:
      return launch<GgmlType::kF16>(w, out, stream);
    case GgmlType::kQ8_0:
      return launch<GgmlType::kQ8_0>(w, out, stream);
    case GgmlType::kBF16:
      return launch<GgmlType::kBF16>(w, out, stream);
    case GgmlType::kQ4_0:
      return launch<GgmlType::kQ4_0>(w, out, stream);
    case GgmlType::kQ4_K:
      return launch<GgmlType::kQ4_K>(w, out, stream);
    case GgmlType::kQ5_K:
      return launch<GgmlType::kQ5_K>(w, out, stream);
    case GgmlType::kQ6_K:
      return launch<GgmlType::kQ6_K>(w, out, stream);
    default:
      detail::unsupported_type("dequantize_f16", w.type);
  }
}

}  // namespace pensieve::cuda
