#include "core/result.h"

#include <gtest/gtest.h>

namespace pensieve {
namespace {

Expected<int> parse_positive(int x) {
  if (x <= 0) return make_error(ErrorCode::kInvalidArgument, "test: {} is not positive", x);
  return x;
}

Expected<int> doubled(int x) {
  PV_TRY(int v, parse_positive(x));
  return 2 * v;
}

TEST(Expected, CarriesValueOrError) {
  auto ok = doubled(4);
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(*ok, 8);
  auto bad = doubled(-1);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad.error().message, "test: -1 is not positive");
}

TEST(ExpectedDeathTest, ValueOnErrorAborts) {
  auto bad = parse_positive(0);
  EXPECT_DEATH((void)bad.value(), "not positive");
}

}  // namespace
}  // namespace pensieve
