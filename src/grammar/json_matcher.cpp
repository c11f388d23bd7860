// The byte-level JSON-with-schema recognizer. Each step copies one stack into a work buffer,
// applies the byte and emits zero or more successor stacks (more than one only at unions).
#include "grammar/json_matcher.h"

#include <algorithm>
#include <utility>

namespace pensieve {

using grammar::Node;
using grammar::NodeKind;
using Frame = JsonMatcher::Frame;
using State = JsonMatcher::State;

namespace {

enum FrameKind : uint8_t { kRoot, kObject, kArray, kString, kNumber, kLiteral };

enum Phase : uint8_t {
  kRootValue,
  kRootDone,
  // objects
  kObjStart,
  kObjKey,
  kObjColon,
  kObjAfterColon,
  kObjValue,
  kObjAfterValue,
  kObjAfterComma,
  kObjKeyStart,
  // arrays
  kArrStart,
  kArrAfterValue,
  kArrAfterComma,
  kArrValue,
  // numbers
  kNumMinus,
  kNumZero,
  kNumInt,
  kNumDot,
  kNumFrac,
  kNumExp,
  kNumExpSign,
  kNumExpDigits,
};

enum Lex : uint8_t { kLexNormal, kLexEscape, kLexHex, kLexCont };
enum LexResult { kLexReject, kLexMore, kLexClose };

constexpr uint32_t kAdditionalKey = 0xffffffffu;
constexpr int kMaxUnionHops = 16;  // bounds unions that refer to themselves through $ref

bool is_digit(uint8_t b) { return b >= '0' && b <= '9'; }
bool is_hex(uint8_t b) { return is_digit(b) || (b >= 'a' && b <= 'f') || (b >= 'A' && b <= 'F'); }

// One byte of a JSON string body (after the opening quote).
LexResult lex_string(Frame& f, uint8_t b) {
  switch (f.lex) {
    case kLexNormal:
      if (b == '"') return kLexClose;
      if (b == '\\') {
        f.lex = kLexEscape;
        return kLexMore;
      }
      if (b < 0x20) return kLexReject;
      if (b < 0x80) return kLexMore;
      f.lo = 0x80;
      f.hi = 0xbf;
      if (b >= 0xc2 && b <= 0xdf) {
        f.lex_n = 1;
      } else if (b >= 0xe0 && b <= 0xef) {
        f.lex_n = 2;
        if (b == 0xe0) f.lo = 0xa0;  // overlong
        if (b == 0xed) f.hi = 0x9f;  // UTF-16 surrogates
      } else if (b >= 0xf0 && b <= 0xf4) {
        f.lex_n = 3;
        if (b == 0xf0) f.lo = 0x90;  // overlong
        if (b == 0xf4) f.hi = 0x8f;  // past U+10FFFF
      } else {
        return kLexReject;
      }
      f.lex = kLexCont;
      return kLexMore;
    case kLexEscape:
      if (b == 'u') {
        f.lex = kLexHex;
        f.lex_n = 4;
        return kLexMore;
      }
      if (b == '"' || b == '\\' || b == '/' || b == 'b' || b == 'f' || b == 'n' || b == 'r' ||
          b == 't') {
        f.lex = kLexNormal;
        return kLexMore;
      }
      return kLexReject;
    case kLexHex:
      if (!is_hex(b)) return kLexReject;
      if (--f.lex_n == 0) f.lex = kLexNormal;
      return kLexMore;
    default:  // kLexCont
      if (b < f.lo || b > f.hi) return kLexReject;
      f.lo = 0x80;
      f.hi = 0xbf;
      if (--f.lex_n == 0) f.lex = kLexNormal;
      return kLexMore;
  }
}

bool number_can_end(const Frame& f) {
  return f.phase == kNumZero || f.phase == kNumInt || f.phase == kNumFrac ||
         f.phase == kNumExpDigits;
}

// Digit caps keep every accepted number finite as a double and stop runaway digit streams.
constexpr uint16_t kMaxIntDigits = 20;
constexpr uint16_t kMaxFracDigits = 30;
constexpr uint16_t kMaxExpDigits = 2;

bool more_digits(Frame& f, uint16_t cap) { return ++f.pos <= cap; }

bool number_step(Frame& f, uint8_t b, bool integer_only) {
  const bool frac_ok = !integer_only;
  switch (f.phase) {
    case kNumMinus:
      if (!is_digit(b)) return false;
      f.phase = b == '0' ? kNumZero : kNumInt;
      f.pos = 1;
      return true;
    case kNumInt:
      if (is_digit(b)) return more_digits(f, kMaxIntDigits);
      [[fallthrough]];
    case kNumZero:
      if (frac_ok && b == '.')
        f.phase = kNumDot;
      else if (frac_ok && (b == 'e' || b == 'E'))
        f.phase = kNumExp;
      else
        return false;
      f.pos = 0;
      return true;
    case kNumDot:
      if (!is_digit(b)) return false;
      f.phase = kNumFrac;
      f.pos = 1;
      return true;
    case kNumFrac:
      if (is_digit(b)) return more_digits(f, kMaxFracDigits);
      if (b != 'e' && b != 'E') return false;
      f.phase = kNumExp;
      f.pos = 0;
      return true;
    case kNumExp:
      if (b == '+' || b == '-') {
        f.phase = kNumExpSign;
        return true;
      }
      [[fallthrough]];
    case kNumExpSign:
      if (!is_digit(b)) return false;
      f.phase = kNumExpDigits;
      f.pos = 1;
      return true;
    default:  // kNumExpDigits
      return is_digit(b) && more_digits(f, kMaxExpDigits);
  }
}

bool literal_can_end(const Frame& f, const Node& node) {
  for (size_t i = 0; i < node.literals.size(); ++i) {
    if ((f.cand >> i & 1) && node.literals[i].size() == f.pos) return true;
  }
  return false;
}

bool literal_step(Frame& f, const Node& node, uint8_t b) {
  uint64_t next = 0;
  for (size_t i = 0; i < node.literals.size(); ++i) {
    const std::string& text = node.literals[i];
    if ((f.cand >> i & 1) && f.pos < text.size() && static_cast<uint8_t>(text[f.pos]) == b) {
      next |= uint64_t{1} << i;
    }
  }
  if (next == 0) return false;
  f.cand = next;
  ++f.pos;
  return true;
}

uint64_t all_properties(const Node& node) {
  const size_t n = node.properties.size();
  return n >= 64 ? ~uint64_t{0} : (uint64_t{1} << n) - 1;
}

// Appends stack (+ child) to out as a new alternative unless it is already there or out is full.
void emit(State& out, const std::vector<Frame>& stack, const Frame* child = nullptr) {
  if (out.n_stacks == JsonMatcher::kMaxAlternatives) return;
  const size_t size = stack.size() + (child != nullptr ? 1 : 0);
  for (size_t i = 0; i < out.n_stacks; ++i) {
    const Frame* begin = out.frames.data() + out.bounds[i];
    if (size_t{out.bounds[i + 1]} - out.bounds[i] != size) continue;
    if (!std::equal(stack.begin(), stack.end(), begin)) continue;
    if (child == nullptr || *child == begin[stack.size()]) return;
  }
  out.frames.insert(out.frames.end(), stack.begin(), stack.end());
  if (child != nullptr) out.frames.push_back(*child);
  out.bounds[out.n_stacks + 1] = static_cast<uint16_t>(out.frames.size());
  ++out.n_stacks;
}

void start_value_impl(const std::vector<Node>& nodes, const std::vector<Frame>& stack,
                      uint32_t node_id, uint8_t b, State& out, int hops) {
  const Node& node = nodes[node_id];
  if (node.kind == NodeKind::kUnion) {
    if (hops >= kMaxUnionHops) return;
    for (uint32_t alt : node.alternatives) start_value_impl(nodes, stack, alt, b, out, hops + 1);
    return;
  }
  if (stack.size() >= JsonMatcher::kMaxDepth) return;
  Frame child;
  child.node = node_id;
  if (node.kind == NodeKind::kLiteral) {
    for (size_t i = 0; i < node.literals.size(); ++i) {
      if (!node.literals[i].empty() && static_cast<uint8_t>(node.literals[i][0]) == b) {
        child.cand |= uint64_t{1} << i;
      }
    }
    if (child.cand == 0) return;
    child.kind = kLiteral;
    child.pos = 1;
    return emit(out, stack, &child);
  }
  const uint8_t types = node.types;
  if (b == '{' && (types & grammar::kTypeObject)) {
    child.kind = kObject;
    child.phase = kObjStart;
  } else if (b == '[' && (types & grammar::kTypeArray)) {
    child.kind = kArray;
    child.phase = kArrStart;
  } else if (b == '"' && (types & grammar::kTypeString)) {
    child.kind = kString;
  } else if ((b == '-' || is_digit(b)) && (types & grammar::kTypeInteger)) {
    child.kind = kNumber;
    child.phase = b == '-' ? kNumMinus : b == '0' ? kNumZero : kNumInt;
    child.pos = b == '-' ? 0 : 1;
  } else if ((b == 't' || b == 'f') && (types & grammar::kTypeBoolean)) {
    return start_value_impl(nodes, stack, grammar::kBoolNode, b, out, hops);
  } else if (b == 'n' && (types & grammar::kTypeNull)) {
    return start_value_impl(nodes, stack, grammar::kNullNode, b, out, hops);
  } else {
    return;
  }
  emit(out, stack, &child);
}

}  // namespace

JsonMatcher::JsonMatcher(JsonSchema schema)
    : schema_(std::move(schema)), nodes_(&schema_.nodes()) {}

State JsonMatcher::start() const {
  State state;
  Frame root;
  root.kind = kRoot;
  root.phase = kRootValue;
  root.node = schema_.root();
  state.frames.push_back(root);
  state.bounds[1] = 1;
  state.n_stacks = 1;
  return state;
}

void JsonMatcher::start_value(std::vector<Frame>& stack, uint32_t node, uint8_t byte,
                              State& out) const {
  start_value_impl(*nodes_, stack, node, byte, out, 0);
}

bool JsonMatcher::step_object(std::vector<Frame>& stack, uint8_t b, State& out) const {
  Frame& f = stack.back();
  const Node& node = (*nodes_)[f.node];
  const bool open = node.additional != grammar::kNoNode;
  auto begin_key = [&] {
    f.phase = kObjKey;
    f.lex = kLexNormal;
    f.pos = 0;
    f.cand = open ? all_properties(node) : all_properties(node) & ~f.seen;
    return f.cand != 0 || open;
  };
  switch (f.phase) {
    case kObjStart:
      if (b == '}' && node.required_mask == 0) {
        stack.pop_back();
        return true;
      }
      return b == '"' && begin_key();
    case kObjKey: {
      const LexResult r = lex_string(f, b);
      if (r == kLexReject) return false;
      if (r == kLexClose) {
        f.count = kAdditionalKey;
        for (size_t i = 0; i < node.properties.size(); ++i) {
          if ((f.cand >> i & 1) && node.properties[i].raw_name.size() == f.pos)
            f.count = uint32_t(i);
        }
        if (f.count == kAdditionalKey) {
          if (!open) return false;
        } else {
          if (f.seen >> f.count & 1) return false;  // a key written twice
          f.seen |= uint64_t{1} << f.count;
        }
        f.phase = kObjColon;
        return true;
      }
      uint64_t next = 0;
      for (size_t i = 0; i < node.properties.size(); ++i) {
        const std::string& name = node.properties[i].raw_name;
        if ((f.cand >> i & 1) && f.pos < name.size() && static_cast<uint8_t>(name[f.pos]) == b) {
          next |= uint64_t{1} << i;
        }
      }
      f.cand = next;
      if (next != 0 && f.pos < 0xffff) ++f.pos;  // pos only matters while candidates remain
      return next != 0 || open;
    }
    case kObjColon:
      if (b != ':') return false;
      f.phase = kObjAfterColon;
      return true;
    case kObjAfterColon:
      if (b == ' ') {
        f.phase = kObjValue;
        return true;
      }
      [[fallthrough]];
    case kObjValue: {
      const uint32_t value =
          f.count == kAdditionalKey ? node.additional : node.properties[f.count].node;
      f.phase = kObjAfterValue;
      start_value(stack, value, b, out);
      return false;  // start_value emitted whatever survives
    }
    case kObjAfterValue:
      if (b == ',' && (open || (all_properties(node) & ~f.seen) != 0)) {
        f.phase = kObjAfterComma;
        return true;
      }
      if (b == '}' && (f.seen & node.required_mask) == node.required_mask) {
        stack.pop_back();
        return true;
      }
      return false;
    case kObjAfterComma:
      if (b == ' ') {
        f.phase = kObjKeyStart;
        return true;
      }
      [[fallthrough]];
    default:  // kObjKeyStart
      return b == '"' && begin_key();
  }
}

bool JsonMatcher::step_array(std::vector<Frame>& stack, uint8_t b, State& out) const {
  Frame& f = stack.back();
  const Node& node = (*nodes_)[f.node];
  switch (f.phase) {
    case kArrStart:
      if (b == ']') {
        if (node.min_items != 0) return false;
        stack.pop_back();
        return true;
      }
      if (node.max_items == 0) return false;
      break;
    case kArrAfterValue:
      if (b == ',' && f.count < node.max_items) {
        f.phase = kArrAfterComma;
        return true;
      }
      if (b == ']' && f.count >= node.min_items) {
        stack.pop_back();
        return true;
      }
      return false;
    case kArrAfterComma:
      if (b == ' ') {
        f.phase = kArrValue;
        return true;
      }
      break;
    default:  // kArrValue
      break;
  }
  ++f.count;
  f.phase = kArrAfterValue;
  start_value(stack, node.items, b, out);
  return false;
}

void JsonMatcher::step(std::vector<Frame>& stack, uint8_t b, State& out) const {
  while (!stack.empty()) {
    Frame& f = stack.back();
    switch (f.kind) {
      case kRoot:
        if (f.phase != kRootValue) return;
        f.phase = kRootDone;
        return start_value(stack, schema_.root(), b, out);
      case kObject:
        if (step_object(stack, b, out)) emit(out, stack);
        return;
      case kArray:
        if (step_array(stack, b, out)) emit(out, stack);
        return;
      case kString: {
        const LexResult r = lex_string(f, b);
        if (r == kLexReject) return;
        if (r == kLexClose) stack.pop_back();
        return emit(out, stack);
      }
      case kNumber: {
        const bool integer_only = !((*nodes_)[f.node].types & grammar::kTypeNumber);
        if (number_step(f, b, integer_only)) return emit(out, stack);
        if (!number_can_end(f)) return;
        stack.pop_back();  // the number ended; the byte belongs to the parent
        break;
      }
      default: {  // kLiteral
        const Node& node = (*nodes_)[f.node];
        if (literal_step(f, node, b)) return emit(out, stack);
        if (!literal_can_end(f, node)) return;
        stack.pop_back();
        break;
      }
    }
  }
}

bool JsonMatcher::advance_byte(const State& in, uint8_t byte, State& out,
                               std::vector<Frame>& work) const {
  out.frames.clear();
  out.n_stacks = 0;
  out.bounds[0] = 0;
  for (size_t i = 0; i < in.n_stacks; ++i) {
    work.assign(in.frames.begin() + in.bounds[i], in.frames.begin() + in.bounds[i + 1]);
    step(work, byte, out);
  }
  return !out.dead();
}

bool JsonMatcher::advance(State& state, std::string_view bytes) const {
  State current = state;
  State next;
  std::vector<Frame> work;
  for (char c : bytes) {
    if (!advance_byte(current, static_cast<uint8_t>(c), next, work)) return false;
    std::swap(current, next);
  }
  state = std::move(current);
  return true;
}

bool JsonMatcher::in_plain_string(const State& state) {
  if (state.n_stacks != 1) return false;
  const Frame& top = state.frames[state.bounds[1] - 1];
  if (top.lex != kLexNormal) return false;
  // An undeclared key of an open object changes nothing either once no declared key matches.
  return top.kind == kString || (top.kind == kObject && top.phase == kObjKey && top.cand == 0);
}

bool JsonMatcher::complete(const State& state) const {
  for (size_t s = 0; s < state.n_stacks; ++s) {
    size_t i = state.bounds[s + 1];
    while (i > state.bounds[s]) {
      const Frame& f = state.frames[i - 1];
      const bool ends = (f.kind == kNumber && number_can_end(f)) ||
                        (f.kind == kLiteral && literal_can_end(f, (*nodes_)[f.node]));
      if (!ends) break;
      --i;
    }
    const Frame& top = state.frames[i - 1];
    if (i - 1 == state.bounds[s] && top.kind == kRoot && top.phase == kRootDone) return true;
  }
  return false;
}

}  // namespace pensieve
