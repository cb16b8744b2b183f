// Quantized linear (MatMulNBits, bits 4 or 8) with fp32 activations.
//   * M <= 4 (decode): fused GEMV, threaded over N. Each weight block is read
//     once, unpacked in registers and FMA'd with the activation chunk; the zero
//     point is folded out:  Σ_k (q−zp)·s·x = s·(Σ q·x − zp·Σ x), Σ x per block
//     precomputed once per activation row.
//   * larger M (prefill): the fp32 GEMM engine (gemm.h) dequantizes W blocks
//     while packing its B panels.
// Activations are copied zero-padded to Kp = kb·block so padded weight tails
// contribute nothing.
#include <cstring>

#include "kernels/base.h"
#include "kernels/cpu.h"
#include "kernels/gemm.h"
#include "kernels/linear.h"
#include "kernels/quant.h"

namespace qvl {

namespace {

// Activation rows padded to Kp plus per-block sums: xs[m*kb + b] = Σ x[m, b·bs ..].
struct PaddedX {
  Buffer<float> x, xs;
  int64_t Kp = 0, kb = 0;
};

void pad_activations(const float* X, int64_t M, const LinearWeight& W, PaddedX* p) {
  p->kb = W.k_blocks();
  p->Kp = p->kb * W.block_size;
  p->x.resize(M * p->Kp);
  p->xs.resize(M * p->kb);
  for (int64_t m = 0; m < M; ++m) {
    float* xr = p->x.data() + m * p->Kp;
    std::memcpy(xr, X + m * W.K, W.K * sizeof(float));
    std::memset(xr + W.K, 0, (p->Kp - W.K) * sizeof(float));
    for (int64_t b = 0; b < p->kb; ++b) {
      float s = 0;
      for (int j = 0; j < W.block_size; ++j) s += xr[b * W.block_size + j];
      p->xs[m * p->kb + b] = s;
    }
  }
}

#if defined(__AVX512F__)
// 16 consecutive 4-bit values (8 bytes) as fp32.
inline __m512 q4x16(const uint8_t* p) {
  __m128i v = _mm_loadl_epi64((const __m128i*)p);
  __m128i mask = _mm_set1_epi8(0x0f);
  __m128i lo = _mm_and_si128(v, mask), hi = _mm_and_si128(_mm_srli_epi16(v, 4), mask);
  return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_unpacklo_epi8(lo, hi)));
}
// 32 consecutive 4-bit values (16 bytes) as two fp32 vectors.
inline void q4x32(const uint8_t* p, __m512* a, __m512* b) {
  __m128i v = _mm_loadu_si128((const __m128i*)p);
  __m128i mask = _mm_set1_epi8(0x0f);
  __m128i lo = _mm_and_si128(v, mask), hi = _mm_and_si128(_mm_srli_epi16(v, 4), mask);
  *a = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_unpacklo_epi8(lo, hi)));
  *b = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_unpackhi_epi8(lo, hi)));
}
inline __m512 q8x16(const uint8_t* p) {
  return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)p)));
}
#endif

// Row-level helpers hoisted out of the block loop.
struct RowInfo {
  const uint8_t* q;   // row bytes [kb, blob]
  const uint8_t* zp;  // row zero points or null
};

inline int zp_of(const LinearWeight& W, const uint8_t* zr, int64_t b) {
  if (!zr) return 1 << (W.bits - 1);
  return W.bits == 8 ? zr[b] : (zr[b >> 1] >> ((b & 1) * 4)) & 0xf;
}

