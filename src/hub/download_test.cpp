// download_file and HubClient against FakeHub over loopback: whole, interrupted and resumed,
// range ignored, corrupted, missing, and the token kept from the CDN.
#include "hub/download.h"

#include <filesystem>
#include <fstream>
#include <random>

#include <gtest/gtest.h>

#include "hub/choose.h"
#include "hub/fake_hub.h"
#include "hub/models_dir.h"

namespace pensieve::hub {
namespace {

namespace fs = std::filesystem;

constexpr const char* kRepo = "owner/repo";

// "GGUF" and `n` bytes of a fixed pseudo-random pattern.
std::string gguf_bytes(size_t n, uint32_t seed = 1) {
  std::mt19937 rng(seed);
  std::string out = "GGUF";
  for (size_t i = 0; i < n; ++i) out += static_cast<char>(rng() & 0xff);
  return out;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class DownloadTest : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::TempDir() + "pensieve_download_" +
           testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    content_ = gguf_bytes(300000);
    fake_.add_file(kRepo, "model-Q4_K_M.gguf", content_);
  }

  std::string dest() const { return model_file_path(dir_, kRepo, "model-Q4_K_M.gguf"); }

  Expected<DownloadResult> pull(const std::string& file = "model-Q4_K_M.gguf",
                                std::string token = "", int retries = 0) {
    HubClient hub(HubOptions{.endpoint = fake_.endpoint(), .token = std::move(token)});
    DownloadOptions options;
    options.retries = retries;
    options.retry_delay_ms = 0;
    options.on_progress = [this](const DownloadProgress& p) { last_progress_ = p; };
    return download_file(hub, kRepo, file, "main", model_file_path(dir_, kRepo, file), options);
  }

