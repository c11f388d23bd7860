// Forward passes on an accelerator, chosen at link time: the CUDA backend when the build has it
// (PENSIEVE_CUDA=ON, library pensieve_model_cuda), else functions that say the build has none.
// Code that only needs the Forward interface (bench, run) calls these and needs no CUDA headers.
#pragma once

#include <cstdint>
#include <functional>
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
  // The batch forward's KV pool in blocks of BatchForward::kKvBlockPositions positions (0: one
  // sequence of n_ctx) and the sequences one step carries.
  int64_t kv_blocks = 0;
  int64_t max_segments = 1;
  // The GPU runs layers [first_layer, n_layer): the model's end, with the output norm and the
  // logits. A batch forward past layer 0 is a LayerStage after a CPU stage of the layers before
  // (SplitForward); make_cuda_forward takes the whole model only.
  int64_t first_layer = 0;
};

// Whether this build has the CUDA backend.
bool cuda_built();

// The whole model on one CUDA GPU. Errors: a build without CUDA or no usable device
// (kUnavailable), weight types the kernels lack (kUnsupported), too little device memory
// (kResourceExhausted).
Expected<std::unique_ptr<Forward>> make_cuda_forward(const Hparams& hp, const ModelWeights& weights,
                                                     int64_t n_ctx,
                                                     const DeviceForwardOptions& options);

// The model (its layers from options.first_layer) on one CUDA GPU with a paged KV cache, for the
// batching scheduler, and its weights' keep-alive: release() frees their device memory,
// restore() uploads them again from the weights given here (whose host pages must then be
// resident).
struct CudaBatchForward {
  std::unique_ptr<LayerStage> forward;
  std::function<Expected<void>()> release;
  std::function<Expected<void>()> restore;
  int64_t weights_bytes = 0;    // device memory release() gives back
  std::string prompt_products;  // what multiplies long prompt chunks, for the log
};
// Errors as make_cuda_forward's.
Expected<CudaBatchForward> make_cuda_batch_forward(const Hparams& hp, const ModelWeights& weights,
                                                   int64_t n_ctx,
                                                   const DeviceForwardOptions& options);

// What the CUDA backend would allocate on the device for these settings, and what the device
// has now: the numbers a VRAM budget is made of.
struct DeviceMemoryPlan {
  int64_t weights_bytes = 0;
  int64_t scratch_bytes = 0;   // activations, logits, inputs
  int64_t kv_bytes = 0;        // the KV pool as asked
  int64_t kv_block_bytes = 0;  // one block of the pool (the layers from first_layer)
  int64_t free_bytes = 0;      // free on the device now
  int64_t total_bytes = 0;
};
Expected<DeviceMemoryPlan> cuda_memory_plan(const Hparams& hp, const ModelWeights& weights,
                                            int64_t n_ctx, const DeviceForwardOptions& options);

struct CudaDeviceInfo {
  std::string name;
  int64_t memory_bytes = 0;
  // Device memory bandwidth measured with a device-to-device copy: bytes read plus written per
  // second, GB/s (1e9).
  double bandwidth_gb_per_s = 0;
};
Expected<CudaDeviceInfo> cuda_device_info(int device = 0);

}  // namespace pensieve
