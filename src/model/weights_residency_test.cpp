// Keep-alive unloading: MmapFile gives back exactly the whole pages of a range and restores them
// in place; a Model releases its tensor data (RSS drops by about its size), restores it, and then
// generates bit-exactly what it did before; a file changed on disk is refused.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "model/forward_cpu.h"
#include "model/model.h"
#include "model/synth.h"
#include "model/test_support.h"

namespace pensieve {
namespace {

namespace fs = std::filesystem;

std::string temp_path(const std::string& name) {
  return model_test::temp_path("pensieve_keep", name);
}

size_t page() { return static_cast<size_t>(::sysconf(_SC_PAGESIZE)); }

// A file of `size` bytes, none of them zero, so a released page shows.
std::vector<uint8_t> write_pattern(const std::string& path, size_t size) {
  std::vector<uint8_t> bytes(size);
  for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<uint8_t>(1 + i % 251);
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(size));
  return bytes;
}

bool all_zero(std::span<const uint8_t> bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0; });
}

// Bytes of one /proc/self/status field ("RssAnon", "RssFile").
int64_t status_bytes(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) != 0) continue;
    std::istringstream rest(line.substr(field.size() + 1));
    int64_t kib = 0;
    rest >> kib;
    return kib * 1024;
  }
  ADD_FAILURE() << field << " is not in /proc/self/status";
  return 0;
}

TEST(MmapFileRelease, ResidentGivesBackWholePagesInsideTheRange) {
  const std::string path = temp_path("pages.bin");
  const size_t size = 5 * page() + 100;
  const std::vector<uint8_t> original = write_pattern(path, size);
  auto file = MmapFile::open(path, MmapFile::Mode::kResident);
  ASSERT_TRUE(file) << file.error().message;
  auto bytes = file->bytes();

  // [100, 3 pages + 100): only pages 1 and 2 lie wholly inside.
  ASSERT_TRUE(file->release_pages(100, 3 * page()));
  EXPECT_TRUE(std::equal(bytes.begin(), bytes.begin() + page(), original.begin()));
  EXPECT_TRUE(all_zero(bytes.subspan(page(), 2 * page())));
  EXPECT_TRUE(std::equal(bytes.begin() + 3 * page(), bytes.end(), original.begin() + 3 * page()));
  ASSERT_TRUE(file->restore_pages(100, 3 * page()));
  EXPECT_TRUE(std::equal(bytes.begin(), bytes.end(), original.begin()));

  // A range to the end of the file takes its last, partial page too.
  const size_t from = 2 * page() + 5;
  ASSERT_TRUE(file->release_pages(from, size - from));
  EXPECT_TRUE(std::equal(bytes.begin(), bytes.begin() + 3 * page(), original.begin()));
  EXPECT_TRUE(all_zero(bytes.subspan(3 * page())));
  ASSERT_TRUE(file->restore_pages(from, size - from));
  EXPECT_TRUE(std::equal(bytes.begin(), bytes.end(), original.begin()));

  auto outside = file->release_pages(page(), size);
  ASSERT_FALSE(outside);
  EXPECT_EQ(outside.error().code, ErrorCode::kInvalidArgument);
  fs::remove(path);
}

TEST(MmapFileRelease, MappedPagesComeBackFromTheFile) {
  const std::string path = temp_path("mapped.bin");
  const size_t size = 4 * page() + 7;
  const std::vector<uint8_t> original = write_pattern(path, size);
  auto file = MmapFile::open(path, MmapFile::Mode::kMapped);
  ASSERT_TRUE(file) << file.error().message;
  ASSERT_TRUE(file->release_pages(0, size));
  EXPECT_TRUE(std::equal(file->bytes().begin(), file->bytes().end(), original.begin()));
  ASSERT_TRUE(file->restore_pages(0, size));
  EXPECT_TRUE(std::equal(file->bytes().begin(), file->bytes().end(), original.begin()));
  fs::remove(path);
}

