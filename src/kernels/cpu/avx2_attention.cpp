// The attention kernel built for this unit's ISA (see attention_impl.h).
#define PENSIEVE_VEC_BYTES 32
#include "kernels/cpu/attention_impl.h"
#include "kernels/cpu/attention_isa.h"

namespace pensieve::cpu {

void attention_avx2(const AttentionJob& job, float* scratch) { attention_impl(job, scratch); }

}  // namespace pensieve::cpu
