// Loop nest shared by the SIMD kernels: one token streams rows one after another; several tokens
// go in register tiles of up to kR rows x kT tokens, with rows in blocks that stay in L2 while
// the tokens sweep past. Internal linkage: include only from kernel units.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pensieve::cpu {
namespace {

// Weights of one row block: small enough to stay in L2 next to the activations.
constexpr size_t kRowBlockBytes = size_t{256} << 10;

// tile.template operator()<R, T>(r, t) computes rows [r, r + R) x tokens [t, t + T), T <= kT.
template <int R, int kT, class Tile>
inline void token_tile(Tile& tile, int64_t r, int64_t t, int64_t n) {
  if constexpr (kT > 1) {
    if (n < kT) return token_tile<R, kT - 1>(tile, r, t, n);
  }
  tile.template operator()<R, kT>(r, t);
}

template <int kR, int kT, class Tile>
void run_tiles(Tile& tile, size_t row_bytes, int64_t r0, int64_t r1, int64_t t0, int64_t t1) {
  if (t1 - t0 == 1) {  // decode: one sequential run through the weights
    for (int64_t r = r0; r < r1; ++r) tile.template operator()<1, 1>(r, t0);
    return;
  }
  int64_t block = static_cast<int64_t>(kRowBlockBytes / (row_bytes > 0 ? row_bytes : 1));
  block = block < kR ? kR : block / kR * kR;
  for (int64_t rb = r0; rb < r1; rb += block) {
    const int64_t re = rb + block < r1 ? rb + block : r1;
    for (int64_t t = t0; t < t1; t += kT) {
      const int64_t n = t1 - t < kT ? t1 - t : kT;
      int64_t r = rb;
      for (; r + kR <= re; r += kR) token_tile<kR, kT>(tile, r, t, n);
      for (; r < re; ++r) token_tile<1, kT>(tile, r, t, n);
    }
  }
}

}  // namespace
}  // namespace pensieve::cpu
