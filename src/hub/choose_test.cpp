#include "hub/choose.h"

#include <gtest/gtest.h>

namespace pensieve::hub {
namespace {

RepoFile file(std::string path, std::optional<int64_t> size = std::nullopt) {
  return RepoFile{std::move(path), size};
}

std::string chosen(const std::vector<RepoFile>& files) {
  auto choice = choose_gguf("o/r", files);
  return choice ? choice->chosen.path : "error: " + choice.error().message;
}

TEST(ChooseGguf, TakesTheOnlyGguf) {
  EXPECT_EQ(chosen({file("README.md"), file("model-Q8_0.gguf", 100), file("config.json")}),
            "model-Q8_0.gguf");
}

TEST(ChooseGguf, PrefersQ4KMThenQ40ThenTheSmallest) {
  EXPECT_EQ(chosen({file("m.Q8_0.gguf", 8), file("m.q4_k_m.gguf", 5), file("m.Q4_0.gguf", 4),
                    file("m.Q2_K.gguf", 2)}),
            "m.q4_k_m.gguf");
  EXPECT_EQ(chosen({file("m.Q8_0.gguf", 8), file("m.Q4_0.gguf", 4), file("m.Q2_K.gguf", 2)}),
            "m.Q4_0.gguf");
  EXPECT_EQ(chosen({file("m.Q8_0.gguf", 8), file("m.F16.gguf", 16), file("m.Q6_K.gguf", 6)}),
            "m.Q6_K.gguf");
  // Unknown sizes count as largest; equal sizes go by path.
  EXPECT_EQ(chosen({file("b.gguf"), file("a.gguf"), file("c.gguf", 1)}), "c.gguf");
  EXPECT_EQ(chosen({file("b.gguf"), file("a.gguf")}), "a.gguf");
  // Several Q4_K_M files: the smallest.
  EXPECT_EQ(chosen({file("big/x-Q4_K_M.gguf", 9), file("small/x-Q4_K_M.gguf", 3)}),
            "small/x-Q4_K_M.gguf");
}

TEST(ChooseGguf, SkipsShardsAndProjectorsAndListsCandidates) {
  auto choice = choose_gguf("o/r", {file("mmproj-model-f16.gguf", 1), file("m.Q8_0.gguf", 8),
                                    file("m-Q4_K_M-00001-of-00002.gguf", 2), file("m.F16.gguf")});
  ASSERT_TRUE(choice.has_value()) << choice.error().message;
  EXPECT_EQ(choice->chosen.path, "m.Q8_0.gguf");
  ASSERT_EQ(choice->candidates.size(), 2u);
  EXPECT_EQ(choice->candidates[0].path, "m.F16.gguf");
  EXPECT_EQ(choice->candidates[1].path, "m.Q8_0.gguf");
}

TEST(ChooseGguf, ErrorsWithoutACandidate) {
  EXPECT_EQ(chosen({file("README.md"), file("model.safetensors")}),
            "error: pull: o/r has no .gguf file (2 files)");
  EXPECT_EQ(chosen({file("m-00001-of-00002.gguf"), file("m-00002-of-00002.gguf")}),
            "error: pull: o/r has no single-file GGUF model: only split shards or vision "
            "projectors (m-00001-of-00002.gguf, ...)");
}

TEST(ChooseGguf, RecognizesSplitShards) {
  EXPECT_TRUE(is_split_shard("Qwen2.5-7B-Q4_K_M-00001-of-00002.gguf"));
  EXPECT_TRUE(is_split_shard("x-00003-OF-00010.GGUF"));
  EXPECT_FALSE(is_split_shard("x-0001-of-0002.gguf"));
  EXPECT_FALSE(is_split_shard("x-00001-of-00002.bin"));
  EXPECT_FALSE(is_split_shard("of.gguf"));
}

}  // namespace
}  // namespace pensieve::hub
