// Backend-neutral views the kernels operate on. Kernels never include model code; the model
// hands them these plain views of its weights and activations.
#pragma once

#include <cstddef>
#include <cstdint>

#include "gguf/types.h"

namespace pensieve {

// A row-major weight matrix stored in any GGUF tensor type: n_rows rows of n_cols elements
// (GGUF ne[0] = n_cols, ne[1] = n_rows), rows row_bytes apart.
struct Matrix {
  GgmlType type = GgmlType::kF32;
  int64_t n_cols = 0;
  int64_t n_rows = 0;
  size_t row_bytes = 0;
  const uint8_t* data = nullptr;

  const uint8_t* row(int64_t r) const { return data + static_cast<size_t>(r) * row_bytes; }
  bool empty() const { return data == nullptr; }
};

}  // namespace pensieve
