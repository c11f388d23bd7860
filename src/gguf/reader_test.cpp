#include "gguf/reader.h"

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

}  // namespace
}  // namespace pensieve
