// Converting a GGUF model's weight matrices to another tensor type (`pensieve quantize`).
#pragma once

#include <string>
#include <string_view>

#include "core/result.h"
#include "gguf/types.h"

namespace pensieve {

struct QuantizeOptions {
  std::string input_path;
  std::string output_path;
  // A tensor type name (Q4_0, Q8_0, Q4_K, F16, ...) or a mix: Q4_K_M, Q5_K_M, Q3_K_M.
  std::string target;
  int n_threads = 0;  // 0: all cores
};

struct QuantizeSummary {
  int n_quantized = 0;  // matrices converted
  int n_kept = 0;       // tensors copied unchanged (norms, biases)
  int n_fallbacks = 0;  // matrices whose rows do not fit the K-quant block size
  uint64_t input_bytes = 0;
  uint64_t output_bytes = 0;
};

// The type a matrix gets under `target` (mixes pick per tensor name and layer).
// Exposed for tests. n_layer is the model's block count.
Expected<GgmlType> quantize_type_for(std::string_view target, std::string_view tensor_name,
                                     int64_t n_layer);

Expected<QuantizeSummary> quantize_model(const QuantizeOptions& options);

}  // namespace pensieve
