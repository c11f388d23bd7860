#include "kernels/cpu/cpu_features.h"

#include <cstdint>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#elif defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

namespace pensieve::cpu {
namespace {

#if defined(__x86_64__) || defined(__i386__)

struct Regs {
  uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
};

Regs cpuid(uint32_t leaf, uint32_t subleaf) {
  Regs r;
  __cpuid_count(leaf, subleaf, r.eax, r.ebx, r.ecx, r.edx);
  return r;
}

uint64_t xgetbv0() {
  uint32_t lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

bool bit(uint32_t value, int n) { return (value >> n) & 1u; }

CpuFeatures detect() {
  CpuFeatures f;
  if (__get_cpuid_max(0, nullptr) < 7) return f;
  const Regs r1 = cpuid(1, 0);
  const bool osxsave = bit(r1.ecx, 27);
  if (!osxsave) return f;
  // The OS must save the YMM state (XCR0 bits 1-2) and, for AVX-512, opmask and ZMM (5-7).
  const uint64_t xcr0 = xgetbv0();
  const bool os_avx = (xcr0 & 0x6) == 0x6;
  const bool os_avx512 = os_avx && (xcr0 & 0xe0) == 0xe0;
  const Regs r7 = cpuid(7, 0);
  const Regs r7_1 = cpuid(7, 1);
  if (os_avx) {
    f.avx2 = bit(r7.ebx, 5);
    f.fma = bit(r1.ecx, 12);
    f.f16c = bit(r1.ecx, 29);
    f.avx_vnni = bit(r7_1.eax, 4);
  }
  if (os_avx512) {
    f.avx512f = bit(r7.ebx, 16);
    f.avx512bw = bit(r7.ebx, 30);
    f.avx512vl = bit(r7.ebx, 31);
    f.avx512vnni = bit(r7.ecx, 11);
    f.avx512bf16 = bit(r7_1.eax, 5);
  }
  return f;
}

#elif defined(__aarch64__) && defined(__linux__)

CpuFeatures detect() {
  CpuFeatures f;
  f.neon = (getauxval(AT_HWCAP) & HWCAP_ASIMD) != 0;
  return f;
}

#else

CpuFeatures detect() { return CpuFeatures{}; }

#endif

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

bool isa_supported(Isa isa) {
  const CpuFeatures& f = cpu_features();
  const bool avx2 = f.avx2 && f.fma && f.f16c;
  switch (isa) {
    case Isa::kScalar:
      return true;
    case Isa::kAvx2:
      return avx2;
    case Isa::kAvx512:
      return avx2 && f.avx512f && f.avx512bw && f.avx512vl && f.avx512vnni;
    case Isa::kNeon:
      return f.neon;
  }
  return false;
}

Isa best_isa() {
  static const Isa best = [] {
    Isa result = Isa::kScalar;
    for (Isa isa : kAllIsas) {
      if (isa_supported(isa)) result = isa;
    }
    return result;
  }();
  return best;
}

std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return "scalar";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
    case Isa::kNeon:
      return "neon";
  }
  return "unknown";
}

}  // namespace pensieve::cpu
