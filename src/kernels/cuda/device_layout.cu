// GGUF rows of Q8_0 and Q4_0 into the device layout (ops.h): one thread block per row copies the
// row into shared memory in 2-byte units, then writes each block's codes to the front of the row
// and its scale to the back.
#include <cstdio>
#include <cstdlib>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.h"

namespace pensieve::cuda {
namespace {

constexpr int kThreads = 256;

template <GgmlType T>
__global__ void to_device_layout_kernel(uint8_t* data, size_t row_bytes, int64_t n_blocks) {
  extern __shared__ uint16_t row_s[];                      // the GGUF row
  constexpr int kCodeUnits = detail::code_bytes<T>() / 2;  // 2-byte units of a block's codes
  constexpr int kBlockUnits = 1 + kCodeUnits;              // scale, codes
  auto* row = reinterpret_cast<uint16_t*>(data + static_cast<size_t>(blockIdx.x) * row_bytes);
  const int64_t n_units = n_blocks * kBlockUnits;
  for (int64_t i = threadIdx.x; i < n_units; i += kThreads) row_s[i] = row[i];
  __syncthreads();
  for (int64_t i = threadIdx.x; i < n_units; i += kThreads) {
    if (i < n_blocks * kCodeUnits) {
      const int64_t b = i / kCodeUnits;
      row[i] = row_s[b * kBlockUnits + 1 + i % kCodeUnits];
    } else {
      row[i] = row_s[(i - n_blocks * kCodeUnits) * kBlockUnits];
    }
  }
}

template <GgmlType T>
void launch(uint8_t* data, size_t row_bytes, int64_t n_rows, int64_t n_cols, cudaStream_t stream) {
  const int64_t n_blocks = n_cols / detail::kQk;
  const size_t smem = static_cast<size_t>(n_blocks) * (2 + detail::code_bytes<T>());
  if (smem > kMaxLayoutRowBytes || smem > row_bytes || reinterpret_cast<uintptr_t>(data) % 2 != 0 ||
      row_bytes % 2 != 0) {
    std::fprintf(stderr, "cuda to_device_layout: rows of %zu bytes at %p cannot be rearranged\n",
                 row_bytes, static_cast<void*>(data));
    std::abort();
  }
  cudaFuncSetAttribute(to_device_layout_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                       static_cast<int>(kMaxLayoutRowBytes));
  to_device_layout_kernel<T>
      <<<static_cast<unsigned>(n_rows), kThreads, smem, stream>>>(data, row_bytes, n_blocks);
}

}  // namespace

bool device_layout_differs(GgmlType type) {
  return type == GgmlType::kQ8_0 || type == GgmlType::kQ4_0;
}

void to_device_layout(GgmlType type, uint8_t* data, size_t row_bytes, int64_t n_rows,
                      int64_t n_cols, cudaStream_t stream) {
  if (n_rows == 0 || n_cols == 0) return;
  if (type == GgmlType::kQ8_0)
    return launch<GgmlType::kQ8_0>(data, row_bytes, n_rows, n_cols, stream);
  if (type == GgmlType::kQ4_0)
    return launch<GgmlType::kQ4_0>(data, row_bytes, n_rows, n_cols, stream);
}

}  // namespace pensieve::cuda
