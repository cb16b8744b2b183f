// Split-bf16 quantized linear on AMX (see linear_qsplit.h).
// Per call: X → bf16 VNNI B tiles (hi, and lo for 3 terms), [m tile][plane][k step]
// so one 16-row tile's steps are contiguous. Threads take chunks of 32-row weight
// panels; a group of panels (≤ ~1 MB) is unpacked once into A tiles
// [k step][hi/lo][2 × 16 rows × 32 k] (K·128 bytes per panel, L2), then every pair
// of m tiles runs over the whole K against each panel of the group (2×2 C tiles
// stay in tile registers; the pair's activations are read from L2 after the
// first panel), and the C tiles are transposed into Y.
#include "kernels/linear_qsplit.h"

#include <cstring>
#include <vector>

#include "kernels/amx_tiles.h"
#include "kernels/base.h"
#include "kernels/cpu.h"
#include "kernels/dtype.h"
#include "kernels/linear_qamx.h"
#include "kernels/quant.h"
#include "kernels/vmath.h"

namespace qvl {

namespace {

// fp32 → hi + lo bf16 as the kernel rounds them (RNE; lo is the rounded residual).
inline void split_bf16(float v, uint16_t* hi, uint16_t* lo) {
  *hi = f32_to_bf16(v);
  *lo = f32_to_bf16(v - bf16_to_f32(*hi));
}

}  // namespace

void linear_q_split_ref(const float* X, int64_t M, const LinearWeight& W, float* Y, int terms) {
  QVL_CHECK(terms >= 1 && terms <= 3, "linear_q_split_ref: terms %d (need 1|2|3)", terms);
  std::vector<float> w(W.K), wh(W.K), wl(W.K);
  for (int64_t n = 0; n < W.N; ++n) {
    dequantize_row(W, n, w.data());
    for (int64_t k = 0; k < W.K; ++k) {
      uint16_t h, l;
      split_bf16(w[k], &h, &l);
      wh[k] = bf16_to_f32(h), wl[k] = bf16_to_f32(l);
    }
    for (int64_t m = 0; m < M; ++m) {
      const float* x = X + m * W.K;
      double acc = 0.0;
      for (int64_t k = 0; k < W.K; ++k) {
        uint16_t h, l;
        split_bf16(x[k], &h, &l);
        const double a = bf16_to_f32(h), al = bf16_to_f32(l);
        acc += a * wh[k];
        if (terms >= 2) acc += a * wl[k];
        if (terms == 3) acc += al * wh[k];
      }
      Y[m * W.N + n] = (float)acc + (W.bias ? W.bias[n] : 0.f);
    }
  }
}

#if defined(__AMX_TILE__) && defined(__AMX_BF16__) && defined(__AVX512BF16__)

namespace {

constexpr int64_t kPanel = 32;  // weight rows per panel (two A tiles)
constexpr int64_t kGroupBytes = 1 << 20;  // unpacked panel chunks per group (L2)
constexpr int64_t kChunkSteps = 64;        // k steps per chunk (2048 values): larger K is split
constexpr int64_t kTile = 512;  // bf16 elements per tile (16 rows × 64 bytes)

// bf16 (in the low 16 bits of each dword of h) back to fp32.
inline __m512 widen(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }

// 32 fp32 (a = values 0-15, b = 16-31) → hi (and the residual lo) as 32 bf16.
inline __m512i split_hi(__m512 a, __m512 b) { return (__m512i)_mm512_cvtne2ps_pbh(b, a); }
inline __m512i split_lo(__m512 a, __m512 b, __m512i hi) {
  const __m512 ra = _mm512_sub_ps(a, widen(_mm512_castsi512_si256(hi)));
  const __m512 rb = _mm512_sub_ps(b, widen(_mm512_extracti64x4_epi64(hi, 1)));
  return (__m512i)_mm512_cvtne2ps_pbh(rb, ra);
}

// Activations: tile (t, plane p, step s) at xb + ((t·P + p)·S + s)·kTile; tile row
// kk holds, for rows m = 16t..16t+15, the bf16 pair k = 32s + 2kk, +1 (rows ≥ M and
// k ≥ K are 0). mt is even (the m loop takes pairs of tiles).
struct SplitX {
  Buffer<uint16_t> xb;
  int64_t mt = 0, S = 0;
  int P = 1;
};

void convert_x(const float* X, int64_t M, int64_t K, int planes, SplitX* q) {
  q->S = (K + 31) / 32;
  q->mt = (M + 31) / 32 * 2;
  q->P = planes;
  const int64_t S = q->S;
  grow(q->xb, q->mt * planes * S * kTile);
#pragma omp parallel for schedule(static) if (M * K >= (1 << 15))
  for (int64_t ts = 0; ts < q->mt * S; ++ts) {
    const int64_t t = ts / S, s = ts % S, k0 = s * 32;
    const int64_t rows = std::max<int64_t>(0, std::min<int64_t>(16, M - t * 16));
    const int64_t nk = std::min<int64_t>(32, K - k0);
    const __mmask16 m0 = nk >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << nk) - 1);
    const __mmask16 m1 = nk >= 32 ? (__mmask16)0xffff : nk <= 16 ? (__mmask16)0 : (__mmask16)((1u << (nk - 16)) - 1);
    __m512 hi[16], lo[16];
    for (int r = 0; r < 16; ++r) {
      __m512 a = _mm512_setzero_ps(), b = _mm512_setzero_ps();
      if (r < rows) {
        const float* x = X + (t * 16 + r) * K + k0;
        a = _mm512_maskz_loadu_ps(m0, x);
        b = _mm512_maskz_loadu_ps(m1, x + 16);
      }
      const __m512i h = split_hi(a, b);
      hi[r] = _mm512_castsi512_ps(h);
      if (planes == 2) lo[r] = _mm512_castsi512_ps(split_lo(a, b, h));
    }
    vmath::transpose16(hi);  // row r of pairs → tile row kk of 16 rows
    uint16_t* d = q->xb.data() + ((t * planes) * S + s) * kTile;
    for (int kk = 0; kk < 16; ++kk) _mm512_store_ps(d + kk * 32, hi[kk]);
    if (planes == 2) {
      vmath::transpose16(lo);
      d += S * kTile;
      for (int kk = 0; kk < 16; ++kk) _mm512_store_ps(d + kk * 32, lo[kk]);
    }
  }
}

