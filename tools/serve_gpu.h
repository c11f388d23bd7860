// `pensieve serve --device cuda`: where the model's layers run (all on GPU 0, or its last layers
// there and the ones before on the CPU) and the forward pass that runs them.
#pragma once

#include <cstdint>
#include <memory>

#include "core/result.h"
#include "engine/weight_residency.h"
#include "memory/budget.h"
#include "memory/device_budget.h"
#include "model/device_forward.h"
#include "model/forward.h"
#include "model/hparams.h"
#include "model/model.h"
#include "server/routes.h"

namespace pensieve::cli {

// The GPU's share of the model, chosen before the host budget: the host's KV cache then holds
// only the CPU's layers.
struct GpuPlacement {
  int64_t first_layer = 0;  // the GPU runs layers [first_layer, n_layer); 0: the whole model
  memory::DeviceRoom room;
  memory::DeviceKvPlan kv;  // its device memory at the context it was placed for
  int64_t kv_bytes_per_position = 0;
};

struct PlacementRequest {
  // -1: the most layers that fit with one sequence's KV cache (all when they do); a count: that
  // many of the last layers (all when it is the layer count or more).
  int64_t gpu_layers = -1;
  int64_t n_ctx = 0;
  int n_parallel = 1;
  int64_t cap_bytes = 0;  // --gpu-memory-budget; 0: none
};

// The weights are only measured (a mapped model's pages are not read). Errors: no device, the
// count asked for does not fit (kResourceExhausted, with the sizes), not even one layer fits.
Expected<GpuPlacement> place_layers(const Hparams& hp, const ModelWeights& weights,
                                    const PlacementRequest& request,
                                    const DeviceForwardOptions& options);

// What the CPU stage of a split runs with.
struct CpuStageOptions {
  int n_threads = 1;
  GgmlType kv_type = GgmlType::kF16;
  int64_t kv_blocks = 0;  // the blocks the host budget holds for the CPU's layers
};

struct GpuForward {
  std::unique_ptr<BatchForward> forward;
  std::unique_ptr<WeightResidency> residency;  // keep-alive of the device copy (and the host's)
  server::MemoryContext::Gpu budget;
  std::string prompt_products;  // what multiplies long prompt chunks, for the log
};

// The placement's forward pass: the CUDA pass alone, or a SplitForward of a CpuForward of
// layers [0, first_layer) and the CUDA pass of the rest, both with the smaller of the two
// pools. The whole model on the GPU gives the host pages of the weights back to the system;
// a split keeps them (the CPU's layers read theirs).
Expected<GpuForward> make_gpu_forward(Model& model, const GpuPlacement& placement, int64_t n_ctx,
                                      const DeviceForwardOptions& options,
                                      const CpuStageOptions& cpu);

}  // namespace pensieve::cli
