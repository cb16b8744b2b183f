// Quantized linear on AMX (tdpbssd / tdpbusd), Q4/Q8 MatMulNBits weights ×
// Int8 / Int16 activations. Math per output (n, m), weight block b:
//   y[m,n] = Σ_b s_b(n)·dx_b(m)·C_b(n,m) + bias[n],  C_b = Σ_{k∈b} (q_k − zp_b)·xi_k
// with the activation scheme of linear.h (dx_b = max|x_b|/127 or /32639,
// xi = round(x/dx); Int16 stores xi = 256·h + l as two int8 planes and
// C = 256·C_h + C_l). The integer sums are exact, so results equal the VNNI
// path (linear_qi8.cpp) up to fp32 rounding of the epilogue.
// Tile roles (C = A·B, one 16×16 int32 tile = 16 weight rows n × 16 rows m):
//   A = weights, 16 rows × kt bytes (kt = min(block, 64)), unpacked once per
//       32-row weight panel into int8 q − zp (4-bit, or 8-bit with the default
//       zero point: tdpbssd). 8-bit with explicit zero points keeps u8 q
//       (tdpbusd) and subtracts Σ_b s_b·zp_b·dx_b·Σxi_b in the epilogue.
//   B = activations in VNNI layout, kt/4 rows × 64 bytes: row c holds, for 16
//       activation rows, the bytes k = 4c..4c+3 (quantized once per call).
// Per block the int32 tiles are stored and folded into fp32 accumulators
// (cvt, ×s_b(n)·dx_b(m), add) with AVX-512, software-pipelined so the
// epilogue of block b−1 runs while the tiles of block b compute (issuing it
// between the tdp's and the tile stores is worth ~25 %); blocks > 64 chain
// tdp's first. Threads take chunks of 32-row panels from a shared counter;
// M is walked in blocks of quantized activations (≤ kActBudget) and K in
// chunks (kChunk) so a panel chunk stays in L1 across the m steps.
#include "kernels/linear_qamx.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "kernels/amx_tiles.h"
#include "kernels/base.h"
#include "kernels/cpu.h"
#include "kernels/quant.h"

