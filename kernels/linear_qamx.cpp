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
// (cvt, ×s_b(n)·dx_b(m), add) with AVX-512; blocks > 64 chain tdp's first.
// Threads split N in 32-row panels; M is walked in L2-sized blocks so the
// quantized activations stay in cache while a panel's weights are reused.
#include "kernels/linear_qamx.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

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
constexpr int64_t kActBudget = 768 << 10;  // bytes of quantized activations per M block

struct TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};
static_assert(sizeof(TileConfig) == 64, "AMX palette-1 config is 64 bytes");

// Tiles 0-3: int32 C (16×16); 4-5: A weights (16 × kt bytes); 6-7: B activations.
void configure_tiles(int kt) {
  TileConfig c;
  for (int t = 0; t < 4; ++t) c.rows[t] = 16, c.colsb[t] = 64;
  for (int t = 4; t < 6; ++t) c.rows[t] = 16, c.colsb[t] = (uint16_t)kt;
  for (int t = 6; t < 8; ++t) c.rows[t] = (uint8_t)(kt / 4), c.colsb[t] = 64;
  _tile_loadconfig(&c);
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

// Bytes k0..k0+15 of one activation row (v: 16 int8) into its VNNI slots:
// dword c = k/4 of row r lives at c·64 + r·4.
inline void store_vnni(int8_t* p, __m128i v) {
  alignas(16) uint32_t w[4];
  _mm_store_si128((__m128i*)w, v);
  for (int i = 0; i < 4; ++i) std::memcpy(p + 64 * i, &w[i], 4);
}

// Same per-block scheme (and the same float operations) as linear_qi8's quantize_x.
void quantize_x(const float* X, int64_t M, int64_t K, const Geo& g, AmxX* q) {
  const int planes = g.planes, bs = g.bs;
  const int64_t kb = g.kb, tb = g.kp * 16;  // tb: bytes of one plane of one tile
  q->mt = (M + 15) / 16;
  q->xq.resize(q->mt * planes * tb);
  q->dx.resize(q->mt * kb * 16);
  q->e.resize(q->mt * kb * 16);
  const float qmax = planes == 2 ? 32639.f : 127.f;
#pragma omp parallel for schedule(static) if (M * K >= (1 << 16))
  for (int64_t t = 0; t < q->mt; ++t) {
    int8_t* xt = q->xq.data() + t * planes * tb;
    float* dxt = q->dx.data() + t * kb * 16;
    float* et = q->e.data() + t * kb * 16;
    std::memset(xt, 0, planes * tb);
    std::memset(dxt, 0, kb * 16 * sizeof(float));
    std::memset(et, 0, kb * 16 * sizeof(float));
    for (int r = 0; r < 16 && t * 16 + r < M; ++r) {
      const float* x = X + (t * 16 + r) * K;
      for (int64_t b = 0; b < kb; ++b) {
        const int64_t k0 = b * bs, n = std::max<int64_t>(0, std::min<int64_t>(bs, K - k0));
        __m512 amax = _mm512_setzero_ps();
        for (int64_t j = 0; j < n; j += 16) {
          __mmask16 mk = n - j >= 16 ? 0xffff : (__mmask16)((1u << (n - j)) - 1);
          amax = _mm512_max_ps(amax, _mm512_abs_ps(_mm512_maskz_loadu_ps(mk, x + k0 + j)));
        }
        const float mx = _mm512_reduce_max_ps(amax);
        const float d = mx / qmax, inv = mx > 0 ? qmax / mx : 0.f;
        __m512i isum = _mm512_setzero_si512();
        for (int64_t j = 0; j < n; j += 16) {
          __mmask16 mk = n - j >= 16 ? 0xffff : (__mmask16)((1u << (n - j)) - 1);
          __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(mk, x + k0 + j), _mm512_set1_ps(inv)));
          isum = _mm512_add_epi32(isum, v);
          int8_t* dst = xt + (k0 + j) / 4 * 64 + r * 4;
          if (planes == 2) {  // v = 256·h + l, h = (v + 128) >> 8, l ∈ [−128, 127]
            __m512i h = _mm512_srai_epi32(_mm512_add_epi32(v, _mm512_set1_epi32(128)), 8);
            __m512i l = _mm512_sub_epi32(v, _mm512_slli_epi32(h, 8));
            store_vnni(dst + tb, _mm512_cvtepi32_epi8(l));
            v = h;
          }
          store_vnni(dst, _mm512_cvtepi32_epi8(v));
        }
        dxt[b * 16 + r] = d;
        et[b * 16 + r] = d * (float)_mm512_reduce_add_epi32(isum);
      }
    }
  }
}

