#include "kernels/cpu/matmul.h"

#include <algorithm>

#include "core/check.h"
#include "kernels/cpu/act_layout.h"
#include "kernels/cpu/gemm_kernels.h"

namespace pensieve::cpu {
namespace {

// Thread row ranges are multiples of this, so every micro-tile height divides them.
constexpr int64_t kRowAlign = 16;
// Activations of one token block stay in L2 while each thread streams its weight rows past them.
constexpr size_t kTokenBlockBytes = size_t{512} << 10;

const IsaKernels* table_for(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return &scalar_kernels();
    case Isa::kAvx2:
      return avx2_kernels();
    case Isa::kAvx512:
      return avx512_kernels();
    case Isa::kNeon:
      return neon_kernels();
  }
  return nullptr;
}

struct Plan {
  Isa isa = Isa::kScalar;
  const TypeKernel* kernel = nullptr;
  QuantizeFn quantize = nullptr;
};

// The highest level at or below `isa` with a kernel for `type`.
Plan plan_for(GgmlType type, Isa isa) {
  const auto id = static_cast<uint32_t>(type);
  PV_CHECK(id < kMaxTypeId, "matmul: type id {}", id);
  for (int level = static_cast<int>(isa); level >= 0; --level) {
    const Isa candidate = static_cast<Isa>(level);
    if (!isa_supported(candidate)) continue;
    const IsaKernels* table = table_for(candidate);
    if (table == nullptr || table->types[id].gemm == nullptr) continue;
    Plan plan{candidate, &table->types[id], nullptr};
    if (plan.kernel->act == ActFormat::kQ8Block32Split) {
      plan.quantize = table->quantize_block32_split;
    }
    if (plan.kernel->act == ActFormat::kQ8BlockK) plan.quantize = table->quantize_block_k;
    PV_CHECK(plan.kernel->act == ActFormat::kF32 || plan.quantize != nullptr,
             "matmul: no activation quantizer for {}", ggml_type_name(type));
    return plan;
  }
  PV_CHECK(false, "matmul: no kernel for {}", ggml_type_name(type));
  __builtin_unreachable();
}

size_t act_row_bytes(ActFormat format, int64_t n_cols) {
  switch (format) {
    case ActFormat::kF32:
      return static_cast<size_t>(n_cols) * sizeof(float);
    case ActFormat::kQ8Block32Split:
      return block32_split_layout(n_cols).row_bytes;
    case ActFormat::kQ8BlockK:
      return block_k_layout(n_cols).row_bytes;
  }
  return 0;
}

// Splits [0, n) into n_parts contiguous ranges of multiples of `align` (the last takes the rest).
void split_range(int64_t n, int64_t align, int part, int n_parts, int64_t* begin, int64_t* end) {
  const int64_t n_units = (n + align - 1) / align;
  const int64_t per_part = n_units / n_parts;
  const int64_t extra = n_units % n_parts;
  const int64_t first = part * per_part + std::min<int64_t>(part, extra);
  const int64_t count = per_part + (part < extra ? 1 : 0);
  *begin = std::min(n, first * align);
  *end = std::min(n, (first + count) * align);
}

// Rows [r0, r1) for all tokens, token block by token block.
void run_rows(const Plan& plan, const GemmArgs& args, int64_t r0, int64_t r1, int64_t n_tokens,
              size_t act_stride) {
  if (r0 >= r1) return;
  // A multiple of 8 tokens, the widest register tile.
  const auto block = static_cast<int64_t>(
      std::clamp<size_t>(kTokenBlockBytes / std::max<size_t>(act_stride, 1) / 8 * 8, 8, 256));
  for (int64_t t0 = 0; t0 < n_tokens; t0 += block) {
    plan.kernel->gemm(args, r0, r1, t0, std::min(n_tokens, t0 + block));
  }
}

void check_args(const Matrix& w, int64_t n_tokens, const MatmulWorkspace& ws, Isa isa) {
  PV_CHECK(matmul_supports(w.type), "matmul: unsupported weight type {}", ggml_type_name(w.type));
  PV_CHECK(isa_supported(isa), "matmul: {} is not supported by this CPU", isa_name(isa));
  const GgmlTypeTraits& traits = ggml_type_traits(w.type);
  PV_CHECK(w.n_cols > 0 && w.n_cols % traits.block_elements == 0, "matmul: {} columns of {}",
           w.n_cols, traits.name);
  PV_CHECK(w.row_bytes >= ggml_row_bytes(traits, w.n_cols), "matmul: row stride {}", w.row_bytes);
  PV_CHECK(n_tokens >= 0 && n_tokens <= ws.max_tokens() && w.n_cols <= ws.max_cols(),
           "matmul: {} tokens x {} columns exceed the workspace", n_tokens, w.n_cols);
}

// Quantizes (or points at) x in the plan's activation format.
const uint8_t* prepare_activations(const Plan& plan, const float* x, int64_t n_tokens,
                                   int64_t n_cols, size_t act_stride, ThreadPool& pool,
                                   MatmulWorkspace& ws) {
  if (plan.kernel->act == ActFormat::kF32) return reinterpret_cast<const uint8_t*>(x);
  uint8_t* act = ws.rows(n_tokens, act_stride);
  const auto quantize = [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      plan.quantize(x + t * n_cols, n_cols, plan.kernel->act_offset,
                    act + static_cast<size_t>(t) * act_stride);
    }
  };
  if (n_tokens == 1) {
    quantize(0, 1);
  } else {
    pool.parallel_for(n_tokens, quantize);
  }
  return act;
}

}  // namespace

