#include "gguf/reader.h"

#include <cstring>

#include <gtest/gtest.h>

namespace pensieve {
namespace {

const std::string kModels = std::string(PENSIEVE_SHARED_DIR) + "/models/";

TEST(GgufReader, ReadsStories260K) {
  auto file = GgufFile::open(kModels + "stories260K.gguf");
  ASSERT_TRUE(file.has_value()) << file.error().message;
  EXPECT_EQ((*file)->version(), 3u);
  EXPECT_EQ(*(*file)->get_string("general.architecture"), "llama");
  EXPECT_EQ(*(*file)->get_uint("llama.embedding_length"), 64u);
  EXPECT_EQ(*(*file)->get_uint("llama.block_count"), 5u);
}

TEST(GgufReader, ReadsTinyStoriesQ8AndTokenizerArrays) {
  auto file = GgufFile::open(kModels + "TinyStories-656K-Q8_0.gguf");
  ASSERT_TRUE(file.has_value()) << file.error().message;
  const GgufFile& f = **file;
  const GgufTensorInfo* embd = f.find_tensor("token_embd.weight");
  ASSERT_NE(embd, nullptr);
  EXPECT_EQ(embd->type, GgmlType::kQ8_0);
  EXPECT_EQ(embd->ne[0], 128);
  EXPECT_EQ(embd->ne[1], 2048);
  EXPECT_EQ(embd->n_bytes, 2048u * 128 / 32 * 34);
  EXPECT_EQ(f.find_tensor("output.weight"), nullptr);  // tied embeddings
  const GgufValue* tokens = *f.get_array("tokenizer.ggml.tokens");
  EXPECT_EQ(tokens->size(), 2048u);
  EXPECT_EQ(tokens->string_at(1), "<|start_story|>");
  // Tensor data lies inside the mapping, aligned, without copies.
  for (const GgufTensorInfo& t : f.tensors()) {
    EXPECT_EQ((t.data - embd->data + static_cast<int64_t>(embd->offset)) % 32, 0) << t.name;
  }
}

TEST(GgufReader, ReadsEveryVocabularyFile) {
  const char* names[] = {"llama-spm",      "phi-3",  "gpt-2",    "gpt-neox", "starcoder",
                         "deepseek-coder", "falcon", "baichuan", "bert-bge"};
  for (const char* name : names) {
    const std::string path =
        std::string(PENSIEVE_SHARED_DIR) + "/vocab/ggml-vocab-" + name + ".gguf";
    auto file = GgufFile::open(path);
    ASSERT_TRUE(file.has_value()) << file.error().message;
    EXPECT_TRUE((*file)->get_string("tokenizer.ggml.model").has_value()) << name;
    EXPECT_TRUE((*file)->tensors().empty()) << name;
  }
}

TEST(GgmlTypes, NamesAndSizes) {
  EXPECT_EQ(ggml_type_from_name("q4_k"), GgmlType::kQ4_K);
  EXPECT_EQ(ggml_type_from_name("BF16"), GgmlType::kBF16);
  EXPECT_FALSE(ggml_type_from_name("Q4_X").has_value());
  EXPECT_EQ(ggml_type_traits(GgmlType::kQ6_K).block_bytes, 210u);
  EXPECT_FALSE(ggml_type_traits(4u).has_value());  // retired id
}

}  // namespace
}  // namespace pensieve

namespace pensieve {
namespace {

// A resident load holds exactly the file's bytes, at a 2 MiB-aligned address, read-only.
TEST(MmapFile, ResidentEqualsMapped) {
  const std::string path = std::string(PENSIEVE_SHARED_DIR) + "/models/stories260K.gguf";
  auto mapped = MmapFile::open(path, MmapFile::Mode::kMapped);
  auto resident = MmapFile::open(path, MmapFile::Mode::kResident);
  ASSERT_TRUE(mapped.has_value() && resident.has_value());
  EXPECT_EQ(resident->mode(), MmapFile::Mode::kResident);
  ASSERT_EQ(mapped->bytes().size(), resident->bytes().size());
  ASSERT_GT(resident->bytes().size(), 0u);
  EXPECT_EQ(std::memcmp(mapped->bytes().data(), resident->bytes().data(), mapped->bytes().size()),
            0);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(resident->bytes().data()) % (2u << 20), 0u);
  MmapFile moved = std::move(*resident);
  EXPECT_EQ(moved.bytes().size(), mapped->bytes().size());
  auto missing = MmapFile::open(path + ".missing", MmapFile::Mode::kResident);
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace pensieve
