// Forward passes on an accelerator, chosen at link time: the CUDA backend when the build has it
// (PENSIEVE_CUDA=ON, library pensieve_model_cuda), else functions that say the build has none.
// Code that only needs the Forward interface (bench, run) calls these and needs no CUDA headers.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/result.h"
#include "model/forward.h"
#include "model/hparams.h"
#include "model/weights.h"

namespace pensieve {

struct DeviceForwardOptions {
  int device = 0;                // CUDA device index
  int64_t max_batch = 512;       // prompt tokens one pass carries
  int64_t attention_window = 0;  // positions each token attends, its own included; 0 = all
};

// Whether this build has the CUDA backend.
bool cuda_built();

// The whole model on one CUDA GPU. Errors: a build without CUDA or no usable device
// (kUnavailable), weight types the kernels lack (kUnsupported), too little device memory
// (kResourceExhausted).
Expected<std::unique_ptr<Forward>> make_cuda_forward(const Hparams& hp, const ModelWeights& weights,
                                                     int64_t n_ctx,
                                                     const DeviceForwardOptions& options);

struct CudaDeviceInfo {
  std::string name;
  int64_t memory_bytes = 0;
  // Device memory bandwidth measured with a device-to-device copy: bytes read plus written per
  // second, GB/s (1e9).
  double bandwidth_gb_per_s = 0;
};
Expected<CudaDeviceInfo> cuda_device_info(int device = 0);

}  // namespace pensieve
