// Scaled dot-product attention (fp32 softmax): causal GQA over a KV cache and
// bidirectional per-segment attention for vision. The fast versions thread
// over (query row, head) pairs; each row does scores → softmax → Σ p·V with
// AVX-512 dots. References accumulate in double.
#include "kernels/attention.h"

#include <cmath>
#include <vector>

#include "kernels/activations.h"
#include "kernels/base.h"
#include "kernels/cpu.h"

namespace qvl {

namespace {

inline float dot(const float* a, const float* b, int D) {
  int i = 0;
  float s = 0;
#if defined(__AVX512F__)
  __m512 acc = _mm512_setzero_ps();
  for (; i + 16 <= D; i += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc);
  s = _mm512_reduce_add_ps(acc);
#endif
  for (; i < D; ++i) s += a[i] * b[i];
  return s;
}

// out[D] = softmax(scale·q·K_jᵀ)_j · V_j over L keys; K_j = k + j·kstride.
void attend_row(const float* q, const float* k, const float* v, int64_t kstride, int64_t L, int D,
                float scale, float* scores, float* out) {
  for (int64_t j = 0; j < L; ++j) scores[j] = scale * dot(q, k + j * kstride, D);
  softmax(scores, 1, L);
  int d = 0;
#if defined(__AVX512F__)
  for (; d + 64 <= D; d += 64) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t j = 0; j < L; ++j) {
      const float* vr = v + j * kstride + d;
      __m512 p = _mm512_set1_ps(scores[j]);
      a0 = _mm512_fmadd_ps(p, _mm512_loadu_ps(vr), a0);
      a1 = _mm512_fmadd_ps(p, _mm512_loadu_ps(vr + 16), a1);
      a2 = _mm512_fmadd_ps(p, _mm512_loadu_ps(vr + 32), a2);
      a3 = _mm512_fmadd_ps(p, _mm512_loadu_ps(vr + 48), a3);
    }
    _mm512_storeu_ps(out + d, a0);
    _mm512_storeu_ps(out + d + 16, a1);
    _mm512_storeu_ps(out + d + 32, a2);
    _mm512_storeu_ps(out + d + 48, a3);
  }
  for (; d + 16 <= D; d += 16) {
    __m512 a0 = _mm512_setzero_ps();
    for (int64_t j = 0; j < L; ++j)
      a0 = _mm512_fmadd_ps(_mm512_set1_ps(scores[j]), _mm512_loadu_ps(v + j * kstride + d), a0);
    _mm512_storeu_ps(out + d, a0);
  }
#endif
  for (; d < D; ++d) {
    float s = 0;
    for (int64_t j = 0; j < L; ++j) s += scores[j] * v[j * kstride + d];
    out[d] = s;
  }
}

// Double-precision twin of attend_row for the references.
void attend_row_ref(const float* q, const float* k, const float* v, int64_t kstride, int64_t L,
                    int D, float scale, float* out) {
  std::vector<double> p(L);
  double mx = -INFINITY;
  for (int64_t j = 0; j < L; ++j) {
    double s = 0;
    for (int d = 0; d < D; ++d) s += (double)q[d] * k[j * kstride + d];
    p[j] = s * scale;
    mx = std::max(mx, p[j]);
  }
  double sum = 0;
  for (int64_t j = 0; j < L; ++j) sum += (p[j] = std::exp(p[j] - mx));
  for (int d = 0; d < D; ++d) {
    double o = 0;
    for (int64_t j = 0; j < L; ++j) o += p[j] * v[j * kstride + d];
    out[d] = (float)(o / sum);
  }
}

}  // namespace

void attention_causal_ref(const float* q, int64_t q_stride, int64_t S, int Hq, int Hkv, int D,
                          const float* kcache, const float* vcache, int64_t ctx, int64_t past,
                          float scale, float* out, int64_t out_stride) {
  const int group = Hq / Hkv;
  for (int64_t s = 0; s < S; ++s)
    for (int h = 0; h < Hq; ++h) {
      int64_t kv = (int64_t)(h / group) * ctx * D;
      attend_row_ref(q + s * q_stride + (int64_t)h * D, kcache + kv, vcache + kv, D, past + s + 1,
                     D, scale, out + s * out_stride + (int64_t)h * D);
    }
}

void attention_causal(const float* q, int64_t q_stride, int64_t S, int Hq, int Hkv, int D,
                      const float* kcache, const float* vcache, int64_t ctx, int64_t past,
                      float scale, float* out, int64_t out_stride) {
  QVL_ASSERT(Hkv > 0 && Hq % Hkv == 0 && past + S <= ctx);
  const int group = Hq / Hkv;
#pragma omp parallel
  {
    Buffer<float> scores(past + S + 16);
#pragma omp for schedule(dynamic, 1) collapse(2)
    for (int64_t s = 0; s < S; ++s)
      for (int h = 0; h < Hq; ++h) {
        int64_t kv = (int64_t)(h / group) * ctx * D;
        attend_row(q + s * q_stride + (int64_t)h * D, kcache + kv, vcache + kv, D, past + s + 1, D,
                   scale, scores.data(), out + s * out_stride + (int64_t)h * D);
      }
  }
}

void attention_segments_ref(const float* q, const float* k, const float* v, int64_t stride,
                            int64_t N, int H, int D, const int64_t* cu_seqlens, int nseg,
                            float scale, float* out) {
  for (int g = 0; g < nseg; ++g) {
    int64_t b = cu_seqlens[g], e = cu_seqlens[g + 1];
    for (int64_t i = b; i < e; ++i)
      for (int h = 0; h < H; ++h)
        attend_row_ref(q + i * stride + (int64_t)h * D, k + b * stride + (int64_t)h * D,
                       v + b * stride + (int64_t)h * D, stride, e - b, D, scale,
                       out + (i * H + h) * D);
  }
}

void attention_segments(const float* q, const float* k, const float* v, int64_t stride,
                        int64_t N, int H, int D, const int64_t* cu_seqlens, int nseg,
                        float scale, float* out) {
  int64_t maxlen = 0;
  for (int g = 0; g < nseg; ++g) maxlen = std::max(maxlen, cu_seqlens[g + 1] - cu_seqlens[g]);
  // Segment of each row, so that one flat parallel loop covers all segments.
  std::vector<int> seg_of(N);
  for (int g = 0; g < nseg; ++g)
    for (int64_t i = cu_seqlens[g]; i < cu_seqlens[g + 1]; ++i) seg_of[i] = g;
#pragma omp parallel
  {
    Buffer<float> scores(maxlen + 16);
#pragma omp for schedule(dynamic, 4) collapse(2)
    for (int64_t i = 0; i < N; ++i)
      for (int h = 0; h < H; ++h) {
        int64_t b = cu_seqlens[seg_of[i]], e = cu_seqlens[seg_of[i] + 1];
        attend_row(q + i * stride + (int64_t)h * D, k + b * stride + (int64_t)h * D,
                   v + b * stride + (int64_t)h * D, stride, e - b, D, scale, scores.data(),
                   out + (i * H + h) * D);
      }
  }
}

}  // namespace qvl
