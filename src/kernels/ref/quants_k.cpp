// K-quants (256-element super-blocks of 16 or 32-element sub-blocks): Q2_K .. Q6_K and Q8_K.
// Quantizers fit every sub-block (quant_fit.cpp), search the F16 super-block steps that put the
// largest sub-block scale (and min) on a top code, pick every sub-block's codes near its fit, and
// assign the levels against the final scales.
#include <algorithm>
#include <cmath>

#include "core/half.h"
#include "kernels/ref/quant_blocks.h"
#include "kernels/ref/quants_internal.h"

namespace pensieve::ref::detail {
namespace {

// ---- sub-block scale codes shared by the quantizers ----
//
// Codes are chosen by the growth of each sub-block's squared error over its fit, with the fitted
// levels kept (SymmetricFit/AffineFit::extra_error, exact for a quadratic, no pass over x); the
// final levels are then re-assigned against the chosen scales, which can only lower the error.

// Candidate super-block steps put the largest fitted scale (or min) on one of the top codes.
// Results whose largest code ended up elsewhere are used only when no candidate keeps it there:
// then an exactly representable block is fitted by one candidate exactly and re-quantizing a
// dequantized block reproduces its values.
constexpr int kTopCodes = 4;

bool top_code_ok(int max_code, int cmax) { return max_code == 0 || max_code > cmax - kTopCodes; }

// x ~= (d * sc) * l - (dmin * mc) per sub-block, l in [0, lmax], codes in [0, cmax].
struct AffineCodes {
  uint16_t d = 0;
  uint16_t dmin = 0;
  uint8_t sc[16] = {};
  uint8_t mc[16] = {};
};

// The scale and min codes near the fit's (and near its shifted twins') with the least growth of
// the error for steps d and dmin.
double pick_affine_codes(const AffineFit& fit, float d, float dmin, int cmax, int lmax, uint8_t* sc,
                         uint8_t* mc) {
  const int sc0 = d > 0.0f ? round_clamp(fit.scale / d, 0, cmax) : 0;
  double best = INFINITY;
  auto try_codes = [&](int s, int m, int k) {
    if (s < 0 || s > cmax || m < 0 || m > cmax) return;
    const double err =
        fit.extra_error(static_cast<double>(d) * s, static_cast<double>(dmin) * m, k);
    if (err < best) {
      best = err;
      *sc = static_cast<uint8_t>(s);
      *mc = static_cast<uint8_t>(m);
    }
  };
  for (int k = 0; k <= lmax - fit.l_hi; ++k) {
    const float min = fit.min + static_cast<float>(k) * fit.scale;
    if (k > 0 && min > dmin * (static_cast<float>(cmax) + 0.5f)) break;
    const int mc0 = dmin > 0.0f ? round_clamp(min / dmin, 0, cmax) : 0;
    for (const int s : {sc0, sc0 - 1, sc0 + 1}) {
      for (const int m : {mc0, mc0 - 1, mc0 + 1}) try_codes(s, m, k);
    }
  }
  return best;
}

int affine_level(float x, float ds, float dm, int lmax) {
  return ds > 0.0f ? round_clamp((x + dm) / ds, 0, lmax) : 0;
}

// The squared error of one sub-block for step ds and min dm with levels re-assigned.
double affine_error(const float* x, int n, float ds, float dm, int lmax) {
  double err = 0;
  for (int i = 0; i < n; ++i) {
    const double r = ds * static_cast<float>(affine_level(x[i], ds, dm, lmax)) - dm - x[i];
    err += r * r;
  }
  return err;
}

// Final choice of one sub-block's codes around the chosen ones by the real error (levels
// re-assigned), which the fitted-levels estimate can misjudge when a code moves far from the fit.
void refine_affine_codes(const float* x, int n, float d, float dmin, int cmax, int lmax,
                         uint8_t* sc, uint8_t* mc) {
  const int sc0 = *sc;
  const int mc0 = *mc;
  double best =
      affine_error(x, n, d * static_cast<float>(sc0), dmin * static_cast<float>(mc0), lmax);
  for (int s = std::max(0, sc0 - 1); s <= std::min(cmax, sc0 + 1); ++s) {
    for (int m = std::max(0, mc0 - 1); m <= std::min(cmax, mc0 + 1); ++m) {
      const double err =
          affine_error(x, n, d * static_cast<float>(s), dmin * static_cast<float>(m), lmax);
      if (err < best) {
        best = err;
        *sc = static_cast<uint8_t>(s);
        *mc = static_cast<uint8_t>(m);
      }
    }
  }
}

// Fits n_sub sub-blocks of sub_len, picks d, dmin and their codes, writes every level to l.
void quantize_affine(const float* x, int n_sub, int sub_len, int cmax, int lmax, AffineCodes* out,
                     uint8_t* l) {
  AffineFit fits[16];
  float max_scale = 0.0f;
  float max_min = 0.0f;
  for (int j = 0; j < n_sub; ++j) {
    fits[j] = fit_affine(x + j * sub_len, sub_len, lmax);
    max_scale = std::max(max_scale, fits[j].scale);
    max_min = std::max(max_min, fits[j].min);
  }
  double best_err[2] = {INFINITY, INFINITY};  // [0]: top codes kept, [1]: any
  AffineCodes best[2];
  for (int kd = 0; kd < kTopCodes; ++kd) {
    for (int km = 0; km < kTopCodes; ++km) {
      AffineCodes c;
      c.d = f32_to_f16(max_scale / static_cast<float>(cmax - kd));
      c.dmin = f32_to_f16(max_min / static_cast<float>(cmax - km));
      const float d = f16_to_f32(c.d);
      const float dmin = f16_to_f32(c.dmin);
      double err = 0;
      for (int j = 0; j < n_sub; ++j) {
        err += pick_affine_codes(fits[j], d, dmin, cmax, lmax, &c.sc[j], &c.mc[j]);
      }
      const int max_sc = *std::max_element(c.sc, c.sc + n_sub);
      const int max_mc = *std::max_element(c.mc, c.mc + n_sub);
      const int kind = top_code_ok(max_sc, cmax) && top_code_ok(max_mc, cmax) ? 0 : 1;
      if (err < best_err[kind]) {
        best_err[kind] = err;
        best[kind] = c;
      }
    }
  }
  *out = best_err[0] < INFINITY ? best[0] : best[1];
  const float d = f16_to_f32(out->d);
  const float dmin = f16_to_f32(out->dmin);
  // Keep the refinement only if it leaves the largest codes where the candidates put them.
  AffineCodes refined = *out;
  for (int j = 0; j < n_sub; ++j) {
    refine_affine_codes(x + j * sub_len, sub_len, d, dmin, cmax, lmax, &refined.sc[j],
                        &refined.mc[j]);
  }
  if (top_code_ok(*std::max_element(refined.sc, refined.sc + n_sub), cmax) &&
      top_code_ok(*std::max_element(refined.mc, refined.mc + n_sub), cmax)) {
    *out = refined;
  }
  for (int j = 0; j < n_sub; ++j) {
    const float ds = d * static_cast<float>(out->sc[j]);
    const float dm = dmin * static_cast<float>(out->mc[j]);
    for (int i = 0; i < sub_len; ++i) {
      l[j * sub_len + i] = static_cast<uint8_t>(affine_level(x[j * sub_len + i], ds, dm, lmax));
    }
  }
}

// The code near the fitted scale, or near its negation (the levels flip sign with it, if they
// stay on the grid), with the least growth of the error for step d.
double pick_symmetric_code(const SymmetricFit& fit, float d, int cmin, int cmax, int lmin, int lmax,
                           int* code) {
  if (d == 0.0f) {
    *code = 0;
    return fit.extra_error(0.0);
  }
  const bool can_negate = -fit.l_hi >= lmin && -fit.l_lo <= lmax;
  const int c0 = round_clamp(fit.scale / d, cmin, cmax);
  const int n0 = round_clamp(-fit.scale / d, cmin, cmax);
  double best = INFINITY;
  for (const int c : {c0, c0 - 1, c0 + 1, n0, n0 - 1, n0 + 1}) {
    if (c < cmin || c > cmax) continue;
    const double s = static_cast<double>(d) * c;
    double err = fit.extra_error(s);
    if (can_negate) err = std::min(err, fit.extra_error(-s));
    if (err < best) {
      best = err;
      *code = c;
    }
  }
  return best;
}

int symmetric_level(float x, float ds, int lmin, int lmax) {
  return ds != 0.0f ? round_clamp(x / ds, lmin, lmax) : 0;
}

// Fits the 16 sub-blocks, stores d, the codes sc[16] and the levels shifted to l - lmin >= 0.
void quantize_symmetric(const float* x, int cmin, int cmax, int lmin, int lmax, uint16_t* d_bits,
                        int* sc, uint8_t* l) {
  constexpr int kSub = 16;
  SymmetricFit fits[kSub];
  float scales[kSub];
  for (int j = 0; j < kSub; ++j) {
    fits[j] = fit_symmetric(x + j * kSub, kSub, lmin, lmax);
    scales[j] = fits[j].scale;
  }
  const float max = signed_absmax(scales, kSub);
  // The scale of largest magnitude goes on one of the codes at either end, with either sign.
  double best_err[2] = {INFINITY, INFINITY};  // [0]: top codes kept, [1]: any
  uint16_t best_d[2] = {0, 0};
  int best_sc[2][kSub] = {};
  for (int k = 0; k < 4 * kTopCodes; ++k) {
    const int top = k % (2 * kTopCodes) < kTopCodes ? cmin + k % kTopCodes : cmax - k % kTopCodes;
    const uint16_t bits = f32_to_f16((k < 2 * kTopCodes ? max : -max) / static_cast<float>(top));
    const float d = f16_to_f32(bits);
    int codes[kSub] = {};
    double err = 0;
    for (int j = 0; j < kSub; ++j) {
      err += pick_symmetric_code(fits[j], d, cmin, cmax, lmin, lmax, &codes[j]);
    }
    int largest = 0;
    for (const int c : codes) largest = std::max(largest, std::abs(c));
    const int kind = top_code_ok(largest, cmax) ? 0 : 1;
    if (err < best_err[kind]) {
      best_err[kind] = err;
      best_d[kind] = bits;
      std::copy(codes, codes + kSub, best_sc[kind]);
    }
  }
  const int kind = best_err[0] < INFINITY ? 0 : 1;
  *d_bits = best_d[kind];
  std::copy(best_sc[kind], best_sc[kind] + kSub, sc);
  const float d = f16_to_f32(*d_bits);
  for (int j = 0; j < kSub; ++j) {
    const float ds = d * static_cast<float>(sc[j]);
    for (int i = 0; i < kSub; ++i) {
      const int level = symmetric_level(x[j * kSub + i], ds, lmin, lmax);
      l[j * kSub + i] = static_cast<uint8_t>(level - lmin);
    }
  }
}

// 2-bit fields of Q2_K/Q3_K: element 128c + 32g + i sits at bits 2g of qs[32c + i].
int crumb(const uint8_t* qs, int e) {
  return (qs[32 * (e / 128) + e % 32] >> (2 * (e % 128 / 32))) & 3;
}

void pack_crumbs(const uint8_t* l, uint8_t* qs) {
  for (int e = 0; e < kQkK; ++e) {
    qs[32 * (e / 128) + e % 32] |= static_cast<uint8_t>((l[e] & 3) << (2 * (e % 128 / 32)));
  }
}

// ---- Q2_K ----

void dequantize_q2_k(const BlockQ2_K& b, float* y) {
  const float d = f16_to_f32(b.d);
  const float dmin = f16_to_f32(b.dmin);
  for (int e = 0; e < kQkK; ++e) {
    const uint8_t s = b.scales[e / 16];
    y[e] = d * static_cast<float>(s & 0xF) * static_cast<float>(crumb(b.qs, e)) -
           dmin * static_cast<float>(s >> 4);
  }
}

void quantize_q2_k(const float* x, BlockQ2_K* b) {
  AffineCodes codes;
  uint8_t l[kQkK];
  quantize_affine(x, 16, 16, 15, 3, &codes, l);
  b->d = codes.d;
  b->dmin = codes.dmin;
  for (int j = 0; j < 16; ++j)
    b->scales[j] = static_cast<uint8_t>(codes.sc[j] | (codes.mc[j] << 4));
  pack_crumbs(l, b->qs);
}

// ---- Q3_K ----

void dequantize_q3_k(const BlockQ3_K& b, float* y) {
  const float d = f16_to_f32(b.d);
  for (int e = 0; e < kQkK; ++e) {
    const int high = (b.hmask[e % 32] >> (e / 32)) & 1;
    const int q = crumb(b.qs, e) + 4 * high - 4;
    y[e] = d * static_cast<float>(q3k_scale(e / 16, b.scales) - 32) * static_cast<float>(q);
  }
}

void quantize_q3_k(const float* x, BlockQ3_K* b) {
  int sc[16] = {};
  uint8_t l[kQkK];  // 0..7
  quantize_symmetric(x, -32, 31, -4, 3, &b->d, sc, l);
  uint8_t codes[16];
  for (int j = 0; j < 16; ++j) codes[j] = static_cast<uint8_t>(sc[j] + 32);
  pack_q3k_scales(codes, b->scales);
  pack_crumbs(l, b->qs);
  for (int e = 0; e < kQkK; ++e) {
    b->hmask[e % 32] |= static_cast<uint8_t>(((l[e] >> 2) & 1) << (e / 32));
  }
}

// ---- Q4_K and Q5_K ----

// Low 4 bits of element e: in 64-element chunk c, low nibbles first, then high nibbles.
int k4_nibble(const uint8_t* qs, int e) {
  const uint8_t byte = qs[32 * (e / 64) + e % 32];
  return e % 64 < 32 ? byte & 0xF : byte >> 4;
}

void dequantize_k4(uint16_t d_bits, uint16_t dmin_bits, const uint8_t* scales, const uint8_t* qs,
                   const uint8_t* qh, float* y) {
  const float d = f16_to_f32(d_bits);
  const float dmin = f16_to_f32(dmin_bits);
  for (int j = 0; j < 8; ++j) {
    int sc = 0;
    int mc = 0;
    k4_scale_min(j, scales, &sc, &mc);
    const float ds = d * static_cast<float>(sc);
    const float dm = dmin * static_cast<float>(mc);
    for (int e = 32 * j; e < 32 * (j + 1); ++e) {
      const int high = qh != nullptr ? ((qh[e % 32] >> j) & 1) << 4 : 0;
      y[e] = ds * static_cast<float>(k4_nibble(qs, e) | high) - dm;
    }
  }
}

void dequantize_q4_k(const BlockQ4_K& b, float* y) {
  dequantize_k4(b.d, b.dmin, b.scales, b.qs, nullptr, y);
}

void dequantize_q5_k(const BlockQ5_K& b, float* y) {
  dequantize_k4(b.d, b.dmin, b.scales, b.qs, b.qh, y);
}

void pack_k4_nibbles(const uint8_t* l, uint8_t* qs) {
  for (int e = 0; e < kQkK; ++e) {
    const int shift = e % 64 < 32 ? 0 : 4;
    qs[32 * (e / 64) + e % 32] |= static_cast<uint8_t>((l[e] & 0xF) << shift);
  }
}

void quantize_q4_k(const float* x, BlockQ4_K* b) {
  AffineCodes codes;
  uint8_t l[kQkK];
  quantize_affine(x, 8, 32, 63, 15, &codes, l);
  b->d = codes.d;
  b->dmin = codes.dmin;
  pack_k4_scales(codes.sc, codes.mc, b->scales);
  pack_k4_nibbles(l, b->qs);
}

void quantize_q5_k(const float* x, BlockQ5_K* b) {
  AffineCodes codes;
  uint8_t l[kQkK];
  quantize_affine(x, 8, 32, 63, 31, &codes, l);
  b->d = codes.d;
  b->dmin = codes.dmin;
  pack_k4_scales(codes.sc, codes.mc, b->scales);
  pack_k4_nibbles(l, b->qs);
  for (int e = 0; e < kQkK; ++e) {
    b->qh[e % 32] |= static_cast<uint8_t>(((l[e] >> 4) & 1) << (e / 32));
  }
}

// ---- Q6_K ----

// Index into ql of element e's low 4 bits and the shift within that byte.
int q6_ql_index(int e) { return 64 * (e / 128) + 32 * (e % 128 / 32 % 2) + e % 32; }
int q6_ql_shift(int e) { return e % 128 < 64 ? 0 : 4; }

void dequantize_q6_k(const BlockQ6_K& b, float* y) {
  const float d = f16_to_f32(b.d);
  for (int e = 0; e < kQkK; ++e) {
    const int low = (b.ql[q6_ql_index(e)] >> q6_ql_shift(e)) & 0xF;
    const int high = crumb(b.qh, e);  // qh uses the Q2_K 2-bit layout
    y[e] = d * static_cast<float>(b.scales[e / 16]) * static_cast<float>((low | (high << 4)) - 32);
  }
}

void quantize_q6_k(const float* x, BlockQ6_K* b) {
  int sc[16] = {};
  uint8_t l[kQkK];  // 0..63
  quantize_symmetric(x, -128, 127, -32, 31, &b->d, sc, l);
  for (int j = 0; j < 16; ++j) b->scales[j] = static_cast<int8_t>(sc[j]);
  for (int e = 0; e < kQkK; ++e) {
    b->ql[q6_ql_index(e)] |= static_cast<uint8_t>((l[e] & 0xF) << q6_ql_shift(e));
    b->qh[32 * (e / 128) + e % 32] |= static_cast<uint8_t>((l[e] >> 4) << (2 * (e % 128 / 32)));
  }
}

// ---- Q8_K ----

void dequantize_q8_k(const BlockQ8_K& b, float* y) {
  for (int e = 0; e < kQkK; ++e) y[e] = b.d * static_cast<float>(b.qs[e]);
}

// Symmetric in [-127, 127] with an F32 scale; bsums feed the min terms of K-quant dot products.
void quantize_q8_k(const float* x, BlockQ8_K* b) {
  float amax = 0.0f;
  for (int e = 0; e < kQkK; ++e) amax = std::max(amax, std::fabs(x[e]));
  b->d = amax / 127.0f;
  for (int e = 0; e < kQkK; ++e) {
    b->qs[e] = static_cast<int8_t>(b->d != 0.0f ? round_clamp(x[e] / b->d, -127, 127) : 0);
  }
  for (int k = 0; k < kQkK / 16; ++k) {
    int sum = 0;
    for (int i = 0; i < 16; ++i) sum += b->qs[16 * k + i];
    b->bsums[k] = static_cast<int16_t>(sum);
  }
}

}  // namespace

QuantFns k_quant_fns(GgmlType type) {
  switch (type) {
    case GgmlType::kQ2_K:
      return {dequantize_blocks<BlockQ2_K, kQkK, dequantize_q2_k>,
              quantize_blocks<BlockQ2_K, kQkK, quantize_q2_k>};
    case GgmlType::kQ3_K:
      return {dequantize_blocks<BlockQ3_K, kQkK, dequantize_q3_k>,
              quantize_blocks<BlockQ3_K, kQkK, quantize_q3_k>};
    case GgmlType::kQ4_K:
      return {dequantize_blocks<BlockQ4_K, kQkK, dequantize_q4_k>,
              quantize_blocks<BlockQ4_K, kQkK, quantize_q4_k>};
    case GgmlType::kQ5_K:
      return {dequantize_blocks<BlockQ5_K, kQkK, dequantize_q5_k>,
              quantize_blocks<BlockQ5_K, kQkK, quantize_q5_k>};
    case GgmlType::kQ6_K:
      return {dequantize_blocks<BlockQ6_K, kQkK, dequantize_q6_k>,
              quantize_blocks<BlockQ6_K, kQkK, quantize_q6_k>};
    case GgmlType::kQ8_K:
      return {dequantize_blocks<BlockQ8_K, kQkK, dequantize_q8_k>,
              quantize_blocks<BlockQ8_K, kQkK, quantize_q8_k>};
    default:
      return {};
  }
}

}  // namespace pensieve::ref::detail
