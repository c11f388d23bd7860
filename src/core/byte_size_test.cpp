#include "core/byte_size.h"

#include <gtest/gtest.h>

namespace pensieve {
namespace {

int64_t parsed(std::string_view text) {
  auto size = parse_byte_size(text);
  EXPECT_TRUE(size.has_value()) << text << ": " << (size ? "" : size.error().message);
  return size ? *size : -1;
}

TEST(ByteSize, ParsesDecimalAndBinaryUnits) {
  EXPECT_EQ(parsed("0"), 0);
  EXPECT_EQ(parsed("1073741824"), 1073741824);
  EXPECT_EQ(parsed("17B"), 17);
  EXPECT_EQ(parsed("2KB"), 2000);
  EXPECT_EQ(parsed("3MB"), 3000000);
  EXPECT_EQ(parsed("3GB"), 3000000000);
  EXPECT_EQ(parsed("1TB"), 1000000000000);
  EXPECT_EQ(parsed("2KiB"), 2048);
  EXPECT_EQ(parsed("512MiB"), 512ll << 20);
  EXPECT_EQ(parsed("3GiB"), 3ll << 30);
  EXPECT_EQ(parsed("1TiB"), 1ll << 40);
}

TEST(ByteSize, UnitsAreCaseInsensitiveAndBlanksAreAllowed) {
  EXPECT_EQ(parsed("3gib"), 3ll << 30);
  EXPECT_EQ(parsed("3GIB"), 3ll << 30);
  EXPECT_EQ(parsed("3gB"), 3000000000);
  EXPECT_EQ(parsed("  3 GiB\t"), 3ll << 30);
}

TEST(ByteSize, RejectsGarbageNegativesAndOverflow) {
  struct Case {
    std::string_view text, problem;
  };
  for (const Case& c :
       {Case{"", "is not a byte size"}, Case{"GiB", "is not a byte size"},
        Case{"3XB", "is not a byte size"}, Case{"1.5GB", "is not a byte size"},
        Case{"3 G i B", "is not a byte size"}, Case{"-3GB", "is negative"},
        Case{"99999999999999999999", "is too large"}, Case{"9000000TiB", "is too large"}}) {
    auto size = parse_byte_size(c.text);
    ASSERT_FALSE(size.has_value()) << c.text;
    EXPECT_EQ(size.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(size.error().message.find(c.problem), std::string::npos) << size.error().message;
    EXPECT_EQ(size.error().message.rfind("byte size '" + std::string(c.text) + "'", 0), 0u)
        << size.error().message;
  }
}

TEST(ByteSize, AcceptsTheLargestInt64) {
  EXPECT_EQ(parsed("9223372036854775807"), INT64_MAX);
  EXPECT_FALSE(parse_byte_size("9223372036854775808").has_value());
}

}  // namespace
}  // namespace pensieve
