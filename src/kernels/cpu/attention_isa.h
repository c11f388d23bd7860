// Per-ISA entry points of the attention kernel, one per translation unit.
#pragma once

#include "kernels/cpu/attention.h"

namespace pensieve::cpu {

void attention_base(const AttentionJob& job, float* scratch);  // attention_base.cpp
#if defined(__x86_64__)
void attention_avx2(const AttentionJob& job, float* scratch);    // avx2_attention.cpp
void attention_avx512(const AttentionJob& job, float* scratch);  // avx512_attention.cpp
#endif

}  // namespace pensieve::cpu
