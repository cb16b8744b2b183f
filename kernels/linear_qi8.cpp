// Quantized linear with int8 activations (AVX-512 VNNI), for bits 4 and 8.
// Math (per output n, activation row m, weight block b of `bs` values):
//   x ≈ dx_b·xi  with xi = round(x·127/max|x_b|) ∈ [−127, 127]   (per row, per block)
//   y[m,n] = Σ_b s_b·dx_b·(Σ_k q_k·xi_k) − Σ_b s_b·zp_b·dx_b·(Σ_k xi_k) + bias[n]
// Σ q·xi uses vpdpbusd (u8 weights × s8 activations, int32 lanes). One 64-byte
// group of weight bytes covers VG values (128 for 4-bit, 64 for 8-bit); every
// int32 lane lies inside one block, so its fp32 scale s_b·dx_b is gathered per
// lane with vpermps. For 4-bit weights the activations are stored in "nibble
// order" per group (64 even-k bytes, then 64 odd-k bytes) so the low / high
// nibble vectors multiply them without shuffling the weights.
// Int16 mode (act_bits 16): xi = round(x·32639/max|x_b|) stored as two int8
// planes h = (xi+128)>>8 and l = xi − 256·h; Σ q·xi = 256·Σ q·h + Σ q·l, two
// vpdpbusd per weight vector instead of one, 257× smaller activation error.
// Small M (2..9 rows) uses one register-tiled kernel (NR weight rows × MR
// activation rows); single-row decode has its own leaner tile (tile_m1).
// Threads take chunks of N rows from a shared counter.
#include <atomic>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/base.h"
#include "kernels/cpu.h"
#include "kernels/linear.h"
#include "kernels/linear_qamx.h"
#include "kernels/linear_qgemm.h"
#include "kernels/quant.h"

