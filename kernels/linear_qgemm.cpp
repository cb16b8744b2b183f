// Quantized prefill GEMM on AVX-512 VNNI (no AMX): MatMulNBits Q4/Q8 weights ×
// Int8 / Int16 activations (schemes of linear.h). Per output (m, n) and block b:
//   y[m,n] = Σ_b s_b(n)·dx_b(m)·C_b(m,n) + bias[n],  C_b = Σ_{k∈b} (q_k − zp_b)·xi_k.
// Panels of 32 weight rows are unpacked once into the VNNI layout
// w [kp/4][32][4] (4 consecutive k of each row in one dword) and reused over
// all M rows. The micro-kernel holds int32 accumulators for 32 n × 6 m: per
// k-step it loads two 16-lane weight vectors, broadcasts 4 activation bytes of
// each row and issues two vpdpbusd; after each block the int32 sums are
// converted and fma'd into fp32 accumulators with s_b(n)·dx_b(m).
// vpdpbusd multiplies u8 × s8, so the signs are arranged per weight format:
//   signed mode (Q4, Q8 with the default zero point): w = q − zp as s8 and
//     activations offset to u8, a = xi + 128 (Int8) or u = xi + 32768 split as
//     u = 256·h + l (Int16, h, l ∈ [0, 255]). Then Σ w·a = C + 128·Σw, so each
//     block's int32 accumulators start at −128·Σ_{k∈b} w (computed per panel):
//     Int8 C = −128Σw + Σw·a;  Int16 C = 256·(−128Σw + Σw·h) + Σw·l.
//   u8 mode (Q8 with explicit zero points, q − zp does not fit s8): w = q as u8,
//     activations s8 (xi, or h = (xi+128)>>8, l = xi − 256h as in linear_qi8),
//     accumulators start at 0 and Σ_b s_b·zp_b·dx_b·Σxi_b is subtracted at the end.
// Int16 reuses one accumulator for both planes: Σw·h first, << 8, then += Σw·l
// (|intermediates| < 2^31 for blocks ≤ 256). K is walked in chunks (kChunk) so
// a panel chunk stays in L1 across the m steps; fp32 accumulators of all M rows
// persist across chunks in a per-thread buffer. Threads take chunks of panels
// from a shared counter.
#include "kernels/linear_qgemm.h"

#include <atomic>
#include <cstring>

#include "kernels/base.h"
#include "kernels/cpu.h"
#include "kernels/quant.h"

