#include "jinja/value.h"

#include "jinja/text.h"

namespace pensieve::jinja {

namespace {

// Objects this small are searched linearly; larger ones keep a hash index.
constexpr size_t kIndexThreshold = 16;
// Containers nested deeper than this print as "[...]" and compare unequal (cycles end here).
constexpr int kMaxValueDepth = 128;

}  // namespace

const Value* Object::find(std::string_view key) const {
  if (!index_.empty()) {
    auto it = index_.find(std::string(key));
    return it == index_.end() ? nullptr : &entries_[it->second].second;
  }
  for (const auto& [k, v] : entries_) {
    if (k == key) return &v;
  }
  return nullptr;
}

Value* Object::find(std::string_view key) {
  return const_cast<Value*>(static_cast<const Object*>(this)->find(key));
}

void Object::set(std::string key, Value value) {
  if (Value* existing = find(key)) {
    *existing = std::move(value);
    return;
  }
  entries_.emplace_back(std::move(key), std::move(value));
  if (!index_.empty()) {
    index_.emplace(entries_.back().first, entries_.size() - 1);
  } else if (entries_.size() > kIndexThreshold) {
    reindex();
  }
}

bool Object::erase(std::string_view key) {
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (entries_[i].first == key) {
      entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(i));
      index_.clear();
      if (entries_.size() > kIndexThreshold) reindex();
      return true;
    }
  }
  return false;
}

void Object::reindex() {
  index_.clear();
  for (size_t i = 0; i < entries_.size(); ++i) index_.emplace(entries_[i].first, i);
}

Value Value::list(Array items) {
  Value v;
  v.data_ = std::make_shared<Array>(std::move(items));
  return v;
}

Value Value::tuple(Array items) {
  Value v = list(std::move(items));
  v.is_tuple_ = true;
  return v;
}

Value Value::dict(std::initializer_list<std::pair<std::string, Value>> entries) {
  Object o;
  for (const auto& [k, val] : entries) o.set(k, val);
  return dict(std::move(o));
}

Value Value::dict(Object object) {
  Value v;
  v.data_ = std::make_shared<Object>(std::move(object));
  return v;
}

Value Value::callable(std::string name, decltype(Callable::fn) fn) {
  Value v;
  v.data_ = std::make_shared<const Callable>(Callable{std::move(name), std::move(fn)});
  return v;
}

const void* Value::container_id() const {
  if (is_array()) return std::get<ArrayPtr>(data_).get();
  if (is_object()) return std::get<ObjectPtr>(data_).get();
  return nullptr;
}

bool Value::truthy() const {
  switch (kind()) {
    case Kind::kUndefined:
    case Kind::kNone:
      return false;
    case Kind::kBool:
      return as_bool();
    case Kind::kInt:
      return as_int() != 0;
    case Kind::kFloat:
      return as_float() != 0.0;
    case Kind::kString:
      return !str().empty();
    case Kind::kArray:
      return !array().empty();
    case Kind::kObject:
      return !object().empty();
    case Kind::kCallable:
      return true;
  }
  return false;
}

std::string Value::to_str() const {
  switch (kind()) {
    case Kind::kUndefined:
      return "";
    case Kind::kString:
      return str();
    default: {
      std::string out;
      write_repr(out, 0);
      return out;
    }
  }
}

std::string Value::repr() const {
  std::string out;
  write_repr(out, 0);
  return out;
}

void Value::write_repr(std::string& out, int depth) const {
  switch (kind()) {
    case Kind::kUndefined:
      return;
    case Kind::kNone:
      out += "None";
      return;
    case Kind::kBool:
      out += as_bool() ? "True" : "False";
      return;
    case Kind::kInt:
      out += std::to_string(as_int());
      return;
    case Kind::kFloat:
      out += python_float_repr(as_float());
      return;
    case Kind::kString:
      out += python_string_repr(str());
      return;
    case Kind::kArray: {
      if (depth >= kMaxValueDepth) {
        out += "[...]";
        return;
      }
      out += is_tuple_ ? '(' : '[';
      bool first = true;
      for (const Value& item : array()) {
        if (!first) out += ", ";
        first = false;
        item.write_repr(out, depth + 1);
      }
      if (is_tuple_ && array().size() == 1) out += ',';
      out += is_tuple_ ? ')' : ']';
      return;
    }
    case Kind::kObject: {
      if (depth >= kMaxValueDepth) {
        out += "{...}";
        return;
      }
      out += object().is_namespace ? "<Namespace {" : "{";
      bool first = true;
      for (const auto& [k, v] : object().entries()) {
        if (!first) out += ", ";
        first = false;
        out += python_string_repr(k);
        out += ": ";
        v.write_repr(out, depth + 1);
      }
      out += object().is_namespace ? "}>" : "}";
      return;
    }
    case Kind::kCallable:
      out += "<function " + callable().name + ">";
      return;
  }
}

bool Value::equals(const Value& other) const { return equals_at(other, 0); }

bool Value::equals_at(const Value& other, int depth) const {
  if (depth >= kMaxValueDepth) return false;
  if (is_number() && other.is_number()) {
    if (is_float() || other.is_float()) return as_float() == other.as_float();
    return as_int() == other.as_int();
  }
  if (kind() != other.kind()) return false;
  switch (kind()) {
    case Kind::kUndefined:
    case Kind::kNone:
      return true;
    case Kind::kString:
      return str() == other.str();
    case Kind::kArray: {
      const Array& a = array();
      const Array& b = other.array();
      if (&a == &b) return true;
      if (a.size() != b.size()) return false;
      for (size_t i = 0; i < a.size(); ++i) {
        if (!a[i].equals_at(b[i], depth + 1)) return false;
      }
      return true;
    }
    case Kind::kObject: {
      const Object& a = object();
      const Object& b = other.object();
      if (&a == &b) return true;
      if (a.size() != b.size()) return false;
      for (const auto& [k, v] : a.entries()) {
        const Value* w = b.find(k);
        if (w == nullptr || !v.equals_at(*w, depth + 1)) return false;
      }
      return true;
    }
    case Kind::kCallable:
      return std::get<CallablePtr>(data_) == std::get<CallablePtr>(other.data_);
    default:
      return false;
  }
}

std::string_view Value::type_name() const {
  switch (kind()) {
    case Kind::kUndefined:
      return "undefined";
    case Kind::kNone:
      return "NoneType";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return "str";
    case Kind::kArray:
      return "list";
    case Kind::kObject:
      return object().is_namespace ? "Namespace" : "dict";
    case Kind::kCallable:
      return "function";
  }
  return "?";
}

Value Value::deep_copy() const { return deep_copy_at(0); }

Value Value::deep_copy_at(int depth) const {
  if (depth >= kMaxValueDepth) return none();
  if (is_array()) {
    Array items;
    items.reserve(array().size());
    for (const Value& item : array()) items.push_back(item.deep_copy_at(depth + 1));
    return is_tuple_ ? Value::tuple(std::move(items)) : Value::list(std::move(items));
  }
  if (is_object()) {
    Object o;
    o.is_namespace = object().is_namespace;
    for (const auto& [k, v] : object().entries()) o.set(k, v.deep_copy_at(depth + 1));
    return Value::dict(std::move(o));
  }
  return *this;
}

}  // namespace pensieve::jinja