namespace qvl {

namespace {
std::atomic<DecodeRowOrder> g_row_order{DecodeRowOrder::Auto};
}  // namespace

void set_decode_row_order(DecodeRowOrder order) { g_row_order.store(order, std::memory_order_relaxed); }

#if defined(__AVX512F__) && defined(__AVX512VNNI__) && defined(__AVX512VBMI__) && defined(__AVX512BW__)

bool linear_qi8_available() { return true; }

namespace {

// Quantized activations: rows of Kg = G·VG int8 (group order), per-block dx and
// e = dx·Σxi (for the zero-point term); all padded so 16-wide loads stay inside.
struct QuantX {
  int64_t M = 0, kb = 0, G = 0, Kg = 0;
  int planes = 1;     // 1: Int8 (xi); 2: Int16 split, plane 0 = h, plane 1 = l
  Buffer<int8_t> xq;  // [M, planes, Kg]
  Buffer<float> dx;   // [M, kb + 16]
  Buffer<float> e;    // [M, kb + 16]
  // M == 1 only: per 64-byte weight group and int32 lane of its dot product,
  // −zp0·Σ xi over the activations that lane multiplies (zp0 = 2^(bits−1), the
  // default zero point), [planes][G][16]. Decode starts each lane's integer sum
  // there, so the sums are Σ (q − zp0)·xi exactly and need no fp32 correction.
  Buffer<int32_t> zc;
};

struct Geometry {
  int bs, bits, vg;  // block size, bits, values per 64-byte group
  int64_t kb, G, row_bytes;
  int log2_bs, log2_vg;
  __m512i idx;  // lane → block offset inside the group
  __mmask64 last_mask;
  // First block touched by group g (sizes are powers of two).
  int64_t block0(int64_t g) const { return (g << log2_vg) >> log2_bs; }
};

Geometry make_geometry(const LinearWeight& W) {
  Geometry gm;
  gm.bs = W.block_size;
  gm.bits = W.bits;
  gm.vg = W.bits == 4 ? 128 : 64;
  gm.log2_bs = __builtin_ctz((unsigned)gm.bs);
  gm.log2_vg = __builtin_ctz((unsigned)gm.vg);
  gm.kb = W.k_blocks();
  gm.row_bytes = gm.kb * quant::blob_bytes(W);
  gm.G = (gm.row_bytes + 63) / 64;
  const int span = W.bits == 4 ? 8 : 4;  // values per int32 lane
  alignas(64) int32_t ix[16];
  for (int l = 0; l < 16; ++l) ix[l] = gm.bs <= gm.vg ? (l * span) / gm.bs : 0;
  gm.idx = _mm512_load_si512(ix);
  int64_t tail = gm.row_bytes - (gm.G - 1) * 64;
  gm.last_mask = tail >= 64 ? ~0ull : ((1ull << tail) - 1);
  return gm;
}

// Quantizes X [M, K] per block into q (see QuantX). Natural order first, then
// for 4-bit weights each 128-value group is split into even / odd halves.
void quantize_x(const float* X, int64_t M, int64_t K, const Geometry& gm, int planes, QuantX* q) {
  q->M = M;
  q->kb = gm.kb;
  q->G = gm.G;
  q->Kg = gm.G * gm.vg;
  q->planes = planes;
  const float qmax = planes == 2 ? 32639.f : 127.f;
  grow(q->xq, M * planes * q->Kg);
  grow(q->dx, M * (gm.kb + 16));
  grow(q->e, M * (gm.kb + 16));
  const int bs = gm.bs;
  const __m512i ev = _mm512_set_epi8(
      126, 124, 122, 120, 118, 116, 114, 112, 110, 108, 106, 104, 102, 100, 98, 96, 94, 92, 90,
      88, 86, 84, 82, 80, 78, 76, 74, 72, 70, 68, 66, 64, 62, 60, 58, 56, 54, 52, 50, 48, 46, 44,
      42, 40, 38, 36, 34, 32, 30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i od = _mm512_add_epi8(ev, _mm512_set1_epi8(1));
  cpu::parallel_for_if(M * K >= (1 << 16), M, [&](int64_t m) {
    const float* x = X + m * K;
    int8_t* out = q->xq.data() + m * planes * q->Kg;
    int8_t* out_l = out + q->Kg;  // Int16: low plane
    float* dx = q->dx.data() + m * (gm.kb + 16);
    float* e = q->e.data() + m * (gm.kb + 16);
    std::memset(out, 0, planes * q->Kg);
    for (int64_t b = 0; b < gm.kb; ++b) {
      const int64_t k0 = b * bs, n = std::max<int64_t>(0, std::min<int64_t>(bs, K - k0));
      __m512 amax = _mm512_setzero_ps();
      for (int64_t j = 0; j < n; j += 16) {
        __mmask16 mk = n - j >= 16 ? 0xffff : (__mmask16)((1u << (n - j)) - 1);
        amax = _mm512_max_ps(amax, _mm512_abs_ps(_mm512_maskz_loadu_ps(mk, x + k0 + j)));
      }
      float mx = _mm512_reduce_max_ps(amax);
      float d = mx / qmax, inv = mx > 0 ? qmax / mx : 0.f;
      __m512i isum = _mm512_setzero_si512();
      for (int64_t j = 0; j < n; j += 16) {
        __mmask16 mk = n - j >= 16 ? 0xffff : (__mmask16)((1u << (n - j)) - 1);
        __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(mk, x + k0 + j), _mm512_set1_ps(inv)));
        isum = _mm512_add_epi32(isum, v);
        if (planes == 2) {  // v = 256·h + l, h = (v + 128) >> 8, l ∈ [−128, 127]
          __m512i h = _mm512_srai_epi32(_mm512_add_epi32(v, _mm512_set1_epi32(128)), 8);
          __m512i l = _mm512_sub_epi32(v, _mm512_slli_epi32(h, 8));
          _mm_storeu_si128((__m128i*)(out_l + k0 + j), _mm512_cvtepi32_epi8(l));
          v = h;
        }
        _mm_storeu_si128((__m128i*)(out + k0 + j), _mm512_cvtepi32_epi8(v));
      }
      dx[b] = d;
      e[b] = d * (float)_mm512_reduce_add_epi32(isum);
    }
    for (int64_t b = gm.kb; b < gm.kb + 16; ++b) dx[b] = e[b] = 0.f;
    if (gm.bits == 4) {
      for (int64_t g = 0; g < gm.G * planes; ++g) {
        int8_t* p = out + g * 128;
        __m512i a = _mm512_loadu_si512(p), c = _mm512_loadu_si512(p + 64);
        _mm512_storeu_si512(p, _mm512_permutex2var_epi8(a, ev, c));
        _mm512_storeu_si512(p + 64, _mm512_permutex2var_epi8(a, od, c));
      }
    }
  });
  if (M != 1) return;
  // zc: the lanes of vpdpbusd(w, x) sum 4 consecutive bytes of x (4-bit: of
  // each 64-byte half, the even- and odd-k values of the group).
  grow(q->zc, planes * gm.G * 16);
  const __m512i ones = _mm512_set1_epi8(1);
  const int shift = gm.bits - 1, xg = gm.bits == 4 ? 128 : 64;
  for (int64_t g = 0; g < planes * gm.G; ++g) {
    const int8_t* p = q->xq.data() + g * xg;
    __m512i sum = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, _mm512_loadu_si512(p));
    if (gm.bits == 4) sum = _mm512_dpbusd_epi32(sum, ones, _mm512_loadu_si512(p + 64));
    _mm512_storeu_si512(q->zc.data() + g * 16, _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(sum, shift)));
  }
}

