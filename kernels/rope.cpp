// Rotary embeddings: MRoPE / vision angle tables and the rotate_half apply.
// Tables follow Hugging Face's fp32 arithmetic (inv_freq = 1/θ^(2j/D) in fp32,
// angle = fp32(p)·inv in fp32, cos/sin of that fp32 angle).
#include "kernels/rope.h"

#include <cmath>

#include "kernels/base.h"
#include "kernels/cpu.h"

namespace qvl {

// inv[j] = 1 / θ^(2j/D) computed in fp32 like torch: (arange(0,D,2)/D) then pow.
static float inv_freq(double theta, int j, int D) {
  float e = (float)(2 * j) / (float)D;
  return 1.0f / std::pow((float)theta, e);
}

void mrope_tables(const int64_t* pos, int64_t S, int D, double theta, const int* section,
                  bool interleaved, float* cos_out, float* sin_out) {
  const int half = D / 2;
  QVL_CHECK(D > 0 && half <= 1024, "mrope_tables: head dim %d out of range (2..2048)", D);
  // axis[j]: 0 = T, 1 = H, 2 = W.
  int axis[1024];
  for (int j = 0; j < half; ++j) {
    if (interleaved) {
      axis[j] = 0;
      if (j % 3 == 1 && j < 3 * section[1]) axis[j] = 1;
      if (j % 3 == 2 && j < 3 * section[2]) axis[j] = 2;
    } else {
      axis[j] = j < section[0] ? 0 : (j < section[0] + section[1] ? 1 : 2);
    }
  }
  cpu::parallel_for_if(S >= 64, S, [&](int64_t t) {
    for (int j = 0; j < half; ++j) {
      float a = (float)pos[axis[j] * S + t] * inv_freq(theta, j, D);
      cos_out[t * half + j] = (float)std::cos((double)a);
      sin_out[t * half + j] = (float)std::sin((double)a);
    }
  });
}

void vision_rope_tables(const int32_t* rows, const int32_t* cols, int64_t N, int Dv,
                        float* cos_out, float* sin_out) {
  const int half = Dv / 2, quarter = Dv / 4;
#pragma omp parallel for schedule(static) if (N >= 64)
  for (int64_t t = 0; t < N; ++t) {
    for (int j = 0; j < quarter; ++j) {
      float inv = inv_freq(10000.0, j, half);
      float ar = (float)rows[t] * inv, ac = (float)cols[t] * inv;
      cos_out[t * half + j] = (float)std::cos((double)ar);
      sin_out[t * half + j] = (float)std::sin((double)ar);
      cos_out[t * half + quarter + j] = (float)std::cos((double)ac);
      sin_out[t * half + quarter + j] = (float)std::sin((double)ac);
    }
  }
}

void rope_apply_ref(float* x, int64_t S, int heads, int D, int64_t stride, const float* cos,
                    const float* sin) {
  const int half = D / 2;
  for (int64_t t = 0; t < S; ++t)
    for (int h = 0; h < heads; ++h) {
      float* p = x + t * stride + (int64_t)h * D;
      for (int j = 0; j < half; ++j) {
        double c = cos[t * half + j], s = sin[t * half + j];
        double a = p[j], b = p[j + half];
        p[j] = (float)(a * c - b * s);
        p[j + half] = (float)(b * c + a * s);
      }
    }
}

// One head of D channels, angles cs/sn [D/2].
static void rope_head(float* p, int half, const float* cs, const float* sn) {
  int j = 0;
#if defined(__AVX512F__)
  for (; j + 16 <= half; j += 16) {
    __m512 c = _mm512_loadu_ps(cs + j), s = _mm512_loadu_ps(sn + j);
    __m512 a = _mm512_loadu_ps(p + j), b = _mm512_loadu_ps(p + j + half);
    _mm512_storeu_ps(p + j, _mm512_fmsub_ps(a, c, _mm512_mul_ps(b, s)));
    _mm512_storeu_ps(p + j + half, _mm512_fmadd_ps(b, c, _mm512_mul_ps(a, s)));
  }
#endif
  for (; j < half; ++j) {
    float a = p[j], b = p[j + half];
    p[j] = a * cs[j] - b * sn[j];
    p[j + half] = b * cs[j] + a * sn[j];
  }
}

void rope_apply(float* x, int64_t S, int heads, int D, int64_t stride, const float* cos,
                const float* sin) {
  const int half = D / 2;
  cpu::parallel_for_if(S * heads * D >= (1 << 15), S, [&](int64_t t) {
    for (int h = 0; h < heads; ++h)
      rope_head(x + t * stride + (int64_t)h * D, half, cos + t * half, sin + t * half);
  });
}

}  // namespace qvl