// y[m, n] for rows n in [n0, n1): per block Σ q·x accumulated in vector lanes,
// scaled by s_b without a horizontal sum; the zero-point term s_b·zp_b·Σx_b is
// a scalar per block.
template <int MR>
void gemv_q_rows(const PaddedX& px, const LinearWeight& W, int64_t n0, int64_t n1, float* Y) {
  const int bs = W.block_size, bits = W.bits;
  const int64_t kb = px.kb, blob = quant::blob_bytes(W), zrb = quant::zp_row_bytes(W);
  const auto* B = static_cast<const uint8_t*>(W.data);
  const float* xb = px.x.data();
  for (int64_t n = n0; n < n1; ++n) {
    const uint8_t* row = B + n * kb * blob;
    const uint8_t* zr = W.zero_points ? W.zero_points + n * zrb : nullptr;
    float corr[MR] = {}, tail[MR] = {};
#if defined(__AVX512F__)
    __m512 acc[MR];
    for (int m = 0; m < MR; ++m) acc[m] = _mm512_setzero_ps();
#endif
    for (int64_t b = 0; b < kb; ++b) {
      const float s = quant::load_scale(W.scales, W.scale_dtype, n * kb + b);
      const float szp = s * (float)zp_of(W, zr, b);
      for (int m = 0; m < MR; ++m) corr[m] += szp * px.xs[m * kb + b];
      const uint8_t* q = row + b * blob;
      const float* x = xb + b * bs;
      int j = 0;
#if defined(__AVX512F__)
      __m512 blk[MR];
      for (int m = 0; m < MR; ++m) blk[m] = _mm512_setzero_ps();
      if (bits == 4) {
        for (; j + 32 <= bs; j += 32) {
          __m512 a, c;
          q4x32(q + j / 2, &a, &c);
          for (int m = 0; m < MR; ++m) {
            blk[m] = _mm512_fmadd_ps(a, _mm512_loadu_ps(x + m * px.Kp + j), blk[m]);
            blk[m] = _mm512_fmadd_ps(c, _mm512_loadu_ps(x + m * px.Kp + j + 16), blk[m]);
          }
        }
        for (; j + 16 <= bs; j += 16) {
          __m512 a = q4x16(q + j / 2);
          for (int m = 0; m < MR; ++m) blk[m] = _mm512_fmadd_ps(a, _mm512_loadu_ps(x + m * px.Kp + j), blk[m]);
        }
      } else {
        for (; j + 16 <= bs; j += 16) {
          __m512 a = q8x16(q + j);
          for (int m = 0; m < MR; ++m) blk[m] = _mm512_fmadd_ps(a, _mm512_loadu_ps(x + m * px.Kp + j), blk[m]);
        }
      }
      const __m512 vs = _mm512_set1_ps(s);
      for (int m = 0; m < MR; ++m) acc[m] = _mm512_fmadd_ps(blk[m], vs, acc[m]);
#endif
      for (; j < bs; ++j) {
        int v = bits == 4 ? (q[j >> 1] >> ((j & 1) * 4)) & 0xf : q[j];
        for (int m = 0; m < MR; ++m) tail[m] += s * (float)v * x[m * px.Kp + j];
      }
    }
    for (int m = 0; m < MR; ++m) {
      float y = tail[m] - corr[m];
#if defined(__AVX512F__)
      y += _mm512_reduce_add_ps(acc[m]);
#endif
      Y[m * W.N + n] = y + (W.bias ? W.bias[n] : 0.f);
    }
  }
}

template <int MR>
void gemv_q(const PaddedX& px, const LinearWeight& W, float* Y) {
#pragma omp parallel
  {
    int64_t b, e;
    cpu::split_range(W.N, omp_get_num_threads(), omp_get_thread_num(), 16, &b, &e);
    gemv_q_rows<MR>(px, W, b, e, Y);
  }
}