// 16 scales starting at block b0 (masked: blocks ≥ kb read as 0) as fp32.
// SD: 0 = F32, 1 = F16, 2 = BF16.
template <int SD>
inline __m512 load_scales(const void* row, int64_t b0, __mmask16 mk) {
  if constexpr (SD == 0) {
    return _mm512_maskz_loadu_ps(mk, static_cast<const float*>(row) + b0);
  } else {
    __m256i h = _mm256_maskz_loadu_epi16(mk, static_cast<const uint16_t*>(row) + b0);
    if constexpr (SD == 1) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
}

inline __mmask16 block_mask(int64_t kb, int64_t b0) {
  int64_t rem = kb - b0;
  return rem >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << rem) - 1);
}

// One weight row: packed bytes, its scales, and (with explicit zero points)
// s[b]·zp[b] expanded to fp32 (padded by 16).
struct RowCtx {
  const uint8_t* w;
  const void* s;
  const float* sz;  // null when the zero point is the default
};

// Σ_b s_b·e_b over kb blocks (scales in their stored type, masked tail).
template <int SD>
inline float scale_dot(const void* s, const float* e, int64_t kb) {
  __m512 acc = _mm512_setzero_ps();
  for (int64_t b = 0; b < kb; b += 16)
    acc = _mm512_fmadd_ps(load_scales<SD>(s, b, block_mask(kb, b)), _mm512_loadu_ps(e + b), acc);
  return cpu::hsum(acc);
}

inline float dot_kb(const float* a, const float* b, int64_t kb) {
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < kb; i += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc);
  return cpu::hsum(acc);  // padding lanes are zero
}

// Y[m0..m0+MR, n0..n0+NR] for one register tile. Per 64-byte group: the MR
// activation lane scales dx are gathered once, then each weight row is
// unpacked and multiplied with all MR activation rows (x read from L1).
// (Loops over the tile are fully unrolled so the accumulators stay in registers.)
// Σ q·xi over one 64-byte weight group for one activation row (x: its group
// bytes in plane 0; plane 1 lies `pl` bytes further). 4-bit: lo/hi nibbles
// against the even/odd halves; P = 2 combines the planes as 256·h + l.
template <int BITS, int P>
inline __m512i group_dot(__m512i lo, __m512i hi, const int8_t* x, int64_t pl) {
  auto one = [&](const int8_t* xp) {
    __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, _mm512_loadu_si512(xp));
    if constexpr (BITS == 4) s = _mm512_dpbusd_epi32(s, hi, _mm512_loadu_si512(xp + 64));
    return s;
  };
  if constexpr (P == 1) return one(x);
  else return _mm512_add_epi32(_mm512_slli_epi32(one(x), 8), one(x + pl));
}