// Unpacked weight panel: wp[s][h][i] = A tile (h = 0 hi, 1 lo; i = rows 16i..16i+15
// of the panel), row r = 32 bf16 of weight row n0 + 16i + r at k = 32s.. (rows ≥ N
// and k ≥ K are 0). Scratch for one row: its scales and zero points.
struct Panels {
  Buffer<uint16_t> wp;
  Buffer<float> srow, zrow, acc;
};

// 32 dequantized values of a row from k (k + 32 ≤ K): value j of the row is at
// byte j/2 (4-bit, low nibble first) or j (8-bit) whatever the block size.
inline void dequant32(const LinearWeight& W, const uint8_t* row, const float* srow, const float* zrow, int64_t k,
                      __m512* a, __m512* b) {
  __m512i va, vb;
  if (W.bits == 4) {
    const __m256i w = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i*)(row + k / 2)));
    const __m256i v = _mm256_or_si256(_mm256_and_si256(w, _mm256_set1_epi16(0x000f)),
                                      _mm256_and_si256(_mm256_slli_epi16(w, 4), _mm256_set1_epi16(0x0f00)));
    va = _mm512_cvtepu8_epi32(_mm256_castsi256_si128(v));
    vb = _mm512_cvtepu8_epi32(_mm256_extracti128_si256(v, 1));
  } else {
    va = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(row + k)));
    vb = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(row + k + 16)));
  }
  const int bs = W.block_size;
  const int64_t ba = k / bs, bb = (k + 16) / bs;
  *a = _mm512_mul_ps(_mm512_sub_ps(_mm512_cvtepi32_ps(va), _mm512_set1_ps(zrow[ba])), _mm512_set1_ps(srow[ba]));
  *b = _mm512_mul_ps(_mm512_sub_ps(_mm512_cvtepi32_ps(vb), _mm512_set1_ps(zrow[bb])), _mm512_set1_ps(srow[bb]));
}

