// Which SIMD instruction sets this CPU (and its operating system) can run, from cpuid/xgetbv on
// x86-64 and the auxiliary vector on ARM64, and the dispatch levels the matrix kernels are built
// for.
#pragma once

#include <string_view>

namespace pensieve::cpu {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512vnni = false;
  bool avx512bf16 = false;
  bool avx_vnni = false;
  bool neon = false;  // ARM64 Advanced SIMD
};

// Detected once; later calls return the cached answer.
const CpuFeatures& cpu_features();

// Kernel dispatch levels, lowest first within each architecture (a level falls back to the next
// lower supported one). kAvx2 means AVX2 + FMA + F16C; kAvx512 means AVX-512 F/BW/VL/VNNI (Ice
// Lake, Sapphire Rapids, Zen 4 and later); kNeon means baseline ARMv8-A Advanced SIMD.
enum class Isa { kScalar, kAvx2, kAvx512, kNeon };
inline constexpr Isa kAllIsas[] = {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kNeon};

bool isa_supported(Isa isa);
// The highest level this CPU supports.
Isa best_isa();
std::string_view isa_name(Isa isa);

}  // namespace pensieve::cpu