  FakeHub fake_;
  std::string dir_;
  std::string content_;
  DownloadProgress last_progress_;
};

TEST_F(DownloadTest, DownloadsAndVerifiesAWholeFile) {
  auto result = pull();
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_TRUE(result->verified);
  EXPECT_FALSE(result->already_present);
  EXPECT_EQ(result->commit, FakeHub::kCommit);
  EXPECT_EQ(result->size_bytes, static_cast<int64_t>(content_.size()));
  EXPECT_EQ(read_all(dest()), content_);
  EXPECT_FALSE(fs::exists(dest() + ".part"));
  EXPECT_EQ(last_progress_.done_bytes, static_cast<int64_t>(content_.size()));
  EXPECT_EQ(last_progress_.total_bytes, static_cast<int64_t>(content_.size()));
  ASSERT_EQ(fake_.cdn_requests().size(), 1u);
  EXPECT_EQ(fake_.cdn_requests()[0].range, "");

  // Pulled again: the file is there with the hub's size, nothing is downloaded.
  auto again = pull();
  ASSERT_TRUE(again.has_value()) << again.error().message;
  EXPECT_TRUE(again->already_present);
  EXPECT_EQ(fake_.cdn_requests().size(), 1u);
}

TEST_F(DownloadTest, AnInterruptedDownloadResumesWithARange) {
  fake_.cut_next_transfer_at(100000);
  auto first = pull();
  ASSERT_FALSE(first.has_value());
  EXPECT_EQ(first.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(first.error().message.find("pull: download of model-Q4_K_M.gguf interrupted at "
                                       "100000 bytes"),
            std::string::npos)
      << first.error().message;
  EXPECT_NE(first.error().message.find("run the same command again to resume"), std::string::npos);
  EXPECT_EQ(fs::file_size(dest() + ".part"), 100000u);
  EXPECT_FALSE(fs::exists(dest()));

  auto second = pull();
  ASSERT_TRUE(second.has_value()) << second.error().message;
  EXPECT_TRUE(second->verified);
  EXPECT_EQ(second->resumed_from_bytes, 100000);
  EXPECT_EQ(read_all(dest()), content_);
  const auto cdn = fake_.cdn_requests();
  ASSERT_EQ(cdn.size(), 2u);
  EXPECT_EQ(cdn[1].range, "bytes=100000-");
}

TEST_F(DownloadTest, RetriesWithinOneCall) {
  fake_.cut_next_transfer_at(65536);
  auto result = pull("model-Q4_K_M.gguf", "", 1);
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_TRUE(result->verified);
  EXPECT_EQ(read_all(dest()), content_);
  const auto cdn = fake_.cdn_requests();
  ASSERT_EQ(cdn.size(), 2u);
  EXPECT_EQ(cdn[1].range, "bytes=65536-");
}

TEST_F(DownloadTest, APartHoldingEverythingIsVerifiedWithoutATransfer) {
  fs::create_directories(fs::path(dest()).parent_path());
  std::ofstream(dest() + ".part", std::ios::binary) << content_;
  auto result = pull();
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_TRUE(result->verified);
  EXPECT_EQ(result->resumed_from_bytes, static_cast<int64_t>(content_.size()));
  EXPECT_EQ(read_all(dest()), content_);
  EXPECT_TRUE(fake_.cdn_requests().empty());
}

TEST_F(DownloadTest, StartsOverWhenTheServerIgnoresTheRange) {
  // A part of the wrong bytes: kept, it would fail the hash; a 200 must replace it.
  fs::create_directories(fs::path(dest()).parent_path());
  std::ofstream(dest() + ".part", std::ios::binary) << std::string(5000, 'x');
  fake_.ignore_range(true);
  auto result = pull();
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_TRUE(result->verified);
  EXPECT_EQ(read_all(dest()), content_);
  const auto cdn = fake_.cdn_requests();
  ASSERT_EQ(cdn.size(), 1u);
  EXPECT_EQ(cdn[0].range, "bytes=5000-");
}

TEST_F(DownloadTest, ACorruptedPartFailsTheHashAndIsDeleted) {
  // The server honours the range, so the wrong prefix stays in the file: the hash catches it.
  fs::create_directories(fs::path(dest()).parent_path());
  std::ofstream(dest() + ".part", std::ios::binary) << std::string(5000, 'x');
  auto result = pull();
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, ErrorCode::kInvalidFormat);
  EXPECT_TRUE(
      result.error().message.starts_with("pull: sha256 mismatch for model-Q4_K_M.gguf: "
                                         "expected "))
      << result.error().message;
  EXPECT_FALSE(fs::exists(dest() + ".part"));
  EXPECT_FALSE(fs::exists(dest()));
  // The next pull starts from scratch and succeeds.
  auto again = pull();
  ASSERT_TRUE(again.has_value()) << again.error().message;
  EXPECT_EQ(read_all(dest()), content_);
}

TEST_F(DownloadTest, AWrongAdvertisedHashIsRejected) {
  const std::string wrong(64, 'a');
  fake_.set_advertised_sha256("model-Q4_K_M.gguf", wrong);
  auto result = pull();
  ASSERT_FALSE(result.has_value());
  EXPECT_NE(result.error().message.find("expected " + wrong + ", got "), std::string::npos)
      << result.error().message;
  EXPECT_FALSE(fs::exists(dest() + ".part"));
  EXPECT_FALSE(fs::exists(dest()));
}

TEST_F(DownloadTest, AFileThatIsNotGgufIsRejected) {
  fake_.add_file(kRepo, "notes.gguf", "<html>not a model</html>");
  auto result = pull("notes.gguf");
  ASSERT_FALSE(result.has_value());
  EXPECT_NE(result.error().message.find("pull: notes.gguf is not a GGUF file"), std::string::npos)
      << result.error().message;
  EXPECT_FALSE(fs::exists(model_file_path(dir_, kRepo, "notes.gguf") + ".part"));
}

TEST_F(DownloadTest, MissingRepositoryAndFileGiveClearErrors) {
  HubClient hub(HubOptions{.endpoint = fake_.endpoint(), .token = ""});
  auto no_repo = download_file(hub, "nobody/nothing", "x.gguf", "main", dir_ + "/x.gguf", {});
  ASSERT_FALSE(no_repo.has_value());
  EXPECT_EQ(no_repo.error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(no_repo.error().message.starts_with("pull: repository 'nobody/nothing' not found"))
      << no_repo.error().message;
  EXPECT_NE(no_repo.error().message.find("HF_TOKEN"), std::string::npos);
  auto no_file = pull("missing.gguf");
  ASSERT_FALSE(no_file.has_value());
  EXPECT_EQ(no_file.error().message,
            "pull: file 'missing.gguf' not found in owner/repo at revision main (Entry not found)");
  auto listing = hub.list_files("nobody/nothing", "main");
  ASSERT_FALSE(listing.has_value());
  EXPECT_TRUE(listing.error().message.starts_with("pull: repository 'nobody/nothing' not found"))
      << listing.error().message;
  EXPECT_FALSE(fs::exists(dir_ + "/x.gguf.part"));
}

TEST_F(DownloadTest, TheTokenGoesToTheHubButNotToTheCdn) {
  auto result = pull("model-Q4_K_M.gguf", "secret");
  ASSERT_TRUE(result.has_value()) << result.error().message;
  const auto hub = fake_.hub_requests();
  ASSERT_FALSE(hub.empty());
  for (const auto& seen : hub) EXPECT_EQ(seen.authorization, "Bearer secret") << seen.path;
  const auto cdn = fake_.cdn_requests();
  ASSERT_EQ(cdn.size(), 1u);
  EXPECT_EQ(cdn[0].authorization, "");
}

TEST_F(DownloadTest, ListsFilesAndChoosesTheDefault) {
  fake_.add_file(kRepo, "model-Q8_0.gguf", gguf_bytes(500000));
  fake_.add_file(kRepo, "model-Q2_K.gguf", gguf_bytes(100000));
  HubClient hub(HubOptions{.endpoint = fake_.endpoint(), .token = ""});
  auto files = hub.list_files(kRepo, "main");
  ASSERT_TRUE(files.has_value()) << files.error().message;
  ASSERT_EQ(files->size(), 4u);  // three models and a README
  auto choice = choose_gguf(kRepo, *files);
  ASSERT_TRUE(choice.has_value()) << choice.error().message;
  EXPECT_EQ(choice->chosen.path, "model-Q4_K_M.gguf");
  EXPECT_EQ(choice->chosen.size_bytes, static_cast<int64_t>(content_.size()));
  EXPECT_EQ(choice->candidates.size(), 3u);
}

TEST_F(DownloadTest, MetadataComesFromTheHubsHeaders) {
  HubClient hub(HubOptions{.endpoint = fake_.endpoint(), .token = ""});
  auto meta = hub.file_metadata(kRepo, "model-Q4_K_M.gguf", "main");
  ASSERT_TRUE(meta.has_value()) << meta.error().message;
  EXPECT_EQ(meta->commit, FakeHub::kCommit);
  EXPECT_EQ(meta->size_bytes, static_cast<int64_t>(content_.size()));
  ASSERT_TRUE(meta->sha256.has_value());
  EXPECT_EQ(meta->sha256->size(), 64u);
  EXPECT_EQ(meta->url, fake_.endpoint() + "/owner/repo/resolve/main/model-Q4_K_M.gguf");
  EXPECT_TRUE(fake_.cdn_requests().empty());  // HEAD stops at the redirect
}

TEST(HubClient, ValidatesNames) {
  EXPECT_TRUE(validate_repo_id("Qwen/Qwen2.5-0.5B-Instruct-GGUF").has_value());
  EXPECT_FALSE(validate_repo_id("noslash").has_value());
  EXPECT_FALSE(validate_repo_id("a/b/c").has_value());
  EXPECT_FALSE(validate_repo_id("../b").has_value());
  EXPECT_FALSE(validate_repo_id("a/b c").has_value());
  EXPECT_TRUE(validate_repo_file("sub/model.gguf").has_value());
  EXPECT_FALSE(validate_repo_file("../model.gguf").has_value());
  EXPECT_FALSE(validate_repo_file("/etc/passwd").has_value());
  EXPECT_FALSE(validate_repo_file("a//b.gguf").has_value());
  EXPECT_FALSE(validate_repo_file("").has_value());
}

TEST(HubClient, ParsesContentRange) {
  auto r = parse_content_range("bytes 100-199/1000");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->start, 100);
  EXPECT_EQ(r->total, 1000);
  r = parse_content_range("bytes */1000");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->start, -1);
  EXPECT_EQ(r->total, 1000);
  EXPECT_FALSE(parse_content_range("bytes 5-1/10").has_value());
  EXPECT_FALSE(parse_content_range("items 1-2/3").has_value());
  EXPECT_FALSE(parse_content_range("bytes 1-2").has_value());
}

TEST(HttpClient, OriginsAndRelativeUrls) {
  EXPECT_EQ(HttpClient::origin_of("https://HuggingFace.co/a/b"), "https://huggingface.co:443");
  EXPECT_EQ(HttpClient::origin_of("http://127.0.0.1:8080/x"), "http://127.0.0.1:8080");
  EXPECT_NE(HttpClient::origin_of("http://127.0.0.1:8080/x"),
            HttpClient::origin_of("http://127.0.0.1:8081/x"));
  EXPECT_EQ(HttpClient::resolve_url("https://h.co/a/resolve/main/f", "/b/resolve/main/f"),
            "https://h.co/b/resolve/main/f");
  EXPECT_EQ(HttpClient::resolve_url("https://h.co/a", "https://cdn.h.co/x?y=1"),
            "https://cdn.h.co/x?y=1");
  EXPECT_EQ(url_encode("refs/pr/1", false), "refs%2Fpr%2F1");
  EXPECT_EQ(url_encode("dir/a b.gguf", true), "dir/a%20b.gguf");
}

}  // namespace
}  // namespace pensieve::hub
