#include "memory/budget.h"

#include <string>

#include <gtest/gtest.h>

namespace pensieve::memory {
namespace {

constexpr int64_t kMiB = int64_t{1} << 20;
constexpr int64_t kGiB = int64_t{1} << 30;

// A 4 GiB model with 64 KiB of KV cache per position (32768 positions = 2 GiB).
BudgetInputs model_inputs() {
  BudgetInputs in;
  in.weights_bytes = 4 * kGiB;
  in.kv_bytes_per_position = 64 * 1024;
  in.scratch_bytes = 300 * kMiB;
  in.buffers_bytes = 100 * kMiB;
  in.n_ctx_train = 131072;
  return in;
}

MachineRoom machine(int64_t usable_bytes, int64_t reserve_bytes = 0, int64_t others_bytes = 0) {
  MachineRoom room;
  room.usable_bytes = usable_bytes;
  room.available_bytes = usable_bytes;
  room.reserve_bytes = reserve_bytes;
  room.others_outstanding_bytes = others_bytes;
  return room;
}

std::string error_of(const Expected<Budget>& budget) {
  return budget ? std::string("(no error)") : budget.error().message;
}

TEST(Budget, FitsAtTheLargestAutoContext) {
  auto budget = plan_budget(model_inputs(), {}, machine(16 * kGiB, 2 * kGiB));
  ASSERT_TRUE(budget) << error_of(budget);
  EXPECT_EQ(budget->n_ctx, 32768);
  EXPECT_EQ(budget->n_parallel, 1);
  EXPECT_FALSE(budget->auto_sized);
  EXPECT_EQ(budget->kv_bytes, 2 * kGiB);
  EXPECT_EQ(budget->total_bytes(), 6 * kGiB + 400 * kMiB);
  EXPECT_EQ(budget->limit_bytes, 14 * kGiB);
  const std::string text = describe(*budget, "F16");
  EXPECT_NE(text.find("32768 positions x 1 sequence, F16"), std::string::npos) << text;
  EXPECT_NE(text.find("6.39 GiB  of 14.0 GiB this machine can give"), std::string::npos) << text;
  EXPECT_EQ(text.find("sized to fit"), std::string::npos) << text;
}

TEST(Budget, FixedContextThatFitsIsKept) {
  BudgetRequest req;
  req.n_ctx = 100000;  // more than max_auto_ctx: the operator's choice wins
  req.n_parallel = 2;
  auto budget = plan_budget(model_inputs(), req, machine(64 * kGiB));
  ASSERT_TRUE(budget) << error_of(budget);
  EXPECT_EQ(budget->n_ctx, 100000);
  EXPECT_EQ(budget->kv_bytes, int64_t{64 * 1024} * 100000 * 2);
  EXPECT_FALSE(budget->auto_sized);
}

TEST(Budget, FixedContextTooBigNamesAContextThatFits) {
  BudgetRequest req;
  req.n_ctx = 32768;
  const MachineRoom room = machine(7 * kGiB, 2 * kGiB);  // 5 GiB of room
  auto budget = plan_budget(model_inputs(), req, room);
  ASSERT_FALSE(budget);
  EXPECT_EQ(budget.error().code, ErrorCode::kResourceExhausted);
  const std::string& message = budget.error().message;
  EXPECT_NE(message.find("memory: pensieve needs 6.39 GiB (weights 4.00 GiB + KV cache 2.00 GiB "
                         "for 32768 positions x 1 sequence"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("can count on 5.00 GiB"), std::string::npos) << message;
  EXPECT_NE(message.find("reserve 2.00 GiB"), std::string::npos) << message;
  EXPECT_NE(message.find("smaller quantization"), std::string::npos) << message;
  const size_t at = message.find("--ctx ");
  ASSERT_NE(at, std::string::npos) << message;
  size_t digits = 0;
  const int64_t suggested = std::stoll(message.substr(at + 6), &digits);
  EXPECT_EQ(message.substr(at + 6 + digits, 5), " fits") << message;
  EXPECT_EQ(suggested % 256, 0);
  EXPECT_LT(suggested, 32768);
  // (5 GiB - 4.39 GiB) / 64 KiB = 9984 positions exactly.
  EXPECT_EQ(suggested, 9984);
  req.n_ctx = suggested;
  auto retry = plan_budget(model_inputs(), req, room);
  EXPECT_TRUE(retry) << error_of(retry);
  req.n_ctx = suggested + 256;
  EXPECT_FALSE(plan_budget(model_inputs(), req, room));
}

TEST(Budget, AutoContextHalvesUntilItFits) {
  // 5 GiB of room: 32768 (6.39 GiB) and 16384 (5.39 GiB) do not fit, 8192 (4.89 GiB) does.
  auto budget = plan_budget(model_inputs(), {}, machine(5 * kGiB));
  ASSERT_TRUE(budget) << error_of(budget);
  EXPECT_EQ(budget->n_ctx, 8192);
  EXPECT_TRUE(budget->auto_sized);
  EXPECT_EQ(budget->n_ctx_auto_start, 32768);
  EXPECT_LE(budget->total_bytes(), 5 * kGiB);
  EXPECT_NE(describe(*budget).find("context sized to fit: 8192 of 32768"), std::string::npos)
      << describe(*budget);
}

TEST(Budget, AutoContextKeepsMultiplesOf256WhenHalving) {
  BudgetInputs in = model_inputs();
  in.n_ctx_train = 3000;  // 3000 -> 1280 (1500 rounded down) -> 512 (640 rounded down)
  in.kv_bytes_per_position = kMiB;
  const int64_t fixed = in.weights_bytes + in.scratch_bytes + in.buffers_bytes;
  auto budget = plan_budget(in, {}, machine(fixed + 700 * kMiB));
  ASSERT_TRUE(budget) << error_of(budget);
  EXPECT_EQ(budget->n_ctx, 512);
  budget = plan_budget(in, {}, machine(fixed + 1300 * kMiB));
  ASSERT_TRUE(budget) << error_of(budget);
  EXPECT_EQ(budget->n_ctx, 1280);
}

TEST(Budget, CapBindsBeforeTheMachine) {
  BudgetRequest req;
  req.n_ctx = 32768;
  req.cap_bytes = 6 * kGiB;
  auto budget = plan_budget(model_inputs(), req, machine(32 * kGiB));
  ASSERT_FALSE(budget);
  const std::string& message = budget.error().message;
  EXPECT_NE(message.find("can count on 6.00 GiB"), std::string::npos) << message;
  EXPECT_NE(message.find("--memory-budget 6.00 GiB"), std::string::npos) << message;
  // 6.39 GiB = 6544 MiB, which fits in the machine's 32 GiB.
  EXPECT_NE(message.find("raise --memory-budget (--memory-budget 6544MiB fits)"), std::string::npos)
      << message;
  EXPECT_EQ(message.find("stop other programs"), std::string::npos) << message;

  req.n_ctx.reset();
  auto sized = plan_budget(model_inputs(), req, machine(32 * kGiB));
  ASSERT_TRUE(sized) << error_of(sized);
  EXPECT_EQ(sized->n_ctx, 16384);
  EXPECT_TRUE(sized->cap_binds);
  EXPECT_NE(describe(*sized).find("allowed by --memory-budget"), std::string::npos);
}

TEST(Budget, WeightsAloneTooBig) {
  auto budget = plan_budget(model_inputs(), {}, machine(4 * kGiB));
  ASSERT_FALSE(budget);
  EXPECT_EQ(budget.error().code, ErrorCode::kResourceExhausted);
  const std::string& message = budget.error().message;
  EXPECT_EQ(message.find("--ctx"), std::string::npos) << message;
  EXPECT_NE(message.find("for 512 positions"), std::string::npos) << message;
  EXPECT_NE(message.find("Even a context of 512 positions does not fit"), std::string::npos)
      << message;
  EXPECT_NE(message.find("the weights alone are 4.00 GiB"), std::string::npos) << message;
  EXPECT_NE(message.find("more memory"), std::string::npos) << message;

  // A fixed context gets no --ctx suggestion either when nothing fits.
  BudgetRequest req;
  req.n_ctx = 4096;
  auto fixed = plan_budget(model_inputs(), req, machine(4 * kGiB));
  ASSERT_FALSE(fixed);
  EXPECT_EQ(fixed.error().message.find("--ctx"), std::string::npos) << fixed.error().message;
}

TEST(Budget, OthersOutstandingReducesRoom) {
  const MachineRoom alone = machine(10 * kGiB, 2 * kGiB);
  const MachineRoom shared = machine(10 * kGiB, 2 * kGiB, 3 * kGiB);
  EXPECT_EQ(room_bytes(alone), 8 * kGiB);
  EXPECT_EQ(room_bytes(shared), 5 * kGiB);
  EXPECT_EQ(room_bytes(machine(kGiB, 2 * kGiB)), 0);
  auto a = plan_budget(model_inputs(), {}, alone);
  auto b = plan_budget(model_inputs(), {}, shared);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->n_ctx, 32768);
  EXPECT_EQ(b->n_ctx, 8192);
  BudgetRequest req;
  req.n_ctx = 32768;
  auto refused = plan_budget(model_inputs(), req, shared);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("3.00 GiB for other pensieve servers"), std::string::npos)
      << refused.error().message;
}

TEST(Budget, TrainedContextBelowMinimum) {
  BudgetInputs in = model_inputs();
  in.n_ctx_train = 128;
  auto budget = plan_budget(in, {}, machine(64 * kGiB));
  ASSERT_TRUE(budget) << error_of(budget);
  EXPECT_EQ(budget->n_ctx, 128);
  EXPECT_FALSE(budget->auto_sized);
  // Too small a machine: the message names the trained context as the smallest one tried.
  auto refused = plan_budget(in, {}, machine(4 * kGiB));
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("Even a context of 128 positions"), std::string::npos)
      << refused.error().message;
}

