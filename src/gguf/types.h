// ggml tensor types as stored in GGUF files: ids, names, block sizes and bytes per block.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace pensieve {

// Values are the on-disk ids (ggml_type); gaps are ids ggml retired.
enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kIQ1_M = 29,
  kBF16 = 30,
};

struct GgmlTypeTraits {
  GgmlType type;
  std::string_view name;   // as ggml prints it: "Q4_K"
  int64_t block_elements;  // elements per block (1 for plain types)
  size_t block_bytes;      // bytes per block
  bool dequantizable;      // pensieve has a reference dequantizer for it
};

// Traits of a known type id, or nullopt for ids pensieve does not know.
std::optional<GgmlTypeTraits> ggml_type_traits(uint32_t type_id);
const GgmlTypeTraits& ggml_type_traits(GgmlType type);
std::string_view ggml_type_name(GgmlType type);
// Case-insensitive lookup by name ("q4_k", "F16"); nullopt if unknown.
std::optional<GgmlType> ggml_type_from_name(std::string_view name);

// Bytes of one row of n_elements of `type`; n_elements must be a multiple of the block size.
inline size_t ggml_row_bytes(const GgmlTypeTraits& traits, int64_t n_elements) {
  return static_cast<size_t>(n_elements / traits.block_elements) * traits.block_bytes;
}

}  // namespace pensieve
