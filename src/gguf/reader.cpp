#include "gguf/reader.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace pensieve {

// Walks the header with bounds checks; every failure names the file and what was being read.
class GgufParser {
 public:
  GgufParser(GgufFile& file) : file_(file), bytes_(file.bytes_) {}

  Expected<void> parse() {
    PV_TRY_VOID(parse_header());
    for (uint64_t i = 0; i < n_kv_; ++i) PV_TRY_VOID(parse_kv(i));
    PV_TRY_VOID(read_alignment());
    for (uint64_t i = 0; i < n_tensors_; ++i) PV_TRY_VOID(parse_tensor_info(i));
    return validate_tensor_data();
  }

 private:
  template <class... Args>
  Unexpected<Error> fail(fmt::format_string<Args...> format, Args&&... args) {
    return make_error(ErrorCode::kInvalidFormat, "gguf: {}: {}", file_.name_,
                      fmt::format(format, std::forward<Args>(args)...));
  }

  size_t remaining() const { return bytes_.size() - pos_; }

  template <class T>
  bool read(T* out) {
    if (remaining() < sizeof(T)) return false;
    std::memcpy(out, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }

  // Reads a gguf_string (u64 length + bytes) as a view into the file.
  Expected<std::string_view> read_string(std::string_view what) {
    uint64_t length = 0;
    if (!read(&length)) return fail("truncated while reading the length of {}", what);
    if (length > remaining()) {
      return fail("{}: string length {} runs past the end of the file ({} bytes left)", what,
                  length, remaining());
    }
    std::string_view s(reinterpret_cast<const char*>(bytes_.data() + pos_), length);
    pos_ += length;
    return s;
  }

  Expected<void> parse_header() {
    uint32_t magic = 0;
    if (!read(&magic)) return fail("file too small for a GGUF header ({} bytes)", bytes_.size());
    if (magic != kGgufMagic) return fail("not a GGUF file (bad magic)");
    if (!read(&file_.version_)) return fail("truncated header: missing version");
    const uint32_t v = file_.version_;
    if (v != 2 && v != 3) {
      const uint32_t swapped = __builtin_bswap32(v);
      if (swapped >= 1 && swapped <= 3) {
        return fail("big-endian GGUF (version {} byte-swapped) is not supported", swapped);
      }
      if (v == 1) {
        return fail(
            "GGUF version 1 is obsolete and not supported (32-bit counts); convert the model "
            "to GGUF v3");
      }
      return fail("unsupported GGUF version {} (supported: 2, 3)", v);
    }
    if (!read(&n_tensors_)) return fail("truncated header: missing tensor count");
    if (!read(&n_kv_)) return fail("truncated header: missing metadata count");
    // Each tensor info takes >= 8+4+8+4+8 bytes, each key/value >= 8+4+1: bound the counts by
    // the file size before allocating anything.
    if (n_tensors_ > remaining() / 32) {
      return fail("header: tensor count {} cannot fit in a {}-byte file", n_tensors_,
                  bytes_.size());
    }
    if (n_kv_ > remaining() / 13) {
      return fail("header: metadata count {} cannot fit in a {}-byte file", n_kv_, bytes_.size());
    }
    file_.kvs_.reserve(n_kv_);
    file_.tensors_.reserve(n_tensors_);
    return {};
  }

  Expected<void> parse_kv(uint64_t index) {
    PV_TRY(std::string_view key, read_string(fmt::format("metadata key #{}", index)));
    if (key.empty()) return fail("metadata key #{} is empty", index);
    if (file_.kv_index_.count(key) != 0) return fail("duplicate metadata key '{}'", key);
    uint32_t type = 0;
    if (!read(&type)) return fail("metadata '{}': truncated before its type", key);
    GgufKv kv{key, {}};
    PV_TRY_VOID(parse_value(key, type, /*depth=*/0, &kv.value));
    file_.kv_index_.emplace(key, file_.kvs_.size());
    file_.kvs_.push_back(std::move(kv));
    return {};
  }

  Expected<void> parse_value(std::string_view key, uint32_t type_id, int depth, GgufValue* out) {
    if (type_id > static_cast<uint32_t>(GgufValueType::kFloat64)) {
      return fail("metadata '{}': unknown value type {}", key, type_id);
    }
    const auto type = static_cast<GgufValueType>(type_id);
    out->type_ = type;
    const size_t start = pos_;
    if (type == GgufValueType::kString) {
      PV_TRY(out->string_, read_string(fmt::format("metadata '{}'", key)));
    } else if (type == GgufValueType::kArray) {
      PV_TRY_VOID(parse_array(key, depth, out));
    } else {
      const size_t n = gguf_scalar_bytes(type);
      if (remaining() < n)
        return fail("metadata '{}': truncated {} value", key, gguf_value_type_name(type));
      std::memcpy(&out->bits_, bytes_.data() + pos_, n);
      pos_ += n;
    }
    out->encoded_ = bytes_.subspan(start, pos_ - start);
    return {};
  }

  Expected<void> parse_array(std::string_view key, int depth, GgufValue* out) {
    if (depth >= 4) return fail("metadata '{}': arrays nested deeper than 4 levels", key);
    uint32_t element_type = 0;
    uint64_t count = 0;
    if (!read(&element_type) || !read(&count)) {
      return fail("metadata '{}': truncated array header", key);
    }
    if (element_type > static_cast<uint32_t>(GgufValueType::kFloat64)) {
      return fail("metadata '{}': array of unknown value type {}", key, element_type);
    }
    out->element_type_ = static_cast<GgufValueType>(element_type);
    out->count_ = count;
    const size_t scalar = gguf_scalar_bytes(out->element_type_);
    if (scalar != 0) {
      if (count > remaining() / scalar) {
        return fail("metadata '{}': array of {} {} runs past the end of the file", key, count,
                    gguf_value_type_name(out->element_type_));
      }
      out->elements_ = bytes_.data() + pos_;
      pos_ += count * scalar;
      return {};
    }
    const size_t min_element = out->element_type_ == GgufValueType::kString ? 8 : 12;
    if (count > remaining() / min_element) {
      return fail("metadata '{}': array count {} cannot fit in the file", key, count);
    }
    if (out->element_type_ == GgufValueType::kString) {
      out->strings_.reserve(count);
      for (uint64_t i = 0; i < count; ++i) {
        PV_TRY(std::string_view s, read_string(fmt::format("metadata '{}'[{}]", key, i)));
        out->strings_.push_back(s);
      }
      return {};
    }
    out->nested_.resize(count);
    for (uint64_t i = 0; i < count; ++i) {
      PV_TRY_VOID(parse_value(key, static_cast<uint32_t>(GgufValueType::kArray), depth + 1,
                              &out->nested_[i]));
    }
    return {};
  }

  Expected<void> read_alignment() {
    const GgufValue* v = file_.find("general.alignment");
    if (v == nullptr) return {};
    const auto alignment = v->as_uint();
    if (!alignment || *alignment == 0 || (*alignment & (*alignment - 1)) != 0 ||
        *alignment > (1u << 20)) {
      return fail("metadata 'general.alignment' must be a power of two up to 1 MiB");
    }
    file_.alignment_ = *alignment;
    return {};
  }

  Expected<void> parse_tensor_info(uint64_t index) {
    PV_TRY(std::string_view name, read_string(fmt::format("tensor #{} name", index)));
    if (name.empty()) return fail("tensor #{} has an empty name", index);
    if (file_.tensor_index_.count(name) != 0) return fail("duplicate tensor name '{}'", name);
    GgufTensorInfo t;
    t.name = name;
    uint32_t n_dims = 0;
    if (!read(&n_dims)) return fail("tensor '{}': truncated before its dimension count", name);
    if (n_dims == 0 || n_dims > kGgufMaxDims) {
      return fail("tensor '{}': {} dimensions (must be 1..{})", name, n_dims, kGgufMaxDims);
    }
    t.n_dims = static_cast<int>(n_dims);
    uint64_t n_elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t dim = 0;
      if (!read(&dim)) return fail("tensor '{}': truncated dimensions", name);
      if (dim == 0 || dim > (uint64_t{1} << 62)) {
        return fail("tensor '{}': dimension {} is {} (must be > 0)", name, d, dim);
      }
      if (__builtin_mul_overflow(n_elements, dim, &n_elements) ||
          n_elements > (uint64_t{1} << 62)) {
        return fail("tensor '{}': element count overflows (dimension {} = {})", name, d, dim);
      }
      t.ne[d] = static_cast<int64_t>(dim);
    }
    t.n_elements = n_elements;
    uint32_t type_id = 0;
    if (!read(&type_id)) return fail("tensor '{}': truncated before its type", name);
    const auto traits = ggml_type_traits(type_id);
    if (!traits) return fail("tensor '{}': unknown tensor type id {}", name, type_id);
    t.type = traits->type;
    if (t.ne[0] % traits->block_elements != 0) {
      return fail("tensor '{}': row length {} is not a multiple of the {} block size {}", name,
                  t.ne[0], traits->name, traits->block_elements);
    }
    t.n_bytes = n_elements / traits->block_elements * traits->block_bytes;
    if (!read(&t.offset)) return fail("tensor '{}': truncated before its data offset", name);
    if (t.offset % file_.alignment_ != 0) {
      return fail("tensor '{}': data offset {} is not a multiple of the alignment {}", name,
                  t.offset, file_.alignment_);
    }
    file_.tensor_index_.emplace(name, file_.tensors_.size());
    file_.tensors_.push_back(t);
    return {};
  }