TEST(Budget, ParallelSequencesMultiplyTheCache) {
  BudgetRequest req;
  req.n_parallel = 4;
  auto budget = plan_budget(model_inputs(), req, machine(8 * kGiB));
  ASSERT_TRUE(budget) << error_of(budget);
  // 4 sequences x 8192 positions x 64 KiB = 2 GiB.
  EXPECT_EQ(budget->n_ctx, 8192);
  EXPECT_EQ(budget->kv_bytes, 2 * kGiB);
  EXPECT_NE(describe(*budget).find("x 4 sequences"), std::string::npos);
}

TEST(Budget, RejectsNonsense) {
  BudgetInputs in = model_inputs();
  in.weights_bytes = -1;
  EXPECT_EQ(plan_budget(in, {}, machine(kGiB)).error().code, ErrorCode::kInvalidArgument);
  BudgetRequest req;
  req.n_ctx = 0;
  EXPECT_EQ(plan_budget(model_inputs(), req, machine(kGiB)).error().code,
            ErrorCode::kInvalidArgument);
  req = {};
  req.n_parallel = 0;
  EXPECT_EQ(plan_budget(model_inputs(), req, machine(kGiB)).error().code,
            ErrorCode::kInvalidArgument);
  // Overflowing sizes saturate instead of wrapping into something that fits.
  in = model_inputs();
  in.kv_bytes_per_position = int64_t{1} << 60;
  req = {};
  req.n_ctx = 1 << 20;
  EXPECT_EQ(plan_budget(in, req, machine(kGiB)).error().code, ErrorCode::kResourceExhausted);
}

TEST(Budget, FormatBytes) {
  EXPECT_EQ(format_bytes(0), "0 B");
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_bytes(1023), "1023 B");
  EXPECT_EQ(format_bytes(1536), "1.50 KiB");
  EXPECT_EQ(format_bytes(3355443), "3.20 MiB");
  EXPECT_EQ(format_bytes(512 * kMiB), "512 MiB");
  EXPECT_EQ(format_bytes(4402341478), "4.10 GiB");
  EXPECT_EQ(format_bytes(13207024435), "12.3 GiB");
  EXPECT_EQ(format_bytes(-2048), "-2.00 KiB");
}

}  // namespace
}  // namespace pensieve::memory