namespace qvl {

namespace {
std::atomic<bool> g_gemm_on{true};
}

void set_vnni_gemm_enabled(bool on) { g_gemm_on.store(on, std::memory_order_relaxed); }
bool vnni_gemm_enabled() { return g_gemm_on.load(std::memory_order_relaxed); }

#if defined(__AVX512F__) && defined(__AVX512VNNI__) && defined(__AVX512BW__) && defined(__AVX512VL__)

namespace {

constexpr int kPanel = 32;       // weight rows per panel (two 16-lane vectors)
constexpr int kMR = 6;           // activation rows per micro-kernel call
constexpr int64_t kChunk = 512;  // K values per panel chunk (16 KB of packed weights)

struct Geo {
  int bs, bits, planes, steps;  // block, bits, activation planes, k-steps (of 4) per block
  int64_t kb, kp, row_bytes;    // blocks, padded K, bytes of one weight row
  bool sw;                      // signed mode (see the file comment); false: u8 mode
};

Geo make_geo(const LinearWeight& W, int act_bits) {
  Geo g;
  g.bs = W.block_size;
  g.bits = W.bits;
  g.planes = act_bits == 16 ? 2 : 1;
  g.steps = g.bs / 4;
  g.kb = W.k_blocks();
  g.kp = g.kb * g.bs;
  g.row_bytes = g.kb * quant::blob_bytes(W);
  g.sw = !(W.bits == 8 && W.zero_points);
  return g;
}

// Quantized activations: xq [M][planes][kp] bytes (k ≥ K hold xi = 0),
// dx [M][kb], e = dx·Σxi [M][kb] (u8 mode's zero-point term).
struct QX {
  Buffer<uint8_t> xq;
  Buffer<float> dx, e;
};

// Same per-block scheme and float operations as linear_qi8's quantize_x; the
// bytes are stored in the encoding of g.sw (file comment).
void quantize_x(const float* X, int64_t M, int64_t K, const Geo& g, QX* q) {
  const int planes = g.planes, bs = g.bs;
  const int64_t kb = g.kb, kp = g.kp;
  const float qmax = planes == 2 ? 32639.f : 127.f;
  grow(q->xq, M * planes * kp);  // grow-only: K alternates between calls
  grow(q->dx, M * kb);
  grow(q->e, M * kb);
#pragma omp parallel for schedule(static) if (M * K >= (1 << 16))
  for (int64_t m = 0; m < M; ++m) {
    const float* x = X + m * K;
    uint8_t* o = q->xq.data() + m * planes * kp;
    for (int64_t b = 0; b < kb; ++b) {
      const int64_t k0 = b * bs, n = std::max<int64_t>(0, std::min<int64_t>(bs, K - k0));
      __m512 amax = _mm512_setzero_ps();
      for (int64_t j = 0; j < n; j += 16) {
        const __mmask16 mk = n - j >= 16 ? 0xffff : (__mmask16)((1u << (n - j)) - 1);
        amax = _mm512_max_ps(amax, _mm512_abs_ps(_mm512_maskz_loadu_ps(mk, x + k0 + j)));
      }
      const float mx = _mm512_reduce_max_ps(amax);
      const float d = mx / qmax, inv = mx > 0 ? qmax / mx : 0.f;
      __m512i isum = _mm512_setzero_si512();
      for (int64_t j = 0; j < bs; j += 16) {
        const int64_t r = n - j;
        const __mmask16 mk = r >= 16 ? (__mmask16)0xffff : r > 0 ? (__mmask16)((1u << r) - 1) : (__mmask16)0;
        __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(mk, x + k0 + j), _mm512_set1_ps(inv)));
        isum = _mm512_add_epi32(isum, v);
        __m512i h = v, l = v;
        if (planes == 1) {
          if (g.sw) h = _mm512_add_epi32(v, _mm512_set1_epi32(128));
        } else if (g.sw) {  // u = xi + 32768 = 256·h + l, h, l ∈ [0, 255]
          const __m512i u = _mm512_add_epi32(v, _mm512_set1_epi32(32768));
          h = _mm512_srli_epi32(u, 8);
          l = _mm512_and_si512(u, _mm512_set1_epi32(255));
        } else {  // xi = 256·h + l, h = (xi + 128) >> 8, l ∈ [−128, 127]
          h = _mm512_srai_epi32(_mm512_add_epi32(v, _mm512_set1_epi32(128)), 8);
          l = _mm512_sub_epi32(v, _mm512_slli_epi32(h, 8));
        }
        _mm_storeu_si128((__m128i*)(o + k0 + j), _mm512_cvtepi32_epi8(h));
        if (planes == 2) _mm_storeu_si128((__m128i*)(o + kp + k0 + j), _mm512_cvtepi32_epi8(l));
      }
      q->dx[m * kb + b] = d;
      q->e[m * kb + b] = d * (float)_mm512_reduce_add_epi32(isum);
    }
  }
}

// One 32-row weight panel (rows ≥ N are zero everywhere):
//   w [kp/4][32][4] bytes (signed mode: s8 q − zp; u8 mode: q),
//   s [kb][32] fp32 scales, sz [kb][32] = s·zp (u8 mode),
//   init [kb][32] int32 start of the block accumulators (−128·Σw; 0 in u8 mode);
// scratch: acc [M][32] fp32 accumulators across K chunks.
struct Panel {
  Buffer<uint8_t> w;
  Buffer<float> s, sz, acc;
  Buffer<int32_t> init;
};

// Scales of row n, blocks b0..b0+15 (blocks ≥ kb read as 0), as fp32.
inline __m512 row_scales16(const LinearWeight& W, int64_t n, int64_t kb, int64_t b0) {
  const __mmask16 mk = kb - b0 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (kb - b0)) - 1);
  if (W.scale_dtype == DType::F32) return _mm512_maskz_loadu_ps(mk, static_cast<const float*>(W.scales) + n * kb + b0);
  const __m256i h = _mm256_maskz_loadu_epi16(mk, static_cast<const uint16_t*>(W.scales) + n * kb + b0);
  return W.scale_dtype == DType::F16 ? _mm512_cvtph_ps(h)
                                     : _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// 64 weight values of row n starting at k (k a multiple of 64, nv ≤ 64 valid)
