// Targets other than ARM64 have no NEON kernels.
#include "kernels/cpu/gemm_kernels.h"

namespace pensieve::cpu {

const IsaKernels* neon_kernels() { return nullptr; }

}  // namespace pensieve::cpu