template <int NR, int MR, int BITS, int SD, int P>
__attribute__((noinline)) void tile(const Geometry& gm, const QuantX& qx, int64_t m0,
                                    const RowCtx* rows, int64_t n0, const LinearWeight& W,
                                    float* Y) {
  constexpr int XG = BITS == 4 ? 128 : 64;  // activation bytes per group
  __m512 acc[NR][MR];
#pragma GCC unroll 8
  for (int i = 0; i < NR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < MR; ++j) acc[i][j] = _mm512_setzero_ps();
  const uint8_t* wr[NR];
  const void* sp[NR];
  for (int i = 0; i < NR; ++i) {
    wr[i] = rows[i].w;
    sp[i] = rows[i].s;
  }
  const int8_t* xr = qx.xq.data() + m0 * P * qx.Kg;
  const float* dxr = qx.dx.data() + m0 * (qx.kb + 16);
  const int64_t xstride = P * qx.Kg, pl = qx.Kg, dstride = qx.kb + 16, kb = gm.kb;
  const __m512i nib = _mm512_set1_epi8(0x0f);
  // Software prefetch one tile ahead: the same offset in the next NR rows
  // (DRAM-bound decode reaches ~80 % of the stream bandwidth with it, ~55 % without).
  const int64_t pf_ahead = NR * gm.row_bytes;
  for (int64_t g = 0; g < gm.G; ++g) {
    const __mmask64 mk = g + 1 == gm.G ? gm.last_mask : ~0ull;
    const int64_t b0 = gm.block0(g);
    const __mmask16 smk = block_mask(kb, b0);
    __m512 dl[MR];
#pragma GCC unroll 8
    for (int j = 0; j < MR; ++j) dl[j] = _mm512_permutexvar_ps(gm.idx, _mm512_loadu_ps(dxr + j * dstride + b0));
    const int8_t* xg = xr + g * XG;
#pragma GCC unroll 8
    for (int i = 0; i < NR; ++i) {
      _mm_prefetch((const char*)(wr[i] + g * 64 + pf_ahead), _MM_HINT_T0);
      __m512i w = _mm512_maskz_loadu_epi8(mk, wr[i] + g * 64);
      __m512 sl = _mm512_permutexvar_ps(gm.idx, load_scales<SD>(sp[i], b0, smk));
      __m512i lo = w, hi = w;
      if constexpr (BITS == 4) {
        lo = _mm512_and_si512(w, nib);
        hi = _mm512_and_si512(_mm512_srli_epi16(w, 4), nib);
      }
#pragma GCC unroll 8
      for (int j = 0; j < MR; ++j) {
        __m512i s = group_dot<BITS, P>(lo, hi, xg + j * xstride, pl);
        acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(sl, dl[j]), acc[i][j]);
      }
    }
  }
  float red[NR][MR];
#pragma GCC unroll 8
  for (int i = 0; i < NR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < MR; ++j) red[i][j] = cpu::hsum(acc[i][j]);
  const float zp0 = (float)(1 << (BITS - 1));
  for (int i = 0; i < NR; ++i)
    for (int j = 0; j < MR; ++j) {
      const float* e = qx.e.data() + (m0 + j) * (qx.kb + 16);
      float corr = rows[i].sz ? dot_kb(rows[i].sz, e, kb) : zp0 * scale_dot<SD>(sp[i], e, kb);
      Y[(m0 + j) * W.N + n0 + i] = red[i][j] - corr + (W.bias ? W.bias[n0 + i] : 0.f);
    }
}

