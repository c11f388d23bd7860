// Synthetic models of each architecture load, run through the reference forward pass, and
// survive quantization with logits close to the F16 original; broken models give clear errors.
#include <cmath>
#include <filesystem>

#include <unistd.h>

#include <gtest/gtest.h>

#include "gguf/writer.h"
#include "model/forward_ref.h"
#include "model/model.h"
#include "model/quantize.h"
#include "model/synth.h"
#include "model/test_support.h"

namespace pensieve {
namespace {

// Unique per process: ctest runs these tests in parallel processes.
std::string temp_path(const std::string& name) {
  return model_test::temp_path("pensieve_test", name);
}

std::string synth(const std::string& preset) {
  const std::string path = temp_path(preset + ".gguf");
  SynthOptions o;
  o.preset = preset;
  o.output_path = path;
  o.shared_dir = PENSIEVE_SHARED_DIR;
  auto done = synth_model(o);
  EXPECT_TRUE(done.has_value()) << done.error().message;
  return path;
}

// Logits after each of a fixed token sequence, concatenated.
std::vector<float> run_tokens(const std::string& path, std::vector<int32_t> tokens) {
  auto model = Model::load(path);
  EXPECT_TRUE(model.has_value()) << model.error().message;
  if (!model) return {};
  ReferenceForward fwd((*model)->hparams(), (*model)->weights(), 64);
  std::vector<float> all;
  for (int32_t t : tokens) {
    auto logits = fwd.step(t);
    EXPECT_TRUE(logits.has_value());
    all.insert(all.end(), logits->begin(), logits->end());
  }
  return all;
}

using model_test::relative_rms;

struct QuantCase {
  const char* target;
  double max_relative_rms;  // logits vs the F16 model's
};

class SynthArch : public ::testing::TestWithParam<const char*> {};

TEST_P(SynthArch, RunsAndQuantizesCloseToF16) {
  const std::string preset = GetParam();
  const std::string f16 = synth(preset);
  const std::vector<int32_t> tokens = {1, 100, 200, 300, 400, 500, 600, 700};
  const auto reference = run_tokens(f16, tokens);
  ASSERT_FALSE(reference.empty());
  for (float v : reference) ASSERT_TRUE(std::isfinite(v));
  // Measured (relative RMS of 8 steps of logits, all three presets): Q8_0 0.010-0.011,
  // Q6_K 0.041-0.044, Q4_K_M 0.164-0.167, Q4_0 0.180-0.195.
  const QuantCase cases[] = {{"Q8_0", 0.015}, {"Q6_K", 0.055}, {"Q4_K_M", 0.2}, {"Q4_0", 0.24}};
  for (const QuantCase& c : cases) {
    const std::string out = temp_path(preset + "-" + c.target + ".gguf");
    auto summary = quantize_model({f16, out, c.target, 2});
    ASSERT_TRUE(summary.has_value()) << summary.error().message;
    EXPECT_EQ(summary->n_fallbacks, 0) << c.target;
    const auto logits = run_tokens(out, tokens);
    ASSERT_EQ(logits.size(), reference.size());
    EXPECT_LT(relative_rms(reference, logits), c.max_relative_rms) << preset << " " << c.target;
    std::filesystem::remove(out);
  }
  std::filesystem::remove(f16);
}

INSTANTIATE_TEST_SUITE_P(Presets, SynthArch,
                         ::testing::Values("tiny-llama", "tiny-qwen2", "tiny-phi3"),
                         [](const auto& param_info) {
                           std::string n = param_info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

// Rewrites `src` without tensor `drop`, or with tensor `reshape` given a wrong shape.
std::string broken_copy(const std::string& src, const std::string& drop, const std::string& reshape,
                        GgmlType retype = GgmlType::kF32) {
  auto in = GgufFile::open(src);
  EXPECT_TRUE(in.has_value());
  GgufWriter w;
  for (const GgufKv& kv : (*in)->metadata()) w.copy(kv.key, kv.value);
  std::vector<std::vector<uint8_t>> keep;
  for (const GgufTensorInfo& t : (*in)->tensors()) {
    if (t.name == drop) continue;
    if (t.name == reshape) {
      if (retype != GgmlType::kF32) {  // same byte count is not needed: fresh zero data
        const int64_t ne[] = {256, t.ne[1]};
        const size_t n = ggml_row_bytes(ggml_type_traits(retype), 256) * t.ne[1];
        EXPECT_TRUE(w.add_tensor_owned(t.name, retype, ne, std::vector<uint8_t>(n)).has_value());
      } else {
        const int64_t ne[] = {t.ne[1], t.ne[0]};  // transposed
        EXPECT_TRUE(w.add_tensor(t.name, t.type, ne, t.bytes()).has_value());
      }
      continue;
    }
    EXPECT_TRUE(
        w.add_tensor(t.name, t.type, {t.ne, static_cast<size_t>(t.n_dims)}, t.bytes()).has_value());
  }
  const std::string out = temp_path("broken.gguf");
  EXPECT_TRUE(w.write(out).has_value());
  return out;
}

TEST(ModelLoad, ClearErrorsForBrokenModels) {
  const std::string f16 = synth("tiny-llama");
  auto missing = Model::load(broken_copy(f16, "blk.1.ffn_up.weight", ""));
  ASSERT_FALSE(missing.has_value());
  EXPECT_NE(missing.error().message.find("tensor 'blk.1.ffn_up.weight' is missing"),
            std::string::npos)
      << missing.error().message;
  auto shape = Model::load(broken_copy(f16, "", "blk.0.ffn_gate.weight"));
  ASSERT_FALSE(shape.has_value());
  EXPECT_NE(shape.error().message.find("'blk.0.ffn_gate.weight' has shape [512, 256], expected "
                                       "[256, 512]"),
            std::string::npos)
      << shape.error().message;
  auto type = Model::load(broken_copy(f16, "", "blk.0.attn_q.weight", GgmlType::kIQ2_XXS));
  ASSERT_FALSE(type.has_value());
  EXPECT_NE(type.error().message.find("type IQ2_XXS, which pensieve cannot compute with"),
            std::string::npos)
      << type.error().message;
  std::filesystem::remove(f16);
}

TEST(Quantize, RejectsUnknownTarget) {
  auto t = quantize_type_for("Q4_X", "blk.0.attn_q.weight", 22);
  ASSERT_FALSE(t.has_value());
  EXPECT_NE(t.error().message.find("unknown target 'Q4_X'"), std::string::npos);
}

TEST(Quantize, Q4_K_MGivesSensitiveMatricesMoreBits) {
  EXPECT_EQ(*quantize_type_for("Q4_K_M", "output.weight", 22), GgmlType::kQ6_K);
  EXPECT_EQ(*quantize_type_for("Q4_K_M", "blk.0.ffn_down.weight", 22), GgmlType::kQ6_K);
  EXPECT_EQ(*quantize_type_for("Q4_K_M", "blk.0.ffn_up.weight", 22), GgmlType::kQ4_K);
  EXPECT_EQ(*quantize_type_for("Q4_K_M", "blk.4.attn_v.weight", 22), GgmlType::kQ6_K);
  EXPECT_EQ(*quantize_type_for("Q4_K_M", "blk.5.attn_v.weight", 22), GgmlType::kQ4_K);
  EXPECT_EQ(*quantize_type_for("Q4_K_M", "blk.21.attn_v.weight", 22), GgmlType::kQ6_K);
}

}  // namespace
}  // namespace pensieve
