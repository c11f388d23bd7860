#include "memory/budget.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include <fmt/format.h>

namespace pensieve::memory {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kCtxStep = 256;  // auto-sized and suggested contexts are multiples of this
constexpr int64_t kMiB = int64_t{1} << 20;

int64_t add_sat(int64_t a, int64_t b) {
  int64_t sum = 0;
  return __builtin_add_overflow(a, b, &sum) ? kMax : sum;
}
int64_t mul_sat(int64_t a, int64_t b) {
  int64_t product = 0;
  return __builtin_mul_overflow(a, b, &product) ? kMax : product;
}

// Everything in the request the model costs at n_ctx, other than what depends on the context.
struct Costs {
  const BudgetInputs& in;
  int n_parallel;
  int64_t fixed_bytes() const {
    return add_sat(add_sat(in.weights_bytes, in.scratch_bytes), in.buffers_bytes);
  }
  int64_t kv_bytes(int64_t n_ctx) const {
    return mul_sat(mul_sat(in.kv_bytes_per_position, n_ctx), n_parallel);
  }
  int64_t total_bytes(int64_t n_ctx) const { return add_sat(fixed_bytes(), kv_bytes(n_ctx)); }
};

// The largest context in [lowest, highest] that fits in limit_bytes, rounded down to a multiple
// of kCtxStep when that stays >= lowest; nullopt when none does.
std::optional<int64_t> largest_fitting_ctx(const Costs& costs, int64_t limit_bytes, int64_t lowest,
                                           int64_t highest) {
  if (lowest > highest) return std::nullopt;
  const int64_t spare = limit_bytes - costs.fixed_bytes();
  if (spare < 0) return std::nullopt;
  const int64_t per_position = costs.kv_bytes(1);
  int64_t n_ctx = per_position == 0 ? highest : std::min(highest, spare / per_position);
  if (n_ctx >= kCtxStep && n_ctx / kCtxStep * kCtxStep >= lowest)
    n_ctx = n_ctx / kCtxStep * kCtxStep;
  if (n_ctx < lowest) return std::nullopt;
  return n_ctx;
}

Expected<void> validate(const BudgetInputs& in, const BudgetRequest& req) {
  if (in.weights_bytes < 0 || in.kv_bytes_per_position < 0 || in.scratch_bytes < 0 ||
      in.buffers_bytes < 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "memory: budget inputs must not be negative (weights {}, KV per position "
                      "{}, scratch {}, buffers {} bytes)",
                      in.weights_bytes, in.kv_bytes_per_position, in.scratch_bytes,
                      in.buffers_bytes);
  }
  if (req.n_ctx && *req.n_ctx <= 0) {
    return make_error(ErrorCode::kInvalidArgument, "memory: context {} is not a positive number",
                      *req.n_ctx);
  }
  if (req.n_parallel && *req.n_parallel <= 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "memory: parallel sequences {} is not a positive number", *req.n_parallel);
  }
  if (req.min_auto_ctx <= 0 || req.max_auto_ctx < req.min_auto_ctx) {
    return make_error(ErrorCode::kInvalidArgument,
                      "memory: automatic context range {}..{} is empty or not positive",
                      req.min_auto_ctx, req.max_auto_ctx);
  }
  if (req.cap_bytes && *req.cap_bytes < 0) {
    return make_error(ErrorCode::kInvalidArgument, "memory: --memory-budget {} is negative",
                      *req.cap_bytes);
  }
  return {};
}

// "A", "A or B", "A, B, or C", with the first letter capitalized and a final period.
std::string join_fixes(std::vector<std::string> fixes) {
  std::string text;
  for (size_t i = 0; i < fixes.size(); ++i) {
    if (i > 0) text += fixes.size() == 2 ? " or " : (i + 1 == fixes.size() ? ", or " : ", ");
    text += fixes[i];
  }
  if (!text.empty() && text[0] >= 'a' && text[0] <= 'z') text[0] = static_cast<char>(text[0] - 32);
  text += '.';
  return text;
}

std::string plural(int64_t n, const char* word) {
  return fmt::format("{} {}{}", n, word, n == 1 ? "" : "s");
}