// Decode (one activation row): the same sums with a cheaper inner loop. The
// per-block products c_b = s_b·dx_b are formed once per row (16 blocks per
// vector) instead of converting and multiplying the scales in every group;
// with the default zero point each lane's integer sum starts at qx.zc, so it
// is Σ (q − zp0)·xi exactly (explicit zero points: acc starts at
// −Σ_b s_b·zp_b·e_b instead). The two Int16 planes chain through one
// accumulator (256·Σq·h + Σq·l as dpbusd, shift, dpbusd). |256·Σq·h| < 2^26
// per lane, so int32 cannot overflow. Rows are consecutive in memory.
// c: NR rows of kb + 16 floats of scratch.
// PF: software prefetch of the next tiles (off when rows are read one by one).
template <int NR, int BITS, int SD, int P, bool PF = true>
__attribute__((noinline)) void tile_m1(const Geometry& gm, const QuantX& qx, const RowCtx* rows,
                                       int64_t n0, const LinearWeight& W, float* Y, float* c) {
  constexpr int XG = BITS == 4 ? 128 : 64;
  const int64_t kb = gm.kb, cstride = kb + 16, pl = qx.Kg, rb = gm.row_bytes;
  const float* dx = qx.dx.data();
  const bool zfold = !W.zero_points;
  __m512 acc[NR];
#pragma GCC unroll 8
  for (int i = 0; i < NR; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t b = 0; b < kb; b += 16) {
    const __mmask16 mk = block_mask(kb, b);
    const __m512 d = _mm512_loadu_ps(dx + b);
#pragma GCC unroll 8
    for (int i = 0; i < NR; ++i) {
      const __m512 sv = load_scales<SD>(rows[i].s, b, mk);
      _mm512_storeu_ps(c + i * cstride + b, _mm512_mul_ps(sv, d));
      if (!zfold) acc[i] = _mm512_fnmadd_ps(_mm512_loadu_ps(rows[i].sz + b), _mm512_loadu_ps(qx.e.data() + b), acc[i]);
    }
  }
  const int8_t* x = qx.xq.data();
  const int32_t* zc = qx.zc.data();
  const __m512i nib = _mm512_set1_epi8(0x0f);
  // Software prefetch: the next tile into L1, the one after into L2. Measured on
  // the 2B decode layer sequence (2 threads, cold weights): 19.9 GB/s with the
  // L1 hint alone, 22 GB/s with both; the hardware prefetcher alone gives ~11.
  const int64_t pf_ahead = NR * rb;
  // The scales of the tile after next (rows are consecutive, so its NR scale rows
  // are one contiguous block), spread over the groups: without it every tile's
  // prologue waits on a demand miss of its scales.
  const int64_t slines = (NR * kb * (SD == 0 ? 4 : 2) + 63) / 64, spg = (slines + gm.G - 1) / gm.G;
  const char* spf = static_cast<const char*>(rows[0].s) + 2 * NR * kb * (SD == 0 ? 4 : 2);
  // One 64-byte group of every row; MASKED only for a partial last group.
  auto group = [&](int64_t g, auto masked) {
    const int64_t b0 = gm.block0(g);
    const int8_t* xg = x + g * XG;
    const __m512i z0 = zfold ? _mm512_loadu_si512(zc + g * 16) : _mm512_setzero_si512();
    if constexpr (PF)
      for (int64_t l = g * spg, le = std::min(slines, l + spg); l < le; ++l) _mm_prefetch(spf + l * 64, _MM_HINT_T0);
#pragma GCC unroll 8
    for (int i = 0; i < NR; ++i) {
      const uint8_t* wp = rows[i].w + g * 64;
      if constexpr (PF) {
        _mm_prefetch((const char*)(wp + pf_ahead), _MM_HINT_T0);
        _mm_prefetch((const char*)(wp + 2 * pf_ahead), _MM_HINT_T2);
      }
      __m512i w;
      if constexpr (decltype(masked)::value) w = _mm512_maskz_loadu_epi8(gm.last_mask, wp);
      else w = _mm512_loadu_si512(wp);
      __m512i lo = w, hi = w;
      if constexpr (BITS == 4) {
        lo = _mm512_and_si512(w, nib);
        hi = _mm512_and_si512(_mm512_srli_epi16(w, 4), nib);
      }
      __m512i t = _mm512_dpbusd_epi32(z0, lo, _mm512_loadu_si512(xg));
      if constexpr (BITS == 4) t = _mm512_dpbusd_epi32(t, hi, _mm512_loadu_si512(xg + 64));
      if constexpr (P == 2) {
        t = _mm512_slli_epi32(t, 8);
        if (zfold) t = _mm512_add_epi32(t, _mm512_loadu_si512(zc + (gm.G + g) * 16));
        t = _mm512_dpbusd_epi32(t, lo, _mm512_loadu_si512(xg + pl));
        if constexpr (BITS == 4) t = _mm512_dpbusd_epi32(t, hi, _mm512_loadu_si512(xg + pl + 64));
      }
      const __m512 sc = _mm512_permutexvar_ps(gm.idx, _mm512_loadu_ps(c + i * cstride + b0));
      acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t), sc, acc[i]);
    }
  };
  const int64_t gfull = gm.last_mask == ~0ull ? gm.G : gm.G - 1;
  for (int64_t g = 0; g < gfull; ++g) group(g, std::false_type{});
  if (gfull < gm.G) group(gfull, std::true_type{});
