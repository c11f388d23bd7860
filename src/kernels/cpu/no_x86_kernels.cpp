// Targets other than x86-64 have no AVX2 or AVX-512 kernels.
#include "kernels/cpu/gemm_kernels.h"

namespace pensieve::cpu {

const IsaKernels* avx2_kernels() { return nullptr; }
const IsaKernels* avx512_kernels() { return nullptr; }

}  // namespace pensieve::cpu