// Bytes an operator can pass back to --memory-budget: whole MiB, rounded up.
std::string as_budget_flag(int64_t bytes) {
  return fmt::format("{}MiB", bytes / kMiB + (bytes % kMiB != 0 ? 1 : 0));
}

struct Failure {
  const Costs& costs;
  const BudgetRequest& req;
  const MachineRoom& room;
  int64_t limit_bytes;
  bool cap_binds;
  int64_t n_ctx;                    // the context the breakdown shows
  std::optional<int64_t> fits_ctx;  // a smaller context that fits, if any
  int64_t lowest_ctx;               // the smallest context that was considered
};

std::string explain(const Failure& f) {
  const BudgetInputs& in = f.costs.in;
  const int64_t need = f.costs.total_bytes(f.n_ctx);
  std::string usable =
      f.room.usable_bytes == f.room.available_bytes
          ? fmt::format("MemAvailable {}", format_bytes(f.room.available_bytes))
          : fmt::format("cgroup headroom {} (MemAvailable {})", format_bytes(f.room.usable_bytes),
                        format_bytes(f.room.available_bytes));
  std::string text = fmt::format(
      "memory: pensieve needs {} (weights {} + KV cache {} for {} positions x {} + scratch {} + "
      "buffers {}) but can count on {} ({} - reserve {} - {} for other pensieve servers; cgroup "
      "limit {}; {}). ",
      format_bytes(need), format_bytes(in.weights_bytes), format_bytes(f.costs.kv_bytes(f.n_ctx)),
      f.n_ctx, plural(f.costs.n_parallel, "sequence"), format_bytes(in.scratch_bytes),
      format_bytes(in.buffers_bytes), format_bytes(f.limit_bytes), usable,
      format_bytes(f.room.reserve_bytes), format_bytes(f.room.others_outstanding_bytes),
      f.room.cgroup_limit_bytes ? format_bytes(*f.room.cgroup_limit_bytes) : "none",
      f.req.cap_bytes ? fmt::format("--memory-budget {}", format_bytes(*f.req.cap_bytes))
                      : std::string("no --memory-budget"));
  if (format_bytes(need) == format_bytes(f.limit_bytes)) {
    text += fmt::format("({} bytes needed, {} available.) ", need, f.limit_bytes);
  }

  std::vector<std::string> fixes;
  if (f.fits_ctx) {
    fixes.push_back(fmt::format("lower the context (--ctx {} fits)", *f.fits_ctx));
  } else {
    text += fmt::format("Even a context of {} does not fit. ", plural(f.lowest_ctx, "position"));
  }
  if (f.costs.n_parallel > 1) fixes.push_back("run fewer parallel sequences");
  fixes.push_back(fmt::format("use a smaller quantization of the model (the weights alone are {})",
                              format_bytes(in.weights_bytes)));
  if (in.buffers_bytes > 0) fixes.push_back("lower --max-body-bytes/--max-queue");
  if (f.cap_binds) {
    const int64_t need_lowest = f.costs.total_bytes(f.fits_ctx ? f.n_ctx : f.lowest_ctx);
    const int64_t room = room_bytes(f.room);
    fixes.push_back(need_lowest <= room
                        ? fmt::format("raise --memory-budget (--memory-budget {} fits)",
                                      as_budget_flag(need_lowest))
                        : std::string("raise --memory-budget and free memory"));
  } else {
    fixes.push_back(f.room.others_outstanding_bytes > 0
                        ? "stop other programs or other pensieve servers"
                        : "stop other programs");
    if (!f.fits_ctx) fixes.push_back("use a machine with more memory");
  }
  return text + join_fixes(std::move(fixes));
}

}  // namespace

int64_t room_bytes(const MachineRoom& room) {
  return std::max<int64_t>(0, room.usable_bytes - room.reserve_bytes -
                                  std::max<int64_t>(0, room.others_outstanding_bytes));
}

int64_t Budget::total_bytes() const {
  return add_sat(add_sat(weights_bytes, kv_bytes), add_sat(scratch_bytes, buffers_bytes));
}

