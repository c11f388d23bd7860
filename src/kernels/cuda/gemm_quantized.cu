// c = a w^T on the tensor cores for quantized weights, decoded to F16 inside the tiles
// (gemm_tiles.cuh): the same tiles, order and sums as dequantize_f16() then gemm_f16(), without
// writing and reading back an F16 copy of w.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/gemm_tiles.cuh"
#include "kernels/cuda/ops.h"

namespace pensieve::cuda {
namespace {

template <GgmlType T>
void run(const uint16_t* a, const Matrix& w, int64_t m, float* c, bool accumulate,
         cudaStream_t stream, float* workspace, int64_t workspace_floats) {
  const auto* ah = reinterpret_cast<const half*>(a);
  const int64_t n_blocks = w.n_cols / detail::kQk;
  // Q6_K super-blocks (210 bytes) are never 16-byte aligned, so it takes the 2-byte loads.
  if (T != GgmlType::kQ6_K && reinterpret_cast<uintptr_t>(w.data) % 16 == 0 &&
      w.row_bytes % 16 == 0) {
    const detail::gemm::QuantWeights<T, true> q{w.data, w.row_bytes, w.n_rows, n_blocks};
    detail::gemm::gemm_tiles(ah, q, m, w.n_rows, w.n_cols, c, accumulate, stream, workspace,
                             workspace_floats);
  } else {
    const detail::gemm::QuantWeights<T, false> q{w.data, w.row_bytes, w.n_rows, n_blocks};
    detail::gemm::gemm_tiles(ah, q, m, w.n_rows, w.n_cols, c, accumulate, stream, workspace,
                             workspace_floats);
  }
}

}  // namespace

bool gemm_quantized_supported(GgmlType type) {
  return type == GgmlType::kQ8_0 || type == GgmlType::kQ4_0 || type == GgmlType::kQ4_K ||
         type == GgmlType::kQ5_K || type == GgmlType::kQ6_K;
}

void gemm_quantized(const uint16_t* a, const Matrix& w, int64_t m, float* c, bool accumulate,
                    cudaStream_t stream, float* workspace, int64_t workspace_floats) {
  switch (w.type) {
    case GgmlType::kQ8_0:
      return run<GgmlType::kQ8_0>(a, w, m, c, accumulate, stream, workspace, workspace_floats);
    case GgmlType::kQ4_0:
      return run<GgmlType::kQ4_0>(a, w, m, c, accumulate, stream, workspace, workspace_floats);
    case GgmlType::kQ4_K:
      return run<GgmlType::kQ4_K>(a, w, m, c, accumulate, stream, workspace, workspace_floats);
    case GgmlType::kQ5_K:
      return run<GgmlType::kQ5_K>(a, w, m, c, accumulate, stream, workspace, workspace_floats);
    case GgmlType::kQ6_K:
      return run<GgmlType::kQ6_K>(a, w, m, c, accumulate, stream, workspace, workspace_floats);
    default:
      detail::unsupported_type("gemm_quantized", w.type);
  }
}

}  // namespace pensieve::cuda