namespace qvl {

namespace {
std::atomic<bool> g_amx_on{true};
}

void set_amx_enabled(bool on) { g_amx_on.store(on, std::memory_order_relaxed); }
bool amx_enabled() { return g_amx_on.load(std::memory_order_relaxed); }

#if defined(__AMX_TILE__) && defined(__AMX_INT8__) && defined(__AVX512F__) && defined(__AVX512BW__)

bool amx_available() {
  static const bool ok = [] {
    constexpr long kGetPerm = 0x1022, kReqPerm = 0x1023, kXtileData = 18;
    if (syscall(SYS_arch_prctl, kReqPerm, kXtileData) != 0) return false;
    unsigned long mask = 0;
    if (syscall(SYS_arch_prctl, kGetPerm, &mask) != 0) return false;
    return ((mask >> kXtileData) & 1) != 0;
  }();
  return ok;
}

namespace {

constexpr int64_t kPanel = 32;             // weight rows per panel (two A tiles)
constexpr int64_t kActBudget = 4096 << 10;  // bytes of quantized activations per M block
constexpr int64_t kChunk = 1024;             // K values per chunk of a weight panel (8 KB, L1)

// Tiles 0-3: int32 C (16×16); 4-5: A weights (16 × kt bytes); 6-7: B activations.
void configure_tiles(int kt) {
  amx::TileConfig c;
  for (int t = 0; t < 4; ++t) c.rows[t] = 16, c.colsb[t] = 64;
  for (int t = 4; t < 6; ++t) c.rows[t] = 16, c.colsb[t] = (uint16_t)kt;
  for (int t = 6; t < 8; ++t) c.rows[t] = (uint8_t)(kt / 4), c.colsb[t] = 64;
  amx::load_config(c);
}

struct Geo {
  int bs, bits, kt, bps, planes;  // block, bits, K per tdp, tdp per block, activation planes
  int64_t kb, kp, steps, row_bytes;  // blocks, padded K, kp / kt, bytes of one weight row
  bool sw;  // weights as int8 q − zp (tdpbssd); false: u8 q + zero-point correction
};

Geo make_geo(const LinearWeight& W, int act_bits) {
  Geo g;
  g.bs = W.block_size;
  g.bits = W.bits;
  g.kt = std::min(g.bs, 64);
  g.bps = g.bs / g.kt;
  g.planes = act_bits == 16 ? 2 : 1;
  g.kb = W.k_blocks();
  g.kp = g.kb * g.bs;
  g.steps = g.kp / g.kt;
  g.row_bytes = g.kb * quant::blob_bytes(W);
  g.sw = !(W.bits == 8 && W.zero_points);
  return g;
}

// Quantized activations, per 16-row tile mt:
//   xq [mt][plane][kp/4][16][4] int8 (VNNI B layout; rows ≥ M and k ≥ K zero),
//   dx [mt][kb][16] and e = dx·Σxi [mt][kb][16] (0 for rows ≥ M).
struct AmxX {
  int64_t mt = 0;
  Buffer<int8_t> xq;
  Buffer<float> dx, e;
};

// 16 rows × 16 bytes (x[r] = bytes k0..k0+15 of row r) → VNNI order: 4 rows of
// 64 bytes, row c = dword c of x[0], …, x[15], stored at out + c·64.
inline void store_vnni16(const __m128i* x, int8_t* out) {
  const __m512i perm = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
  __m512i b[4];
  for (int q = 0; q < 4; ++q) {  // rows 4q..4q+3 → lanes grouped by dword: [d0 of 4 rows | d1 | d2 | d3]
    __m512i a = _mm512_castsi128_si512(x[4 * q]);
    a = _mm512_inserti32x4(a, x[4 * q + 1], 1);
    a = _mm512_inserti32x4(a, x[4 * q + 2], 2);
    a = _mm512_inserti32x4(a, x[4 * q + 3], 3);
    b[q] = _mm512_permutexvar_epi32(perm, a);
  }
  const __m512i lo01 = _mm512_shuffle_i32x4(b[0], b[1], 0x44), hi01 = _mm512_shuffle_i32x4(b[0], b[1], 0xee);
  const __m512i lo23 = _mm512_shuffle_i32x4(b[2], b[3], 0x44), hi23 = _mm512_shuffle_i32x4(b[2], b[3], 0xee);
  _mm512_store_si512(out, _mm512_shuffle_i32x4(lo01, lo23, 0x88));
  _mm512_store_si512(out + 64, _mm512_shuffle_i32x4(lo01, lo23, 0xdd));
  _mm512_store_si512(out + 128, _mm512_shuffle_i32x4(hi01, hi23, 0x88));
  _mm512_store_si512(out + 192, _mm512_shuffle_i32x4(hi01, hi23, 0xdd));
}

// Same per-block scheme (and the same float operations) as linear_qi8's
// quantize_x. Per 16-row tile: pass 1 finds dx per (row, block), pass 2
// quantizes 16 rows × 16 values at a time and writes them in VNNI order
// (every byte of the tile is written: rows ≥ M and k ≥ K as 0).
void quantize_x(const float* X, int64_t M, int64_t K, const Geo& g, AmxX* q) {
  const int planes = g.planes, bs = g.bs;
  const int64_t kb = g.kb, tb = g.kp * 16;  // tb: bytes of one plane of one tile
  q->mt = (M + 15) / 16;
  grow(q->xq, q->mt * planes * tb);
  grow(q->dx, q->mt * kb * 16);
  grow(q->e, q->mt * kb * 16);
  const float qmax = planes == 2 ? 32639.f : 127.f;
#pragma omp parallel for schedule(static) if (M * K >= (1 << 16))
  for (int64_t t = 0; t < q->mt; ++t) {
    int8_t* xt = q->xq.data() + t * planes * tb;
    float* dxt = q->dx.data() + t * kb * 16;
    float* et = q->e.data() + t * kb * 16;  // holds 1/dx until pass 2 ends
    const int rows = (int)std::min<int64_t>(16, M - t * 16);
    for (int r = 0; r < 16; ++r) {
      const float* x = X + (t * 16 + r) * K;
      for (int64_t b = 0; b < kb; ++b) {
        float mx = 0.f;
        if (r < rows) {
          const int64_t k0 = b * bs, n = std::max<int64_t>(0, std::min<int64_t>(bs, K - k0));
          __m512 amax = _mm512_setzero_ps();
          for (int64_t j = 0; j < n; j += 16) {
            __mmask16 mk = n - j >= 16 ? 0xffff : (__mmask16)((1u << (n - j)) - 1);
            amax = _mm512_max_ps(amax, _mm512_abs_ps(_mm512_maskz_loadu_ps(mk, x + k0 + j)));
          }
          mx = _mm512_reduce_max_ps(amax);
        }
        dxt[b * 16 + r] = mx / qmax;
        et[b * 16 + r] = mx > 0 ? qmax / mx : 0.f;
      }
    }
    for (int64_t b = 0; b < kb; ++b) {
      const int64_t k0 = b * bs;
      __m512i isum[16];
      for (int r = 0; r < 16; ++r) isum[r] = _mm512_setzero_si512();
      for (int64_t j = 0; j < bs; j += 16) {
        const int64_t n = std::max<int64_t>(0, std::min<int64_t>(16, K - k0 - j));
        const __mmask16 mk = n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1);
        __m128i hi[16], lo[16];
        for (int r = 0; r < 16; ++r) {
          __m512i v = _mm512_setzero_si512();
          if (r < rows)
            v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(mk, X + (t * 16 + r) * K + k0 + j),
                                                 _mm512_set1_ps(et[b * 16 + r])));
          isum[r] = _mm512_add_epi32(isum[r], v);
          if (planes == 2) {  // v = 256·h + l, h = (v + 128) >> 8, l ∈ [−128, 127]
            __m512i h = _mm512_srai_epi32(_mm512_add_epi32(v, _mm512_set1_epi32(128)), 8);
            lo[r] = _mm512_cvtepi32_epi8(_mm512_sub_epi32(v, _mm512_slli_epi32(h, 8)));
            v = h;
          }
          hi[r] = _mm512_cvtepi32_epi8(v);
        }
        int8_t* dst = xt + (k0 + j) / 4 * 64;
        store_vnni16(hi, dst);
        if (planes == 2) store_vnni16(lo, dst + tb);
      }
      for (int r = 0; r < 16; ++r) et[b * 16 + r] = dxt[b * 16 + r] * (float)_mm512_reduce_add_epi32(isum[r]);
    }
  }
}