TEST(MmapFileRelease, RefusesToRestoreAChangedFile) {
  const std::string path = temp_path("changed.bin");
  const size_t size = 3 * page();
  write_pattern(path, size);
  auto file = MmapFile::open(path, MmapFile::Mode::kResident);
  ASSERT_TRUE(file) << file.error().message;
  EXPECT_TRUE(file->same_file_on_disk());
  ASSERT_TRUE(file->release_pages(0, size));
  // Same size, other contents and modification time: reading it back would mix two files.
  write_pattern(path + ".new", size);
  const struct timespec later[2] = {{0, UTIME_OMIT}, {::time(nullptr) + 10, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, (path + ".new").c_str(), later, 0), 0);
  fs::rename(path + ".new", path);
  EXPECT_FALSE(file->same_file_on_disk());
  auto restored = file->restore_pages(0, size);
  ASSERT_FALSE(restored);
  EXPECT_NE(restored.error().message.find("changed on disk"), std::string::npos);
  EXPECT_TRUE(all_zero(file->bytes()));  // still released
  fs::remove(path);
}

struct Greedy {
  std::vector<int32_t> tokens;
  std::vector<float> logits;  // after each step, concatenated
};

Greedy run_greedy(const Model& model, int n_tokens) {
  CpuForward forward(model.hparams(), model.weights(), 64, 1, 16);
  Greedy out;
  const std::vector<int32_t> prompt = {1, 403, 407, 261, 378, 432};
  auto logits = forward.eval(prompt);
  for (int i = 0; i < n_tokens && logits; ++i) {
    out.logits.insert(out.logits.end(), logits->begin(), logits->end());
    const int32_t token =
        static_cast<int32_t>(std::max_element(logits->begin(), logits->end()) - logits->begin());
    out.tokens.push_back(token);
    logits = forward.eval(std::span<const int32_t>(&token, 1));
  }
  EXPECT_TRUE(logits) << logits.error().message;
  return out;
}

class ModelRelease : public ::testing::TestWithParam<MmapFile::Mode> {};

TEST_P(ModelRelease, GeneratesTheSameAfterRestore) {
  auto model = Model::load(PENSIEVE_SHARED_DIR "/models/stories260K.gguf", GetParam());
  ASSERT_TRUE(model) << model.error().message;
  Model& m = **model;
  const Greedy before = run_greedy(m, 24);
  const GgufTensorInfo* embeddings = m.file().find_tensor("token_embd.weight");
  ASSERT_NE(embeddings, nullptr);
  const std::vector<uint8_t> embeddings_before(embeddings->bytes().begin(),
                                               embeddings->bytes().end());

  EXPECT_TRUE(m.weights_resident());
  EXPECT_EQ(m.weights_bytes(),
            static_cast<int64_t>(m.file().size_bytes() - m.file().data_offset()));
  ASSERT_TRUE(m.release_weights());
  EXPECT_FALSE(m.weights_resident());
  if (GetParam() == MmapFile::Mode::kResident) {
    // Gone, not merely advised: the tensor reads as zeros (it is not at a page boundary's edge).
    EXPECT_TRUE(all_zero(embeddings->bytes().subspan(page(), page())));
  }
  // Metadata stays: the tokenizer and chat template point into it.
  EXPECT_EQ(m.file().get_string_or("general.architecture", ""), "llama");
  ASSERT_TRUE(m.release_weights());  // idempotent

  ASSERT_TRUE(m.restore_weights());
  EXPECT_TRUE(m.weights_resident());
  EXPECT_TRUE(std::equal(embeddings->bytes().begin(), embeddings->bytes().end(),
                         embeddings_before.begin()));
  const Greedy after = run_greedy(m, 24);
  EXPECT_EQ(after.tokens, before.tokens);
  ASSERT_EQ(after.logits.size(), before.logits.size());
  EXPECT_EQ(
      std::memcmp(after.logits.data(), before.logits.data(), before.logits.size() * sizeof(float)),
      0);
}

INSTANTIATE_TEST_SUITE_P(Modes, ModelRelease,
                         ::testing::Values(MmapFile::Mode::kResident, MmapFile::Mode::kMapped),
                         [](const auto& p) {
                           return p.param == MmapFile::Mode::kResident ? "Resident" : "Mapped";
                         });