// B packer for quantized rows: dequantizes the blocks of rows n0..n0+nr that
// cover [k0, k0+kc) (kc = kKC is a multiple of every block size ≤ 256).
struct PackQ : gemm::BPacker {
  const LinearWeight* W;
  void pack(int64_t k0, int kc, int64_t n0, int nr, float* dst) const override {
    constexpr int NR = gemm::kNR;
    const int bs = W->block_size, bits = W->bits;
    const int64_t kb = W->k_blocks(), blob = quant::blob_bytes(*W), zrb = quant::zp_row_bytes(*W);
    float tmp[gemm::kKC + 256];
    for (int j = 0; j < NR; ++j) {
      if (j >= nr) {
        for (int k = 0; k < kc; ++k) dst[k * NR + j] = 0.f;
        continue;
      }
      const int64_t n = n0 + j;
      const uint8_t* row = static_cast<const uint8_t*>(W->data) + n * kb * blob;
      const uint8_t* zr = W->zero_points ? W->zero_points + n * zrb : nullptr;
      for (int64_t b = k0 / bs; b * bs < k0 + kc; ++b) {
        const float s = quant::load_scale(W->scales, W->scale_dtype, n * kb + b);
        const float zp = (float)zp_of(*W, zr, b);
        const uint8_t* q = row + b * blob;
        float* o = tmp + (b * bs - k0);
        int i = 0;
#if defined(__AVX512F__)
        const __m512 vs = _mm512_set1_ps(s), vz = _mm512_set1_ps(zp);
        for (; i + 16 <= bs; i += 16) {
          __m512 v = bits == 4 ? q4x16(q + i / 2) : q8x16(q + i);
          _mm512_storeu_ps(o + i, _mm512_mul_ps(_mm512_sub_ps(v, vz), vs));
        }
#endif
        for (; i < bs; ++i) {
          int v = bits == 4 ? (q[i >> 1] >> ((i & 1) * 4)) & 0xf : q[i];
          o[i] = ((float)v - zp) * s;
        }
      }
      for (int k = 0; k < kc; ++k) dst[k * NR + j] = tmp[k];
    }
  }
};

// Prefill with fp32 activations: the GEMM engine dequantizes W while packing.
void gemm_q_f32(const float* X, int64_t M, const LinearWeight& W, float* Y) {
  PackQ pb;
  pb.W = &W;
  gemm::sgemm(M, W.N, W.K, X, W.K, pb, Y, W.N, false);
  if (W.bias) {
#pragma omp parallel for schedule(static)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < W.N; ++n) Y[m * W.N + n] += W.bias[n];
  }
}

}  // namespace

bool linear_qi8_available();                                                // linear_qi8.cpp
void linear_qi8(const float* X, int64_t M, const LinearWeight& W, float* Y);  // linear_qi8.cpp

static QuantCompute g_quant_compute = QuantCompute::F32;

void set_quant_compute(QuantCompute mode) { g_quant_compute = mode; }
QuantCompute quant_compute() {
  return linear_qi8_available() ? g_quant_compute : QuantCompute::F32;
}

void linear_q(const float* X, int64_t M, const LinearWeight& W, float* Y) {
  linear_quant(X, M, W, Y, g_quant_compute);
}

void linear_quant(const float* X, int64_t M, const LinearWeight& W, float* Y, QuantCompute mode) {
  QVL_CHECK((W.bits == 4 || W.bits == 8) && W.block_size >= 16 && (W.block_size & (W.block_size - 1)) == 0,
            "quantized linear: unsupported bits %d / block_size %d (need 4|8, power of two >= 16)",
            W.bits, W.block_size);
  if (M <= 0 || W.N <= 0) return;
  if (mode == QuantCompute::Int8 && linear_qi8_available()) {
    linear_qi8(X, M, W, Y);
    return;
  }
  if (M > 4) {
    gemm_q_f32(X, M, W, Y);
    return;
  }
  PaddedX px;
  pad_activations(X, M, W, &px);
  switch (M) {
    case 1: gemv_q<1>(px, W, Y); break;
    case 2: gemv_q<2>(px, W, Y); break;
    case 3: gemv_q<3>(px, W, Y); break;
    default: gemv_q<4>(px, W, Y); break;
  }
}

}  // namespace qvl
