#include "gguf/writer.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "gguf/reader.h"

namespace pensieve {
namespace {

template <class T>
void put(std::vector<uint8_t>* out, T v) {
  const size_t at = out->size();
  out->resize(at + sizeof v);
  std::memcpy(out->data() + at, &v, sizeof v);
}

void put_string(std::vector<uint8_t>* out, std::string_view s) {
  put<uint64_t>(out, s.size());
  const size_t at = out->size();
  out->resize(at + s.size());
  if (!s.empty()) std::memcpy(out->data() + at, s.data(), s.size());
}

template <class T>
std::vector<uint8_t> encode_scalar(T v) {
  std::vector<uint8_t> out;
  put(&out, v);
  return out;
}

template <class T>
std::vector<uint8_t> encode_array(GgufValueType element_type, std::span<const T> values) {
  std::vector<uint8_t> out;
  put<uint32_t>(&out, static_cast<uint32_t>(element_type));
  put<uint64_t>(&out, values.size());
  for (const T& v : values) put(&out, v);
  return out;
}

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

}  // namespace

void GgufWriter::set_raw(std::string_view key, GgufValueType type, std::vector<uint8_t> encoded) {
  for (Kv& kv : kvs_) {
    if (kv.key == key) {
      kv.type = type;
      kv.encoded = std::move(encoded);
      return;
    }
  }
  kvs_.push_back(Kv{std::string(key), type, std::move(encoded)});
}

void GgufWriter::set_u8(std::string_view k, uint8_t v) {
  set_raw(k, GgufValueType::kUint8, encode_scalar(v));
}
void GgufWriter::set_i8(std::string_view k, int8_t v) {
  set_raw(k, GgufValueType::kInt8, encode_scalar(v));
}
void GgufWriter::set_u16(std::string_view k, uint16_t v) {
  set_raw(k, GgufValueType::kUint16, encode_scalar(v));
}
void GgufWriter::set_i16(std::string_view k, int16_t v) {
  set_raw(k, GgufValueType::kInt16, encode_scalar(v));
}
void GgufWriter::set_u32(std::string_view k, uint32_t v) {
  set_raw(k, GgufValueType::kUint32, encode_scalar(v));
}
void GgufWriter::set_i32(std::string_view k, int32_t v) {
  set_raw(k, GgufValueType::kInt32, encode_scalar(v));
}
void GgufWriter::set_u64(std::string_view k, uint64_t v) {
  set_raw(k, GgufValueType::kUint64, encode_scalar(v));
}
void GgufWriter::set_i64(std::string_view k, int64_t v) {
  set_raw(k, GgufValueType::kInt64, encode_scalar(v));
}
void GgufWriter::set_f32(std::string_view k, float v) {
  set_raw(k, GgufValueType::kFloat32, encode_scalar(v));
}
void GgufWriter::set_f64(std::string_view k, double v) {
  set_raw(k, GgufValueType::kFloat64, encode_scalar(v));
}
void GgufWriter::set_bool(std::string_view k, bool v) {
  set_raw(k, GgufValueType::kBool, encode_scalar<uint8_t>(v ? 1 : 0));
}
void GgufWriter::set_string(std::string_view k, std::string_view v) {
  std::vector<uint8_t> out;
  put_string(&out, v);
  set_raw(k, GgufValueType::kString, std::move(out));
}

void GgufWriter::set_strings(std::string_view k, std::span<const std::string> v) {
  std::vector<uint8_t> out;
  put<uint32_t>(&out, static_cast<uint32_t>(GgufValueType::kString));
  put<uint64_t>(&out, v.size());
  for (const std::string& s : v) put_string(&out, s);
  set_raw(k, GgufValueType::kArray, std::move(out));
}
void GgufWriter::set_f32s(std::string_view k, std::span<const float> v) {
  set_raw(k, GgufValueType::kArray, encode_array(GgufValueType::kFloat32, v));
}
void GgufWriter::set_i32s(std::string_view k, std::span<const int32_t> v) {
  set_raw(k, GgufValueType::kArray, encode_array(GgufValueType::kInt32, v));
}
void GgufWriter::set_u32s(std::string_view k, std::span<const uint32_t> v) {
  set_raw(k, GgufValueType::kArray, encode_array(GgufValueType::kUint32, v));
}

void GgufWriter::copy(std::string_view key, const GgufValue& value) {
  set_raw(key, value.type(), std::vector<uint8_t>(value.encoded().begin(), value.encoded().end()));
}

void GgufWriter::set_alignment(uint32_t alignment) {
  PV_CHECK(alignment != 0 && (alignment & (alignment - 1)) == 0, "alignment must be 2^k");
  alignment_ = alignment;
  set_u32("general.alignment", alignment);
}

Expected<void> GgufWriter::check_tensor(std::string_view name, GgmlType type,
                                        std::span<const int64_t> ne, size_t n_bytes) const {
  if (name.empty()) return make_error(ErrorCode::kInvalidArgument, "gguf write: empty tensor name");
  for (const Tensor& t : tensors_) {
    if (t.name == name) {
      return make_error(ErrorCode::kInvalidArgument, "gguf write: duplicate tensor '{}'", name);
    }
  }
  if (ne.empty() || ne.size() > kGgufMaxDims) {
    return make_error(ErrorCode::kInvalidArgument, "gguf write: tensor '{}' has {} dimensions",
                      name, ne.size());
  }
  const GgmlTypeTraits& traits = ggml_type_traits(type);
  uint64_t n_elements = 1;
  for (int64_t d : ne) {
    if (d <= 0) {
      return make_error(ErrorCode::kInvalidArgument, "gguf write: tensor '{}' has dimension {}",
                        name, d);
    }
    n_elements *= static_cast<uint64_t>(d);
  }
  if (ne[0] % traits.block_elements != 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "gguf write: tensor '{}' row {} is not a multiple of {}'s block of {}", name,
                      ne[0], traits.name, traits.block_elements);
  }
  const uint64_t expected = n_elements / traits.block_elements * traits.block_bytes;
  if (expected != n_bytes) {
    return make_error(ErrorCode::kInvalidArgument,
                      "gguf write: tensor '{}' has {} bytes of data, its shape needs {}", name,
                      n_bytes, expected);
  }
  return {};
}