  Expected<void> validate_tensor_data() {
    const uint64_t a = file_.alignment_;
    const uint64_t data_offset = (pos_ + a - 1) / a * a;
    file_.data_offset_ = data_offset;
    const uint64_t size = bytes_.size();
    if (file_.tensors_.empty()) return {};
    if (data_offset > size) return fail("data section starts past the end of the file");
    const uint64_t data_bytes = size - data_offset;
    for (GgufTensorInfo& t : file_.tensors_) {
      if (t.offset > data_bytes || t.n_bytes > data_bytes - t.offset) {
        return fail("tensor '{}': data [{}, +{}) ends past the end of the file ({} data bytes)",
                    t.name, t.offset, t.n_bytes, data_bytes);
      }
      t.data = bytes_.data() + data_offset + t.offset;
    }
    std::vector<const GgufTensorInfo*> by_offset;
    by_offset.reserve(file_.tensors_.size());
    for (const GgufTensorInfo& t : file_.tensors_) by_offset.push_back(&t);
    std::sort(by_offset.begin(), by_offset.end(),
              [](const auto* x, const auto* y) { return x->offset < y->offset; });
    for (size_t i = 1; i < by_offset.size(); ++i) {
      const GgufTensorInfo& prev = *by_offset[i - 1];
      if (prev.offset + prev.n_bytes > by_offset[i]->offset) {
        return fail("tensor '{}': data overlaps tensor '{}'", by_offset[i]->name, prev.name);
      }
    }
    return {};
  }

