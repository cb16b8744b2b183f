// RMSNorm and LayerNorm over the last dimension. Fast versions vectorize the
// row reductions (AVX-512, fp32 with 4 partial sums) and thread over rows;
// references accumulate in double.
#include "kernels/norms.h"

#include <cmath>

#include "kernels/cpu.h"

namespace qvl {

namespace {
constexpr int64_t kParallelMin = 1 << 14;

// Σ x[i]·x[i] and Σ x[i] over one row (fp32, vector partials).
void row_sums(const float* x, int64_t n, float* sum, float* sumsq) {
  int64_t i = 0;
  float s = 0, q = 0;
#if defined(__AVX512F__)
  __m512 vs0 = _mm512_setzero_ps(), vs1 = vs0, vq0 = vs0, vq1 = vs0;
  for (; i + 32 <= n; i += 32) {
    __m512 a = _mm512_loadu_ps(x + i), b = _mm512_loadu_ps(x + i + 16);
    vs0 = _mm512_add_ps(vs0, a);
    vs1 = _mm512_add_ps(vs1, b);
    vq0 = _mm512_fmadd_ps(a, a, vq0);
    vq1 = _mm512_fmadd_ps(b, b, vq1);
  }
  s = _mm512_reduce_add_ps(_mm512_add_ps(vs0, vs1));
  q = _mm512_reduce_add_ps(_mm512_add_ps(vq0, vq1));
#endif
  for (; i < n; ++i) {
    s += x[i];
    q += x[i] * x[i];
  }
  *sum = s;
  *sumsq = q;
}

// y = (x − mu)·r ⊙ w (+ b); b may be null.
void scale_row(const float* x, const float* w, const float* b, float mu, float r, float* y,
               int64_t n) {
  int64_t i = 0;
#if defined(__AVX512F__)
  __m512 vmu = _mm512_set1_ps(mu), vr = _mm512_set1_ps(r);
  for (; i + 16 <= n; i += 16) {
    __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), vmu), vr),
                             _mm512_loadu_ps(w + i));
    if (b) v = _mm512_add_ps(v, _mm512_loadu_ps(b + i));
    _mm512_storeu_ps(y + i, v);
  }
#endif
  for (; i < n; ++i) y[i] = (x[i] - mu) * r * w[i] + (b ? b[i] : 0.f);
}
}  // namespace

void rms_norm_ref(const float* x, const float* w, float* y, int64_t rows, int64_t dim, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    double q = 0;
    for (int64_t i = 0; i < dim; ++i) q += (double)xr[i] * xr[i];
    double inv = 1.0 / std::sqrt(q / dim + eps);
    for (int64_t i = 0; i < dim; ++i) y[r * dim + i] = (float)(w[i] * (xr[i] * inv));
  }
}

void rms_norm(const float* x, const float* w, float* y, int64_t rows, int64_t dim, float eps) {
  cpu::parallel_for_if(rows * dim >= kParallelMin, rows, [&](int64_t r) {
    float s, q;
    row_sums(x + r * dim, dim, &s, &q);
    float inv = 1.f / std::sqrt(q / (float)dim + eps);
    scale_row(x + r * dim, w, nullptr, 0.f, inv, y + r * dim, dim);
  });
}

void layer_norm_ref(const float* x, const float* w, const float* b, float* y, int64_t rows,
                    int64_t dim, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    double mu = 0, var = 0;
    for (int64_t i = 0; i < dim; ++i) mu += xr[i];
    mu /= dim;
    for (int64_t i = 0; i < dim; ++i) var += (xr[i] - mu) * (xr[i] - mu);
    var /= dim;
    double inv = 1.0 / std::sqrt(var + eps);
    for (int64_t i = 0; i < dim; ++i)
      y[r * dim + i] = (float)((xr[i] - mu) * inv * w[i] + (b ? b[i] : 0.0));
  }
}

void layer_norm(const float* x, const float* w, const float* b, float* y, int64_t rows,
                int64_t dim, float eps) {
  cpu::parallel_for_if(rows * dim >= kParallelMin, rows, [&](int64_t r) {
    const float* xr = x + r * dim;
    float s, q;
    row_sums(xr, dim, &s, &q);
    float mu = s / (float)dim;
    // Second pass for the variance: Σ(x−mu)² is stable where E[x²]−mu² is not.
    float var = 0;
    int64_t i = 0;
#if defined(__AVX512F__)
    __m512 vmu = _mm512_set1_ps(mu), vv = _mm512_setzero_ps();
    for (; i + 16 <= dim; i += 16) {
      __m512 d = _mm512_sub_ps(_mm512_loadu_ps(xr + i), vmu);
      vv = _mm512_fmadd_ps(d, d, vv);
    }
    var = _mm512_reduce_add_ps(vv);
#endif
    for (; i < dim; ++i) var += (xr[i] - mu) * (xr[i] - mu);
    var /= (float)dim;
    scale_row(xr, w, b, mu, 1.f / std::sqrt(var + eps), y + r * dim, dim);
  });
}

}  // namespace qvl