// One k step (32 values from k = 32s) of a row as hi / lo bf16 (Q4 with blocks ≥ 32
// through a table of the 16 possible values; otherwise dequantized in fp32).
inline void unpack_step(const LinearWeight& W, const uint8_t* row, const float* srow, const float* zrow, int64_t s,
                        uint16_t* hi, uint16_t* lo) {
  const int64_t K = W.K, k = s * 32;
  if (W.bits == 4 && W.block_size >= 32 && k + 32 <= K) {
    const int64_t b = k / W.block_size;
    const __m512 iota = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    // tab words 0-15: hi of (v − zp)·s for v = 0..15, words 16-31: lo.
    const __m512 v = _mm512_mul_ps(_mm512_sub_ps(iota, _mm512_set1_ps(zrow[b])), _mm512_set1_ps(srow[b]));
    const __m256i h = (__m256i)_mm512_cvtneps_pbh(v);
    const __m256i l = (__m256i)_mm512_cvtneps_pbh(_mm512_sub_ps(v, widen(h)));
    const __m512i tab = _mm512_inserti64x4(_mm512_castsi256_si512(h), l, 1);
    const __m256i w = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i*)(row + s * 16)));
    const __m256i q = _mm256_or_si256(_mm256_and_si256(w, _mm256_set1_epi16(0x000f)),
                                      _mm256_and_si256(_mm256_slli_epi16(w, 4), _mm256_set1_epi16(0x0f00)));
    const __m512i idx = _mm512_cvtepu8_epi16(q);
    _mm512_store_si512(hi, _mm512_permutexvar_epi16(idx, tab));
    if (lo) _mm512_store_si512(lo, _mm512_permutexvar_epi16(_mm512_add_epi16(idx, _mm512_set1_epi16(16)), tab));
    return;
  }
  __m512 a, b;
  if (k + 32 <= K) {
    dequant32(W, row, srow, zrow, k, &a, &b);
  } else {  // last step: the values k < K, zeros after
    alignas(64) float t[32];
    for (int j = 0; j < 32; ++j) {
      const int64_t kk = k + j, bl = kk / W.block_size;
      const int q = kk >= K ? 0 : W.bits == 8 ? row[kk] : (row[kk >> 1] >> ((kk & 1) * 4)) & 0xf;
      t[j] = kk >= K ? 0.f : ((float)q - zrow[bl]) * srow[bl];
    }
    a = _mm512_load_ps(t);
    b = _mm512_load_ps(t + 16);
  }
  const __m512i h = split_hi(a, b);
  _mm512_store_si512(hi, h);
  if (lo) _mm512_store_si512(lo, split_lo(a, b, h));
}

// Steps [s0, s1) of panel n0 into wp (step s at wp + (s − s0)·4·kTile). Rows are
// walked 8 steps at a time so the lines being written (4 KB apart within a row)
// spread over all L1 sets instead of thrashing one.
void unpack_panel(const LinearWeight& W, int64_t s0, int64_t s1, int64_t n0, uint16_t* wp, bool with_lo, Panels* p) {
  const int64_t kb = W.k_blocks(), row_bytes = kb * quant::blob_bytes(W), zrb = quant::zp_row_bytes(W);
  const int64_t rows = std::min<int64_t>(kPanel, W.N - n0), ks = kb + 16;
  grow(p->srow, kPanel * ks);
  grow(p->zrow, kPanel * ks);
  for (int64_t rr = 0; rr < rows; ++rr) {
    const int64_t n = n0 + rr;
    const uint8_t* zr = W.zero_points ? W.zero_points + n * zrb : nullptr;
    quant::row_scales(W, n, kb, p->srow.data() + rr * ks);
    float* z = p->zrow.data() + rr * ks;
    for (int64_t b = 0; b < kb; ++b)
      z[b] = (float)(!zr ? 1 << (W.bits - 1) : W.bits == 8 ? zr[b] : (zr[b >> 1] >> ((b & 1) * 4)) & 0xf);
  }
  for (int64_t sb = s0; sb < s1; sb += 8) {
    const int64_t se = std::min(s1, sb + 8);
    for (int64_t rr = 0; rr < kPanel; ++rr) {
      uint16_t* d = wp + (rr / 16) * kTile + (rr % 16) * 32;
      if (rr >= rows) {
        for (int64_t s = sb; s < se; ++s) {
          _mm512_store_si512(d + (s - s0) * 4 * kTile, _mm512_setzero_si512());
          _mm512_store_si512(d + (s - s0) * 4 * kTile + 2 * kTile, _mm512_setzero_si512());
        }
        continue;
      }
      const uint8_t* row = static_cast<const uint8_t*>(W.data) + (n0 + rr) * row_bytes;
      const float *sr = p->srow.data() + rr * ks, *zr = p->zrow.data() + rr * ks;
      for (int64_t s = sb; s < se; ++s)
        unpack_step(W, row, sr, zr, s, d + (s - s0) * 4 * kTile, with_lo ? d + (s - s0) * 4 * kTile + 2 * kTile : nullptr);
    }
  }
}