Expected<Budget> plan_budget(const BudgetInputs& inputs, const BudgetRequest& request,
                             const MachineRoom& room) {
  PV_TRY_VOID(validate(inputs, request));
  const Costs costs{inputs, request.n_parallel.value_or(1)};
  const int64_t room_limit = room_bytes(room);
  const int64_t limit = request.cap_bytes ? std::min(room_limit, *request.cap_bytes) : room_limit;
  const bool cap_binds = request.cap_bytes && *request.cap_bytes < room_limit;
  const bool train_known = inputs.n_ctx_train > 0;
  const int64_t lowest =
      train_known ? std::min(request.min_auto_ctx, inputs.n_ctx_train) : request.min_auto_ctx;

  Budget budget;
  budget.weights_bytes = inputs.weights_bytes;
  budget.scratch_bytes = inputs.scratch_bytes;
  budget.buffers_bytes = inputs.buffers_bytes;
  budget.n_parallel = costs.n_parallel;
  budget.limit_bytes = limit;
  budget.cap_binds = cap_binds;

  if (request.n_ctx) {
    const int64_t n_ctx = *request.n_ctx;
    if (costs.total_bytes(n_ctx) > limit) {
      const int64_t lowest_fixed = std::min(lowest, n_ctx);
      Failure failure{costs,
                      request,
                      room,
                      limit,
                      cap_binds,
                      n_ctx,
                      largest_fitting_ctx(costs, limit, lowest_fixed, n_ctx - 1),
                      lowest_fixed};
      return make_error(ErrorCode::kResourceExhausted, "{}", explain(failure));
    }
    budget.n_ctx = n_ctx;
  } else {
    const int64_t start =
        train_known ? std::min(inputs.n_ctx_train, request.max_auto_ctx) : request.max_auto_ctx;
    int64_t n_ctx = start;
    while (costs.total_bytes(n_ctx) > limit) {
      if (n_ctx <= lowest) {
        Failure failure{costs, request, room, limit, cap_binds, n_ctx, std::nullopt, lowest};
        return make_error(ErrorCode::kResourceExhausted, "{}", explain(failure));
      }
      int64_t next = n_ctx / 2;
      if (next >= kCtxStep) next = next / kCtxStep * kCtxStep;
      n_ctx = std::max(next, lowest);
    }
    budget.n_ctx = n_ctx;
    budget.n_ctx_auto_start = start;
    budget.auto_sized = n_ctx < start;
  }
  budget.kv_bytes = costs.kv_bytes(budget.n_ctx);
  return budget;
}

std::string format_bytes(int64_t bytes) {
  if (bytes < 0) return fmt::format("-{}", format_bytes(bytes == INT64_MIN ? kMax : -bytes));
  if (bytes < 1024) return fmt::format("{} B", bytes);
  static const char* const kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double value = static_cast<double>(bytes) / 1024;
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  const int decimals = value < 9.995 ? 2 : (value < 99.95 ? 1 : 0);
  return fmt::format("{:.{}f} {}", value, decimals, kUnits[unit]);
}

std::string describe(const Budget& b, std::string_view kv_type) {
  constexpr std::string_view kIndent = "                ";
  auto line = [](std::string_view label, int64_t bytes) {
    return fmt::format("{:<9}{:>10}", label, format_bytes(bytes));
  };
  std::string kv_note =
      fmt::format("  ({} positions x {}{}{})", b.n_ctx, plural(b.n_parallel, "sequence"),
                  kv_type.empty() ? "" : ", ", kv_type);
  std::string limit_note =
      fmt::format("  of {} {}", format_bytes(b.limit_bytes),
                  b.cap_binds ? "allowed by --memory-budget" : "this machine can give");
  std::string text = fmt::format("memory budget:  {}\n", line("weights", b.weights_bytes));
  text += fmt::format("{}{}{}\n", kIndent, line("KV cache", b.kv_bytes), kv_note);
  text += fmt::format("{}{}\n", kIndent, line("scratch", b.scratch_bytes));
  text += fmt::format("{}{}\n", kIndent, line("buffers", b.buffers_bytes));
  text += fmt::format("{}{}{}", kIndent, line("total", b.total_bytes()), limit_note);
  if (b.auto_sized) {
    text += fmt::format("\n{}context sized to fit: {} of {} positions", kIndent, b.n_ctx,
                        b.n_ctx_auto_start);
  }
  return text;
}

}  // namespace pensieve::memory
