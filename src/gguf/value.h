// GGUF metadata values: typed views into the mapped file (strings and arrays are not copied).
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace pensieve {

// On-disk ids of gguf_type.
enum class GgufValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

std::string_view gguf_value_type_name(GgufValueType type);
// Bytes of one scalar of `type`; 0 for string and array.
size_t gguf_scalar_bytes(GgufValueType type);

class GgufValue {
 public:
  GgufValueType type() const { return type_; }
  bool is_array() const { return type_ == GgufValueType::kArray; }
  bool is_integer() const;
  bool is_number() const;

  // Scalars. Integers convert when the value fits; floats accept any number.
  std::optional<uint64_t> as_uint() const;
  std::optional<int64_t> as_int() const;
  std::optional<double> as_float() const;
  std::optional<bool> as_bool() const;
  std::optional<std::string_view> as_string() const;

  // Arrays.
  GgufValueType element_type() const { return element_type_; }
  uint64_t size() const { return count_; }
  std::string_view string_at(size_t i) const { return strings_[i]; }
  const GgufValue& array_at(size_t i) const { return nested_[i]; }
  // Numeric element i converted to double (for scores) or int64 (for token types, ids).
  double float_at(size_t i) const;
  int64_t int_at(size_t i) const;

  // The encoded bytes of this value (type tag excluded), for copying it verbatim.
  std::span<const uint8_t> encoded() const { return encoded_; }

 private:
  friend class GgufParser;

  GgufValueType type_ = GgufValueType::kUint8;
  uint64_t bits_ = 0;  // scalar payload, little-endian bytes in a uint64
  std::string_view string_;
  GgufValueType element_type_ = GgufValueType::kUint8;
  uint64_t count_ = 0;
  const uint8_t* elements_ = nullptr;  // numeric array payload
  std::vector<std::string_view> strings_;
  std::vector<GgufValue> nested_;
  std::span<const uint8_t> encoded_;
};

}  // namespace pensieve