// One 32-row weight panel, unpacked: w [steps][2][16][kt] int8 (rows ≥ N zero),
// s [kb][32] fp32 scales, sz [kb][32] = s·zp (u8 mode only); scratch: srow
// (one row's scales), zrow ([32][kb+4] zero points), acc (run_range).
struct Panel {
  Buffer<int8_t> w;
  Buffer<float> s, sz, srow, acc;
  Buffer<uint8_t> zrow;
};

// Per-byte zero points of the 64 values starting at k (blocks of bs ≥ 16).
inline __m512i zp_vector(const uint8_t* zrow, int64_t k, int bs) {
  if (bs >= 64) return _mm512_set1_epi8((char)zrow[k / bs]);
  __m512i z = _mm512_setzero_si512();
  for (int c = 0; c < 64; c += bs) {
    const __mmask64 mk = (bs == 32 ? 0xffffffffull : 0xffffull) << c;
    z = _mm512_mask_mov_epi8(z, mk, _mm512_set1_epi8((char)zrow[(k + c) / bs]));
  }
  return z;
}

void unpack_panel(const LinearWeight& W, const Geo& g, int64_t n0, Panel* p) {
  const int kt = g.kt, bs = g.bs;
  const int64_t kb = g.kb, kp = g.kp, sstride = kPanel * kt;  // bytes between steps
  grow(p->w, g.steps * sstride);
  grow(p->s, kb * kPanel);
  grow(p->sz, kb * kPanel);
  grow(p->srow, kb + 16);
  grow(p->zrow, kPanel * (kb + 4));
  const int64_t zrb = quant::zp_row_bytes(W), rows = std::min(kPanel, W.N - n0);
  // Scales and zero points, [kb][32] (rows ≥ N: 0).
  for (int64_t rr = 0; rr < kPanel; ++rr) {
    const int64_t n = n0 + rr;
    uint8_t* z = p->zrow.data() + rr * (kb + 4);
    if (rr >= rows) {
      for (int64_t b = 0; b < kb; ++b) p->s[b * kPanel + rr] = p->sz[b * kPanel + rr] = 0.f;
      continue;
    }
    quant::row_scales(W, n, kb, p->srow.data());
    const uint8_t* zr = W.zero_points ? W.zero_points + n * zrb : nullptr;
    for (int64_t b = 0; b < kb; ++b) {
      z[b] = !zr ? 1 << (g.bits - 1) : g.bits == 8 ? zr[b] : (zr[b >> 1] >> ((b & 1) * 4)) & 0xf;
      p->s[b * kPanel + rr] = p->srow[b];
      p->sz[b * kPanel + rr] = p->srow[b] * (float)z[b];
    }
  }
  // Weights, 64 values of every row at a time so the panel is written in order.
  const auto* B = static_cast<const uint8_t*>(W.data);
  const __m512i lo4 = _mm512_set1_epi16(0x000f), hi4 = _mm512_set1_epi16(0x0f00);
  const __m512i zdef = _mm512_set1_epi8((char)(1 << (g.bits - 1)));
  for (int64_t k = 0; k < kp; k += 64) {
    const int64_t nv = std::min<int64_t>(64, kp - k);  // multiple of kt
    int8_t* d0 = p->w.data() + (k / kt) * sstride;
    for (int64_t rr = 0; rr < kPanel; ++rr) {
      __m512i v = _mm512_setzero_si512();
      if (rr < rows) {
        const uint8_t* src = B + (n0 + rr) * g.row_bytes;
        if (g.bits == 4) {  // byte j → (low nibble, high nibble) = values 2j, 2j+1
          const __mmask32 in = nv == 64 ? ~0u : (1u << (nv / 2)) - 1;
          const __m512i w = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(in, src + k / 2));
          v = _mm512_or_si512(_mm512_and_si512(w, lo4), _mm512_and_si512(_mm512_slli_epi16(w, 4), hi4));
        } else {
          v = _mm512_maskz_loadu_epi8(nv == 64 ? ~0ull : (1ull << nv) - 1, src + k);
        }
        if (g.sw) v = _mm512_sub_epi8(v, W.zero_points ? zp_vector(p->zrow.data() + rr * (kb + 4), k, bs) : zdef);
      }
      int8_t* d = d0 + rr * kt;
      if (kt == 64) {
        _mm512_storeu_si512(d, v);
      } else if (kt == 32) {
        _mm256_storeu_si256((__m256i*)d, _mm512_castsi512_si256(v));
        if (nv > 32) _mm256_storeu_si256((__m256i*)(d + sstride), _mm512_extracti64x4_epi64(v, 1));
      } else {
        _mm_storeu_si128((__m128i*)d, _mm512_castsi512_si128(v));
        if (nv > 16) _mm_storeu_si128((__m128i*)(d + sstride), _mm512_extracti32x4_epi32(v, 1));
        if (nv > 32) _mm_storeu_si128((__m128i*)(d + 2 * sstride), _mm512_extracti32x4_epi32(v, 2));
        if (nv > 48) _mm_storeu_si128((__m128i*)(d + 3 * sstride), _mm512_extracti32x4_epi32(v, 3));
      }
    }
  }
}

