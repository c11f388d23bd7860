#include "kernels/cuda/test_util.h"

#include <random>

#include "kernels/cuda/ops.h"
#include "kernels/ref/quants.h"

namespace pensieve::cuda::test {

bool device_available() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

::testing::AssertionResult synchronize() {
  cudaError_t err = cudaDeviceSynchronize();
  if (err == cudaSuccess) err = cudaGetLastError();
  if (err == cudaSuccess) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "CUDA error: " << cudaGetErrorString(err);
}

Matrix device_matrix(GgmlType type, int64_t n_cols, int64_t n_rows, size_t row_bytes,
                     uint8_t* data) {
  to_device_layout(type, data, row_bytes, n_rows, n_cols, nullptr);
  return {type, n_cols, n_rows, row_bytes, data};
}

std::vector<float> random_floats(size_t n, uint64_t seed, float scale) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

std::vector<uint8_t> random_matrix(GgmlType type, int64_t n_rows, int64_t n_cols, uint64_t seed,
                                   size_t* row_bytes) {
  *row_bytes = ggml_row_bytes(ggml_type_traits(type), n_cols);
  std::vector<uint8_t> bytes(*row_bytes * static_cast<size_t>(n_rows));
  const std::vector<float> values = random_floats(static_cast<size_t>(n_rows * n_cols), seed);
  for (int64_t r = 0; r < n_rows; ++r) {
    ref::quantize_row(type, values.data() + r * n_cols, bytes.data() + r * *row_bytes, n_cols);
  }
  return bytes;
}

}  // namespace pensieve::cuda::test
