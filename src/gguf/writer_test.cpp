#include "gguf/writer.h"

#include <cstdio>
#include <filesystem>
#include <limits>
#include <numeric>

#include <unistd.h>

#include <gtest/gtest.h>

#include "gguf/reader.h"

namespace pensieve {
namespace {

// A parsed in-memory file; the parsed view points into `bytes`, so both live together.
struct InMemory {
  std::vector<uint8_t> bytes;
  std::unique_ptr<GgufFile> file;
  const GgufFile* operator->() const { return file.get(); }
};

InMemory parse_or_die(const GgufWriter& w) {
  InMemory m{w.to_bytes(), nullptr};
  auto file = GgufFile::parse(m.bytes, "memory");
  EXPECT_TRUE(file.has_value()) << file.error().message;
  if (file) m.file = std::move(file).value();
  return m;
}

TEST(GgufWriter, RoundTripsEveryScalarType) {
  GgufWriter w;
  w.set_u8("u8", 200);
  w.set_i8("i8", -100);
  w.set_u16("u16", 60000);
  w.set_i16("i16", -30000);
  w.set_u32("u32", 4000000000u);
  w.set_i32("i32", -2000000000);
  w.set_u64("u64", 1ull << 60);
  w.set_i64("i64", -(1ll << 60));
  w.set_f32("f32", 1.5f);
  w.set_f64("f64", -2.25);
  w.set_bool("yes", true);
  w.set_string("s", "héllo\n");
  w.set_string("empty", "");
  auto f = parse_or_die(w);
  ASSERT_NE(f.file, nullptr);
  EXPECT_EQ(*f->get_uint("u8"), 200u);
  EXPECT_EQ(*f->find("i8")->as_int(), -100);
  EXPECT_EQ(*f->get_uint("u16"), 60000u);
  EXPECT_EQ(*f->find("i16")->as_int(), -30000);
  EXPECT_EQ(*f->get_uint("u32"), 4000000000u);
  EXPECT_EQ(*f->find("i32")->as_int(), -2000000000);
  EXPECT_EQ(*f->get_uint("u64"), 1ull << 60);
  EXPECT_EQ(*f->find("i64")->as_int(), -(1ll << 60));
  EXPECT_EQ(*f->get_float("f32"), 1.5);
  EXPECT_EQ(*f->get_float("f64"), -2.25);
  EXPECT_EQ(*f->get_bool("yes"), true);
  EXPECT_EQ(*f->get_string("s"), "héllo\n");
  EXPECT_EQ(*f->get_string("empty"), "");
  EXPECT_EQ(f->metadata().size(), 13u);
  EXPECT_EQ(f->metadata()[0].key, "u8");  // file order is kept
  // Type mismatches are errors naming the key, not crashes.
  EXPECT_FALSE(f->get_uint("i8").has_value());
  EXPECT_FALSE(f->get_string("u8").has_value());
  EXPECT_NE(f->get_string("u8").error().message.find("'u8' has type uint8, expected string"),
            std::string::npos);
  EXPECT_EQ(f->get_uint("missing").error().code, ErrorCode::kNotFound);
}

TEST(GgufWriter, RoundTripsArrays) {
  GgufWriter w;
  const std::vector<std::string> tokens = {"<s>", "▁the", "", "\xf0\x9f\x98\x80"};
  const std::vector<float> scores = {0.0f, -1.5f, 3.25f};
  const std::vector<int32_t> types = {1, 2, 3, -4};
  w.set_strings("tokens", tokens);
  w.set_f32s("scores", scores);
  w.set_i32s("types", types);
  w.set_f32s("none", std::vector<float>{});
  auto f = parse_or_die(w);
  ASSERT_NE(f.file, nullptr);
  const GgufValue* t = *f->get_array("tokens");
  ASSERT_EQ(t->size(), tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) EXPECT_EQ(t->string_at(i), tokens[i]);
  const GgufValue* s = *f->get_array("scores");
  ASSERT_EQ(s->size(), 3u);
  EXPECT_EQ(s->float_at(1), -1.5);
  const GgufValue* ty = *f->get_array("types");
  EXPECT_EQ(ty->int_at(3), -4);
  EXPECT_EQ((*f->get_array("none"))->size(), 0u);
}

TEST(GgufValue, IntAtSaturatesOutOfRangeFloats) {
  GgufWriter w;
  const std::vector<float> v = {1e30f, -1e30f, std::numeric_limits<float>::quiet_NaN(), 2.9f};
  w.set_f32s("v", v);
  auto f = parse_or_die(w);
  ASSERT_NE(f.file, nullptr);
  const GgufValue* a = *f->get_array("v");
  EXPECT_EQ(a->int_at(0), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(a->int_at(1), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(a->int_at(2), 0);
  EXPECT_EQ(a->int_at(3), 2);
}

TEST(GgufWriter, RoundTripsTensorsAligned) {
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  std::vector<float> a(8 * 3);
  std::iota(a.begin(), a.end(), 0.0f);
  std::vector<uint8_t> q(18 * 4, 7);  // 4 Q4_0 blocks
  const int64_t ne_a[] = {8, 3};
  const int64_t ne_q[] = {64, 2};
  ASSERT_TRUE(w.add_tensor("a", GgmlType::kF32, ne_a,
                           {reinterpret_cast<const uint8_t*>(a.data()), a.size() * 4})
                  .has_value());
  ASSERT_TRUE(w.add_tensor_owned("q", GgmlType::kQ4_0, ne_q, q).has_value());
  auto f = parse_or_die(w);
  ASSERT_NE(f.file, nullptr);
  ASSERT_EQ(f->tensors().size(), 2u);
  const GgufTensorInfo* ta = f->find_tensor("a");
  ASSERT_NE(ta, nullptr);
  EXPECT_EQ(ta->shape_string(), "[8, 3]");
  EXPECT_EQ(ta->n_bytes, a.size() * 4);
  EXPECT_EQ(std::memcmp(ta->data, a.data(), ta->n_bytes), 0);
  const GgufTensorInfo* tq = f->find_tensor("q");
  EXPECT_EQ(tq->type, GgmlType::kQ4_0);
  EXPECT_EQ(tq->n_bytes, q.size());
  EXPECT_EQ(tq->offset % f->alignment(), 0u);
  EXPECT_EQ(f->data_offset() % f->alignment(), 0u);
  EXPECT_EQ(tq->data[0], 7);
}

TEST(GgufWriter, GeneratedTensorsAreFilledAtWriteTime) {
  GgufWriter w;
  const int64_t ne[] = {4, 2};
  int calls = 0;
  ASSERT_TRUE(w.add_tensor_generated("g", GgmlType::kF32, ne, [&](std::span<uint8_t> out) {
                 ++calls;
                 ASSERT_EQ(out.size(), 32u);
                 for (size_t i = 0; i < out.size(); ++i) {
                   out[i] = static_cast<uint8_t>(i);
                 }
               }).has_value());
  EXPECT_EQ(calls, 0);
  auto f = parse_or_die(w);
  ASSERT_NE(f.file, nullptr);
  EXPECT_EQ(calls, 1);
  const GgufTensorInfo* t = f->find_tensor("g");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->data[31], 31);
}

TEST(GgufWriter, RejectsInconsistentTensors) {
  GgufWriter w;
  std::vector<uint8_t> data(10);
  const int64_t ne[] = {8};
  EXPECT_FALSE(w.add_tensor("x", GgmlType::kF32, ne, data).has_value());  // 32 bytes needed
  const int64_t ne_q[] = {31};
  EXPECT_FALSE(w.add_tensor("y", GgmlType::kQ8_0, ne_q, data).has_value());
  std::vector<uint8_t> ok(32);
  EXPECT_TRUE(w.add_tensor("z", GgmlType::kF32, ne, ok).has_value());
  EXPECT_FALSE(w.add_tensor("z", GgmlType::kF32, ne, ok).has_value());  // duplicate
}

TEST(GgufWriter, CustomAlignmentIsHonoured) {
  GgufWriter w;
  w.set_alignment(64);
  std::vector<uint8_t> d(4 * 5);
  const int64_t ne[] = {5};
  ASSERT_TRUE(w.add_tensor("a", GgmlType::kF32, ne, d).has_value());
  ASSERT_TRUE(w.add_tensor("b", GgmlType::kF32, ne, d).has_value());
  auto f = parse_or_die(w);
  ASSERT_NE(f.file, nullptr);
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(f->find_tensor("b")->offset, 64u);
}

// Rewriting a real model (metadata copied verbatim, tensors by view) gives identical content.
TEST(GgufWriter, RewritesARealModelLosslessly) {
  const std::string src = std::string(PENSIEVE_SHARED_DIR) + "/models/TinyStories-656K-Q8_0.gguf";
  auto in = GgufFile::open(src);
  ASSERT_TRUE(in.has_value()) << in.error().message;
  GgufWriter w;
  for (const GgufKv& kv : (*in)->metadata()) w.copy(kv.key, kv.value);
  for (const GgufTensorInfo& t : (*in)->tensors()) {
    ASSERT_TRUE(
        w.add_tensor(t.name, t.type, {t.ne, static_cast<size_t>(t.n_dims)}, t.bytes()).has_value());
  }
  const auto path = std::filesystem::temp_directory_path() /
                    ("pensieve_rewrite_test_" + std::to_string(::getpid()) + ".gguf");
  ASSERT_TRUE(w.write(path.string()).has_value());
  auto out = GgufFile::open(path.string());
  ASSERT_TRUE(out.has_value()) << out.error().message;
  ASSERT_EQ((*out)->metadata().size(), (*in)->metadata().size());
  for (size_t i = 0; i < (*in)->metadata().size(); ++i) {
    const GgufKv& a = (*in)->metadata()[i];
    const GgufKv& b = (*out)->metadata()[i];
    EXPECT_EQ(a.key, b.key);
    EXPECT_EQ(a.value.type(), b.value.type());
    ASSERT_EQ(a.value.encoded().size(), b.value.encoded().size());
    EXPECT_EQ(
        std::memcmp(a.value.encoded().data(), b.value.encoded().data(), a.value.encoded().size()),
        0);
  }
  ASSERT_EQ((*out)->tensors().size(), (*in)->tensors().size());
  for (const GgufTensorInfo& t : (*in)->tensors()) {
    const GgufTensorInfo* u = (*out)->find_tensor(t.name);
    ASSERT_NE(u, nullptr);
    EXPECT_EQ(u->type, t.type);
    EXPECT_EQ(u->shape_string(), t.shape_string());
    EXPECT_EQ(std::memcmp(u->data, t.data, t.n_bytes), 0) << t.name;
  }
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace pensieve
