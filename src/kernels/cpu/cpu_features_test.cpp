// CPU feature detection and dispatch levels.
#include "kernels/cpu/cpu_features.h"

#include <gtest/gtest.h>

namespace pensieve::cpu {
namespace {

TEST(CpuFeatures, ScalarAlwaysAndBestIsSupported) {
  EXPECT_TRUE(isa_supported(Isa::kScalar));
  EXPECT_TRUE(isa_supported(best_isa()));
  for (Isa isa : kAllIsas) {
    if (static_cast<int>(isa) > static_cast<int>(best_isa())) {
      EXPECT_FALSE(isa_supported(isa));
    }
  }
}

TEST(CpuFeatures, LevelsImplyTheirFeatures) {
  const CpuFeatures& f = cpu_features();
  if (isa_supported(Isa::kAvx2)) {
    EXPECT_TRUE(f.avx2 && f.fma && f.f16c);
  }
  if (isa_supported(Isa::kAvx512)) {
    EXPECT_TRUE(isa_supported(Isa::kAvx2));
    EXPECT_TRUE(f.avx512f && f.avx512bw && f.avx512vl && f.avx512vnni);
  }
  if (isa_supported(Isa::kNeon)) {
    EXPECT_TRUE(f.neon);
    EXPECT_FALSE(isa_supported(Isa::kAvx2));
  }
}

// ARM64 always has Advanced SIMD, so the NEON kernels run (and are tested) on every ARM64 CPU.
TEST(CpuFeatures, NeonExactlyOnArm64) {
#if defined(__aarch64__)
  EXPECT_TRUE(isa_supported(Isa::kNeon));
  EXPECT_EQ(best_isa(), Isa::kNeon);
#else
  EXPECT_FALSE(isa_supported(Isa::kNeon));
#endif
}

TEST(CpuFeatures, Names) {
  EXPECT_EQ(isa_name(Isa::kScalar), "scalar");
  EXPECT_EQ(isa_name(Isa::kAvx2), "avx2");
  EXPECT_EQ(isa_name(Isa::kAvx512), "avx512");
  EXPECT_EQ(isa_name(Isa::kNeon), "neon");
}

}  // namespace
}  // namespace pensieve::cpu
