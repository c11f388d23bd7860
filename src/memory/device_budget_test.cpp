// The GPU budget against hand-computed sizes: the full pool when it fits, whole blocks down to
// one sequence when it does not, a clear refusal below that, and the auto reserve.
#include "memory/device_budget.h"

#include <gtest/gtest.h>

namespace pensieve::memory {
namespace {

constexpr int64_t kMiB = int64_t{1} << 20;
constexpr int64_t kGiB = int64_t{1} << 30;

DeviceKvRequest seven_b(int64_t n_ctx, int n_parallel) {
  DeviceKvRequest r;
  r.weights_bytes = 3800 * kMiB;  // a 7B Q4_0
  r.scratch_bytes = 300 * kMiB;
  r.block_bytes = 16 * kMiB;  // 32 positions x 32 layers x 2 x 4096 x F16
  r.block_positions = 32;
  r.n_ctx = n_ctx;
  r.n_parallel = n_parallel;
  return r;
}

TEST(DeviceBudget, TheWholePoolWhenItFits) {
  const DeviceRoom room{"GPU", 80 * kGiB, 80 * kGiB, -1};
  auto plan = plan_device_kv(seven_b(4096, 8), room);
  ASSERT_TRUE(plan.has_value()) << plan.error().message;
  EXPECT_EQ(plan->n_blocks, 4096 * 8 / 32);
  EXPECT_FALSE(plan->shrunk);
  EXPECT_EQ(plan->reserve_bytes, 4 * kGiB);  // 5% of 80 GiB
  EXPECT_EQ(plan->kv_bytes, plan->n_blocks * 16 * kMiB);
  EXPECT_NE(describe(*plan, room).find("1024 blocks"), std::string::npos) << describe(*plan, room);
}

TEST(DeviceBudget, ShrinksToWholeBlocksThatFit) {
  // 8 GiB free, 512 MiB reserve: 8192 - 512 - 3800 - 300 = 3580 MiB for KV = 223 blocks.
  const DeviceRoom room{"GPU", 8 * kGiB, 8 * kGiB, -1};
  auto plan = plan_device_kv(seven_b(4096, 4), room);
  ASSERT_TRUE(plan.has_value()) << plan.error().message;
  EXPECT_EQ(plan->reserve_bytes, 512 * kMiB);
  EXPECT_EQ(plan->n_blocks, 223);
  EXPECT_EQ(plan->wanted_blocks, 512);
  EXPECT_TRUE(plan->shrunk);
  EXPECT_LE(plan->total_bytes() + plan->reserve_bytes, room.free_bytes);
}

TEST(DeviceBudget, RefusesWhenOneSequenceDoesNotFit) {
  const DeviceRoom room{"Tiny GPU", 6 * kGiB, 6 * kGiB, 256 * kMiB};
  // 6144 - 256 - 3800 - 300 = 1788 MiB = 111 blocks = 3552 positions < 8192.
  auto plan = plan_device_kv(seven_b(8192, 1), room);
  ASSERT_FALSE(plan.has_value());
  EXPECT_EQ(plan.error().code, ErrorCode::kResourceExhausted);
  const std::string& m = plan.error().message;
  EXPECT_NE(m.find("does not fit on Tiny GPU"), std::string::npos) << m;
  EXPECT_NE(m.find("--ctx 3328 would fit"), std::string::npos) << m;
  EXPECT_NE(m.find("--device cpu"), std::string::npos) << m;
  // The weights alone do not fit: no context is suggested.
  auto none = plan_device_kv(seven_b(512, 1), DeviceRoom{"GPU", 3 * kGiB, 3 * kGiB, 0});
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.error().message.find("would fit"), std::string::npos) << none.error().message;
}

TEST(DeviceBudget, TheCapLimitsWhatIsUsed) {
  // 80 GiB free, but at most 6 GiB: 6144 - 3800 - 300 = 2044 MiB for KV = 127 blocks.
  DeviceRoom room{"GPU", 80 * kGiB, 80 * kGiB, -1};
  room.cap_bytes = 6 * kGiB;
  auto plan = plan_device_kv(seven_b(2048, 4), room);
  ASSERT_TRUE(plan.has_value()) << plan.error().message;
  EXPECT_EQ(plan->n_blocks, 127);
  EXPECT_LE(plan->total_bytes(), room.cap_bytes);
  EXPECT_NE(describe(*plan, room).find("at most 6.00 GiB by --gpu-memory-budget"),
            std::string::npos)
      << describe(*plan, room);
  // A cap above what is free less the reserve changes nothing.
  room.cap_bytes = 79 * kGiB;
  EXPECT_EQ(plan_device_kv(seven_b(4096, 8), room)->n_blocks, 1024);
  // Below the weights: refused, naming the cap.
  room.cap_bytes = 3 * kGiB;
  auto refused = plan_device_kv(seven_b(512, 1), room);
  ASSERT_FALSE(refused.has_value());
  EXPECT_NE(refused.error().message.find("--gpu-memory-budget allows 3.00 GiB"), std::string::npos)
      << refused.error().message;
}

TEST(DeviceBudget, RejectsNonsense) {
  DeviceKvRequest r = seven_b(4096, 1);
  r.block_bytes = 0;
  EXPECT_EQ(plan_device_kv(r, DeviceRoom{"GPU", kGiB, kGiB, 0}).error().code,
            ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace pensieve::memory