  GgufFile& file_;
  std::span<const uint8_t> bytes_;
  size_t pos_ = 0;
  uint64_t n_tensors_ = 0;
  uint64_t n_kv_ = 0;
};

std::string GgufTensorInfo::shape_string() const {
  std::string s = "[";
  for (int d = 0; d < n_dims; ++d) s += fmt::format("{}{}", d ? ", " : "", ne[d]);
  return s + "]";
}

Expected<std::unique_ptr<GgufFile>> GgufFile::open(const std::string& path, MmapFile::Mode mode) {
  PV_TRY(MmapFile map, MmapFile::open(path, mode));
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->name_ = path;
  file->map_ = std::move(map);
  file->bytes_ = file->map_.bytes();
  GgufParser parser(*file);
  PV_TRY_VOID(parser.parse());
  return file;
}

Expected<std::unique_ptr<GgufFile>> GgufFile::parse(std::span<const uint8_t> bytes,
                                                    std::string name) {
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->name_ = std::move(name);
  file->bytes_ = bytes;
  GgufParser parser(*file);
  PV_TRY_VOID(parser.parse());
  return file;
}

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kvs_[it->second].value;
}

namespace {

Unexpected<Error> missing(const std::string& file, std::string_view key) {
  return make_error(ErrorCode::kNotFound, "gguf: {}: metadata '{}' is missing", file, key);
}

Unexpected<Error> wrong_type(const std::string& file, std::string_view key, const GgufValue& v,
                             std::string_view expected) {
  return make_error(ErrorCode::kInvalidFormat, "gguf: {}: metadata '{}' has type {}, expected {}",
                    file, key, gguf_value_type_name(v.type()), expected);
}

}  // namespace

Expected<std::string_view> GgufFile::get_string(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return missing(name_, key);
  if (auto s = v->as_string()) return *s;
  return wrong_type(name_, key, *v, "string");
}

Expected<uint64_t> GgufFile::get_uint(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return missing(name_, key);
  if (auto u = v->as_uint()) return *u;
  return wrong_type(name_, key, *v, "a non-negative integer");
}

Expected<double> GgufFile::get_float(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return missing(name_, key);
  if (auto f = v->as_float()) return *f;
  return wrong_type(name_, key, *v, "a number");
}

Expected<bool> GgufFile::get_bool(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return missing(name_, key);
  if (auto b = v->as_bool()) return *b;
  return wrong_type(name_, key, *v, "bool");
}

Expected<const GgufValue*> GgufFile::get_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return missing(name_, key);
  if (v->is_array()) return v;
  return wrong_type(name_, key, *v, "array");
}

std::string_view GgufFile::get_string_or(std::string_view key, std::string_view fallback) const {
  const GgufValue* v = find(key);
  auto s = v ? v->as_string() : std::nullopt;
  return s ? *s : fallback;
}

uint64_t GgufFile::get_uint_or(std::string_view key, uint64_t fallback) const {
  const GgufValue* v = find(key);
  auto u = v ? v->as_uint() : std::nullopt;
  return u ? *u : fallback;
}

double GgufFile::get_float_or(std::string_view key, double fallback) const {
  const GgufValue* v = find(key);
  auto f = v ? v->as_float() : std::nullopt;
  return f ? *f : fallback;
}

bool GgufFile::get_bool_or(std::string_view key, bool fallback) const {
  const GgufValue* v = find(key);
  auto b = v ? v->as_bool() : std::nullopt;
  return b ? *b : fallback;
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

uint64_t GgufFile::tensor_bytes_total() const {
  uint64_t total = 0;
  for (const GgufTensorInfo& t : tensors_) total += t.n_bytes;
  return total;
}

}  // namespace pensieve