#pragma GCC unroll 8
  for (int i = 0; i < NR; ++i) Y[n0 + i] = cpu::hsum(acc[i]) + (W.bias ? W.bias[n0 + i] : 0.f);
}

template <int NR, int BITS, int SD, int P>
void tile_m(const Geometry& gm, const QuantX& qx, int64_t m0, int64_t mr, const RowCtx* rows,
            int64_t n0, const LinearWeight& W, float* Y) {
  switch (mr) {
    case 1: tile<NR, 1, BITS, SD, P>(gm, qx, m0, rows, n0, W, Y); break;
    case 2: tile<NR, 2, BITS, SD, P>(gm, qx, m0, rows, n0, W, Y); break;
    case 3: tile<NR, 3, BITS, SD, P>(gm, qx, m0, rows, n0, W, Y); break;
    default: tile<NR, 4, BITS, SD, P>(gm, qx, m0, rows, n0, W, Y); break;
  }
}

// Pointers of weight rows n .. n+nr−1; with explicit zero points also their
// s·zp per block, written to sz (NR rows of kb + 16 floats).
template <int NR, int BITS>
void fill_rows(const Geometry& gm, const LinearWeight& W, int64_t n, int nr, int64_t ssize, float* sz,
               RowCtx* rows) {
  const auto* B = static_cast<const uint8_t*>(W.data);
  const int64_t kb = gm.kb, zrb = quant::zp_row_bytes(W);
  for (int i = 0; i < nr; ++i) {
    rows[i].w = B + (n + i) * gm.row_bytes;
    rows[i].s = static_cast<const uint8_t*>(W.scales) + (n + i) * kb * ssize;
    rows[i].sz = nullptr;
    if (W.zero_points) {  // explicit zero points: s·zp per block
      float* szi = sz + i * (kb + 16);
      const uint8_t* zr = W.zero_points + (n + i) * zrb;
      for (int64_t b = 0; b < kb; ++b) {
        int z = BITS == 8 ? zr[b] : (zr[b >> 1] >> ((b & 1) * 4)) & 0xf;
        szi[b] = quant::load_scale(W.scales, W.scale_dtype, (n + i) * kb + b) * (float)z;
      }
      for (int64_t b = kb; b < kb + 16; ++b) szi[b] = 0.f;
      rows[i].sz = szi;
    }
  }
}

bool use_row_stream() {
  switch (g_row_order.load(std::memory_order_relaxed)) {
    case DecodeRowOrder::Tiles: return false;
    case DecodeRowOrder::Stream: return true;
    default: return cpu::half_rate_512();
  }
}

