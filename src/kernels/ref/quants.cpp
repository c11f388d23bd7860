#include "kernels/ref/quants.h"

#include "core/check.h"
#include "kernels/ref/quants_internal.h"

namespace pensieve::ref {
namespace {

detail::QuantFns quant_fns(GgmlType type) {
  const detail::QuantFns legacy = detail::legacy_quant_fns(type);
  if (legacy.dequantize != nullptr) return legacy;
  return detail::k_quant_fns(type);
}

// Blocks in n elements of `type`; checks that n is a whole number of blocks.
int64_t block_count(GgmlType type, int64_t n) {
  const int64_t block_elements = ggml_type_traits(type).block_elements;
  PV_CHECK(n >= 0 && n % block_elements == 0, "ref: {} elements is not a multiple of {}'s {}", n,
           ggml_type_name(type), block_elements);
  return n / block_elements;
}

}  // namespace

bool can_dequantize(GgmlType type) { return quant_fns(type).dequantize != nullptr; }

bool can_quantize(GgmlType type) { return quant_fns(type).quantize != nullptr; }

void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n) {
  const detail::QuantFns fns = quant_fns(type);
  PV_CHECK(fns.dequantize != nullptr, "ref: no dequantizer for {}", ggml_type_name(type));
  fns.dequantize(src, dst, block_count(type, n));
}

void quantize_row(GgmlType type, const float* src, void* dst, int64_t n) {
  const detail::QuantFns fns = quant_fns(type);
  PV_CHECK(fns.quantize != nullptr, "ref: no quantizer for {}", ggml_type_name(type));
  fns.quantize(src, dst, block_count(type, n));
}

}  // namespace pensieve::ref
