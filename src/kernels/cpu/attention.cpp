#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cstring>

#include "core/check.h"
#include "core/half.h"
#include "kernels/cpu/attention_isa.h"
#include "kernels/ref/quants.h"

namespace pensieve::cpu {

bool kv_type_supported(GgmlType type) {
  return type == GgmlType::kF32 || type == GgmlType::kF16 || type == GgmlType::kQ8_0;
}

size_t kv_bytes(GgmlType type, int64_t n) {
  PV_CHECK(kv_type_supported(type), "kv cache: unsupported type {}", ggml_type_name(type));
  return ggml_row_bytes(ggml_type_traits(type), n);
}

void kv_store(GgmlType type, const float* x, int64_t n, uint8_t* dst) {
  switch (type) {
    case GgmlType::kF32:
      std::memcpy(dst, x, static_cast<size_t>(n) * 4);
      break;
    case GgmlType::kF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = f32_to_f16(x[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
      break;
    default:
      ref::quantize_row(type, x, dst, n);
      break;
  }
}

void kv_load(GgmlType type, const uint8_t* src, int64_t n, float* x) {
  ref::dequantize_row(type, src, x, n);
}

size_t attention_scratch_floats(int64_t max_rows, int64_t head_dim) {
  // kKvBlockPositions is also the kernel's block of positions (attention_impl.h).
  return static_cast<size_t>(max_rows * (head_dim + 2) + 3 * kKvBlockPositions * head_dim);
}

void attention(const AttentionJob& job, float* scratch) { attention(job, scratch, best_isa()); }

void attention(const AttentionJob& job, float* scratch, Isa isa) {
  PV_CHECK(isa_supported(isa), "attention: {} is not supported by this CPU", isa_name(isa));
  PV_CHECK(kv_type_supported(job.kv_type), "attention: unsupported cache type {}",
           ggml_type_name(job.kv_type));
  PV_CHECK(job.head_dim > 0 && (job.kv_type != GgmlType::kQ8_0 || job.head_dim % 32 == 0),
           "attention: head size {} with a {} cache", job.head_dim, ggml_type_name(job.kv_type));
  PV_CHECK(job.window >= 0, "attention: window {}", job.window);
  if (job.n_tokens <= 0 || job.group <= 0) return;
  if (job.block_table != nullptr) {
    // The blocks the kernel reads: from the one holding the first token's window start.
    const int64_t first = job.window > 0 ? std::max<int64_t>(0, job.first_pos - job.window + 1) : 0;
    const int64_t n_pos = job.first_pos + job.n_tokens;
    for (int64_t b = first / kKvBlockPositions;
         b < (n_pos + kKvBlockPositions - 1) / kKvBlockPositions; ++b) {
      PV_CHECK(job.block_table[b] >= 0, "attention: block table entry {} is {}", b,
               job.block_table[b]);
    }
  }
#if defined(__x86_64__)
  if (isa == Isa::kAvx512) return attention_avx512(job, scratch);
  if (isa == Isa::kAvx2) return attention_avx2(job, scratch);
#endif
  attention_base(job, scratch);
}

}  // namespace pensieve::cpu
