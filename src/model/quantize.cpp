#include "model/quantize.h"

#include <algorithm>
#include <thread>
#include <vector>

#include "core/thread_pool.h"
#include "gguf/reader.h"
#include "gguf/writer.h"
#include "kernels/ref/quants.h"

namespace pensieve {
namespace {

struct Mix {
  std::string_view name;
  GgmlType base;
  GgmlType more_bits;  // output.weight, and attn_v / ffn_down in the layers that get more bits
};

// K-quant mixes in the spirit of the common *_K_M recipes: the most sensitive matrices get a
// wider type in the first and last eighth of the layers and in every third layer between.
constexpr Mix kMixes[] = {
    {"Q3_K_M", GgmlType::kQ3_K, GgmlType::kQ5_K},
    {"Q4_K_M", GgmlType::kQ4_K, GgmlType::kQ6_K},
    {"Q5_K_M", GgmlType::kQ5_K, GgmlType::kQ6_K},
};

bool layer_gets_more_bits(int64_t il, int64_t n_layer) {
  return il < n_layer / 8 || il >= 7 * n_layer / 8 || (il - n_layer / 8) % 3 == 2;
}

// Layer index of "blk.N.*", or -1.
int64_t layer_of(std::string_view name) {
  if (!name.starts_with("blk.")) return -1;
  int64_t il = 0;
  size_t i = 4;
  for (; i < name.size() && name[i] >= '0' && name[i] <= '9'; ++i) il = il * 10 + (name[i] - '0');
  return i > 4 ? il : -1;
}

// K-quants need rows that are whole 256-element super-blocks; other rows get a legacy type of
// at least the same precision.
GgmlType fallback_for(GgmlType type) {
  switch (type) {
    case GgmlType::kQ2_K:
    case GgmlType::kQ3_K:
      return GgmlType::kQ4_0;
    case GgmlType::kQ4_K:
      return GgmlType::kQ5_0;
    case GgmlType::kQ5_K:
      return GgmlType::kQ5_1;
    case GgmlType::kQ6_K:
      return GgmlType::kQ8_0;
    default:
      return type;
  }
}

}  // namespace

Expected<GgmlType> quantize_type_for(std::string_view target, std::string_view tensor_name,
                                     int64_t n_layer) {
  for (const Mix& mix : kMixes) {
    if (mix.name != target) continue;
    if (tensor_name == "output.weight") return mix.more_bits;
    const int64_t il = layer_of(tensor_name);
    const bool sensitive =
        tensor_name.ends_with("attn_v.weight") || tensor_name.ends_with("ffn_down.weight");
    if (sensitive && il >= 0 && layer_gets_more_bits(il, n_layer)) return mix.more_bits;
    return mix.base;
  }
  const auto type = ggml_type_from_name(target);
  if (!type || !ref::can_quantize(*type) || *type == GgmlType::kQ8_K) {
    return make_error(ErrorCode::kInvalidArgument,
                      "quantize: unknown target '{}' (types: F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 "
                      "Q8_0 Q2_K Q3_K Q4_K Q5_K Q6_K; mixes: Q3_K_M Q4_K_M Q5_K_M)",
                      target);
  }
  return *type;
}

Expected<QuantizeSummary> quantize_model(const QuantizeOptions& o) {
  PV_TRY(auto in, GgufFile::open(o.input_path));
  PV_TRY(std::string_view arch, in->get_string("general.architecture"));
  const auto n_layer = static_cast<int64_t>(in->get_uint_or(std::string(arch) + ".block_count", 0));
  PV_TRY_VOID(quantize_type_for(o.target, "", n_layer));  // validates the target name up front
  const int n_threads = o.n_threads > 0
                            ? o.n_threads
                            : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  ThreadPool pool(n_threads);
  GgufWriter w;
  for (const GgufKv& kv : in->metadata()) w.copy(kv.key, kv.value);
  w.set_string("general.quantization_target", o.target);
  QuantizeSummary summary;
  summary.input_bytes = in->size_bytes();
  for (const GgufTensorInfo& t : in->tensors()) {
    const std::span<const int64_t> ne(t.ne, static_cast<size_t>(t.n_dims));
    const bool is_matrix = t.n_dims == 2 && std::string_view(t.name).ends_with(".weight");
    if (!is_matrix || !ref::can_dequantize(t.type)) {
      PV_TRY_VOID(w.add_tensor(t.name, t.type, ne, t.bytes()));
      ++summary.n_kept;
      continue;
    }
    PV_TRY(GgmlType type, quantize_type_for(o.target, t.name, n_layer));
    if (t.ne[0] % ggml_type_traits(type).block_elements != 0) {
      type = fallback_for(type);
      ++summary.n_fallbacks;
    }
    if (type == t.type) {
      PV_TRY_VOID(w.add_tensor(t.name, t.type, ne, t.bytes()));
      ++summary.n_quantized;
      continue;
    }
    const GgufTensorInfo* src = &t;
    auto fill = [src, type, &pool](std::span<uint8_t> out) {
      const int64_t n_cols = src->ne[0];
      const int64_t n_rows = static_cast<int64_t>(src->n_elements) / n_cols;
      const size_t in_row = ggml_row_bytes(ggml_type_traits(src->type), n_cols);
      const size_t out_row = ggml_row_bytes(ggml_type_traits(type), n_cols);
      pool.parallel_for(n_rows, [&](int64_t begin, int64_t end) {
        std::vector<float> row(static_cast<size_t>(n_cols));
        for (int64_t r = begin; r < end; ++r) {
          ref::dequantize_row(src->type, src->data + r * in_row, row.data(), n_cols);
          ref::quantize_row(type, row.data(), out.data() + r * out_row, n_cols);
        }
      });
    };
    PV_TRY_VOID(w.add_tensor_generated(t.name, type, ne, fill));
    ++summary.n_quantized;
  }
  PV_TRY_VOID(w.write(o.output_path));
  PV_TRY(auto out, GgufFile::open(o.output_path));
  summary.output_bytes = out->size_bytes();
  return summary;
}

}  // namespace pensieve
