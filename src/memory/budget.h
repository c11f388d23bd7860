// The startup memory budget: weights + KV cache + scratch + buffers against what the machine can
// give. Sizes the context to fit when the operator did not fix it, and otherwise refuses to start
// with a message that says what to lower. Pure arithmetic: callers supply every size.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace pensieve::memory {

// What the model and the server cost, from the model's hyperparameters and the settings.
struct BudgetInputs {
  int64_t weights_bytes = 0;
  int64_t kv_bytes_per_position = 0;  // all layers, K+V, one sequence
  int64_t scratch_bytes = 0;          // activations at the maximum batch; independent of context
  int64_t buffers_bytes = 0;          // HTTP bodies and the request queue
  int64_t n_ctx_train = 0;            // the model's trained context; <= 0 when unknown
};

// What the operator asked for.
struct BudgetRequest {
  std::optional<int64_t> n_ctx;      // set when the operator fixed the context
  std::optional<int> n_parallel;     // sequences decoded at once; 1 when unset
  int64_t max_auto_ctx = 32768;      // auto sizing starts at min(n_ctx_train, max_auto_ctx)
  int64_t min_auto_ctx = 512;        // and stops at min(min_auto_ctx, n_ctx_train)
  std::optional<int64_t> cap_bytes;  // --memory-budget
};

// What the machine can give at startup.
struct MachineRoom {
  int64_t usable_bytes = 0;                   // MemorySnapshot::usable_bytes()
  int64_t reserve_bytes = 0;                  // left for the rest of the machine
  int64_t others_outstanding_bytes = 0;       // what other pensieve servers may still grow into
  std::optional<int64_t> cgroup_limit_bytes;  // for the message
  int64_t available_bytes = 0;                // MemAvailable, for the message
};

// max(0, usable - reserve - others_outstanding).
int64_t room_bytes(const MachineRoom& room);

struct Budget {
  int64_t weights_bytes = 0, kv_bytes = 0, scratch_bytes = 0, buffers_bytes = 0;
  int64_t n_ctx = 0;
  int n_parallel = 1;
  bool auto_sized = false;       // the context was shrunk below n_ctx_auto_start to fit
  int64_t n_ctx_auto_start = 0;  // where auto sizing started; 0 when the context was fixed
  int64_t limit_bytes = 0;       // min(room_bytes, cap_bytes): what the budget was checked against
  bool cap_binds = false;        // --memory-budget, not the machine, set limit_bytes

  // Saturates at INT64_MAX.
  int64_t total_bytes() const;
};

// The budget for `inputs` within min(room_bytes(room), request.cap_bytes). With a fixed context
// the context must fit as asked; otherwise it starts at min(n_ctx_train, max_auto_ctx) and halves
// (to multiples of 256 while >= 256) down to min(min_auto_ctx, n_ctx_train) until it fits.
// kResourceExhausted when it does not fit, with the breakdown, the room, and what to lower (a
// --ctx it names fits); kInvalidArgument for negative sizes or non-positive counts.
Expected<Budget> plan_budget(const BudgetInputs& inputs, const BudgetRequest& request,
                             const MachineRoom& room);

// "512 B", "1.50 KiB", "12.3 MiB", "512 MiB", "4.10 GiB": three significant digits in the largest
// binary unit that keeps the number >= 1.
std::string format_bytes(int64_t bytes);

// The startup breakdown, one part per line, numbers aligned; kv_type ("F16") is shown next to the
// KV cache when not empty. Ends without a newline.
std::string describe(const Budget& budget, std::string_view kv_type = {});

}  // namespace pensieve::memory