// One 32-row weight panel, unpacked: w [steps][2][16][kt] int8 (rows ≥ N zero),
// s [kb][32] fp32 scales, sz [kb][32] = s·zp (u8 mode only).
struct Panel {
  Buffer<int8_t> w;
  Buffer<float> s, sz;
};

void unpack_panel(const LinearWeight& W, const Geo& g, int64_t n0, Panel* p) {
  const int kt = g.kt;
  p->w.resize(g.steps * kPanel * kt);
  p->s.resize(g.kb * kPanel);
  p->sz.resize(g.kb * kPanel);
  const auto* B = static_cast<const uint8_t*>(W.data);
  const __mmask32 in4 = kt == 64 ? ~0u : (1u << (kt / 2)) - 1;
  const __mmask64 out = kt == 64 ? ~0ull : (1ull << kt) - 1;
  const __m512i lo4 = _mm512_set1_epi16(0x000f), hi4 = _mm512_set1_epi16(0x0f00);
  for (int64_t rr = 0; rr < kPanel; ++rr) {
    const int64_t n = n0 + rr;
    int8_t* dst = p->w.data() + rr * kt;  // + s·kPanel·kt per step
    if (n >= W.N) {
      for (int64_t s = 0; s < g.steps; ++s) _mm512_mask_storeu_epi8(dst + s * kPanel * kt, out, _mm512_setzero_si512());
      for (int64_t b = 0; b < g.kb; ++b) p->s[b * kPanel + rr] = p->sz[b * kPanel + rr] = 0.f;
      continue;
    }
    const uint8_t* src = B + n * g.row_bytes;
    for (int64_t b = 0; b < g.kb; ++b) {
      const int zp = quant::zero_point(W, n, b);
      const float s = quant::load_scale(W.scales, W.scale_dtype, n * g.kb + b);
      p->s[b * kPanel + rr] = s;
      p->sz[b * kPanel + rr] = s * (float)zp;
      const __m512i z = _mm512_set1_epi8(g.sw ? (char)zp : 0);
      for (int64_t s8 = b * g.bps; s8 < (b + 1) * g.bps; ++s8) {
        __m512i v;
        if (g.bits == 4) {  // byte j → (low nibble, high nibble) = values 2j, 2j+1
          __m512i w = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(in4, src + s8 * kt / 2));
          v = _mm512_or_si512(_mm512_and_si512(w, lo4), _mm512_and_si512(_mm512_slli_epi16(w, 4), hi4));
        } else {
          v = _mm512_maskz_loadu_epi8(out, src + s8 * kt);
        }
        _mm512_mask_storeu_epi8(dst + s8 * kPanel * kt, out, _mm512_sub_epi8(v, z));
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

// Y rows of m tiles [mt0, mt0+JT) × the 32 columns of panel n0, over all K.
// P = 1: JT (1 or 2) m tiles, C tile 2i+j = weight tile i × m tile j.
// P = 2 (Int16, JT = 1): C tile 2i+p = weight tile i × plane p (h, l).
template <bool SW, int JT, int P>
void panel_tiles(const Geo& g, const Panel& p, const AmxX& q, int64_t mt0, int64_t n0,
                 const LinearWeight& W, int64_t M, float* Y) {
  static_assert(JT * P <= 2, "two B tiles");
  constexpr int NJ = JT * P;
  alignas(64) float acc[2][JT][16][16];  // [weight tile][m tile][n row][m lane]
  alignas(64) int32_t cb[2][2][16][16];  // stored C tiles [weight tile][B tile]
  std::memset(acc, 0, sizeof acc);
  asm volatile("" ::: "memory");  // tileloadd has no memory clobber: panel / xq writes first
  const int kt = g.kt;
  const int64_t tb = g.kp * 16, astep = kPanel * kt, bstep = kt * 16, kb = g.kb;
  const int8_t* xb = q.xq.data() + mt0 * P * tb;
  for (int64_t b = 0; b < kb; ++b) {
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
    _tile_stored(0, cb[0][0], 64);
    _tile_stored(2, cb[1][0], 64);
    if constexpr (NJ == 2) {
      _tile_stored(1, cb[0][1], 64);
      _tile_stored(3, cb[1][1], 64);
    }
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
            c = _mm512_add_epi32(_mm512_slli_epi32(_mm512_load_si512(cb[i][0][r]), 8), _mm512_load_si512(cb[i][1][r]));
          else
            c = _mm512_load_si512(cb[i][j][r]);
          __m512 v = _mm512_fmadd_ps(_mm512_cvtepi32_ps(c), _mm512_mul_ps(dxv, _mm512_set1_ps(sv[r])),
                                     _mm512_load_ps(acc[i][j][r]));
          if constexpr (!SW) v = _mm512_fnmadd_ps(_mm512_set1_ps(szv[r]), ev, v);
          _mm512_store_ps(acc[i][j][r], v);
        }
      }
    }
  }
  for (int i = 0; i < 2; ++i)
    for (int r = 0; r < 16; ++r) {
      const int64_t n = n0 + i * 16 + r;
      if (n >= W.N) break;
      const float bias = W.bias ? W.bias[n] : 0.f;
      for (int j = 0; j < JT; ++j)
        for (int c = 0; c < 16; ++c) {
          const int64_t m = (mt0 + j) * 16 + c;
          if (m >= M) break;
          Y[m * W.N + n] = acc[i][j][r][c] + bias;
        }
    }
}

