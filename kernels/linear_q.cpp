// Quantized linear (MatMulNBits, bits 4 or 8) with fp32 activations.
//   * M <= 4 (decode): fused GEMV, threaded over N. Each weight block is read
//     once, unpacked in registers and FMA'd with the activation chunk; the zero
//     point is folded out:  Σ_k (q−zp)·s·x = s·(Σ q·x − zp·Σ x), Σ x per block
//     precomputed once per activation row.
//   * larger M (prefill): the fp32 GEMM engine (gemm.h) dequantizes W blocks
//     while packing its B panels.
// Activations are copied zero-padded to Kp = kb·block so padded weight tails
// contribute nothing.
#include <algorithm>
#include <cstring>

#include "kernels/base.h"
#include "kernels/cpu.h"
#include "kernels/gemm.h"
#include "kernels/gemm_bf16.h"
#include "kernels/linear.h"
#include "kernels/linear_qamx.h"
#include "kernels/linear_qsplit.h"
#include "kernels/quant.h"

namespace qvl {

namespace {

// Activation rows padded to Kp plus per-block sums: xs[m*kb + b] = Σ x[m, b·bs ..].
// With `eo` (4-bit weights, block a multiple of 32) every 32-value chunk is
// stored even-k first, then odd-k, matching the low / high nibbles of the 16
// weight bytes that hold it, so the kernel never interleaves nibbles.
struct PaddedX {
  Buffer<float> x, xs;
  int64_t Kp = 0, kb = 0;
  bool eo = false;
};

void pad_activations(const float* X, int64_t M, const LinearWeight& W, PaddedX* p) {
  p->kb = W.k_blocks();
  p->Kp = p->kb * W.block_size;
#if defined(__AVX512F__)
  p->eo = W.bits == 4 && W.block_size % 32 == 0;
#endif
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
    if (p->eo) {
      float t[32];
      for (int64_t c = 0; c < p->Kp; c += 32) {
        for (int i = 0; i < 16; ++i) {
          t[i] = xr[c + 2 * i];
          t[16 + i] = xr[c + 2 * i + 1];
        }
        std::memcpy(xr + c, t, sizeof t);
      }
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

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#define QVL_GEMV_FAST 1
// 16 consecutive per-block scales starting at block index i (nb ≤ 16 valid,
// rest zero) as fp32.
inline __m512 scales16(const void* s, DType t, int64_t i, __mmask16 k) {
  const uint16_t* h = static_cast<const uint16_t*>(s) + i;
  switch (t) {
    case DType::F16: return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, h));
    case DType::BF16:
      return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(k, h)), 16));
    default: return _mm512_maskz_loadu_ps(k, static_cast<const float*>(s) + i);
  }
}

// Zero points of blocks c0..c0+nb of one row (c0 a multiple of 16) as fp32.
inline __m512 zps16(const uint8_t* zr, int bits, int64_t zrb, int64_t c0, int nb) {
  if (!zr) return _mm512_set1_ps((float)(1 << (bits - 1)));
  if (bits == 8)
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8((__mmask16)((1u << nb) - 1), zr + c0)));
  const int64_t o = c0 / 2;
  const int nbytes = (int)std::min<int64_t>(8, zrb - o);
  __m128i v = _mm_maskz_loadu_epi8((__mmask16)((1u << nbytes) - 1), zr + o);
  const __m128i m = _mm_set1_epi8(0x0f);
  __m128i q = _mm_unpacklo_epi8(_mm_and_si128(v, m), _mm_and_si128(_mm_srli_epi16(v, 4), m));
  return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(q));
}