size_t MatmulWorkspace::bytes_for(int64_t max_tokens, int64_t max_cols) {
  const auto cols = static_cast<int64_t>(round_up(static_cast<size_t>(max_cols), 256));
  const size_t row_bytes = std::max(act_row_bytes(ActFormat::kQ8Block32Split, cols),
                                    act_row_bytes(ActFormat::kQ8BlockK, cols));
  return static_cast<size_t>(max_tokens) * row_bytes + 64;
}

MatmulWorkspace::MatmulWorkspace(int64_t max_tokens, int64_t max_cols)
    : max_tokens_(max_tokens), max_cols_(max_cols) {
  PV_CHECK(max_tokens > 0 && max_cols > 0, "workspace {} x {}", max_tokens, max_cols);
  capacity_bytes_ = bytes_for(max_tokens, max_cols) - 64;
  storage_ = std::make_unique<uint8_t[]>(capacity_bytes_ + 64);
  const auto address = reinterpret_cast<uintptr_t>(storage_.get());
  aligned_ = storage_.get() + (round_up(address, 64) - address);
}

uint8_t* MatmulWorkspace::rows(int64_t n_tokens, size_t row_bytes) {
  PV_CHECK(static_cast<size_t>(n_tokens) * row_bytes <= capacity_bytes_,
           "matmul workspace: {} rows of {} bytes exceed {} bytes", n_tokens, row_bytes,
           capacity_bytes_);
  return aligned_;
}

bool matmul_supports(GgmlType type) {
  switch (type) {
    case GgmlType::kF32:
    case GgmlType::kF16:
    case GgmlType::kBF16:
    case GgmlType::kQ4_0:
    case GgmlType::kQ4_1:
    case GgmlType::kQ5_0:
    case GgmlType::kQ5_1:
    case GgmlType::kQ8_0:
    case GgmlType::kQ2_K:
    case GgmlType::kQ3_K:
    case GgmlType::kQ4_K:
    case GgmlType::kQ5_K:
    case GgmlType::kQ6_K:
      return true;
    default:
      return false;
  }
}

Isa matmul_isa(GgmlType type, Isa isa) { return plan_for(type, isa).isa; }

void matmul(const Matrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool,
            MatmulWorkspace& ws) {
  matmul(w, x, n_tokens, y, pool, ws, best_isa());
}

