#include "gguf/value.h"

#include <limits>

#include "core/check.h"

namespace pensieve {
namespace {

template <class T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Reads a scalar of `type` from `p` as a signed or unsigned integer, or as a double.
struct Scalar {
  bool is_float = false;
  bool is_signed = false;
  int64_t i = 0;
  uint64_t u = 0;
  double f = 0;
};

Scalar load_scalar(GgufValueType type, const uint8_t* p) {
  Scalar s;
  switch (type) {
    case GgufValueType::kUint8:
      s.u = load<uint8_t>(p);
      break;
    case GgufValueType::kUint16:
      s.u = load<uint16_t>(p);
      break;
    case GgufValueType::kUint32:
      s.u = load<uint32_t>(p);
      break;
    case GgufValueType::kUint64:
      s.u = load<uint64_t>(p);
      break;
    case GgufValueType::kBool:
      s.u = load<uint8_t>(p) != 0;
      break;
    case GgufValueType::kInt8:
      s.is_signed = true;
      s.i = load<int8_t>(p);
      break;
    case GgufValueType::kInt16:
      s.is_signed = true;
      s.i = load<int16_t>(p);
      break;
    case GgufValueType::kInt32:
      s.is_signed = true;
      s.i = load<int32_t>(p);
      break;
    case GgufValueType::kInt64:
      s.is_signed = true;
      s.i = load<int64_t>(p);
      break;
    case GgufValueType::kFloat32:
      s.is_float = true;
      s.f = load<float>(p);
      break;
    case GgufValueType::kFloat64:
      s.is_float = true;
      s.f = load<double>(p);
      break;
    case GgufValueType::kString:
    case GgufValueType::kArray:
      PV_CHECK(false, "not a scalar type");
  }
  return s;
}

}  // namespace

std::string_view gguf_value_type_name(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8:
      return "uint8";
    case GgufValueType::kInt8:
      return "int8";
    case GgufValueType::kUint16:
      return "uint16";
    case GgufValueType::kInt16:
      return "int16";
    case GgufValueType::kUint32:
      return "uint32";
    case GgufValueType::kInt32:
      return "int32";
    case GgufValueType::kFloat32:
      return "float32";
    case GgufValueType::kBool:
      return "bool";
    case GgufValueType::kString:
      return "string";
    case GgufValueType::kArray:
      return "array";
    case GgufValueType::kUint64:
      return "uint64";
    case GgufValueType::kInt64:
      return "int64";
    case GgufValueType::kFloat64:
      return "float64";
  }
  return "unknown";
}

size_t gguf_scalar_bytes(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kBool:
      return 1;
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
      return 2;
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kFloat32:
      return 4;
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
    case GgufValueType::kFloat64:
      return 8;
    case GgufValueType::kString:
    case GgufValueType::kArray:
      return 0;
  }
  return 0;
}

bool GgufValue::is_integer() const {
  return gguf_scalar_bytes(type_) != 0 && type_ != GgufValueType::kFloat32 &&
         type_ != GgufValueType::kFloat64 && type_ != GgufValueType::kBool;
}

bool GgufValue::is_number() const {
  return gguf_scalar_bytes(type_) != 0 && type_ != GgufValueType::kBool;
}

std::optional<uint64_t> GgufValue::as_uint() const {
  if (!is_integer()) return std::nullopt;
  const Scalar s = load_scalar(type_, reinterpret_cast<const uint8_t*>(&bits_));
  if (s.is_signed) {
    if (s.i < 0) return std::nullopt;
    return static_cast<uint64_t>(s.i);
  }
  return s.u;
}

std::optional<int64_t> GgufValue::as_int() const {
  if (!is_integer()) return std::nullopt;
  const Scalar s = load_scalar(type_, reinterpret_cast<const uint8_t*>(&bits_));
  if (s.is_signed) return s.i;
  if (s.u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
  return static_cast<int64_t>(s.u);
}

std::optional<double> GgufValue::as_float() const {
  if (!is_number()) return std::nullopt;
  const Scalar s = load_scalar(type_, reinterpret_cast<const uint8_t*>(&bits_));
  if (s.is_float) return s.f;
  return s.is_signed ? static_cast<double>(s.i) : static_cast<double>(s.u);
}

std::optional<bool> GgufValue::as_bool() const {
  if (type_ != GgufValueType::kBool) return std::nullopt;
  return (bits_ & 0xff) != 0;
}

std::optional<std::string_view> GgufValue::as_string() const {
  if (type_ != GgufValueType::kString) return std::nullopt;
  return string_;
}

double GgufValue::float_at(size_t i) const {
  PV_CHECK(is_array() && i < count_ && elements_ != nullptr, "float_at({}) out of range", i);
  const Scalar s = load_scalar(element_type_, elements_ + i * gguf_scalar_bytes(element_type_));
  if (s.is_float) return s.f;
  return s.is_signed ? static_cast<double>(s.i) : static_cast<double>(s.u);
}

int64_t GgufValue::int_at(size_t i) const {
  PV_CHECK(is_array() && i < count_ && elements_ != nullptr, "int_at({}) out of range", i);
  const Scalar s = load_scalar(element_type_, elements_ + i * gguf_scalar_bytes(element_type_));
  if (s.is_float) {  // saturate: a float element may be NaN or far out of range
    if (!(s.f == s.f)) return 0;
    if (s.f >= 9.2e18) return std::numeric_limits<int64_t>::max();
    if (s.f <= -9.2e18) return std::numeric_limits<int64_t>::min();
    return static_cast<int64_t>(s.f);
  }
  return s.is_signed ? s.i : static_cast<int64_t>(s.u);
}

}  // namespace pensieve
