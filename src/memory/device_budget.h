// The GPU's side of the budget: weights, activations and the KV pool against the device memory
// free at startup, less a reserve for the display, other programs and the CUDA context's growth,
// and within the user's cap when there is one.
// The pool is what the host budget asked for (n_ctx x n_parallel positions) when it fits, else
// as many whole blocks as fit, never less than one sequence of n_ctx. Pure arithmetic.
#pragma once

#include <cstdint>
#include <string>

#include "core/result.h"

namespace pensieve::memory {

struct DeviceRoom {
  std::string name;            // "NVIDIA H200", for messages
  int64_t free_bytes = 0;      // cudaMemGetInfo's free
  int64_t total_bytes = 0;     // and total
  int64_t reserve_bytes = -1;  // -1: auto, max(512 MiB, 5% of total)
  int64_t cap_bytes = 0;       // at most this much for pensieve (--gpu-memory-budget); 0: none
};

struct DeviceKvRequest {
  int64_t weights_bytes = 0;
  int64_t scratch_bytes = 0;
  int64_t block_bytes = 0;  // one KV block, all layers
  int64_t block_positions = 0;
  int64_t n_ctx = 0;  // one sequence's positions
  int n_parallel = 1;
};

struct DeviceKvPlan {
  int64_t n_blocks = 0;
  int64_t reserve_bytes = 0;
  int64_t wanted_blocks = 0;  // n_ctx x n_parallel positions' worth
  bool shrunk = false;        // n_blocks < wanted_blocks: sequences share less than all of it
  int64_t total_bytes() const;
  int64_t weights_bytes = 0, scratch_bytes = 0, kv_bytes = 0;
};

// kResourceExhausted, naming every size and what to lower, when the weights, the activations
// and one sequence's KV do not fit; kInvalidArgument for non-positive sizes.
Expected<DeviceKvPlan> plan_device_kv(const DeviceKvRequest& request, const DeviceRoom& room);

// One line for the startup log.
std::string describe(const DeviceKvPlan& plan, const DeviceRoom& room);

}  // namespace pensieve::memory