// Tile numbers must be literals: one k step for the C pair (m tiles x0, x1 of
// plane hi; plane lo at + lo_off when T = 3) against A tiles at a (hi) / a + 2·kTile (lo).
template <int T>
inline void kstep(const uint16_t* a, const uint16_t* x0, const uint16_t* x1, int64_t lo_off) {
  if constexpr (T == 1) {  // x_hi · w_hi only
    _tile_loadd(4, a, 64);
    _tile_loadd(5, a + kTile, 64);
    _tile_loadd(6, x0, 64);
    _tile_loadd(7, x1, 64);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
    return;
  }
  _tile_loadd(4, a + 2 * kTile, 64);  // w_lo
  _tile_loadd(5, a + 3 * kTile, 64);
  _tile_loadd(6, x0, 64);  // x_hi
  _tile_loadd(7, x1, 64);
  _tile_dpbf16ps(0, 4, 6);
  _tile_dpbf16ps(1, 4, 7);
  _tile_dpbf16ps(2, 5, 6);
  _tile_dpbf16ps(3, 5, 7);
  _tile_loadd(4, a, 64);  // w_hi
  _tile_loadd(5, a + kTile, 64);
  _tile_dpbf16ps(0, 4, 6);
  _tile_dpbf16ps(1, 4, 7);
  _tile_dpbf16ps(2, 5, 6);
  _tile_dpbf16ps(3, 5, 7);
  if constexpr (T == 3) {
    _tile_loadd(6, x0 + lo_off, 64);  // x_lo
    _tile_loadd(7, x1 + lo_off, 64);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
}

// C tiles c[i][j] = [weight row 16i + r][m = 16j + lane] → Y rows (+bias), 16×16 transposes.
void write_out(const float (*c)[2][256], const LinearWeight& W, int64_t M, int64_t m0, int64_t n0, float* Y) {
  for (int i = 0; i < 2; ++i) {
    const int64_t nc = std::min<int64_t>(16, W.N - (n0 + i * 16));
    if (nc <= 0) break;
    const __mmask16 nm = nc >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << nc) - 1);
    const __m512 bias = W.bias ? _mm512_maskz_loadu_ps(nm, W.bias + n0 + i * 16) : _mm512_setzero_ps();
    for (int j = 0; j < 2; ++j) {
      const int64_t mj = m0 + j * 16;
      if (mj >= M) break;
      __m512 v[16];
      for (int r = 0; r < 16; ++r) v[r] = _mm512_load_ps(c[i][j] + r * 16);
      vmath::transpose16(v);
      for (int r = 0; r < 16 && mj + r < M; ++r) _mm512_mask_storeu_ps(Y + (mj + r) * W.N + n0 + i * 16, nm, _mm512_add_ps(v[r], bias));
    }
  }
}