// as bytes in k order, signed mode: minus the zero point of each value's block.
inline __m512i row_values(const LinearWeight& W, const Geo& g, int64_t n, int64_t k, int64_t nv) {
  const uint8_t* src = static_cast<const uint8_t*>(W.data) + n * g.row_bytes;
  __m512i v;
  if (g.bits == 4) {  // byte j → (low nibble, high nibble) = values 2j, 2j + 1
    const __mmask32 in = nv == 64 ? ~0u : (1u << (nv / 2)) - 1;
    const __m512i w = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(in, src + k / 2));
    v = _mm512_or_si512(_mm512_and_si512(w, _mm512_set1_epi16(0x000f)),
                        _mm512_and_si512(_mm512_slli_epi16(w, 4), _mm512_set1_epi16(0x0f00)));
  } else {
    v = _mm512_maskz_loadu_epi8(nv == 64 ? ~0ull : (1ull << nv) - 1, src + k);
  }
  if (!g.sw) return v;
  if (!W.zero_points) return _mm512_sub_epi8(v, _mm512_set1_epi8((char)(1 << (g.bits - 1))));
  __m512i z = _mm512_setzero_si512();  // per-byte zero points (blocks of bs ≥ 16 values)
  for (int c = 0; c < 64; c += std::min(g.bs, 64)) {
    const int64_t b = (k + c) / g.bs;
    const __mmask64 mk = g.bs >= 64 ? ~0ull : (g.bs == 32 ? 0xffffffffull : 0xffffull) << c;
    z = _mm512_mask_mov_epi8(z, mk, _mm512_set1_epi8((char)quant::zero_point(W, n, b)));
  }
  return _mm512_sub_epi8(v, z);
}

// 16 rows × 16 dwords (r[i] = row i) → out + t·128 = dword t of rows 0..15 (t < nt).
inline void store_transposed(const __m512i* r, int nt, uint8_t* out) {
  __m512i u[4][4];  // u[g][j]: lane l = dword 4l + j of rows 4g..4g+3
  for (int g = 0; g < 4; ++g) {
    const __m512i t0 = _mm512_unpacklo_epi32(r[4 * g], r[4 * g + 1]), t1 = _mm512_unpackhi_epi32(r[4 * g], r[4 * g + 1]);
    const __m512i t2 = _mm512_unpacklo_epi32(r[4 * g + 2], r[4 * g + 3]), t3 = _mm512_unpackhi_epi32(r[4 * g + 2], r[4 * g + 3]);
    u[g][0] = _mm512_unpacklo_epi64(t0, t2);
    u[g][1] = _mm512_unpackhi_epi64(t0, t2);
    u[g][2] = _mm512_unpacklo_epi64(t1, t3);
    u[g][3] = _mm512_unpackhi_epi64(t1, t3);
  }
  for (int j = 0; j < 4; ++j) {
    const __m512i v0 = _mm512_shuffle_i32x4(u[0][j], u[1][j], 0x44), v1 = _mm512_shuffle_i32x4(u[0][j], u[1][j], 0xee);
    const __m512i v2 = _mm512_shuffle_i32x4(u[2][j], u[3][j], 0x44), v3 = _mm512_shuffle_i32x4(u[2][j], u[3][j], 0xee);
    const __m512i o[4] = {_mm512_shuffle_i32x4(v0, v2, 0x88), _mm512_shuffle_i32x4(v0, v2, 0xdd),
                          _mm512_shuffle_i32x4(v1, v3, 0x88), _mm512_shuffle_i32x4(v1, v3, 0xdd)};
    for (int l = 0; l < 4; ++l)
      if (4 * l + j < nt) _mm512_store_si512(out + (4 * l + j) * 128, o[l]);
  }
}