#undef QVL_TDP

// Columns [nb, ne) of Y: M blocks of activation tiles (kept in L2) outside,
// 32-row weight panels (unpacked once per M block) inside.
template <bool SW>
void run_range(const Geo& g, const AmxX& q, const LinearWeight& W, int64_t M, int64_t nb,
               int64_t ne, float* Y, Panel* p) {
  const int64_t tile_bytes = g.kp * 16 * g.planes;
  const int64_t mblk = std::max<int64_t>(2, kActBudget / tile_bytes / 2 * 2);
  for (int64_t mb = 0; mb < q.mt; mb += mblk) {
    const int64_t me = std::min(q.mt, mb + mblk);
    for (int64_t n0 = nb; n0 < ne; n0 += kPanel) {
      unpack_panel(W, g, n0, p);
      for (int64_t mt = mb; mt < me;) {
        if (g.planes == 2) {
          panel_tiles<SW, 1, 2>(g, *p, q, mt, n0, W, M, Y);
          mt += 1;
        } else if (mt + 1 < me) {
          panel_tiles<SW, 2, 1>(g, *p, q, mt, n0, W, M, Y);
          mt += 2;
        } else {
          panel_tiles<SW, 1, 1>(g, *p, q, mt, n0, W, M, Y);
          mt += 1;
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
      bs < 16 || bs > 256 || (bs & (bs - 1)) != 0 || (act_bits != 8 && act_bits != 16))
    return false;
  if (M <= 0 || W.N <= 0) return true;
  const Geo g = make_geo(W, act_bits);
  thread_local AmxX qbuf;  // the caller's; workers read it through qp
  AmxX* qp = &qbuf;
  quantize_x(X, M, W.K, g, qp);
#pragma omp parallel
  {
    const AmxX& q = *qp;
    thread_local Panel p;
    int64_t nb, ne;
    cpu::split_range(W.N, omp_get_num_threads(), omp_get_thread_num(), kPanel, &nb, &ne);
    if (nb < ne) {
      configure_tiles(g.kt);
      if (g.sw) run_range<true>(g, q, W, M, nb, ne, Y, &p);
      else run_range<false>(g, q, W, M, nb, ne, Y, &p);
      _tile_release();
    }
  }
  return true;
}

#else

bool amx_available() { return false; }
bool linear_q_amx(const float*, int64_t, const LinearWeight&, float*, int) { return false; }

#endif

}  // namespace qvl
