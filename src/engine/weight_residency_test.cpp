// Keep-alive of weights on a GPU, with the device's steps recorded: the whole model there gives
// the host copy back after each upload; a split with the CPU keeps it while the model is in use
// and gives back both copies when released. The host side is the real TinyStories-656K model.
#include "engine/weight_residency.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/test_support.h"

namespace pensieve {
namespace {

using engine_test::load;

struct DeviceSteps {
  std::vector<std::string> log;
  // What the host copy was when the device uploaded (restore reads it).
  std::vector<bool> host_resident_at_upload;
};

DeviceResidency residency(Model& model, DeviceSteps& steps, DeviceResidency::HostCopy host) {
  return DeviceResidency(
      model,
      [&steps] {
        steps.log.push_back("release");
        return Expected<void>{};
      },
      [&steps, &model] {
        steps.log.push_back("upload");
        steps.host_resident_at_upload.push_back(model.weights_resident());
        return Expected<void>{};
      },
      1000, host);
}

TEST(DeviceResidency, TheWholeModelOnTheGpuGivesTheHostCopyBack) {
  auto l = load();
  ASSERT_NE(l.model, nullptr);
  ASSERT_TRUE(l.model->release_weights());  // as serve leaves it after the first upload
  DeviceSteps steps;
  DeviceResidency r = residency(*l.model, steps, DeviceResidency::HostCopy::kReleased);
  EXPECT_EQ(r.bytes(), 1000);
  ASSERT_TRUE(r.release());
  EXPECT_FALSE(l.model->weights_resident());
  ASSERT_TRUE(r.restore());
  EXPECT_FALSE(l.model->weights_resident()) << "the host copy is given back after the upload";
  EXPECT_EQ(steps.log, (std::vector<std::string>{"release", "upload"}));
  EXPECT_EQ(steps.host_resident_at_upload, std::vector<bool>{true});
}

TEST(DeviceResidency, ASplitKeepsTheHostCopyWhileInUse) {
  auto l = load();
  ASSERT_NE(l.model, nullptr);
  DeviceSteps steps;
  DeviceResidency r = residency(*l.model, steps, DeviceResidency::HostCopy::kKept);
  EXPECT_EQ(r.bytes(), 1000 + l.model->weights_bytes());
  ASSERT_TRUE(r.release());
  EXPECT_FALSE(l.model->weights_resident()) << "released: both copies go";
  ASSERT_TRUE(r.restore());
  EXPECT_TRUE(l.model->weights_resident()) << "the CPU's layers read the host copy";
  EXPECT_EQ(steps.log, (std::vector<std::string>{"release", "upload"}));
  EXPECT_EQ(steps.host_resident_at_upload, std::vector<bool>{true});
}

}  // namespace
}  // namespace pensieve
