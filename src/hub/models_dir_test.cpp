#include "hub/models_dir.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "gguf/writer.h"

namespace pensieve::hub {
namespace {

namespace fs = std::filesystem;

// A fresh, empty directory under the test temp dir.
std::string fresh_dir(const std::string& name) {
  const std::string dir = testing::TempDir() + "pensieve_models_" + name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void write_file(const std::string& path, const std::string& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

TEST(ModelsDir, DefaultFollowsXdgThenHome) {
  const char* old_xdg = std::getenv("XDG_DATA_HOME");
  const char* old_home = std::getenv("HOME");
  const std::string saved_xdg = old_xdg ? old_xdg : "";
  const std::string saved_home = old_home ? old_home : "";
  setenv("XDG_DATA_HOME", "/data", 1);
  setenv("HOME", "/home/u", 1);
  EXPECT_EQ(default_models_dir(), "/data/pensieve/models");
  EXPECT_EQ(models_dir_or_default("/mine"), "/mine");
  EXPECT_EQ(models_dir_or_default(""), "/data/pensieve/models");
  unsetenv("XDG_DATA_HOME");
  EXPECT_EQ(default_models_dir(), "/home/u/.local/share/pensieve/models");
  setenv("XDG_DATA_HOME", "relative", 1);  // the XDG spec ignores relative paths
  EXPECT_EQ(default_models_dir(), "/home/u/.local/share/pensieve/models");
  unsetenv("HOME");
  unsetenv("XDG_DATA_HOME");
  EXPECT_EQ(default_models_dir(), "");
  if (old_xdg) setenv("XDG_DATA_HOME", saved_xdg.c_str(), 1);
  if (old_home) setenv("HOME", saved_home.c_str(), 1);
}

TEST(ModelsDir, FilePathIsOwnerRepoFile) {
  EXPECT_EQ(model_file_path("/m", "Qwen/Qwen2.5-0.5B-GGUF", "q4/x.gguf"),
            "/m/Qwen/Qwen2.5-0.5B-GGUF/q4/x.gguf");
}

TEST(ModelsDir, ListsGgufFilesSortedWithoutParts) {
  const std::string dir = fresh_dir("list");
  write_file(dir + "/b/r/z.gguf", "GGUF1");
  write_file(dir + "/a/r/y.GGUF", "GGUF12");
  write_file(dir + "/a/r/x.gguf.part", "GG");
  write_file(dir + "/a/r/README.md", "hi");
  auto models = list_local_models(dir);
  ASSERT_TRUE(models.has_value()) << models.error().message;
  ASSERT_EQ(models->size(), 2u);
  EXPECT_EQ((*models)[0].name, "a/r/y.GGUF");
  EXPECT_EQ((*models)[0].size_bytes, 6);
  EXPECT_EQ((*models)[0].path, dir + "/a/r/y.GGUF");
  EXPECT_EQ((*models)[1].name, "b/r/z.gguf");
  auto missing = list_local_models(dir + "/nothing-here");
  ASSERT_TRUE(missing.has_value());
  EXPECT_TRUE(missing->empty());
  auto not_dir = list_local_models(dir + "/b/r/z.gguf");
  ASSERT_FALSE(not_dir.has_value());
  EXPECT_NE(not_dir.error().message.find("is not a directory"), std::string::npos);
}

TEST(ModelsDir, DefaultModelResolution) {
  const std::string dir = fresh_dir("default");
  // Nothing downloaded: the error names pull and --model.
  auto none = default_serve_model("", dir);
  ASSERT_FALSE(none.has_value());
  EXPECT_NE(none.error().message.find("pensieve pull"), std::string::npos);
  EXPECT_NE(none.error().message.find("--model"), std::string::npos);

  write_file(dir + "/o/a/one.gguf", "GGUF");
  auto only = default_serve_model("", dir);
  ASSERT_TRUE(only.has_value()) << only.error().message;
  EXPECT_EQ(*only, dir + "/o/a/one.gguf");

  write_file(dir + "/o/b/two-Q4_0.gguf", "GGUF");
  write_file(dir + "/o/b/two-Q8_0.gguf", "GGUF");
  auto several = default_serve_model("", dir);
  ASSERT_FALSE(several.has_value());
  EXPECT_NE(several.error().message.find("3 models"), std::string::npos);
  EXPECT_NE(several.error().message.find("PENSIEVE_DEFAULT_MODEL"), std::string::npos);
  EXPECT_NE(several.error().message.find("o/b/two-Q4_0.gguf"), std::string::npos);

  EXPECT_EQ(default_serve_model("o/b/two-Q8_0.gguf", dir).value(), dir + "/o/b/two-Q8_0.gguf");
  EXPECT_EQ(default_serve_model("o/a", dir).value(), dir + "/o/a/one.gguf");
  EXPECT_EQ(default_serve_model("two-Q4_0.gguf", dir).value(), dir + "/o/b/two-Q4_0.gguf");
  const std::string elsewhere = fresh_dir("elsewhere") + "/x.gguf";
  write_file(elsewhere, "GGUF");
  EXPECT_EQ(default_serve_model(elsewhere, dir).value(), elsewhere);
  auto ambiguous = default_serve_model("o/b", dir);
  ASSERT_FALSE(ambiguous.has_value());
  EXPECT_NE(ambiguous.error().message.find("matches 2 models"), std::string::npos);
  auto unknown = default_serve_model("nope.gguf", dir);
  ASSERT_FALSE(unknown.has_value());
  EXPECT_EQ(unknown.error().message, "serve: default model 'nope.gguf' is neither a model in " +
                                         dir + " (see `pensieve list`) nor a file");
}

TEST(ModelsDir, SummaryReadsArchitectureAndQuant) {
  const std::string dir = fresh_dir("summary");
  GgufWriter with_type;
  with_type.set_string("general.architecture", "llama");
  with_type.set_u32("general.file_type", 15);
  ASSERT_TRUE(with_type.write(dir + "/a.gguf").has_value());
  auto a = read_model_summary(dir + "/a.gguf");
  ASSERT_TRUE(a.has_value()) << a.error().message;
  EXPECT_EQ(a->architecture, "llama");
  EXPECT_EQ(a->quant, "Q4_K_M");

  // Without general.file_type: the type holding the most bytes.
  GgufWriter by_tensors;
  by_tensors.set_string("general.architecture", "qwen2");
  const int64_t big[] = {32, 4};
  const int64_t small[] = {4};
  ASSERT_TRUE(by_tensors.add_tensor_owned("w", GgmlType::kQ8_0, big, std::vector<uint8_t>(136))
                  .has_value());
  ASSERT_TRUE(by_tensors.add_tensor_owned("n", GgmlType::kF32, small, std::vector<uint8_t>(16))
                  .has_value());
  ASSERT_TRUE(by_tensors.write(dir + "/b.gguf").has_value());
  auto b = read_model_summary(dir + "/b.gguf");
  ASSERT_TRUE(b.has_value()) << b.error().message;
  EXPECT_EQ(b->architecture, "qwen2");
  EXPECT_EQ(b->quant, "Q8_0");

  write_file(dir + "/bad.gguf", "GGUF but not really");
  EXPECT_FALSE(read_model_summary(dir + "/bad.gguf").has_value());
}

TEST(ModelsDir, FileTypeNames) {
  EXPECT_EQ(file_type_name(0), "F32");
  EXPECT_EQ(file_type_name(7), "Q8_0");
  EXPECT_EQ(file_type_name(15), "Q4_K_M");
  EXPECT_EQ(file_type_name(32), "BF16");
  EXPECT_EQ(file_type_name(4), "");
  EXPECT_EQ(file_type_name(1000), "");
}

}  // namespace
}  // namespace pensieve::hub