// NR weight rows × MR activation rows, block size a multiple of 32 (BS = 0:
// runtime). Blocks go in chunks of 16: the chunk's scales are converted with one
// vector load per row and the zero-point term Σ_b s_b·zp_b·Σx_b is a vector FMA;
// per block Σ q·x stays in vector lanes and is scaled by a broadcast s_b, so the
// only horizontal sums are at the end. 4-bit rows use the even/odd activation
// order of PaddedX (low nibbles ↔ x[j..j+16), high ↔ x[j+16..j+32)).
template <int NR, int MR, int BITS, int BS>
void gemv_q_fast(const PaddedX& px, const LinearWeight& W, int64_t n0, float* Y) {
  const int bs = BS ? BS : W.block_size;
  const int64_t kb = px.kb, blob = (int64_t)bs * BITS / 8, zrb = quant::zp_row_bytes(W);
  const uint8_t* rows[NR];
  const uint8_t* zr[NR];
  for (int i = 0; i < NR; ++i) {
    rows[i] = static_cast<const uint8_t*>(W.data) + (n0 + i) * kb * blob;
    zr[i] = W.zero_points ? W.zero_points + (n0 + i) * zrb : nullptr;
  }
  const float* xb = px.x.data();
  const int64_t Kp = px.Kp;
  const __m512i nib = _mm512_set1_epi32(0x0f);
  __m512 acc[NR][MR], corr[NR][MR];
  for (int i = 0; i < NR; ++i)
    for (int m = 0; m < MR; ++m) acc[i][m] = corr[i][m] = _mm512_setzero_ps();
  alignas(64) float sb[NR][16];
  for (int64_t c0 = 0; c0 < kb; c0 += 16) {
    const int nb = (int)std::min<int64_t>(16, kb - c0);
    const __mmask16 km = (__mmask16)((1u << nb) - 1);
    __m512 xs[MR];
    for (int m = 0; m < MR; ++m) xs[m] = _mm512_maskz_loadu_ps(km, px.xs.data() + m * kb + c0);
#pragma GCC unroll 4
    for (int i = 0; i < NR; ++i) {
      const __m512 s = scales16(W.scales, W.scale_dtype, (n0 + i) * kb + c0, km);
      _mm512_store_ps(sb[i], s);
      const __m512 sz = _mm512_mul_ps(s, zps16(zr[i], BITS, zrb, c0, nb));
      for (int m = 0; m < MR; ++m) corr[i][m] = _mm512_fmadd_ps(sz, xs[m], corr[i][m]);
    }
    for (int bi = 0; bi < nb; ++bi) {
      const int64_t b = c0 + bi;
      const float* x = xb + b * bs;
      __m512 t[NR][MR];
      for (int j = 0; j < bs; j += 32) {
        __m512 x0[MR], x1[MR];
        for (int m = 0; m < MR; ++m) {
          x0[m] = _mm512_loadu_ps(x + m * Kp + j);
          x1[m] = _mm512_loadu_ps(x + m * Kp + j + 16);
        }
        for (int i = 0; i < NR; ++i) {
          const uint8_t* q = rows[i] + b * blob + j * BITS / 8;
          __m512 lo, hi;
          if (BITS == 4) {
            __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)q));
            lo = _mm512_cvtepi32_ps(_mm512_and_si512(v, nib));
            hi = _mm512_cvtepi32_ps(_mm512_srli_epi32(v, 4));
          } else {
            lo = q8x16(q);
            hi = q8x16(q + 16);
          }
          for (int m = 0; m < MR; ++m) {
            __m512 u = j == 0 ? _mm512_mul_ps(lo, x0[m]) : _mm512_fmadd_ps(lo, x0[m], t[i][m]);
            t[i][m] = _mm512_fmadd_ps(hi, x1[m], u);
          }
        }
      }
      for (int i = 0; i < NR; ++i) {
        const __m512 s = _mm512_set1_ps(sb[i][bi]);
        for (int m = 0; m < MR; ++m) acc[i][m] = _mm512_fmadd_ps(t[i][m], s, acc[i][m]);
      }
    }
  }
  for (int i = 0; i < NR; ++i)
    for (int m = 0; m < MR; ++m)
      Y[m * W.N + n0 + i] =
          cpu::hsum(_mm512_sub_ps(acc[i][m], corr[i][m])) + (W.bias ? W.bias[n0 + i] : 0.f);
}

// Rows [b, e) with the chunked kernel.
template <int MR, int BITS, int BS>
void gemv_q_fast_rows(const PaddedX& px, const LinearWeight& W, int64_t b, int64_t e, float* Y) {
  constexpr int NR = MR <= 2 ? 4 : 2;
  int64_t n = b;
  for (; n + NR <= e; n += NR) gemv_q_fast<NR, MR, BITS, BS>(px, W, n, Y);
  for (; n < e; ++n) gemv_q_fast<1, MR, BITS, BS>(px, W, n, Y);
}

