#include "hub/sha256.h"

#include <fstream>

#include <gtest/gtest.h>

namespace pensieve::hub {
namespace {

TEST(Sha256, MatchesKnownDigests) {
  Sha256 hash;
  EXPECT_EQ(hash.hex_digest(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  hash.update("ab");
  hash.update("c");
  EXPECT_EQ(hash.hex_digest(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // hex_digest starts over.
  hash.update("abc");
  EXPECT_EQ(hash.hex_digest(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256, ResetForgetsWhatWasHashed) {
  Sha256 hash;
  hash.update("garbage");
  hash.reset();
  hash.update("abc");
  EXPECT_EQ(hash.hex_digest(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256, HashesAFilePrefix) {
  const std::string path = testing::TempDir() + "pensieve_sha256_prefix";
  std::ofstream(path, std::ios::binary) << "abcdef";
  Sha256 hash;
  ASSERT_TRUE(hash_file_prefix(path, 3, &hash).has_value());
  EXPECT_EQ(hash.hex_digest(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  auto past_end = hash_file_prefix(path, 10, &hash);
  ASSERT_FALSE(past_end.has_value());
  EXPECT_NE(past_end.error().message.find("unexpected end of file"), std::string::npos);
  EXPECT_FALSE(hash_file_prefix(path + ".missing", 1, &hash).has_value());
}

TEST(Sha256, RecognizesHexDigests) {
  EXPECT_TRUE(is_sha256_hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
  EXPECT_TRUE(is_sha256_hex("E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"));
  EXPECT_FALSE(is_sha256_hex("0123456789abcdef0123456789abcdef01234567"));  // a git sha1
  EXPECT_FALSE(is_sha256_hex("g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
  EXPECT_FALSE(is_sha256_hex(""));
}

}  // namespace
}  // namespace pensieve::hub