// Unpacks rows [n0, n0 + 32) of W into p (see Panel).
void pack_panel(const LinearWeight& W, const Geo& g, int64_t n0, Panel* p) {
  const int64_t kb = g.kb, kp = g.kp, rows = std::min<int64_t>(kPanel, W.N - n0);
  grow(p->w, kp / 4 * 128);
  grow(p->s, kb * kPanel);
  grow(p->sz, kb * kPanel);
  grow(p->init, kb * kPanel);
  // Scales [kb][32] by 16×16 transposes of (16 rows × 16 blocks); rows ≥ N zero.
  for (int64_t b0 = 0; b0 < kb; b0 += 16)
    for (int h = 0; h < 2; ++h) {
      __m512i r[16];
      for (int i = 0; i < 16; ++i)
        r[i] = h * 16 + i < rows ? _mm512_castps_si512(row_scales16(W, n0 + h * 16 + i, kb, b0)) : _mm512_setzero_si512();
      store_transposed(r, (int)std::min<int64_t>(16, kb - b0), reinterpret_cast<uint8_t*>(p->s.data() + b0 * kPanel + h * 16));
    }
  if (!g.sw)  // u8 mode: s·zp per block
    for (int64_t b = 0; b < kb; ++b)
      for (int64_t rr = 0; rr < kPanel; ++rr)
        p->sz[b * kPanel + rr] = rr < rows ? p->s[b * kPanel + rr] * (float)quant::zero_point(W, n0 + rr, b) : 0.f;
  for (int64_t k = 0; k < kp; k += 64) {
    const int64_t nv = std::min<int64_t>(64, kp - k);  // a multiple of 16
    for (int h = 0; h < 2; ++h) {
      __m512i r[16];
      for (int i = 0; i < 16; ++i)
        r[i] = h * 16 + i < rows ? row_values(W, g, n0 + h * 16 + i, k, nv) : _mm512_setzero_si512();
      store_transposed(r, (int)(nv / 4), p->w.data() + k / 4 * 128 + h * 64);
    }
  }
  const __m512i ones = _mm512_set1_epi8(1);
  for (int64_t b = 0; b < kb; ++b)
    for (int h = 0; h < 2; ++h) {
      __m512i sum = _mm512_setzero_si512();
      if (g.sw)
        for (int64_t t = b * g.steps; t < (b + 1) * g.steps; ++t)
          sum = _mm512_dpbusd_epi32(sum, ones, _mm512_load_si512(p->w.data() + t * 128 + h * 64));
      _mm512_store_si512(p->init.data() + b * kPanel + h * 16, _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(sum, 7)));
    }
}

// acc += u8 u × s8 s in groups of 4 (vpdpbusd). Inline asm: with the intrinsic
// GCC 12 copies every accumulator once per k-step (the instruction is destructive).
inline __m512i dpbusd(__m512i acc, __m512i u, __m512i s) {
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(s));
  return acc;
}

// Blocks [0, nb) of a chunk for MR activation rows × the 32 panel columns:
// w, s, init point at the chunk's first block, x at row 0's chunk bytes (rows
// xs apart, plane 2 kp further), dx at row 0's first block (rows kb apart).
// acc [MR][32]: fp32 accumulators, read unless `first`, written back.
// ST: k-steps per block as a constant (unrolled), 0: `steps` at run time.
template <int MR, int P, bool SW, int ST>
__attribute__((noinline)) void micro(const uint8_t* w, const float* s, const int32_t* init, const uint8_t* x,
                                     int64_t xs, int64_t kp, const float* dx, int64_t kb, int64_t nb, int steps,
                                     float* acc, bool first) {
  if constexpr (ST > 0) steps = ST;
  __m512 f[MR][2];
#pragma GCC unroll 8
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) f[m][h] = first ? _mm512_setzero_ps() : _mm512_load_ps(acc + m * 32 + h * 16);
  for (int64_t b = 0; b < nb; ++b) {
    __m512i a[MR][2];
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m)
#pragma GCC unroll 2
      for (int h = 0; h < 2; ++h) a[m][h] = SW ? _mm512_load_si512(init + b * 32 + h * 16) : _mm512_setzero_si512();
    const uint8_t* wb = w + b * steps * 128;
#pragma GCC unroll 2
    for (int p = 0; p < P; ++p) {
      if (p == 1)
#pragma GCC unroll 8
        for (int m = 0; m < MR; ++m)
#pragma GCC unroll 2
          for (int h = 0; h < 2; ++h) a[m][h] = _mm512_slli_epi32(a[m][h], 8);
      const uint8_t* xb = x + p * kp + b * steps * 4;
#pragma GCC unroll 8
      for (int t = 0; t < steps; ++t) {
        const __m512i w0 = _mm512_load_si512(wb + t * 128), w1 = _mm512_load_si512(wb + t * 128 + 64);
#pragma GCC unroll 8
        for (int m = 0; m < MR; ++m) {
          int32_t v;
          std::memcpy(&v, xb + m * xs + t * 4, 4);
          const __m512i xv = _mm512_set1_epi32(v);
          if constexpr (SW) {
            a[m][0] = dpbusd(a[m][0], xv, w0);
            a[m][1] = dpbusd(a[m][1], xv, w1);
          } else {
            a[m][0] = dpbusd(a[m][0], w0, xv);
            a[m][1] = dpbusd(a[m][1], w1, xv);
          }
        }
      }
    }
    const __m512 s0 = _mm512_load_ps(s + b * 32), s1 = _mm512_load_ps(s + b * 32 + 16);
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) {
      const __m512 d = _mm512_set1_ps(dx[m * kb + b]);
      f[m][0] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(a[m][0]), d), s0, f[m][0]);
      f[m][1] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(a[m][1]), d), s1, f[m][1]);
    }
  }