template <int MR>
void gemv_q_fast_dispatch(const PaddedX& px, const LinearWeight& W, int64_t b, int64_t e, float* Y) {
  if (W.bits == 4) {
    if (W.block_size == 32) gemv_q_fast_rows<MR, 4, 32>(px, W, b, e, Y);
    else gemv_q_fast_rows<MR, 4, 0>(px, W, b, e, Y);
  } else {
    if (W.block_size == 32) gemv_q_fast_rows<MR, 8, 32>(px, W, b, e, Y);
    else gemv_q_fast_rows<MR, 8, 0>(px, W, b, e, Y);
  }
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

#if defined(__AVX512F__)
// NR weight rows × MR activation rows. Per block: Σ q·x accumulated in vector
// lanes (two independent chains per pair), scaled by s_b into acc without a
// horizontal sum; the zero-point term s_b·zp_b·Σx_b is a scalar per block.
template <int NR, int MR>
void gemv_q_tile(const PaddedX& px, const LinearWeight& W, int64_t n0, float* Y) {
  const int bs = W.block_size, bits = W.bits;
  const int64_t kb = px.kb, blob = quant::blob_bytes(W), zrb = quant::zp_row_bytes(W);
  const uint8_t* rows[NR];
  const uint8_t* zr[NR];
  for (int i = 0; i < NR; ++i) {
    rows[i] = static_cast<const uint8_t*>(W.data) + (n0 + i) * kb * blob;
    zr[i] = W.zero_points ? W.zero_points + (n0 + i) * zrb : nullptr;
  }
  const float* xb = px.x.data();
  const __m512i nib = _mm512_set1_epi32(0x0f);
  float corr[NR][MR] = {};
  __m512 acc[NR][MR];
#pragma GCC unroll 4
  for (int i = 0; i < NR; ++i)
#pragma GCC unroll 4
    for (int m = 0; m < MR; ++m) acc[i][m] = _mm512_setzero_ps();
  for (int64_t b = 0; b < kb; ++b) {
    const float* x = xb + b * bs;
#pragma GCC unroll 4
    for (int i = 0; i < NR; ++i) {
      const float s = quant::load_scale(W.scales, W.scale_dtype, (n0 + i) * kb + b);
      const float szp = s * (float)zp_of(W, zr[i], b);
#pragma GCC unroll 4
      for (int m = 0; m < MR; ++m) corr[i][m] += szp * px.xs[m * kb + b];
      const uint8_t* q = rows[i] + b * blob;
      __m512 b0[MR], b1[MR];
#pragma GCC unroll 4
      for (int m = 0; m < MR; ++m) b0[m] = b1[m] = _mm512_setzero_ps();
      if (px.eo) {  // 16 bytes → 16 low (even k) and 16 high (odd k) nibbles
        for (int j = 0; j < bs; j += 32) {
          __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(q + j / 2)));
          __m512 lo = _mm512_cvtepi32_ps(_mm512_and_si512(v, nib));
          __m512 hi = _mm512_cvtepi32_ps(_mm512_srli_epi32(v, 4));
#pragma GCC unroll 4
          for (int m = 0; m < MR; ++m) {
            b0[m] = _mm512_fmadd_ps(lo, _mm512_loadu_ps(x + m * px.Kp + j), b0[m]);
            b1[m] = _mm512_fmadd_ps(hi, _mm512_loadu_ps(x + m * px.Kp + j + 16), b1[m]);
          }
        }
      } else if (bits == 4) {  // block of 16: natural order
        for (int j = 0; j < bs; j += 16) {
          __m512 a = q4x16(q + j / 2);
#pragma GCC unroll 4
          for (int m = 0; m < MR; ++m) b0[m] = _mm512_fmadd_ps(a, _mm512_loadu_ps(x + m * px.Kp + j), b0[m]);
        }
      } else {
        int j = 0;
        for (; j + 32 <= bs; j += 32) {
          __m512 a = q8x16(q + j), c = q8x16(q + j + 16);
#pragma GCC unroll 4
          for (int m = 0; m < MR; ++m) {
            b0[m] = _mm512_fmadd_ps(a, _mm512_loadu_ps(x + m * px.Kp + j), b0[m]);
            b1[m] = _mm512_fmadd_ps(c, _mm512_loadu_ps(x + m * px.Kp + j + 16), b1[m]);
          }
        }
        if (j < bs) {  // block of 16
          __m512 a = q8x16(q + j);
#pragma GCC unroll 4
          for (int m = 0; m < MR; ++m) b0[m] = _mm512_fmadd_ps(a, _mm512_loadu_ps(x + m * px.Kp + j), b0[m]);
        }
      }
      const __m512 vs = _mm512_set1_ps(s);
#pragma GCC unroll 4
      for (int m = 0; m < MR; ++m) acc[i][m] = _mm512_fmadd_ps(_mm512_add_ps(b0[m], b1[m]), vs, acc[i][m]);
    }
  }
  for (int i = 0; i < NR; ++i)
    for (int m = 0; m < MR; ++m)
      Y[m * W.N + n0 + i] = cpu::hsum(acc[i][m]) - corr[i][m] + (W.bias ? W.bias[n0 + i] : 0.f);
}
#endif