// Steps [s0, s1) of panels n0, n0 + 32, … (np of them, unpacked in wp) against every
// pair of m tiles; C tiles start at 0 (s0 = 0) or from acc, and go to acc, or to Y
// when s1 = S. acc: [pair][panel][2][2][256] fp32.
template <int T>
void run_group(const SplitX& q, const LinearWeight& W, int64_t M, int64_t n0, int np, int64_t s0, int64_t s1,
               const uint16_t* wp, float* acc, float* Y) {
  const int64_t S = q.S, tstride = q.P * S * kTile, lo_off = S * kTile, pstride = (s1 - s0) * 4 * kTile;
  alignas(64) float c[2][2][256];
  asm volatile("" : : : "memory");  // tileloadd has no memory clobber: panel / xb / acc writes first
  for (int64_t pr = 0; pr < q.mt / 2; ++pr) {
    const uint16_t* x0 = q.xb.data() + 2 * pr * tstride;
    for (int g = 0; g < np; ++g) {
      const uint16_t* a = wp + g * pstride - s0 * 4 * kTile;
      float* cg = acc + (pr * np + g) * 1024;
      if (s0 == 0) {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
      } else {
        _tile_loadd(0, cg, 64);
        _tile_loadd(1, cg + 256, 64);
        _tile_loadd(2, cg + 512, 64);
        _tile_loadd(3, cg + 768, 64);
      }
      for (int64_t s = s0; s < s1; ++s) kstep<T>(a + s * 4 * kTile, x0 + s * kTile, x0 + tstride + s * kTile, lo_off);
      if (s1 < S) {
        _tile_stored(0, cg, 64);
        _tile_stored(1, cg + 256, 64);
        _tile_stored(2, cg + 512, 64);
        _tile_stored(3, cg + 768, 64);
        continue;
      }
      _tile_stored(0, c[0][0], 64);
      _tile_stored(1, c[0][1], 64);
      _tile_stored(2, c[1][0], 64);
      _tile_stored(3, c[1][1], 64);
      asm volatile("" : : : "memory");
      write_out(c, W, M, pr * 32, n0 + g * kPanel, Y);
    }
  }
}

bool amx_bf16_ok() {
  static const bool ok = [] {
    __builtin_cpu_init();
    return amx_available() && __builtin_cpu_supports("amx-bf16") && __builtin_cpu_supports("avx512bf16");
  }();
  return ok;
}

}  // namespace

bool linear_q_split(const float* X, int64_t M, const LinearWeight& W, float* Y, int terms) {
  if (!amx_enabled() || !amx_bf16_ok()) return false;
  const int bs = W.block_size;
  if ((W.kind != WeightKind::Q4 && W.kind != WeightKind::Q8) || (W.bits != 4 && W.bits != 8) || bs < 16 ||
      (bs & (bs - 1)) != 0 || (terms < 1 || terms > 3) || W.K <= 0)
    return false;
  if (M <= 0 || W.N <= 0) return true;
  thread_local SplitX xbuf;  // the caller's; workers read it through qp
  SplitX* qp = &xbuf;
  convert_x(X, M, W.K, terms == 3 ? 2 : 1, qp);
  // K in chunks of ≤ kChunkSteps steps; panels in groups whose unpacked chunks fill ~kGroupBytes.
  const int64_t S = qp->S, nchunks = (S + kChunkSteps - 1) / kChunkSteps, cs = (S + nchunks - 1) / nchunks;
  const int64_t group = std::max<int64_t>(1, std::min<int64_t>(8, kGroupBytes / (cs * 4 * kTile * 2)));
  cpu::ChunkQueue work(W.N, cpu::chunk_size(W.N, cpu::threads(), kPanel * group, 4));
#pragma omp parallel
  {
    const SplitX& q = *qp;
    thread_local Panels p;
    grow(p.wp, group * cs * 4 * kTile);
    if (nchunks > 1) grow(p.acc, (q.mt / 2) * group * 1024);
    int64_t nb, ne;
    bool configured = false;
    while (work.pop(&nb, &ne)) {
      if (!configured) amx::configure_16x64(), configured = true;
      for (int64_t n0 = nb; n0 < ne; n0 += group * kPanel) {
        const int np = (int)std::min<int64_t>(group, (ne - n0 + kPanel - 1) / kPanel);
        for (int64_t s0 = 0; s0 < S; s0 += cs) {
          const int64_t s1 = std::min(S, s0 + cs);
          for (int g = 0; g < np; ++g) unpack_panel(W, s0, s1, n0 + g * kPanel, p.wp.data() + g * (s1 - s0) * 4 * kTile, terms >= 2, &p);
          if (terms == 3)
            run_group<3>(q, W, M, n0, np, s0, s1, p.wp.data(), p.acc.data(), Y);
          else if (terms == 1)
            run_group<1>(q, W, M, n0, np, s0, s1, p.wp.data(), p.acc.data(), Y);
          else
            run_group<2>(q, W, M, n0, np, s0, s1, p.wp.data(), p.acc.data(), Y);
        }
      }
    }
    if (configured) _tile_release();
  }
  return true;
}

#else

bool linear_q_split(const float*, int64_t, const LinearWeight&, float*, int) { return false; }

#endif

}  // namespace qvl
