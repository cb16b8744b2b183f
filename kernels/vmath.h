// Vectorized helpers (internal): exp, sigmoid-style forms, erf (AVX-512
// versions with their accuracy stated; scalar twins use <cmath>) and a 16×16
// register transpose, the GEMM engines' C-tile store.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>

#include "kernels/cpu.h"

namespace qvl::vmath {

#if defined(__AVX512F__)
// e^x for 16 floats. Range reduction x = n·ln2 + r (|r| ≤ ln2/2, ln2 split in
// hi/lo parts), degree-6 Taylor-like minimax polynomial for e^r, scale by 2^n.
// Max relative error ≈ 2 ulp on [−87, 88]; below −87.3 returns 0, above 88.7 inf.
inline __m512 exp512(__m512 x) {
  const __m512 hi = _mm512_set1_ps(88.7f), lo = _mm512_set1_ps(-87.3f);
  __m512 xc = _mm512_max_ps(_mm512_min_ps(x, hi), lo);
  __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), xc);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  __m512 r2 = _mm512_mul_ps(r, r);
  p = _mm512_fmadd_ps(p, r2, _mm512_add_ps(r, _mm512_set1_ps(1.f)));
  __m512 res = _mm512_scalef_ps(p, n);
  // Exact underflow to 0 below the clamp (keeps softmax masks clean).
  return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, lo, _CMP_GE_OQ), res);
}

// erfc(z) for 16 floats z ≥ 0 (Chebyshev-fitted form, "erfcc" of Numerical
// Recipes): erfc(z) = t·exp(−z² + P(t)), t = 1/(1 + z/2), P of degree 9.
// Relative error < 1.2e−7 for all z ≥ 0 (plus exp512's ≈2 ulp), so
// 1 + erf(x) = erfc(−x) keeps full relative accuracy for x < 0.
inline __m512 erfc512_pos(__m512 z) {
  __m512 t = _mm512_div_ps(_mm512_set1_ps(1.f),
                           _mm512_fmadd_ps(z, _mm512_set1_ps(0.5f), _mm512_set1_ps(1.f)));
  __m512 p = _mm512_set1_ps(0.17087277f);
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.82215223f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.48851587f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.13520398f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.27886807f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.18628806f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.09678418f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.37409196f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.00002368f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.26551223f));
  __m512 e = exp512(_mm512_fnmadd_ps(z, z, p));
  return _mm512_mul_ps(t, e);
}

// In-register transpose: afterwards v[c][r] = old v[r][c].
// Stores the MR×32 accumulator tile (c0 = columns 0–15, c1 = 16–31 of each row) to
// C (ldc floats per row), adding C's old values when acc; columns ≥ nr untouched.
template <int MR>
__attribute__((always_inline)) inline void store_c_tile(const __m512* c0, const __m512* c1, float* C, int64_t ldc,
                                                        int nr, bool acc) {
  const __mmask16 m0 = nr >= 16 ? 0xffff : (__mmask16)((1u << nr) - 1);
  const __mmask16 m1 = nr >= 32 ? 0xffff : nr <= 16 ? 0 : (__mmask16)((1u << (nr - 16)) - 1);
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    float* c = C + i * ldc;
    __m512 v0 = c0[i], v1 = c1[i];
    if (acc) {
      v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, c));
      v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, c + 16));
    }
    _mm512_mask_storeu_ps(c, m0, v0);
    _mm512_mask_storeu_ps(c + 16, m1, v1);
  }
}

inline void transpose16(__m512* v) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {  // 32-bit interleave of row pairs
    t[i] = _mm512_unpacklo_ps(v[i], v[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(v[i], v[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {  // 64-bit interleave of pair pairs
    for (int h = 0; h < 2; ++h) {
      const __m512d a = _mm512_castps_pd(t[i + h]), b = _mm512_castps_pd(t[i + 2 + h]);
      v[i + h] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
      v[i + 2 + h] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
    }
  }
  // Now v[4q + e] holds, in 128-bit lane L, elements 4L+e' of rows 4q..4q+3
  // (e = 2·(hi64) + hi32 order: 0 → col 0, 1 → col 2, 2 → col 1, 3 → col 3).
  for (int i = 0; i < 4; ++i) {  // 128-bit lanes across row quads
    t[i] = _mm512_shuffle_f32x4(v[i], v[4 + i], 0x88);       // lanes 0,2 of quad 0 | lanes 0,2 of quad 1
    t[4 + i] = _mm512_shuffle_f32x4(v[i], v[4 + i], 0xdd);   // lanes 1,3
    t[8 + i] = _mm512_shuffle_f32x4(v[8 + i], v[12 + i], 0x88);
    t[12 + i] = _mm512_shuffle_f32x4(v[8 + i], v[12 + i], 0xdd);
  }
  for (int i = 0; i < 4; ++i) {
    v[i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0x88);        // lane 0 of all quads
    v[4 + i] = _mm512_shuffle_f32x4(t[4 + i], t[12 + i], 0x88);  // lane 1
    v[8 + i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0xdd);      // lane 2
    v[12 + i] = _mm512_shuffle_f32x4(t[4 + i], t[12 + i], 0xdd);  // lane 3
  }
  // v[4L + e] now holds column 4L + perm(e) with perm = {0, 2, 1, 3}.
  std::swap(v[1], v[2]), std::swap(v[5], v[6]), std::swap(v[9], v[10]), std::swap(v[13], v[14]);
}
#endif

// max_j p[j] over n values (−inf for n = 0).
inline float row_max(const float* p, int64_t n) {
  int64_t j = 0;
  float m = -INFINITY;
#if defined(__AVX512F__)
  __m512 vm = _mm512_set1_ps(-INFINITY);
  for (; j + 16 <= n; j += 16) vm = _mm512_max_ps(vm, _mm512_loadu_ps(p + j));
  m = _mm512_reduce_max_ps(vm);
#endif
  for (; j < n; ++j) m = std::max(m, p[j]);
  return m;
}

// p[j] = e^(scale·p[j] − off) in place (softmax numerators: off = scale·max);
// returns Σ_j p[j].
inline float exp_row(float* p, int64_t n, float scale, float off) {
  int64_t j = 0;
  float sum = 0.f;
#if defined(__AVX512F__)
  const __m512 vs = _mm512_set1_ps(scale), vo = _mm512_set1_ps(off);
  __m512 acc = _mm512_setzero_ps();
  for (; j + 16 <= n; j += 16) {
    const __m512 e = exp512(_mm512_fmsub_ps(_mm512_loadu_ps(p + j), vs, vo));
    _mm512_storeu_ps(p + j, e);
    acc = _mm512_add_ps(acc, e);
  }
  sum = _mm512_reduce_add_ps(acc);
#endif
  for (; j < n; ++j) sum += (p[j] = std::exp(scale * p[j] - off));
  return sum;
}

}  // namespace qvl::vmath
