// The hand-made corrupt corpus (tests/fixtures/corrupt_gguf): each file gives one clear error
// naming the file, the field or tensor and the problem, and never allocates beyond its size.
#include <atomic>
#include <cstdlib>
#include <new>

#include <gtest/gtest.h>

#include "gguf/reader.h"

// Counts heap bytes requested while `g_counting` is set, to bound parser allocations.
namespace {
std::atomic<bool> g_counting{false};
std::atomic<uint64_t> g_allocated_bytes{0};
}  // namespace

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(size_t n) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocated_bytes += n;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace pensieve {
namespace {

const std::string kCorpus = std::string(PENSIEVE_TEST_DATA_DIR) + "/fixtures/corrupt_gguf/";

struct CorruptCase {
  const char* file;
  const char* expected;  // a substring of the one-line error
};

const CorruptCase kCases[] = {
    {"empty.gguf", "file too small for a GGUF header"},
    {"bad_magic.gguf", "not a GGUF file"},
    {"truncated_header.gguf", "truncated header"},
    {"big_endian.gguf", "big-endian GGUF"},
    {"version_99.gguf", "unsupported GGUF version 99"},
    {"n_tensors_2pow60.gguf", "tensor count 1152921504606846976 cannot fit"},
    {"n_kv_2pow60.gguf", "metadata count 1152921504606846976 cannot fit"},
    {"string_past_end.gguf", "metadata 'general.name': string length 1099511627776 runs past"},
    {"key_past_end.gguf", "metadata key #0: string length"},
    {"unknown_value_type.gguf", "metadata 'general.x': unknown value type 77"},
    {"array_count_past_end.gguf", "metadata 'tokenizer.ggml.scores': array of"},
    {"string_array_past_end.gguf", "metadata 'tokenizer.ggml.tokens': array count"},
    {"duplicate_key.gguf", "duplicate metadata key 'general.architecture'"},
    {"bad_alignment.gguf", "'general.alignment' must be a power of two"},
    {"zero_dim.gguf", "tensor 'w': dimension 1 is 0"},
    {"too_many_dims.gguf", "tensor 'w': 5 dimensions"},
    {"dims_overflow.gguf", "tensor 'w': element count overflows"},
    {"unknown_type.gguf", "tensor 'w': unknown tensor type id 99"},
    {"row_not_block_multiple.gguf", "tensor 'w': row length 33 is not a multiple"},
    {"misaligned_offset.gguf", "tensor 'w': data offset 3 is not a multiple of the alignment"},
    {"offset_out_of_file.gguf", "tensor 'w': data [4096, +64) ends past the end of the file"},
    {"data_past_end.gguf", "tensor 'w': data [0, +16384) ends past the end"},
    {"duplicate_tensor_names.gguf", "duplicate tensor name 'w'"},
    {"overlapping_tensors.gguf", "tensor 'b': data overlaps tensor 'a'"},
    {"truncated_tensor_info.gguf", "truncated while reading the length of tensor #1 name"},
};

class CorruptGguf : public ::testing::TestWithParam<CorruptCase> {};

TEST_P(CorruptGguf, GivesOneLineErrorNamingFileAndField) {
  const CorruptCase& c = GetParam();
  const std::string path = kCorpus + c.file;
  auto file = GgufFile::open(path);
  ASSERT_FALSE(file.has_value()) << c.file << " was accepted";
  const std::string& message = file.error().message;
  EXPECT_EQ(file.error().code, ErrorCode::kInvalidFormat) << message;
  EXPECT_EQ(message.rfind("gguf: " + path + ": ", 0), 0u) << message;
  EXPECT_NE(message.find(c.expected), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

TEST_P(CorruptGguf, AllocatesNoMoreThanTheFileSize) {
  const std::string path = kCorpus + GetParam().file;
  auto map = MmapFile::open(path);
  ASSERT_TRUE(map.has_value());
  const auto bytes = map->bytes();
  g_allocated_bytes = 0;
  g_counting = true;
  auto file = GgufFile::parse(bytes, "x");
  g_counting = false;
  EXPECT_FALSE(file.has_value());
  // Bookkeeping (the error string, the file object) is small; nothing scales with counts read.
  EXPECT_LE(g_allocated_bytes.load(), 4 * bytes.size() + 4096) << GetParam().file;
}

INSTANTIATE_TEST_SUITE_P(Corpus, CorruptGguf, ::testing::ValuesIn(kCases),
                         [](const auto& param_info) {
                           std::string name = param_info.param.file;
                           return name.substr(0, name.find('.'));
                         });

TEST(GgufReader, RejectsGgufV1WithClearMessage) {
  auto file = GgufFile::open(std::string(PENSIEVE_SHARED_DIR) +
                             "/models/stories260K-F32-ggufv1-legacy.gguf");
  ASSERT_FALSE(file.has_value());
  EXPECT_NE(file.error().message.find("GGUF version 1 is obsolete"), std::string::npos);
}

TEST(GgufReader, MissingFileIsNotFound) {
  auto file = GgufFile::open(kCorpus + "no-such-file.gguf");
  ASSERT_FALSE(file.has_value());
  EXPECT_EQ(file.error().code, ErrorCode::kNotFound);
}

// Every prefix of a valid file is rejected cleanly (no crash, no read past the end).
TEST(GgufReader, RejectsEveryTruncationOfARealFile) {
  auto map = MmapFile::open(std::string(PENSIEVE_SHARED_DIR) + "/models/stories260K.gguf");
  ASSERT_TRUE(map.has_value());
  const auto bytes = map->bytes();
  auto whole = GgufFile::parse(bytes, "whole");
  ASSERT_TRUE(whole.has_value());
  const size_t header_end = (*whole)->data_offset();
  for (size_t n = 0; n < header_end; n += (n < 4096 ? 1 : 97)) {
    std::vector<uint8_t> prefix(bytes.begin(), bytes.begin() + n);
    EXPECT_FALSE(GgufFile::parse(prefix, "prefix").has_value()) << n;
  }
  std::vector<uint8_t> short_data(bytes.begin(), bytes.end() - 1);
  EXPECT_FALSE(GgufFile::parse(short_data, "short").has_value());
}

}  // namespace
}  // namespace pensieve