// A 30+ MiB synthetic model, so the drop in RSS stands out from the noise.
class ModelReleaseRss : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    path_ = temp_path("tiny-llama.gguf");
    SynthOptions o;
    o.preset = "tiny-llama";
    o.output_path = path_;
    o.shared_dir = PENSIEVE_SHARED_DIR;
    auto done = synth_model(o);
    ASSERT_TRUE(done) << done.error().message;
  }
  static void TearDownTestSuite() { fs::remove(path_); }
  static std::string path_;
};
std::string ModelReleaseRss::path_;

TEST_F(ModelReleaseRss, ResidentAnonymousMemoryDropsByTheWeights) {
  auto model = Model::load(path_, MmapFile::Mode::kResident);
  ASSERT_TRUE(model) << model.error().message;
  Model& m = **model;
  const int64_t weights = m.weights_bytes();
  ASSERT_GT(weights, int64_t{30} << 20);
  const Greedy before = run_greedy(m, 4);

  const int64_t loaded = status_bytes("RssAnon");
  ASSERT_TRUE(m.release_weights());
  const int64_t released = status_bytes("RssAnon");
  std::printf("RssAnon: loaded %.1f MiB, released %.1f MiB (weights %.1f MiB)\n",
              loaded / 1048576.0, released / 1048576.0, weights / 1048576.0);
  EXPECT_GE(loaded - released, weights - (int64_t{1} << 20));

  ASSERT_TRUE(m.restore_weights());
  const int64_t restored = status_bytes("RssAnon");
  std::printf("RssAnon: restored %.1f MiB\n", restored / 1048576.0);
  EXPECT_GE(restored - released, weights - (int64_t{1} << 20));
  EXPECT_EQ(run_greedy(m, 4).logits, before.logits);
}

TEST_F(ModelReleaseRss, MappedFilePagesLeaveTheProcess) {
  auto model = Model::load(path_, MmapFile::Mode::kMapped);
  ASSERT_TRUE(model) << model.error().message;
  Model& m = **model;
  const int64_t weights = m.weights_bytes();
  const Greedy before = run_greedy(m, 4);
  // Fault in every page (decode may not have touched all of the embeddings).
  ASSERT_TRUE(m.release_weights());
  ASSERT_TRUE(m.restore_weights());

  const int64_t loaded = status_bytes("RssFile");
  ASSERT_TRUE(m.release_weights());
  const int64_t released = status_bytes("RssFile");
  std::printf("RssFile: loaded %.1f MiB, released %.1f MiB (weights %.1f MiB)\n",
              loaded / 1048576.0, released / 1048576.0, weights / 1048576.0);
  EXPECT_GE(loaded - released, weights - (int64_t{1} << 20));
  ASSERT_TRUE(m.restore_weights());
  const int64_t restored = status_bytes("RssFile");
  std::printf("RssFile: restored %.1f MiB\n", restored / 1048576.0);
  EXPECT_GE(restored - released, weights - (int64_t{1} << 20));
  EXPECT_EQ(run_greedy(m, 4).logits, before.logits);
}

TEST_F(ModelReleaseRss, ChangedFileStaysReleasedWithAClearError) {
  const std::string copy = temp_path("tiny-llama-copy.gguf");
  fs::copy_file(path_, copy, fs::copy_options::overwrite_existing);
  auto model = Model::load(copy, MmapFile::Mode::kResident);
  ASSERT_TRUE(model) << model.error().message;
  Model& m = **model;
  ASSERT_TRUE(m.release_weights());
  std::ofstream(copy, std::ios::binary | std::ios::app) << "x";  // the file grows by a byte
  auto restored = m.restore_weights();
  ASSERT_FALSE(restored);
  EXPECT_EQ(restored.error().message,
            "model: " + copy +
                " changed on disk since it was loaded; restart the server to load the new file");
  EXPECT_FALSE(m.weights_resident());
  fs::remove(copy);
}

}  // namespace
}  // namespace pensieve
