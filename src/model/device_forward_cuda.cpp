// The CUDA backend behind device_forward.h.
#include <cuda_runtime.h>

#include <algorithm>
#include <vector>

#include <fmt/format.h>

#include "model/device_forward.h"
#include "model/forward_cuda.h"

namespace pensieve {
namespace {

Error cuda_error(std::string_view what, cudaError_t status) {
  return Error{ErrorCode::kUnavailable,
               fmt::format("cuda: {}: {}", what, cudaGetErrorString(status))};
}

CudaForwardOptions cuda_options(const DeviceForwardOptions& options) {
  CudaForwardOptions o;
  o.device = options.device;
  o.max_batch = options.max_batch;
  o.attention_window = options.attention_window;
  o.kv_blocks = options.kv_blocks;
  o.max_segments = options.max_segments;
  o.layers = {options.first_layer, -1};
  return o;
}

}  // namespace

bool cuda_built() { return true; }

Expected<std::unique_ptr<Forward>> make_cuda_forward(const Hparams& hp, const ModelWeights& weights,
                                                     int64_t n_ctx,
                                                     const DeviceForwardOptions& options) {
  if (options.first_layer != 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "cuda: a single-sequence pass runs the whole model (first layer {})",
                      options.first_layer);
  }
  PV_TRY(std::unique_ptr<CudaForward> forward,
         CudaForward::create(hp, weights, n_ctx, cuda_options(options)));
  return std::unique_ptr<Forward>(std::move(forward));
}

Expected<CudaBatchForward> make_cuda_batch_forward(const Hparams& hp, const ModelWeights& weights,
                                                   int64_t n_ctx,
                                                   const DeviceForwardOptions& options) {
  PV_TRY(std::unique_ptr<CudaForward> forward,
         CudaForward::create(hp, weights, n_ctx, cuda_options(options)));
  CudaForward* fwd = forward.get();
  CudaBatchForward out;
  out.weights_bytes = fwd->allocated().weights_bytes;
  out.prompt_products = fwd->uses_blas()
                            ? fwd->blas_note()
                            : "the built-in tensor-core kernels (cuBLAS: " + fwd->blas_note() + ")";
  out.release = [fwd] { return fwd->release_weights(); };
  out.restore = [fwd, &weights] { return fwd->restore_weights(weights); };
  out.forward = std::move(forward);
  return out;
}

Expected<DeviceMemoryPlan> cuda_memory_plan(const Hparams& hp, const ModelWeights& weights,
                                            int64_t n_ctx, const DeviceForwardOptions& options) {
  if (cudaError_t s = cudaSetDevice(options.device); s != cudaSuccess) {
    return Unexpected<Error>(cuda_error("no usable device", s));
  }
  size_t free_bytes = 0;
  size_t total_bytes = 0;
  if (cudaError_t s = cudaMemGetInfo(&free_bytes, &total_bytes); s != cudaSuccess) {
    return Unexpected<Error>(cuda_error("reading free device memory", s));
  }
  const CudaForward::MemoryPlan plan =
      CudaForward::memory_plan(hp, weights, n_ctx, cuda_options(options));
  DeviceMemoryPlan out;
  out.weights_bytes = plan.weights_bytes;
  out.scratch_bytes = plan.scratch_bytes;
  out.kv_bytes = plan.kv_bytes;
  out.kv_block_bytes = CudaForward::kv_block_bytes(hp, hp.n_layer - options.first_layer);
  out.free_bytes = static_cast<int64_t>(free_bytes);
  out.total_bytes = static_cast<int64_t>(total_bytes);
  return out;
}

Expected<CudaDeviceInfo> cuda_device_info(int device) {
  CudaDeviceInfo info;
  cudaDeviceProp prop{};
  if (cudaError_t s = cudaGetDeviceProperties(&prop, device); s != cudaSuccess) {
    return Unexpected<Error>(cuda_error("no device", s));
  }
  info.name = prop.name;
  info.memory_bytes = static_cast<int64_t>(prop.totalGlobalMem);
  if (cudaError_t s = cudaSetDevice(device); s != cudaSuccess) {
    return Unexpected<Error>(cuda_error("cudaSetDevice", s));
  }
  // A copy of 1 GiB between two device buffers, timed with events; the median of 5.
  constexpr size_t kBytes = size_t{1} << 30;
  void* a = nullptr;
  void* b = nullptr;
  if (cudaMalloc(&a, kBytes) != cudaSuccess || cudaMalloc(&b, kBytes) != cudaSuccess) {
    cudaFree(a);
    return info;  // no room to measure: bandwidth stays 0
  }
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  std::vector<float> ms;
  for (int rep = 0; rep < 6; ++rep) {
    cudaEventRecord(start);
    cudaMemcpy(b, a, kBytes, cudaMemcpyDeviceToDevice);
    cudaEventRecord(stop);
    cudaEventSynchronize(stop);
    float t = 0;
    cudaEventElapsedTime(&t, start, stop);
    if (rep > 0) ms.push_back(t);  // the first warms up
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaFree(a);
  cudaFree(b);
  std::sort(ms.begin(), ms.end());
  const double seconds = ms[ms.size() / 2] / 1e3;
  info.bandwidth_gb_per_s = 2.0 * static_cast<double>(kBytes) / seconds / 1e9;
  return info;
}

}  // namespace pensieve
