// Portable fallback: each weight chunk is dequantized by the scalar reference and dotted with the
// float activations of up to kTokenTile tokens, so a chunk is decoded once per tile.
#include <algorithm>

#include "kernels/cpu/gemm_kernels.h"
#include "kernels/ref/quants.h"

namespace pensieve::cpu {
namespace {

constexpr int64_t kChunk = 256;  // elements dequantized at a time; a multiple of every block
constexpr int64_t kTokenTile = 8;

template <GgmlType kType>
void gemm(const GemmArgs& a, int64_t r0, int64_t r1, int64_t t0, int64_t t1) {
  const GgmlTypeTraits& traits = ggml_type_traits(kType);
  float w[kChunk];  // one dequantized chunk of a row
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = a.w + static_cast<size_t>(r) * a.w_row_bytes;
    for (int64_t tt = t0; tt < t1; tt += kTokenTile) {
      const int64_t n_t = std::min(kTokenTile, t1 - tt);
      float acc[kTokenTile] = {};
      for (int64_t c0 = 0; c0 < a.n_cols; c0 += kChunk) {
        const int64_t n = std::min(kChunk, a.n_cols - c0);
        ref::dequantize_row(kType, row + ggml_row_bytes(traits, c0), w, n);
        for (int64_t t = 0; t < n_t; ++t) {
          const auto* x = reinterpret_cast<const float*>(a.act + (tt + t) * a.act_stride) + c0;
          float sum = 0;
          for (int64_t i = 0; i < n; ++i) sum += w[i] * x[i];
          acc[t] += sum;
        }
      }
      for (int64_t t = 0; t < n_t; ++t) a.y[(tt + t) * a.ldy + r] = acc[t];
    }
  }
}

template <GgmlType kType>
void add(IsaKernels& k) {
  k.types[static_cast<int>(kType)] = TypeKernel{&gemm<kType>, ActFormat::kF32, 0};
}

IsaKernels make_table() {
  IsaKernels k;
  add<GgmlType::kF32>(k);
  add<GgmlType::kF16>(k);
  add<GgmlType::kBF16>(k);
  add<GgmlType::kQ4_0>(k);
  add<GgmlType::kQ4_1>(k);
  add<GgmlType::kQ5_0>(k);
  add<GgmlType::kQ5_1>(k);
  add<GgmlType::kQ8_0>(k);
  add<GgmlType::kQ2_K>(k);
  add<GgmlType::kQ3_K>(k);
  add<GgmlType::kQ4_K>(k);
  add<GgmlType::kQ5_K>(k);
  add<GgmlType::kQ6_K>(k);
  return k;
}

}  // namespace

const IsaKernels& scalar_kernels() {
  static const IsaKernels table = make_table();
  return table;
}

}  // namespace pensieve::cpu