// tdp on tile numbers (literals): signed weights → tdpbssd, u8 weights → tdpbusd.
#define QVL_TDP(c, a, b)          \
  do {                            \
    if constexpr (SW)             \
      _tile_dpbssd(c, a, b);      \
    else                          \
      _tile_dpbusd(c, a, b);      \
  } while (0)

// Blocks [b0, b1) of m tiles [mt0, mt0+JT) × the 32 columns of panel n0,
// accumulated into acc (zeroed at b0 = 0); the last chunk (b1 = kb) writes Y.
// P = 1: JT (1 or 2) m tiles, C tile 2i+j = weight tile i × m tile j.
// P = 2 (Int16, JT = 1): C tile 2i+p = weight tile i × plane p (h, l).
template <bool SW, int JT, int P>
void panel_tiles(const Geo& g, const Panel& p, const AmxX& q, int64_t mt0, int64_t n0, int64_t b0,
                 int64_t b1, float (*acc)[JT][16][16], const LinearWeight& W, int64_t M, float* Y) {
  static_assert(JT * P <= 2, "two B tiles");
  constexpr int NJ = JT * P;
  // acc: [weight tile][m tile][n row][m lane]
  alignas(64) int32_t cb[2][2][2][16][16];  // stored C tiles [block parity][weight tile][B tile]
  if (b0 == 0) std::memset(acc, 0, sizeof(float) * 2 * JT * 256);
  const bool last = b1 == g.kb;
  // Y lines written at the end (rows N apart, mostly not cached): fetched for
  // ownership a few per block while the tiles compute.
  const float* ylines[JT * 16 * 2];
  int nlines = 0;
  for (int j = 0; j < JT && last; ++j)
    for (int c = 0; c < 16 && (mt0 + j) * 16 + c < M; ++c)
      for (int64_t n = n0; n < std::min(W.N, n0 + kPanel); n += 16) ylines[nlines++] = Y + ((mt0 + j) * 16 + c) * W.N + n;
  const int per_block = b1 > b0 ? (int)((nlines + (b1 - b0) - 1) / (b1 - b0)) : 0;
  int next_line = 0;
  asm volatile("" ::: "memory");  // tileloadd has no memory clobber: panel / xq writes first
  const int kt = g.kt;
  const int64_t tb = g.kp * 16, astep = kPanel * kt, bstep = kt * 16, kb = g.kb;
  const int8_t* xb = q.xq.data() + mt0 * P * tb;
  // acc += C_b · s_b(n)·dx_b(m) for the tiles of block b stored in c.
  auto epilogue = [&](int64_t b, int32_t (*c4)[2][16][16]) {
    for (int i = 0; i < 2; ++i) {
      const float* sv = p.s.data() + b * kPanel + i * 16;
      const float* szv = p.sz.data() + b * kPanel + i * 16;
      for (int j = 0; j < JT; ++j) {
        const __m512 dxv = _mm512_load_ps(q.dx.data() + ((mt0 + j) * kb + b) * 16);
        const __m512 ev = SW ? _mm512_setzero_ps() : _mm512_load_ps(q.e.data() + ((mt0 + j) * kb + b) * 16);
#pragma GCC unroll 16
        for (int r = 0; r < 16; ++r) {
          __m512i c;
          if constexpr (P == 2)
            c = _mm512_add_epi32(_mm512_slli_epi32(_mm512_load_si512(c4[i][0][r]), 8), _mm512_load_si512(c4[i][1][r]));
          else
            c = _mm512_load_si512(c4[i][j][r]);
          __m512 v = _mm512_fmadd_ps(_mm512_cvtepi32_ps(c), _mm512_mul_ps(dxv, _mm512_set1_ps(sv[r])),
                                     _mm512_load_ps(acc[i][j][r]));
          if constexpr (!SW) v = _mm512_fnmadd_ps(_mm512_set1_ps(szv[r]), ev, v);
          _mm512_store_ps(acc[i][j][r], v);
        }
      }
    }
  };
  // Software pipeline: while the tiles of block b compute, the (already
  // stored) tiles of block b − 1 go through the epilogue; then b is stored.
  for (int64_t b = b0; b < b1; ++b) {
    _tile_zero(0);
    _tile_zero(2);
    if constexpr (NJ == 2) {
      _tile_zero(1);
      _tile_zero(3);
    }
    for (int64_t s = b * g.bps; s < (b + 1) * g.bps; ++s) {
      const int8_t* a = p.w.data() + s * astep;
      _tile_loadd(4, a, kt);
      _tile_loadd(5, a + 16 * kt, kt);
      _tile_loadd(6, xb + s * bstep, 64);
      QVL_TDP(0, 4, 6);
      QVL_TDP(2, 5, 6);
      if constexpr (NJ == 2) {
        _tile_loadd(7, xb + tb + s * bstep, 64);
        QVL_TDP(1, 4, 7);
        QVL_TDP(3, 5, 7);
      }
    }
    for (int l = 0; l < per_block && next_line < nlines; ++l) _mm_prefetch((const char*)ylines[next_line++], _MM_HINT_ET0);
    if (b > b0) epilogue(b - 1, cb[(b - 1) & 1]);
    int32_t(*c4)[2][16][16] = cb[b & 1];
    _tile_stored(0, c4[0][0], 64);
    _tile_stored(2, c4[1][0], 64);
    if constexpr (NJ == 2) {
      _tile_stored(1, c4[0][1], 64);
      _tile_stored(3, c4[1][1], 64);
    }
  }
  if (b1 > b0) epilogue(b1 - 1, cb[(b1 - 1) & 1]);
  if (!last) return;
  // Transposed write-out: gather one m lane of 16 n rows, store 16 contiguous Y values.
  const __m512i rows16 = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                            _mm512_set1_epi32(16));
  for (int i = 0; i < 2; ++i) {
    const int64_t nc = std::min<int64_t>(16, W.N - (n0 + i * 16));
    if (nc <= 0) break;
    const __mmask16 nm = nc >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << nc) - 1);
    const __m512 bias = W.bias ? _mm512_maskz_loadu_ps(nm, W.bias + n0 + i * 16) : _mm512_setzero_ps();
    for (int j = 0; j < JT; ++j)
      for (int c = 0; c < 16; ++c) {
        const int64_t m = (mt0 + j) * 16 + c;
        if (m >= M) break;
        const __m512 v = _mm512_i32gather_ps(rows16, &acc[i][j][0][c], 4);
        _mm512_mask_storeu_ps(Y + m * W.N + n0 + i * 16, nm, _mm512_add_ps(v, bias));
      }
  }
}