#pragma GCC unroll 8
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) _mm512_store_ps(acc + m * 32 + h * 16, f[m][h]);
}

template <int P, bool SW, int ST>
void micro_m(int mr, const uint8_t* w, const float* s, const int32_t* init, const uint8_t* x, int64_t xs,
             int64_t kp, const float* dx, int64_t kb, int64_t nb, int steps, float* acc, bool first) {
  switch (mr) {
    case 1: micro<1, P, SW, ST>(w, s, init, x, xs, kp, dx, kb, nb, steps, acc, first); break;
    case 2: micro<2, P, SW, ST>(w, s, init, x, xs, kp, dx, kb, nb, steps, acc, first); break;
    case 3: micro<3, P, SW, ST>(w, s, init, x, xs, kp, dx, kb, nb, steps, acc, first); break;
    case 4: micro<4, P, SW, ST>(w, s, init, x, xs, kp, dx, kb, nb, steps, acc, first); break;
    case 5: micro<5, P, SW, ST>(w, s, init, x, xs, kp, dx, kb, nb, steps, acc, first); break;
    default: micro<6, P, SW, ST>(w, s, init, x, xs, kp, dx, kb, nb, steps, acc, first); break;
  }
}

// Y rows [m0, m0 + mr) × panel columns [n0, n0 + 32) from the finished fp32
// accumulators: u8 mode subtracts Σ_b s_b·zp_b·e_b(m); plus bias; N tail masked.
void write_out(const LinearWeight& W, const Geo& g, const Panel& p, const QX& q, int64_t m0, int64_t mr,
               int64_t n0, float* Y) {
  for (int h = 0; h < 2; ++h) {
    const int64_t nc = std::min<int64_t>(16, W.N - (n0 + h * 16));
    if (nc <= 0) break;
    const __mmask16 nm = nc >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << nc) - 1);
    const __m512 bias = W.bias ? _mm512_maskz_loadu_ps(nm, W.bias + n0 + h * 16) : _mm512_setzero_ps();
    for (int64_t m = m0; m < m0 + mr; ++m) {
      __m512 v = _mm512_load_ps(p.acc.data() + m * 32 + h * 16);
      if (!g.sw) {
        __m512 corr = _mm512_setzero_ps();
        for (int64_t b = 0; b < g.kb; ++b)
          corr = _mm512_fmadd_ps(_mm512_load_ps(p.sz.data() + b * kPanel + h * 16), _mm512_set1_ps(q.e[m * g.kb + b]), corr);
        v = _mm512_sub_ps(v, corr);
      }
      _mm512_mask_storeu_ps(Y + m * W.N + n0 + h * 16, nm, _mm512_add_ps(v, bias));
    }
  }
}

