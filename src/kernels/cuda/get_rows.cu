// Embedding lookup: whole rows of a weight matrix in any supported type, dequantized to F32.
#include <algorithm>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.h"

namespace pensieve::cuda {
namespace {

constexpr int kThreads = 256;

// Thread blocks of kThreads columns, one element a thread, blockIdx.y the id: a row's loads are
// all in flight at once (a block looping over a row waits for memory once per pass).
template <GgmlType T>
__global__ void get_rows_kernel(const uint8_t* data, size_t row_bytes, int64_t n_cols,
                                const int32_t* ids, float* out) {
  detail::begin_dependent();
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= n_cols) return;
  const uint8_t* row = data + static_cast<size_t>(ids[blockIdx.y]) * row_bytes;
  out[static_cast<int64_t>(blockIdx.y) * n_cols + i] = detail::load_element<T>(row, n_cols, i);
}

template <GgmlType T>
void launch(const Matrix& w, const int32_t* ids, int64_t n_ids, float* out, cudaStream_t stream) {
  constexpr int64_t kMaxIds = 65535;  // a grid's y extent
  for (int64_t first = 0; first < n_ids; first += kMaxIds) {
    const dim3 grid(detail::grid_for(w.n_cols, kThreads),
                    static_cast<unsigned>(std::min(kMaxIds, n_ids - first)));
    detail::launch_dependent(get_rows_kernel<T>, grid, kThreads, 0, stream, w.data, w.row_bytes,
                             w.n_cols, ids + first, out + first * w.n_cols);
  }
}

}  // namespace

bool matrix_type_supported(GgmlType type) {
  return type == GgmlType::kF32 || type == GgmlType::kF16 || type == GgmlType::kBF16 ||
         type == GgmlType::kQ8_0 || type == GgmlType::kQ4_0 || type == GgmlType::kQ4_K ||
         type == GgmlType::kQ5_K || type == GgmlType::kQ6_K;
}

bool matvec_reads_q8(GgmlType type) {
  return type == GgmlType::kQ8_0 || type == GgmlType::kQ4_0 || type == GgmlType::kQ4_K ||
         type == GgmlType::kQ5_K || type == GgmlType::kQ6_K;
}

// BF16 weights round to F16 there: exact within F16's normal range (6.1e-5 to 65504 in magnitude).
bool dequantize_f16_supported(GgmlType type) {
  return type == GgmlType::kBF16 || matvec_reads_q8(type);
}

void get_rows(const Matrix& w, const int32_t* ids, int64_t n_ids, float* out, cudaStream_t stream) {
  if (n_ids == 0 || w.n_cols == 0) return;
  switch (w.type) {
    case GgmlType::kF32:
      return launch<GgmlType::kF32>(w, ids, n_ids, out, stream);
    case GgmlType::kF16:
      return launch<GgmlType::kF16>(w, ids, n_ids, out, stream);
    case GgmlType::kQ8_0:
      return launch<GgmlType::kQ8_0>(w, ids, n_ids, out, stream);
    case GgmlType::kBF16:
      return launch<GgmlType::kBF16>(w, ids, n_ids, out, stream);
    case GgmlType::kQ4_0:
      return launch<GgmlType::kQ4_0>(w, ids, n_ids, out, stream);
    case GgmlType::kQ4_K:
      return launch<GgmlType::kQ4_K>(w, ids, n_ids, out, stream);
    case GgmlType::kQ5_K:
      return launch<GgmlType::kQ5_K>(w, ids, n_ids, out, stream);
    case GgmlType::kQ6_K:
      return launch<GgmlType::kQ6_K>(w, ids, n_ids, out, stream);
    default:
      detail::unsupported_type("get_rows", w.type);
  }
}

}  // namespace pensieve::cuda