// Decode rows [n0, n1). Default: tiles of 8 weight rows, eight interleaved
// row streams with software prefetch (18.7 → 26.5 GB/s over four streams,
// 1 core, 2 MiB pages). On a half-rate 512-bit core (Zen 4) int8 activations
// instead read one row after the other, so the chunk is a single forward
// stream that the hardware prefetcher follows without the prefetch
// instructions (cold 2B shapes, A/B in one run: 1.14–1.41× the 8-row tile on
// 1 core, 1.0–1.23× on 2). On Zen 5 that order is 0.65–0.70× the tiles (2B
// decode 24.5 vs 36.3 tok/s), and Int16 activations (twice the dot products
// per byte) keep the tiles on both.
template <int BITS, int SD, int P>
void rows_range_m1(const Geometry& gm, const QuantX& qx, const LinearWeight& W, int64_t n0, int64_t n1,
                   float* Y) {
  constexpr int NR = 8;
  const auto* B = static_cast<const uint8_t*>(W.data);
  const int64_t kb = gm.kb, ssize = SD == 0 ? 4 : 2;
  thread_local Buffer<float> szbuf, cbuf;  // grow-only scratch (no allocation per call)
  if (W.zero_points) grow(szbuf, NR * (kb + 16));
  grow(cbuf, NR * (kb + 16));
  const bool row_stream = P == 1 && use_row_stream();
  {  // the chunk's first two tiles: the 8-row tiles' in-loop prefetch starts past them; for
     // rows read one by one it starts the stream ahead of the hardware prefetcher
    const char* p = reinterpret_cast<const char*>(B + n0 * gm.row_bytes);
    const int64_t tile = NR * gm.row_bytes, end = (n1 - n0) * gm.row_bytes;
    for (int64_t o = 0; o < std::min(tile, end); o += 64) _mm_prefetch(p + o, _MM_HINT_T0);
    for (int64_t o = tile; o < std::min(2 * tile, end); o += 64) _mm_prefetch(p + o, _MM_HINT_T2);
  }
  for (int64_t n = n0; n < n1;) {
    const int nr = (int)std::min<int64_t>(NR, n1 - n);
    RowCtx rows[NR];
    fill_rows<NR, BITS>(gm, W, n, nr, ssize, szbuf.data(), rows);
    if (row_stream) {  // one row at a time: the chunk is read front to back
      for (int i = 0; i < nr; ++i) tile_m1<1, BITS, SD, P, false>(gm, qx, rows + i, n + i, W, Y, cbuf.data());
    } else if (nr == NR) {
      tile_m1<NR, BITS, SD, P>(gm, qx, rows, n, W, Y, cbuf.data());
    } else {
      for (int i = 0; i < nr; ++i) tile_m1<1, BITS, SD, P>(gm, qx, rows + i, n + i, W, Y, cbuf.data());
    }
    n += nr;
  }
}

// Rows [n0, n1) of Y for all M rows: M blocks of kMBlock rows (kept in L2),
// inside them panels of NR weight rows (kept in L1) against MR-row tiles.
template <int BITS, int SD, int P>
void rows_range(const Geometry& gm, const QuantX& qx, const LinearWeight& W, int64_t n0,
                int64_t n1, float* Y) {
  if (qx.M == 1) return rows_range_m1<BITS, SD, P>(gm, qx, W, n0, n1, Y);
  constexpr int NR = 4, MR = 4;
  constexpr int64_t kMBlock = 64;
  const int64_t kb = gm.kb, ssize = SD == 0 ? 4 : 2;
  thread_local Buffer<float> szbuf;
  if (W.zero_points) grow(szbuf, NR * (kb + 16));
  for (int64_t mb = 0; mb < qx.M; mb += kMBlock) {
    const int64_t me = std::min(qx.M, mb + kMBlock);
    for (int64_t n = n0; n < n1;) {
      const int nr = (int)std::min<int64_t>(NR, n1 - n);
      RowCtx rows[NR];
      fill_rows<NR, BITS>(gm, W, n, nr, ssize, szbuf.data(), rows);
      for (int64_t m = mb; m < me; m += MR) {
        const int64_t mr = std::min<int64_t>(MR, me - m);
        if (nr == NR) tile_m<NR, BITS, SD, P>(gm, qx, m, mr, rows, n, W, Y);
        else for (int i = 0; i < nr; ++i) tile_m<1, BITS, SD, P>(gm, qx, m, mr, rows + i, n + i, W, Y);
      }
      n += nr;
    }
  }
}

template <int BITS, int P>
void rows_range_sd(const Geometry& gm, const QuantX& qx, const LinearWeight& W, int64_t n0,
                   int64_t n1, float* Y) {
  switch (W.scale_dtype) {
    case DType::F16: rows_range<BITS, 1, P>(gm, qx, W, n0, n1, Y); break;
    case DType::BF16: rows_range<BITS, 2, P>(gm, qx, W, n0, n1, Y); break;
    default: rows_range<BITS, 0, P>(gm, qx, W, n0, n1, Y); break;
  }
}

