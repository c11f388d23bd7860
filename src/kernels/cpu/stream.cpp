#include "kernels/cpu/stream.h"

#include "core/check.h"
#include "kernels/cpu/cpu_features.h"

#if defined(__x86_64__)
#include "kernels/cpu/simd_intrinsics.h"
#endif

namespace pensieve::cpu {
namespace {

// Four independent sums per step so the adds never wait on each other; the hardware prefetcher
// sees one sequential stream per thread.
float stream_sum_portable(const float* x, int64_t n) {
  float acc[16] = {};
  for (int64_t i = 0; i < n; i += 16) {
    for (int j = 0; j < 16; ++j) acc[j] += x[i + j];
  }
  float sum = 0;
  for (float a : acc) sum += a;
  return sum;
}

#if defined(__x86_64__)
__attribute__((target("avx512f"))) float stream_sum_avx512(const float* x, int64_t n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (int64_t i = 0; i < n; i += 64) {
    a0 = _mm512_add_ps(a0, _mm512_load_ps(x + i));
    a1 = _mm512_add_ps(a1, _mm512_load_ps(x + i + 16));
    a2 = _mm512_add_ps(a2, _mm512_load_ps(x + i + 32));
    a3 = _mm512_add_ps(a3, _mm512_load_ps(x + i + 48));
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

__attribute__((target("avx2"))) float stream_sum_avx2(const float* x, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (int64_t i = 0; i < n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_load_ps(x + i));
    a1 = _mm256_add_ps(a1, _mm256_load_ps(x + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_load_ps(x + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_load_ps(x + i + 24));
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  float sum = 0;
  for (float l : lanes) sum += l;
  return sum;
}
#endif

}  // namespace

float stream_sum(const float* x, int64_t n) {
  PV_CHECK(n % 64 == 0 && reinterpret_cast<uintptr_t>(x) % 64 == 0, "stream_sum: {} floats at {}",
           n, static_cast<const void*>(x));
#if defined(__x86_64__)
  if (cpu_features().avx512f) return stream_sum_avx512(x, n);
  if (cpu_features().avx2) return stream_sum_avx2(x, n);
#endif
  return stream_sum_portable(x, n);
}

}  // namespace pensieve::cpu