// Panels [nb, ne) (multiples of 32, ne clipped to N) for all M rows.
template <int P, bool SW>
void run_range(const Geo& g, const QX& q, const LinearWeight& W, int64_t M, int64_t nb, int64_t ne, float* Y,
               Panel* p) {
  const int64_t cb = std::max<int64_t>(1, kChunk / g.bs), kb = g.kb, kp = g.kp, xs = P * kp;
  grow(p->acc, M * 32);
  // The next panel's weights, scales and zero points (contiguous row ranges)
  // are prefetched while this one computes, a few lines per micro-kernel call:
  // pack_panel otherwise waits on 32 row streams from DRAM, more than the
  // hardware prefetcher follows (bench_qgemm K 2048 N 6144 M 512, 1 thread:
  // pack_panel 9 % of the samples, mostly load latency -> 4.6 %; into L2 with
  // _MM_HINT_T1 it stayed at 6 %).
  const int64_t calls = ((kb + cb - 1) / cb) * ((M + kMR - 1) / kMR);
  const int64_t sbytes = dtype_bits(W.scale_dtype) / 8 * kb, zbytes = W.zero_points ? quant::zp_row_bytes(W) : 0;
  for (int64_t n0 = nb; n0 < ne; n0 += kPanel) {
    pack_panel(W, g, n0, p);
    const int64_t pn = n0 + kPanel, prow = std::max<int64_t>(0, std::min<int64_t>(kPanel, W.N - pn));
    const char* pr[3] = {static_cast<const char*>(W.data) + pn * g.row_bytes,
                         static_cast<const char*>(W.scales) + pn * sbytes,
                         reinterpret_cast<const char*>(W.zero_points) + pn * zbytes};
    const int64_t pe[3] = {prow * g.row_bytes, prow * sbytes, prow * zbytes};
    const int64_t per_call = ((pe[0] + pe[1] + pe[2]) / 64 + 3 + calls - 1) / calls;
    int pri = 0;
    int64_t po = 0;  // next prefetch: region pri, byte offset po
    for (int64_t c0 = 0; c0 < kb; c0 += cb) {
      const int64_t c1 = std::min(kb, c0 + cb);
      for (int64_t m0 = 0; m0 < M; m0 += kMR) {
        const int mr = (int)std::min<int64_t>(kMR, M - m0);
        for (int64_t i = 0; i < per_call && pri < 3; ++i) {
          while (pri < 3 && po >= pe[pri]) ++pri, po = 0;
          if (pri < 3) _mm_prefetch(pr[pri] + po, _MM_HINT_T0), po += 64;
        }
        if (c1 == kb)  // Y lines of this tile (mostly not cached) fetched for ownership while it computes
          for (int64_t m = m0; m < m0 + mr; ++m)
            for (int64_t n = n0; n < std::min(W.N, n0 + kPanel); n += 16) _mm_prefetch((const char*)(Y + m * W.N + n), _MM_HINT_ET0);
        (g.steps == 8 ? micro_m<P, SW, 8> : micro_m<P, SW, 0>)(mr, p->w.data() + c0 * g.steps * 128, p->s.data() + c0 * kPanel, p->init.data() + c0 * kPanel,
                       q.xq.data() + m0 * xs + c0 * g.bs, xs, kp, q.dx.data() + m0 * kb + c0, kb, c1 - c0, g.steps,
                       p->acc.data() + m0 * 32, c0 == 0);
        if (c1 == kb) write_out(W, g, *p, q, m0, mr, n0, Y);
      }
    }
  }
}

}  // namespace

bool linear_q_vnni_gemm(const float* X, int64_t M, const LinearWeight& W, float* Y, int act_bits) {
  const int bs = W.block_size;
  if (!vnni_gemm_enabled()) return false;
  if ((W.kind != WeightKind::Q4 && W.kind != WeightKind::Q8) || (W.bits != 4 && W.bits != 8) || bs < 16 ||
      bs > 256 || (bs & (bs - 1)) != 0 || (act_bits != 8 && act_bits != 16))
    return false;
  if (M <= 0 || W.N <= 0) return true;
  const Geo g = make_geo(W, act_bits);
  thread_local QX qbuf;  // the caller's; workers read it through qp
  QX* qp = &qbuf;
  quantize_x(X, M, W.K, g, qp);
  // 16 chunks per thread: with 4, the last chunk left one core idle ~10 % of each call
  // (2B prefill 512, --act-bits 8: 250 -> 272 tok/s in alternating runs; 32 gives no more).
  cpu::ChunkQueue work(W.N, cpu::chunk_size(W.N, cpu::threads(), kPanel, 16));
#pragma omp parallel
  {
    const QX& q = *qp;
    thread_local Panel p;
    int64_t nb, ne;
    while (work.pop(&nb, &ne)) {
      if (g.planes == 2) {
        if (g.sw) run_range<2, true>(g, q, W, M, nb, ne, Y, &p);
        else run_range<2, false>(g, q, W, M, nb, ne, Y, &p);
      } else {
        if (g.sw) run_range<1, true>(g, q, W, M, nb, ne, Y, &p);
        else run_range<1, false>(g, q, W, M, nb, ne, Y, &p);
      }
    }
  }
  return true;
}

#else

bool linear_q_vnni_gemm(const float*, int64_t, const LinearWeight&, float*, int) { return false; }

#endif

}  // namespace qvl
