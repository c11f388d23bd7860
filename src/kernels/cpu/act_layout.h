// Byte layouts of quantized activations in the matmul workspace, shared by the quantizers and
// the kernels of every ISA. Functions have internal linkage so each ISA unit keeps its own copy.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pensieve::cpu {
namespace {

constexpr size_t round_up(size_t n, size_t multiple) {
  return (n + multiple - 1) / multiple * multiple;
}

// kQ8Block32Split, one token in groups of four blocks of 32 (padded with zero blocks):
//   qs    int8  [n_quads][128]       bytes 16b..16b+15: elements 0..15 of block b of the quad,
//                                    bytes 64+16b..: elements 16..31 of block b
//   d4    float [n_quads][16]        lanes 4b..4b+3: d of block b
//   bias4 int32 [n_quads][16]        lane 4b: -offset * sum(qs of block b), other lanes 0
//   s4    float [n_quads][16]        lane 4b: d * sum(qs of block b), other lanes 0
// Splitting each block into halves matches the low and high nibbles of 4-bit weights, so their
// quants unpack with one shift and mask per half; a 512-bit dot product covers four blocks, a
// 256-bit one two.
struct Block32SplitLayout {
  size_t n_quads;
  size_t d4_offset;
  size_t bias4_offset;
  size_t s4_offset;
  size_t row_bytes;
};

constexpr Block32SplitLayout block32_split_layout(int64_t n_cols) {
  const size_t n_quads = (static_cast<size_t>(n_cols) / 32 + 3) / 4;
  const size_t qs_bytes = n_quads * 128;
  const size_t meta_bytes = n_quads * 64;
  return {n_quads, qs_bytes, qs_bytes + meta_bytes, qs_bytes + 2 * meta_bytes,
          qs_bytes + 3 * meta_bytes};
}

// kQ8BlockK, one token of n_cols (a multiple of 256) elements in n_super blocks (Q8_K values):
//   qs    int8  [n_super * 256]      x ~= d * qs
//   d     float [n_super] (padded to 16)
//   bsums int16 [n_super][16]        sums of qs over each 16 elements
struct BlockKLayout {
  size_t n_super;
  size_t d_offset;
  size_t bsums_offset;
  size_t row_bytes;
};

constexpr BlockKLayout block_k_layout(int64_t n_cols) {
  const size_t n_super = static_cast<size_t>(n_cols) / 256;
  const size_t qs_bytes = n_super * 256;
  const size_t d_bytes = round_up(n_super, 16) * 4;
  return {n_super, qs_bytes, qs_bytes + d_bytes, round_up(qs_bytes + d_bytes + n_super * 32, 64)};
}

}  // namespace
}  // namespace pensieve::cpu