// Rows of one weight from the shared activations (the dispatch of linear_qi8).
void rows_any(const Geometry& gm, const QuantX& qx, const LinearWeight& W, int64_t b, int64_t e, float* Y) {
  if (qx.planes == 2) {
    if (W.bits == 4) rows_range_sd<4, 2>(gm, qx, W, b, e, Y);
    else rows_range_sd<8, 2>(gm, qx, W, b, e, Y);
  } else {
    if (W.bits == 4) rows_range_sd<4, 1>(gm, qx, W, b, e, Y);
    else rows_range_sd<8, 1>(gm, qx, W, b, e, Y);
  }
}

// The calling thread's activation scratch (grow-only, no allocation per call).
// Callers bind it to a reference before the team starts: a lambda naming a
// thread_local directly would see each worker thread's own instance.
QuantX& caller_quant_x() {
  thread_local QuantX q;
  return q;
}

}  // namespace

bool linear_qi8_multi(const float* X, int64_t M, const LinearWeight* const* W, float* const* Y, int n,
                      int act_bits) {
  for (int i = 1; i < n; ++i)
    if (W[i]->K != W[0]->K || W[i]->bits != W[0]->bits || W[i]->block_size != W[0]->block_size) return false;
  const Geometry gm = make_geometry(*W[0]);
  QuantX& qx = caller_quant_x();
  quantize_x(X, M, W[0]->K, gm, act_bits == 16 ? 2 : 1, &qx);
  // Work items: row chunks of every weight, taken from one shared counter.
  struct Item {
    int w;
    int64_t b, e;
  };
  thread_local std::vector<Item> item_buf;
  std::vector<Item>& items = item_buf;
  items.clear();
  int64_t rows = 0;
  for (int i = 0; i < n; ++i) rows += W[i]->N;
  const int64_t chunk = cpu::chunk_size(rows, cpu::threads(), 16);
  for (int i = 0; i < n; ++i)
    for (int64_t b = 0; b < W[i]->N; b += chunk) items.push_back({i, b, std::min(W[i]->N, b + chunk)});
  cpu::StealQueue work((int64_t)items.size(), 1, cpu::threads(), 1);
  auto worker = [&](int me) {
    int64_t k, ke;
    while (work.pop(me, &k, &ke)) {
      const Item& it = items[k];
      rows_any(gm, qx, *W[it.w], it.b, it.e, Y[it.w]);
    }
  };
  cpu::run_team(worker);
  return true;
}

void linear_qi8(const float* X, int64_t M, const LinearWeight& W, float* Y, int act_bits) {
  if (M >= amx_min_rows(act_bits) && linear_q_amx(X, M, W, Y, act_bits)) return;  // AMX where available
  if (M >= kVnniGemmMinRows && linear_q_vnni_gemm(X, M, W, Y, act_bits)) return;  // panel GEMM (linear_qgemm.cpp)
  const Geometry gm = make_geometry(W);
  const int planes = act_bits == 16 ? 2 : 1;
  QuantX& qx = caller_quant_x();
  quantize_x(X, M, W.K, gm, planes, &qx);
  cpu::StealQueue work(W.N, cpu::chunk_size(W.N, cpu::threads(), 16), cpu::threads(), 16);
  auto worker = [&](int me) {
    int64_t b, e;
    while (work.pop(me, &b, &e)) rows_any(gm, qx, W, b, e, Y);
  };
  cpu::run_team(worker);
}

#else

bool linear_qi8_available() { return false; }
bool linear_qi8_multi(const float*, int64_t, const LinearWeight* const*, float* const*, int, int) { return false; }
void linear_qi8(const float*, int64_t, const LinearWeight&, float*, int) {
  QVL_ASSERT(!"linear_qi8 needs AVX-512 VNNI/VBMI");
}

#endif

}  // namespace qvl