#undef QVL_TDP

// Columns [nb, ne) of Y: M blocks of activation tiles (kept in L2) outside;
// inside, 32-row weight panels (unpacked once per M block) walked in K chunks
// of kChunk values, so a chunk of the panel stays in L1 across all m steps
// (fp32 accumulators per m step persist across chunks in acc).
template <bool SW>
void run_range(const Geo& g, const AmxX& q, const LinearWeight& W, int64_t M, int64_t nb,
               int64_t ne, float* Y, Panel* p) {
  const int64_t tile_bytes = g.kp * 16 * g.planes;
  const int64_t mblk = std::max<int64_t>(2, kActBudget / tile_bytes / 2 * 2);
  const int64_t cblocks = std::max<int64_t>(1, kChunk / g.bs), ssize = W.scale_dtype == DType::F32 ? 4 : 2;
  const int step = g.planes == 2 ? 1 : 2;  // m tiles per panel_tiles call
  grow(p->acc, mblk * 2 * 256);  // [m tile][weight tile][16][16] by m step
  for (int64_t mb = 0; mb < q.mt; mb += mblk) {
    const int64_t me = std::min(q.mt, mb + mblk), msteps = (me - mb + step - 1) / step;
    for (int64_t n0 = nb; n0 < ne; n0 += kPanel) {
      unpack_panel(W, g, n0, p);
      // The next panel's packed weights and scales are fetched towards L2 a
      // slice per m step, so its unpack does not wait on DRAM.
      const int64_t nn = std::min(W.N, n0 + kPanel), nrows = std::min(W.N, nn + kPanel) - nn;
      const char* wnext = static_cast<const char*>(W.data) + nn * g.row_bytes;
      const char* snext = static_cast<const char*>(W.scales) + nn * g.kb * ssize;
      const int64_t wbytes = nrows * g.row_bytes, sbytes = nrows * g.kb * ssize;
      const int64_t calls = (g.kb + cblocks - 1) / cblocks * msteps;
      const int64_t wslice = (wbytes / calls + 127) / 64 * 64, sslice = (sbytes / calls + 127) / 64 * 64;
      int64_t wdone = 0, sdone = 0;
      for (int64_t c0 = 0; c0 < g.kb; c0 += cblocks) {
        const int64_t c1 = std::min(g.kb, c0 + cblocks);
        for (int64_t i = 0; i < msteps; ++i) {
          for (int64_t e = std::min(wbytes, wdone + wslice); wdone < e; wdone += 64) _mm_prefetch(wnext + wdone, _MM_HINT_T1);
          for (int64_t e = std::min(sbytes, sdone + sslice); sdone < e; sdone += 64) _mm_prefetch(snext + sdone, _MM_HINT_T1);
          const int64_t mt = mb + i * step;
          float* acc = p->acc.data() + i * step * 2 * 256;
          if (g.planes == 2)
            panel_tiles<SW, 1, 2>(g, *p, q, mt, n0, c0, c1, (float(*)[1][16][16])acc, W, M, Y);
          else if (mt + 1 < me)
            panel_tiles<SW, 2, 1>(g, *p, q, mt, n0, c0, c1, (float(*)[2][16][16])acc, W, M, Y);
          else
            panel_tiles<SW, 1, 1>(g, *p, q, mt, n0, c0, c1, (float(*)[1][16][16])acc, W, M, Y);
        }
      }
    }
  }
}

}  // namespace

