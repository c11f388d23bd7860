// Each row's k best values with their indices, so that a top-k sampler gets k pairs a sequence
// instead of the row. One thread block a row. Values become 32-bit keys that order as the floats
// do (-0 as +0, so equal values have equal keys); a radix select finds the k-th largest key a byte
// at a time, from the top: a histogram of the keys that share the bytes chosen so far, then the
// byte where the count from the top reaches what is still needed. One pass in index order then
// takes every key above that threshold and, of the keys equal to it, the ones of lowest index (a
// scan of each chunk's matches), and a bitonic sort in shared memory orders the k as
// sampling::best_tokens does. On request the kernel also adds up the row's softmax denominator,
// for a top-p or min-p over the whole row.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.h"

namespace pensieve::cuda {
namespace {

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / detail::kWarp;
constexpr int kBins = 256;  // a byte of the key
constexpr int kBinsPerLane = kBins / detail::kWarp;
constexpr int kSorted = kBestRowsMax;  // the sort's size: k rounded up to a power of two
static_assert((kSorted & (kSorted - 1)) == 0 && kSorted / 2 <= kThreads);

__device__ __forceinline__ uint32_t order_key(float v) {
  const uint32_t u = __float_as_uint(v == 0.0f ? 0.0f : v);
  return (u & 0x80000000u) != 0 ? ~u : u | 0x80000000u;
}

struct Slot {
  uint32_t key;
  int32_t index;
  float value;
};

// a goes before b: the larger key, or the lower index of equal keys.
__device__ __forceinline__ bool before(const Slot& a, const Slot& b) {
  return a.key != b.key ? a.key > b.key : a.index < b.index;
}

// The row's sum of exp(v - top) for its largest value top, each exponential a float added in
// double (Candidates::softmax's denominator), the threads' sums added in a fixed order. The whole
// block calls it.
__device__ __forceinline__ double exp_sum(const float* row, int64_t n_cols, float top) {
  __shared__ double warp_sums[kWarps];
  const int tid = static_cast<int>(threadIdx.x);
  double sum = 0.0;
  for (int64_t i = tid; i < n_cols; i += kThreads) sum += static_cast<double>(expf(row[i] - top));
  for (int offset = detail::kWarp / 2; offset > 0; offset >>= 1) {
    sum += __shfl_xor_sync(detail::kFullMask, sum, offset);
  }
  if (tid % detail::kWarp == 0) warp_sums[tid / detail::kWarp] = sum;
  __syncthreads();
  double total = 0.0;
  for (int w = 0; w < kWarps; ++w) total += warp_sums[w];
  return total;
}

__global__ void __launch_bounds__(kThreads)
    best_rows_kernel(const float* x, int64_t n_cols, int k, int32_t* out, double* exp_sums) {
  __shared__ unsigned hist[kBins];
  __shared__ uint32_t chosen_byte;
  __shared__ int chosen_need;
  __shared__ int n_above;
  __shared__ int not_finite;
  __shared__ int warp_matches[kWarps];
  __shared__ Slot slots[kSorted];
  detail::begin_dependent();
  const float* row = x + static_cast<int64_t>(blockIdx.x) * n_cols;
  const int tid = static_cast<int>(threadIdx.x);
  const int warp = tid / detail::kWarp;
  const int lane = tid % detail::kWarp;

  // The threshold: the k-th largest key, and how many keys equal to it are among the k.
  uint32_t prefix = 0;
  uint32_t mask = 0;
  int need = k;  // of the keys that match prefix under mask, from the top
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int b = tid; b < kBins; b += kThreads) hist[b] = 0;
    __syncthreads();
    for (int64_t i = tid; i < n_cols; i += kThreads) {
      const uint32_t key = order_key(row[i]);
      if ((key & mask) == prefix) atomicAdd(&hist[(key >> shift) & 0xFFu], 1u);
    }
    __syncthreads();
    if (warp == 0) {  // lane l: bins 255 - 8l down to 248 - 8l; a scan from the top
      unsigned count[kBinsPerLane];
      unsigned sum = 0;
#pragma unroll
      for (int j = 0; j < kBinsPerLane; ++j) {
        count[j] = hist[kBins - 1 - kBinsPerLane * lane - j];
        sum += count[j];
      }
      unsigned inclusive = sum;
      for (int offset = 1; offset < detail::kWarp; offset <<= 1) {
        const unsigned up = __shfl_up_sync(detail::kFullMask, inclusive, offset);
        if (lane >= offset) inclusive += up;
      }
      unsigned at = inclusive - sum;
      const auto wanted = static_cast<unsigned>(need);
      if (at < wanted && wanted <= inclusive) {  // one lane
        for (int j = 0; j < kBinsPerLane; ++j) {
          if (at + count[j] >= wanted) {
            chosen_byte = static_cast<uint32_t>(kBins - 1 - kBinsPerLane * lane - j);
            chosen_need = static_cast<int>(wanted - at);
            break;
          }
          at += count[j];
        }
      }
    }
    __syncthreads();
    prefix |= chosen_byte << shift;
    mask |= 0xFFu << shift;
    need = chosen_need;
    __syncthreads();  // every thread has read them before the next pass writes them
  }

