// Element-wise activations (SwiGLU, GELU tanh / erf), row softmax and add.
// Fast versions: AVX-512 with vmath.h exp/erfc, OpenMP over large arrays / many
// rows; the `_ref` twins evaluate the header formulas in double with <cmath>.
#include "kernels/activations.h"

#include <cmath>

#include "kernels/cpu.h"
#include "kernels/vmath.h"

namespace qvl {

namespace {
constexpr int64_t kParallelMin = 1 << 15;  // elements before OpenMP pays off
constexpr float kSqrt2OverPi = 0.7978845608028654f;
}  // namespace

// ---- SwiGLU ---------------------------------------------------------------

void swiglu_ref(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    double g = gate[i];
    out[i] = (float)(g / (1.0 + std::exp(-g)) * up[i]);
  }
}

void swiglu(const float* gate, const float* up, float* out, int64_t n) {
  cpu::parallel_for_if(n >= kParallelMin, (n + 4095) / 4096, [&](int64_t chunk) {
    const int64_t c = chunk * 4096;
    int64_t e = std::min(n, c + 4096), i = c;
#if defined(__AVX512F__)
    for (; i + 16 <= e; i += 16) {
      __m512 g = _mm512_loadu_ps(gate + i);
      __m512 den = _mm512_add_ps(_mm512_set1_ps(1.f), vmath::exp512(_mm512_sub_ps(_mm512_setzero_ps(), g)));
      _mm512_storeu_ps(out + i, _mm512_mul_ps(_mm512_div_ps(g, den), _mm512_loadu_ps(up + i)));
    }
#endif
    for (; i < e; ++i) out[i] = gate[i] / (1.f + std::exp(-gate[i])) * up[i];
  });
}

// ---- GELU (tanh) ------------------------------------------------------------
// Identity used by the fast path: 0.5·v·(1 + tanh(u)) = v / (1 + e^{−2u}).

void gelu_tanh_ref(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    double v = x[i];
    double u = 0.7978845608028654 * (v + 0.044715 * v * v * v);
    x[i] = (float)(0.5 * v * (1.0 + std::tanh(u)));
  }
}

void gelu_tanh(float* x, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t c = 0; c < n; c += 4096) {
    int64_t e = std::min(n, c + 4096), i = c;
#if defined(__AVX512F__)
    const __m512 k0 = _mm512_set1_ps(-2.f * kSqrt2OverPi), k1 = _mm512_set1_ps(0.044715f);
    for (; i + 16 <= e; i += 16) {
      __m512 v = _mm512_loadu_ps(x + i);
      __m512 v3 = _mm512_mul_ps(_mm512_mul_ps(v, v), v);
      __m512 m2u = _mm512_mul_ps(k0, _mm512_fmadd_ps(k1, v3, v));
      __m512 den = _mm512_add_ps(_mm512_set1_ps(1.f), vmath::exp512(m2u));
      _mm512_storeu_ps(x + i, _mm512_div_ps(v, den));
    }
#endif
    for (; i < e; ++i) {
      float v = x[i];
      x[i] = v / (1.f + std::exp(-2.f * kSqrt2OverPi * (v + 0.044715f * v * v * v)));
    }
  }
}

// ---- GELU (erf) -------------------------------------------------------------
// Fast path: 1 + erf(v/√2) = erfc(−v/√2); for v < 0 this is erfc(|v|/√2), for
// v ≥ 0 it is 2 − erfc(|v|/√2), so no cancellation on either side.
// Accuracy vs the double std::erf reference: |err| ≤ ~4e−7·|v| (see test).

void gelu_erf_ref(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    double v = x[i];
    x[i] = (float)(0.5 * v * (1.0 + std::erf(v * 0.70710678118654752)));
  }
}

void gelu_erf(float* x, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t c = 0; c < n; c += 4096) {
    int64_t e = std::min(n, c + 4096), i = c;
#if defined(__AVX512F__)
    for (; i + 16 <= e; i += 16) {
      __m512 v = _mm512_loadu_ps(x + i);
      __m512 z = _mm512_mul_ps(_mm512_abs_ps(v), _mm512_set1_ps(0.70710678118654752f));
      __m512 ec = vmath::erfc512_pos(z);
      __mmask16 neg = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ);
      __m512 onep = _mm512_mask_blend_ps(neg, _mm512_sub_ps(_mm512_set1_ps(2.f), ec), ec);
      _mm512_storeu_ps(x + i, _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), v), onep));
    }
#endif
    for (; i < e; ++i) x[i] = 0.5f * x[i] * std::erfc(-x[i] * 0.70710678118654752f);
  }
}

// ---- softmax ----------------------------------------------------------------

void softmax_ref(float* x, int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r) {
    float* p = x + r * n;
    double mx = -INFINITY;
    for (int64_t i = 0; i < n; ++i) mx = std::max(mx, (double)p[i]);
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += std::exp((double)p[i] - mx);
    for (int64_t i = 0; i < n; ++i) p[i] = (float)(std::exp((double)p[i] - mx) / s);
  }
}

// One row in place.
static void softmax_row(float* p, int64_t n) {
  const float inv = 1.f / vmath::exp_row(p, n, 1.f, vmath::row_max(p, n));
  int64_t i = 0;
#if defined(__AVX512F__)
  __m512 vi = _mm512_set1_ps(inv);
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(p + i, _mm512_mul_ps(_mm512_loadu_ps(p + i), vi));
#endif
  for (; i < n; ++i) p[i] *= inv;
}

void softmax(float* x, int64_t rows, int64_t n) {
  // Small cases stay outside any OpenMP construct: attention calls this per row
  // inside its own parallel region, where even an if(false) region builds a
  // nested team (futex system calls, ~10 µs each under a hypervisor).
  if (rows * n < kParallelMin || rows == 1) {
    for (int64_t r = 0; r < rows; ++r) softmax_row(x + r * n, n);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) softmax_row(x + r * n, n);
}

void add_inplace(float* y, const float* x, int64_t n) {
  if (n >= 4 * kParallelMin && cpu::threads() > 1) {  // no if-clause region: see cpu::parallel_for_if
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) y[i] += x[i];
  } else {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] += x[i];
  }
}

}  // namespace qvl