bool linear_q_amx(const float* X, int64_t M, const LinearWeight& W, float* Y, int act_bits) {
  if (!amx_enabled() || !amx_available()) return false;
  const int bs = W.block_size;
  if ((W.kind != WeightKind::Q4 && W.kind != WeightKind::Q8) || (W.bits != 4 && W.bits != 8) ||
      bs < 16 || bs > 256 || (bs & (bs - 1)) != 0 || (act_bits != 8 && act_bits != 16) || W.K <= 0)
    return false;
  if (M <= 0 || W.N <= 0) return true;
  const Geo g = make_geo(W, act_bits);
  thread_local AmxX qbuf;  // the caller's; workers read it through qp
  AmxX* qp = &qbuf;
  quantize_x(X, M, W.K, g, qp);
  // Panels handed out in chunks (a thread slowed by another process takes fewer).
  cpu::ChunkQueue work(W.N, cpu::chunk_size(W.N, cpu::threads(), kPanel, 4));
#pragma omp parallel
  {
    const AmxX& q = *qp;
    thread_local Panel p;
    int64_t nb, ne;
    bool configured = false;
    while (work.pop(&nb, &ne)) {
      if (!configured) configure_tiles(g.kt), configured = true;
      if (g.sw) run_range<true>(g, q, W, M, nb, ne, Y, &p);
      else run_range<false>(g, q, W, M, nb, ne, Y, &p);
    }
    if (configured) _tile_release();
  }
  return true;
}

#else

bool amx_available() { return false; }
bool linear_q_amx(const float*, int64_t, const LinearWeight&, float*, int) { return false; }

#endif

}  // namespace qvl
