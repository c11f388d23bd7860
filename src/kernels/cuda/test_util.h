// What the CUDA kernel tests share: device detection (every test skips without a GPU), device
// buffers, synchronization with readable errors, and seeded random data.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

#include "gguf/types.h"
#include "kernels/kernels.h"

namespace pensieve::cuda::test {

// True when the CUDA runtime finds at least one device.
bool device_available();

// Skips the test when there is no device.
class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!device_available()) GTEST_SKIP() << "no CUDA device";
  }
};

// Waits for the device; fails with the CUDA error of a launch or a kernel.
::testing::AssertionResult synchronize();

// Device memory for n elements of T, freed on destruction. A failed allocation fails the test
// and leaves get() null.
template <class T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t n) : n_(n) {
    const cudaError_t err = cudaMalloc(reinterpret_cast<void**>(&data_), n_ * sizeof(T) + 16);
    if (err != cudaSuccess) {
      ADD_FAILURE() << "cudaMalloc: " << cudaGetErrorString(err);
      data_ = nullptr;
    }
  }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) { upload(host); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { cudaFree(data_); }

  T* get() const { return data_; }
  void upload(const std::vector<T>& host) {
    EXPECT_EQ(cudaMemcpy(data_, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice),
              cudaSuccess);
  }
  std::vector<T> download() const {
    std::vector<T> host(n_);
    EXPECT_EQ(cudaMemcpy(host.data(), data_, n_ * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return host;
  }

 private:
  size_t n_;
  T* data_ = nullptr;
};

// The device view of n_rows GGUF rows of `type` uploaded to `data`: rearranged in place into the
// device layout (ops.h, to_device_layout) first.
Matrix device_matrix(GgmlType type, int64_t n_cols, int64_t n_rows, size_t row_bytes,
                     uint8_t* data);

// n values uniform in [-scale, scale), the same for the same seed.
std::vector<float> random_floats(size_t n, uint64_t seed, float scale = 1.0f);

// n_rows rows of n_cols values from random_floats(seed), quantized to `type` by the reference:
// the bytes a GGUF tensor holds. *row_bytes receives the row size.
std::vector<uint8_t> random_matrix(GgmlType type, int64_t n_rows, int64_t n_cols, uint64_t seed,
                                   size_t* row_bytes);

}  // namespace pensieve::cuda::test
