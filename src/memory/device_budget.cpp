#include "memory/device_budget.h"

#include <algorithm>

#include <fmt/format.h>

#include "memory/budget.h"

namespace pensieve::memory {
namespace {

constexpr int64_t kMiB = int64_t{1} << 20;

int64_t reserve_of(const DeviceRoom& room) {
  if (room.reserve_bytes >= 0) return room.reserve_bytes;
  return std::max(512 * kMiB, room.total_bytes / 20);
}

}  // namespace

int64_t DeviceKvPlan::total_bytes() const { return weights_bytes + scratch_bytes + kv_bytes; }

Expected<DeviceKvPlan> plan_device_kv(const DeviceKvRequest& r, const DeviceRoom& room) {
  if (r.weights_bytes < 0 || r.scratch_bytes < 0 || r.block_bytes <= 0 || r.block_positions <= 0 ||
      r.n_ctx <= 0 || r.n_parallel <= 0 || room.free_bytes < 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "gpu budget: sizes must be positive (weights {}, activations {}, block {} "
                      "of {} positions, context {} x {}, free {})",
                      r.weights_bytes, r.scratch_bytes, r.block_bytes, r.block_positions, r.n_ctx,
                      r.n_parallel, room.free_bytes);
  }
  DeviceKvPlan plan;
  plan.reserve_bytes = reserve_of(room);
  plan.weights_bytes = r.weights_bytes;
  plan.scratch_bytes = r.scratch_bytes;
  const int64_t per_sequence = (r.n_ctx + r.block_positions - 1) / r.block_positions;
  plan.wanted_blocks = (r.n_ctx * r.n_parallel + r.block_positions - 1) / r.block_positions;
  const int64_t usable = room.cap_bytes > 0
                             ? std::min(room.cap_bytes, room.free_bytes - plan.reserve_bytes)
                             : room.free_bytes - plan.reserve_bytes;
  const int64_t room_for_kv = usable - r.weights_bytes - r.scratch_bytes;
  const int64_t fitting = room_for_kv > 0 ? room_for_kv / r.block_bytes : 0;
  if (fitting < per_sequence) {
    const int64_t ctx_fits = fitting * r.block_positions;
    return make_error(
        ErrorCode::kResourceExhausted,
        "gpu budget: the model does not fit on {}: weights {} + activations {} + KV cache for "
        "one sequence of {} positions {} need {}, but {} is free of {} and {} stays in reserve{}. "
        "{}Use a smaller quantization of the model, fewer --gpu-layers, or --device cpu.",
        room.name.empty() ? "the GPU" : room.name, format_bytes(r.weights_bytes),
        format_bytes(r.scratch_bytes), r.n_ctx, format_bytes(per_sequence * r.block_bytes),
        format_bytes(r.weights_bytes + r.scratch_bytes + per_sequence * r.block_bytes),
        format_bytes(room.free_bytes), format_bytes(room.total_bytes),
        format_bytes(plan.reserve_bytes),
        room.cap_bytes > 0
            ? fmt::format(", and --gpu-memory-budget allows {}", format_bytes(room.cap_bytes))
            : "",
        ctx_fits >= 256 ? fmt::format("--ctx {} would fit. ", ctx_fits / 256 * 256) : "");
  }
  plan.n_blocks = std::min(fitting, plan.wanted_blocks);
  plan.shrunk = plan.n_blocks < plan.wanted_blocks;
  plan.kv_bytes = plan.n_blocks * r.block_bytes;
  return plan;
}

std::string describe(const DeviceKvPlan& plan, const DeviceRoom& room) {
  return fmt::format(
      "gpu budget on {}: weights {}, activations {}, KV pool {} ({} blocks{}), total {} of {} "
      "free ({} total, {} kept in reserve{})",
      room.name.empty() ? "the GPU" : room.name, format_bytes(plan.weights_bytes),
      format_bytes(plan.scratch_bytes), format_bytes(plan.kv_bytes), plan.n_blocks,
      plan.shrunk ? fmt::format(" of the {} asked for: not every sequence can reach the full "
                                "context at once",
                                plan.wanted_blocks)
                  : "",
      format_bytes(plan.total_bytes()), format_bytes(room.free_bytes),
      format_bytes(room.total_bytes), format_bytes(plan.reserve_bytes),
      room.cap_bytes > 0
          ? fmt::format(", at most {} by --gpu-memory-budget", format_bytes(room.cap_bytes))
          : "");
}

}  // namespace pensieve::memory