// Scalar rows [n0, n1) (portable path).
template <int MR>
void gemv_q_scalar(const PaddedX& px, const LinearWeight& W, int64_t n0, int64_t n1, float* Y) {
  const int bs = W.block_size, bits = W.bits;
  const int64_t kb = px.kb, blob = quant::blob_bytes(W), zrb = quant::zp_row_bytes(W);
  for (int64_t n = n0; n < n1; ++n) {
    const uint8_t* row = static_cast<const uint8_t*>(W.data) + n * kb * blob;
    const uint8_t* zr = W.zero_points ? W.zero_points + n * zrb : nullptr;
    float acc[MR] = {};
    for (int64_t b = 0; b < kb; ++b) {
      const float s = quant::load_scale(W.scales, W.scale_dtype, n * kb + b);
      const float zp = (float)zp_of(W, zr, b);
      const uint8_t* q = row + b * blob;
      for (int j = 0; j < bs; ++j) {
        int v = bits == 4 ? (q[j >> 1] >> ((j & 1) * 4)) & 0xf : q[j];
        for (int m = 0; m < MR; ++m) acc[m] += ((float)v - zp) * s * px.x[m * px.Kp + b * bs + j];
      }
    }
    for (int m = 0; m < MR; ++m) Y[m * W.N + n] = acc[m] + (W.bias ? W.bias[n] : 0.f);
  }
}

