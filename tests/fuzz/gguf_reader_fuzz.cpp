// libFuzzer target: the GGUF reader must reject or accept any bytes without crashing, and every
// accessor of an accepted file must stay in bounds.
#include <cstddef>
#include <cstdint>
#include <span>

#include "gguf/reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = pensieve::GgufFile::parse(std::span<const uint8_t>(data, size), "fuzz");
  if (!file) return 0;
  size_t sink = 0;
  for (const pensieve::GgufKv& kv : (*file)->metadata()) {
    const pensieve::GgufValue& v = kv.value;
    sink += v.as_uint().value_or(0) + v.as_string().value_or("").size();
    sink += static_cast<size_t>(v.as_float().value_or(0) != 0) + v.as_bool().value_or(false);
    if (v.is_array()) {
      for (size_t i = 0; i < v.size() && i < 64; ++i) {
        if (v.element_type() == pensieve::GgufValueType::kString) {
          sink += v.string_at(i).size();
        } else if (v.element_type() == pensieve::GgufValueType::kArray) {
          sink += v.array_at(i).size();
        } else {
          sink += static_cast<size_t>(v.int_at(i)) + static_cast<size_t>(v.float_at(i) > 0);
        }
      }
    }
  }
  for (const pensieve::GgufTensorInfo& t : (*file)->tensors()) {
    // Touch the first and last byte of each tensor: they must lie inside the input.
    if (t.n_bytes > 0) sink += t.data[0] + t.data[t.n_bytes - 1];
    sink += t.shape_string().size();
  }
  return sink == 0xdeadbeef ? 1 : 0;
}