size_t GgufWriter::expected_bytes(GgmlType type, std::span<const int64_t> ne) {
  const GgmlTypeTraits& traits = ggml_type_traits(type);
  uint64_t n = 1;
  for (int64_t d : ne) n *= static_cast<uint64_t>(std::max<int64_t>(d, 0));
  return n / traits.block_elements * traits.block_bytes;
}

Expected<void> GgufWriter::add_tensor_generated(std::string_view name, GgmlType type,
                                                std::span<const int64_t> ne, TensorFill fill) {
  const size_t n_bytes = expected_bytes(type, ne);
  PV_TRY_VOID(check_tensor(name, type, ne, n_bytes));
  tensors_.push_back(
      Tensor{std::string(name), type, {ne.begin(), ne.end()}, {}, {}, std::move(fill), n_bytes});
  return {};
}

std::span<const uint8_t> GgufWriter::tensor_bytes(const Tensor& t,
                                                  std::vector<uint8_t>* buffer) const {
  if (!t.fill) return t.data;
  buffer->assign(t.n_bytes, 0);
  t.fill(*buffer);
  return *buffer;
}

Expected<void> GgufWriter::add_tensor(std::string_view name, GgmlType type,
                                      std::span<const int64_t> ne, std::span<const uint8_t> data) {
  PV_TRY_VOID(check_tensor(name, type, ne, data.size()));
  tensors_.push_back(
      Tensor{std::string(name), type, {ne.begin(), ne.end()}, data, {}, {}, data.size()});
  return {};
}

Expected<void> GgufWriter::add_tensor_owned(std::string_view name, GgmlType type,
                                            std::span<const int64_t> ne,
                                            std::vector<uint8_t> data) {
  PV_TRY_VOID(check_tensor(name, type, ne, data.size()));
  const size_t n_bytes = data.size();
  tensors_.push_back(
      Tensor{std::string(name), type, {ne.begin(), ne.end()}, {}, std::move(data), {}, n_bytes});
  tensors_.back().data = tensors_.back().owned;
  return {};
}

std::vector<uint8_t> GgufWriter::header_bytes(std::vector<uint64_t>* offsets) const {
  std::vector<uint8_t> out;
  put<uint32_t>(&out, kGgufMagic);
  put<uint32_t>(&out, 3);
  put<uint64_t>(&out, tensors_.size());
  put<uint64_t>(&out, kvs_.size());
  for (const Kv& kv : kvs_) {
    put_string(&out, kv.key);
    put<uint32_t>(&out, static_cast<uint32_t>(kv.type));
    out.insert(out.end(), kv.encoded.begin(), kv.encoded.end());
  }
  uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    put_string(&out, t.name);
    put<uint32_t>(&out, static_cast<uint32_t>(t.ne.size()));
    for (int64_t d : t.ne) put<uint64_t>(&out, static_cast<uint64_t>(d));
    put<uint32_t>(&out, static_cast<uint32_t>(t.type));
    put<uint64_t>(&out, offset);
    offsets->push_back(offset);
    offset = align_up(offset + t.n_bytes, alignment_);
  }
  out.resize(align_up(out.size(), alignment_), 0);
  return out;
}

std::vector<uint8_t> GgufWriter::to_bytes() const {
  std::vector<uint64_t> offsets;
  std::vector<uint8_t> out = header_bytes(&offsets);
  const size_t data_start = out.size();
  std::vector<uint8_t> buffer;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    out.resize(data_start + offsets[i], 0);
    const auto bytes = tensor_bytes(tensors_[i], &buffer);
    out.insert(out.end(), bytes.begin(), bytes.end());
  }
  return out;
}

Expected<void> GgufWriter::write(const std::string& path) const {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) {
    return make_error(ErrorCode::kIo, "gguf write: {}: cannot create: {}", path,
                      std::strerror(errno));
  }
  std::vector<uint64_t> offsets;
  const std::vector<uint8_t> header = header_bytes(&offsets);
  bool ok = std::fwrite(header.data(), 1, header.size(), f) == header.size();
  uint64_t written = 0;  // bytes of the data section so far
  std::vector<uint8_t> buffer;
  static const uint8_t kZeros[256] = {};
  for (size_t i = 0; i < tensors_.size() && ok; ++i) {
    while (written < offsets[i] && ok) {
      const size_t n = std::min<uint64_t>(sizeof kZeros, offsets[i] - written);
      ok = std::fwrite(kZeros, 1, n, f) == n;
      written += n;
    }
    const auto data = tensor_bytes(tensors_[i], &buffer);
    ok = ok && std::fwrite(data.data(), 1, data.size(), f) == data.size();
    written += data.size();
  }
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) {
    return make_error(ErrorCode::kIo, "gguf write: {}: write failed: {}", path,
                      std::strerror(errno));
  }
  return {};
}

}  // namespace pensieve