template <int MR>
void gemv_q(const PaddedX& px, const LinearWeight& W, float* Y) {
#pragma omp parallel
  {
    int64_t b, e;
    cpu::split_range(W.N, omp_get_num_threads(), omp_get_thread_num(), 16, &b, &e);
#if defined(QVL_GEMV_FAST)
    if (W.block_size % 32 == 0) {
      gemv_q_fast_dispatch<MR>(px, W, b, e, Y);
      b = e;  // done
    }
#endif
#if defined(__AVX512F__)
    constexpr int NR = MR == 1 ? 4 : MR == 2 ? 2 : 1;
    int64_t n = b;
    for (; n + NR <= e; n += NR) gemv_q_tile<NR, MR>(px, W, n, Y);
    for (; n < e; ++n) gemv_q_tile<1, MR>(px, W, n, Y);
#else
    gemv_q_scalar<MR>(px, W, b, e, Y);
#endif
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

}  // namespace

// Prefill with float activations: the GEMM engine dequantizes W while packing
// (the bf16 engine under FloatCompute::BF16, else the fp32 engine).
void linear_q_dequant_gemm(const float* X, int64_t M, const LinearWeight& W, float* Y) {
  PackQ pb;
  pb.W = &W;
  if (float_compute() == FloatCompute::BF16 && gemm::bf16_available())
    gemm::sgemm_bf16(M, W.N, W.K, X, W.K, pb, Y, W.N, false);
  else
    gemm::sgemm(M, W.N, W.K, X, W.K, pb, Y, W.N, false);
  if (W.bias) {
#pragma omp parallel for schedule(static)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < W.N; ++n) Y[m * W.N + n] += W.bias[n];
  }
}


// Int16 without AMX: the VNNI panel GEMM (linear_qgemm.cpp, blocks <= 256) beats the
// fp32 GEMM at every M (M=512, 2 threads: ~195 vs ~115 GOP/s); with larger blocks only
// the register tiles remain, which beat it up to 128 rows (fp32 wins above).
constexpr int64_t kInt16MaxRows = 128;
// Below ~64 rows unpacking each weight panel into bf16 pairs costs more than the
// Int16 AMX tiles save (Q4 block 32, 2048 → 6144, 2 threads: M 32: 2.2 vs 1.9 ms,
// M 64: 2.9 vs 3.0 ms, M 512: 15.2 vs 20.0 ms; bench/bench_amx.cpp eng 3 vs 6).
constexpr int64_t kSplitMinRows = 64;
// The same for 1 product against the Int8 AMX tiles (M 16: 1.15 vs 1.12 ms, M 32:
// 1.36 vs 1.52 ms, M 512: 7.6 vs 12.2 ms; eng 0 vs 7).
constexpr int64_t kSplitMinRowsInt8 = 32;
static QuantCompute g_quant_compute = QuantCompute::F32;

void set_quant_compute(QuantCompute mode) { g_quant_compute = mode; }
QuantCompute quant_compute() {
  return linear_qi8_available() ? g_quant_compute : QuantCompute::F32;
}

bool linear_qi8_multi(const float* X, int64_t M, const LinearWeight* const* W, float* const* Y, int n,
                      int act_bits);  // linear_qi8.cpp

void linear_multi(const float* X, int64_t M, const LinearWeight* const* W, float* const* Y, int n) {
  bool shared = n > 1 && M > 0 && M <= 4 && g_quant_compute != QuantCompute::F32 && linear_qi8_available();
  for (int i = 0; i < n && shared; ++i) {
    const LinearWeight& w = *W[i];
    shared = (w.kind == WeightKind::Q4 || w.kind == WeightKind::Q8) && (w.bits == 4 || w.bits == 8) &&
             w.block_size >= 16 && (w.block_size & (w.block_size - 1)) == 0;
  }
  if (shared && linear_qi8_multi(X, M, W, Y, n, g_quant_compute == QuantCompute::Int16 ? 16 : 8)) return;
  for (int i = 0; i < n; ++i) linear(X, M, *W[i], Y[i]);
}

void linear_q(const float* X, int64_t M, const LinearWeight& W, float* Y) {
  linear_quant(X, M, W, Y, g_quant_compute);
}

void linear_quant(const float* X, int64_t M, const LinearWeight& W, float* Y, QuantCompute mode) {
  QVL_CHECK((W.bits == 4 || W.bits == 8) && W.block_size >= 16 && (W.block_size & (W.block_size - 1)) == 0,
            "quantized linear: unsupported bits %d / block_size %d (need 4|8, power of two >= 16)",
            W.bits, W.block_size);
  if (M <= 0 || W.N <= 0) return;
  // Int16 prefill on AMX bf16: split operands, 3 products (linear_qsplit.h) — more
  // accurate than the 15-bit integer scheme and ~1.3x faster from kSplitMinRows rows.
  if (mode == QuantCompute::Int16 && M >= kSplitMinRows && linear_q_split(X, M, W, Y, 3)) return;
  // Int8 prefill: 1 product, weights and activations rounded to bf16: error per
  // term ≤ (2^−8 + 2^−18)·|x||w|, below the 8-bit scheme's max|x_block|/254·|w|.
  if (mode == QuantCompute::Int8 && M >= kSplitMinRowsInt8 && linear_q_split(X, M, W, Y, 1)) return;
  // Int16 above kInt16MaxRows rows without AMX and the VNNI GEMM takes the exact fp32 GEMM (faster there).
  const bool int_path = mode == QuantCompute::Int8 || (mode == QuantCompute::Int16 && (M <= kInt16MaxRows || W.block_size <= 256 ||
                                                                                       (amx_available() && amx_enabled())));
  if (int_path && linear_qi8_available()) {
    linear_qi8(X, M, W, Y, mode == QuantCompute::Int16 ? 16 : 8);
    return;
  }
  if (M > 4) {
    linear_q_dequant_gemm(X, M, W, Y);
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