  // The k: keys above the threshold in slots [0, k - need), the first `need` equal ones (in
  // index order) in [k - need, k).
  if (tid == 0) {
    n_above = 0;
    not_finite = 0;
  }
  __syncthreads();
  int equal_before = 0;  // equal keys in the chunks before
  for (int64_t start = 0; start < n_cols; start += kThreads) {
    const int64_t i = start + tid;
    const bool in = i < n_cols;
    const float v = in ? row[i] : 0.0f;
    if (in && !isfinite(v)) not_finite = 1;
    const uint32_t key = order_key(v);
    if (in && key > prefix) slots[atomicAdd(&n_above, 1)] = {key, static_cast<int32_t>(i), v};
    const bool equal = in && key == prefix;
    const unsigned ballot = __ballot_sync(detail::kFullMask, equal);
    if (lane == 0) warp_matches[warp] = __popc(ballot);
    __syncthreads();
    int rank = equal_before + __popc(ballot & ((1u << lane) - 1u));
    int chunk = 0;
    for (int w = 0; w < kWarps; ++w) {
      if (w < warp) rank += warp_matches[w];
      chunk += warp_matches[w];
    }
    if (equal && rank < need) slots[k - need + rank] = {key, static_cast<int32_t>(i), v};
    equal_before += chunk;
    __syncthreads();
  }

  // Bitonic sort of the k, padded to a power of two with slots that go last.
  int n_sorted = 1;
  while (n_sorted < k) n_sorted <<= 1;
  for (int s = k + tid; s < n_sorted; s += kThreads) slots[s] = {0u, INT32_MAX, 0.0f};
  __syncthreads();
  for (int size = 2; size <= n_sorted; size <<= 1) {
    for (int stride = size / 2; stride > 0; stride >>= 1) {
      if (tid < n_sorted / 2) {
        const int a = 2 * tid - (tid & (stride - 1));
        const int b = a + stride;
        const bool first_best = (a & size) == 0;  // this run puts the best first
        if (first_best == before(slots[b], slots[a])) {
          const Slot t = slots[a];
          slots[a] = slots[b];
          slots[b] = t;
        }
      }
      __syncthreads();
    }
  }
  int32_t* row_out = out + 2 * static_cast<int64_t>(blockIdx.x) * k;
  for (int s = tid; s < k; s += kThreads) {
    row_out[2 * s] = s == 0 && not_finite != 0 ? -1 : slots[s].index;
    row_out[2 * s + 1] = __float_as_int(slots[s].value);
  }
  if (exp_sums != nullptr) {  // a row that is not finite has no use for it
    const double sum = not_finite != 0 ? 0.0 : exp_sum(row, n_cols, slots[0].value);
    if (tid == 0) exp_sums[blockIdx.x] = sum;
  }
}

}  // namespace

void best_rows(const float* x, int64_t n_rows, int64_t n_cols, int64_t k, int32_t* out,
               double* exp_sums, cudaStream_t stream) {
  if (k < 1 || k > kBestRowsMax || k > n_cols || n_cols > INT32_MAX) {
    std::fprintf(stderr, "cuda best_rows: %lld best of rows of %lld\n", static_cast<long long>(k),
                 static_cast<long long>(n_cols));
    std::abort();
  }
  if (n_rows == 0) return;
  detail::launch_dependent(best_rows_kernel, static_cast<unsigned>(n_rows), kThreads, 0, stream, x,
                           n_cols, static_cast<int>(k), out, exp_sums);
}

}  // namespace pensieve::cuda
