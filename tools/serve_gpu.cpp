#include "tools/serve_gpu.h"

#include <algorithm>
#include <string>
#include <utility>

#include "core/log.h"
#include "model/forward_cpu.h"
#include "model/forward_split.h"

namespace pensieve::cli {
namespace {

// The device budget of the last n layers on the GPU at this context.
Expected<GpuPlacement> try_layers(const Hparams& hp, const ModelWeights& weights, int64_t n,
                                  const PlacementRequest& r, DeviceForwardOptions options,
                                  const std::string& device_name) {
  options.first_layer = hp.n_layer - n;
  PV_TRY(const DeviceMemoryPlan plan, cuda_memory_plan(hp, weights, r.n_ctx, options));
  memory::DeviceKvRequest request;
  request.weights_bytes = plan.weights_bytes;
  request.scratch_bytes = plan.scratch_bytes;
  request.block_bytes = plan.kv_block_bytes;
  request.block_positions = BatchForward::kKvBlockPositions;
  request.n_ctx = r.n_ctx;
  request.n_parallel = r.n_parallel;
  GpuPlacement out;
  out.first_layer = options.first_layer;
  out.room = {device_name, plan.free_bytes, plan.total_bytes, -1, r.cap_bytes};
  PV_TRY(out.kv, memory::plan_device_kv(request, out.room));
  out.kv_bytes_per_position = plan.kv_block_bytes / BatchForward::kKvBlockPositions;
  return out;
}

}  // namespace

Expected<GpuPlacement> place_layers(const Hparams& hp, const ModelWeights& weights,
                                    const PlacementRequest& request,
                                    const DeviceForwardOptions& options) {
  PV_TRY(const CudaDeviceInfo device, cuda_device_info(options.device));
  auto try_last = [&](int64_t n) {
    return try_layers(hp, weights, n, request, options, device.name);
  };
  if (request.gpu_layers > 0) {
    const int64_t n = std::min(request.gpu_layers, hp.n_layer);
    auto placed = try_last(n);
    if (!placed && n < hp.n_layer) {
      return make_error(placed.error().code, "--gpu-layers {} (of {}): {}", request.gpu_layers,
                        hp.n_layer, placed.error().message);
    }
    return placed;
  }
  // The whole model when it fits; else the most of its last layers that do.
  auto whole = try_last(hp.n_layer);
  if (whole || whole.error().code != ErrorCode::kResourceExhausted) return whole;
  for (int64_t n = hp.n_layer - 1; n >= 1; --n) {
    auto placed = try_last(n);
    if (placed) {
      log::info(
          "serve: the whole model does not fit on the GPU ({}); its last {} of {} layers run "
          "there and the {} before them on the CPU (set the count with --gpu-layers)",
          whole.error().message, n, hp.n_layer, hp.n_layer - n);
      return placed;
    }
    if (placed.error().code != ErrorCode::kResourceExhausted) return placed;
  }
  return make_error(ErrorCode::kResourceExhausted, "{} Not even the last layer alone fits.",
                    whole.error().message);
}

Expected<GpuForward> make_gpu_forward(Model& model, const GpuPlacement& placement, int64_t n_ctx,
                                      const DeviceForwardOptions& options,
                                      const CpuStageOptions& cpu) {
  const Hparams& hp = model.hparams();
  const bool split = placement.first_layer > 0;
  DeviceForwardOptions o = options;
  o.first_layer = placement.first_layer;
  o.kv_blocks = split ? std::min(placement.kv.n_blocks, cpu.kv_blocks) : placement.kv.n_blocks;
  PV_TRY(CudaBatchForward gpu, make_cuda_batch_forward(hp, model.weights(), n_ctx, o));
  GpuForward out;
  out.budget = {placement.room, placement.kv, placement.kv_bytes_per_position,
                placement.first_layer, hp.n_layer};
  out.budget.plan.n_blocks = o.kv_blocks;
  out.budget.plan.kv_bytes =
      o.kv_blocks * placement.kv_bytes_per_position * BatchForward::kKvBlockPositions;
  out.prompt_products = std::move(gpu.prompt_products);
  const DeviceResidency::HostCopy host =
      split ? DeviceResidency::HostCopy::kKept : DeviceResidency::HostCopy::kReleased;
  out.residency = std::make_unique<DeviceResidency>(
      model, std::move(gpu.release), std::move(gpu.restore), gpu.weights_bytes, host);
  if (split) {
    auto front = std::make_unique<CpuForward>(
        hp, model.weights(), n_ctx, cpu.n_threads, o.max_batch, cpu.kv_type, o.kv_blocks,
        o.max_segments, o.attention_window, LayerRange{0, placement.first_layer});
    out.forward = std::make_unique<SplitForward>(std::move(front), std::move(gpu.forward));
    log::info("serve: layers [0, {}) run on the CPU ({} threads), [{}, {}) on the GPU",
              placement.first_layer, cpu.n_threads, placement.first_layer, hp.n_layer);
    return out;
  }
  out.forward = std::move(gpu.forward);
  // The GPU holds its own copy: the host's pages of the weights go back to the system.
  if (auto released = model.release_weights(); !released) {
    log::warn("serve: the host copy of the weights stays resident: {}", released.error().message);
  }
  return out;
}

}  // namespace pensieve::cli