void matmul(const Matrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool,
            MatmulWorkspace& ws, Isa isa) {
  check_args(w, n_tokens, ws, isa);
  if (n_tokens == 0 || w.n_rows == 0) return;

  const Plan plan = plan_for(w.type, isa);
  const size_t act_stride = act_row_bytes(plan.kernel->act, w.n_cols);
  const uint8_t* act = prepare_activations(plan, x, n_tokens, w.n_cols, act_stride, pool, ws);
  const GemmArgs args{w.data, w.row_bytes, w.n_cols, act, act_stride, y, w.n_rows};

  // Rows are split among threads so each streams its own contiguous part of the weights; with
  // too few rows to go round, tokens are split instead.
  const int n_threads = pool.n_threads();
  const bool split_tokens = n_tokens >= n_threads && w.n_rows < kRowAlign * n_threads;
  pool.run([&](int thread_index, int n_parts) {
    int64_t begin = 0, end = 0;
    if (split_tokens) {
      split_range(n_tokens, 1, thread_index, n_parts, &begin, &end);
      if (begin < end) plan.kernel->gemm(args, 0, w.n_rows, begin, end);
    } else {
      split_range(w.n_rows, kRowAlign, thread_index, n_parts, &begin, &end);
      run_rows(plan, args, begin, end, n_tokens, act_stride);
    }
  });
}

void matmul_many(std::span<const MatmulTarget> targets, const float* x, int64_t n_tokens,
                 ThreadPool& pool, MatmulWorkspace& ws) {
  constexpr size_t kMaxTargets = 4;
  const Isa isa = best_isa();
  bool shared = n_tokens == 1 && targets.size() <= kMaxTargets && !targets.empty();
  Plan plans[kMaxTargets];
  for (size_t i = 0; shared && i < targets.size(); ++i) {
    const Matrix& w = *targets[i].w;
    check_args(w, n_tokens, ws, isa);
    plans[i] = plan_for(w.type, isa);
    shared = w.n_cols == targets[0].w->n_cols && plans[i].kernel->act == plans[0].kernel->act &&
             plans[i].kernel->act_offset == plans[0].kernel->act_offset;
  }
  if (!shared) {
    for (const MatmulTarget& t : targets) matmul(*t.w, x, n_tokens, t.y, pool, ws, isa);
    return;
  }
  const int64_t n_cols = targets[0].w->n_cols;
  const size_t act_stride = act_row_bytes(plans[0].kernel->act, n_cols);
  const uint8_t* act = prepare_activations(plans[0], x, n_tokens, n_cols, act_stride, pool, ws);
  size_t total_bytes = 0;
  for (const MatmulTarget& t : targets)
    total_bytes += t.w->row_bytes * static_cast<size_t>(t.w->n_rows);

  // Thread i streams bytes [i, i + 1) * total / n of the matrices laid end to end, cut at rows
  // that are multiples of kRowAlign. Every thread computes the same cuts, so the parts tile.
  pool.run([&](int thread_index, int n_parts) {
    const auto cut = [&](int part, size_t first_byte, const Matrix& w) {
      const size_t at = total_bytes * static_cast<size_t>(part) / static_cast<size_t>(n_parts);
      if (at <= first_byte) return int64_t{0};
      const auto row = static_cast<int64_t>((at - first_byte + w.row_bytes - 1) / w.row_bytes);
      return std::min(w.n_rows, (row + kRowAlign - 1) / kRowAlign * kRowAlign);
    };
    size_t first_byte = 0;
    for (size_t i = 0; i < targets.size(); ++i) {
      const Matrix& w = *targets[i].w;
      const GemmArgs args{w.data, w.row_bytes, w.n_cols, act, act_stride, targets[i].y, w.n_rows};
      run_rows(plans[i], args, cut(thread_index, first_byte, w),
               cut(thread_index + 1, first_byte, w), n_tokens, act_stride);
      first_byte += w.row_bytes * static_cast<size_t>(w.n_rows);
    }
  });
}

}  // namespace pensieve::cpu
