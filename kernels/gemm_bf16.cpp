// bf16 GEMM (see gemm_bf16.h): two engines with the same rounding, AMX when
// the CPU and OS allow it, else AVX512-BF16 (vdpbf16ps) when compiled in.
//
// AMX: A is converted to bf16 once per call (rows [M_pad][K_pad], shared by
// the threads). Blocking, per thread over its N range: for each NC-wide column
// block, for each KC-deep slice of K:
//     pack B [KC × NC] into VNNI bf16 panels (32 columns = two B tiles; tile
//     row r of k-step s holds, for 16 columns, the bf16 pair k = 32s+2r, +1),
//     then for each MC-row block of packed A (K padded to 32 with zeros,
//     rows padded to 32) run the 32×32 micro-kernel
//     (tiles 0–3 = C 2×2, 4–5 = A, 6–7 = B; per k-step of 32: 2 A + 2 B tile
//     loads, 4 tdpbf16ps) over every (panel, sliver) pair.
// Full 32×32 C blocks are loaded/stored as tiles directly; edge blocks go
// through a 32×32 scratch tile.
//
// AVX512-BF16: gemm.cpp's Goto blocking with bf16 pairs. A is converted once
// per call into 12-row slivers of VNNI pairs ([K/2][12] uint32, shared by the
// threads); per thread over its N range, for each NC block and KC slice
// (KC = 512 k: a B panel [256 pairs][32] uint32 = 32 KB stays in L1), for each
// MC-row block (≤ 768 rows, A block ≤ 768 KB in L2) and each B panel (packed
// into pairs by the first row block right before its first use, kept for the
// others), the 12×32 micro-kernel runs over the block's slivers: 24 zmm
// accumulators; per k-pair two B loads, 12 32-bit broadcasts of A, 24
// vdpbf16ps (twice the fp32 FMA kernel's flops per instruction).
#include "kernels/gemm_bf16.h"

#include <cmath>
#include <cstring>
#include <mutex>
#include <vector>

#include "kernels/base.h"
#include "kernels/cpu.h"
#include "kernels/dtype.h"

#if defined(__AMX_TILE__) && defined(__AMX_BF16__) && defined(__AVX512F__)
#define QVL_AMX_BF16 1
#include <sys/syscall.h>
#include <unistd.h>

#include "kernels/amx_tiles.h"
#endif

#if defined(__AVX512BF16__) && defined(__AVX512F__) && defined(__AVX512BW__)
#define QVL_DP_BF16 1
#include "kernels/vmath.h"
#endif

namespace qvl::gemm {

// Packs B[k0 .. k0+kc) × [n0 .. n0+nr) from the packer in chunks of ≤ kKC rows
// (what every packer supports), into dst [kc][kNR] fp32.
static void pack_b_f32(const BPacker& B, int64_t k0, int kc, int64_t n0, int nr, float* dst) {
  for (int k = 0; k < kc; k += kKC)
    B.pack(k0 + k, std::min(kKC, kc - k), n0, nr, dst + (int64_t)k * kNR);
}

void sgemm_bf16_ref(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                    const BPacker& B, float* C, int64_t ldc, bool accumulate) {
  std::vector<float> panel((size_t)std::max<int64_t>(K, 1) * kNR);
  for (int64_t n0 = 0; n0 < N; n0 += kNR) {
    const int nr = (int)std::min<int64_t>(kNR, N - n0);
    if (K > 0) pack_b_f32(B, 0, (int)K, n0, nr, panel.data());
    for (int64_t m = 0; m < M; ++m)
      for (int j = 0; j < nr; ++j) {
        double s = accumulate ? C[m * ldc + n0 + j] : 0.0;
        for (int64_t k = 0; k < K; ++k)
          s += (double)bf16_to_f32(f32_to_bf16(A[m * lda + k])) *
               (double)bf16_to_f32(f32_to_bf16(panel[k * kNR + j]));
        C[m * ldc + n0 + j] = (float)s;
      }
  }
}

// Element (k, n) of a PackedB16: panel n/32, tile column (n%32)/16, k-step k/32,
// tile row (k%32)/2, pair slot k%2.
static inline int64_t b16_index(int64_t n, int64_t k, int64_t kp) {
  const int64_t c = n % 32;
  return (n / 32) * 32 * kp + ((c / 16) * (kp / 32) + k / 32) * 512 + ((k % 32) / 2) * 32 + (c % 16) * 2 + (k & 1);
}

// Scalar product on a PackedB16 (machines without AMX; same bf16 rounding).
static void b16_scalar(int64_t M, const float* A, int64_t lda, const PackedB16& B, float* C,
                       int64_t ldc, bool accumulate) {
  const int64_t kp = (B.K + 31) / 32 * 32;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < B.N; ++n) {
      float s = accumulate ? C[m * ldc + n] : 0.f;
      for (int64_t k = 0; k < B.K; ++k)
        s += bf16_to_f32(f32_to_bf16(A[m * lda + k])) * bf16_to_f32(B.data[b16_index(n, k, kp)]);
      C[m * ldc + n] = s;
    }
}

// PackedB16 in the AMX layout by scalar loops (no bf16 engine compiled in).
[[maybe_unused]] static void scalar_pack_b16(int64_t N, int64_t K, const BPacker& B, PackedB16* out) {
  const int64_t kp = (K + 31) / 32 * 32, np = (N + 31) / 32;
  out->N = N;
  out->K = K;
  out->pairs = false;
  if (out->data.size() < (size_t)(np * 32 * kp)) out->data.resize((size_t)(np * 32 * kp));
  std::vector<float> panel((size_t)(std::max<int64_t>(K, 1) * kNR));
  for (int64_t p = 0; p < np; ++p) {
    if (K > 0) pack_b_f32(B, 0, (int)K, p * 32, (int)std::min<int64_t>(32, N - p * 32), panel.data());
    for (int64_t k = 0; k < kp; ++k)
      for (int j = 0; j < 32; ++j)
        out->data[b16_index(p * 32 + j, k, kp)] = k < K ? f32_to_bf16(panel[k * kNR + j]) : 0;
  }
}

// hi / lo bf16 of x as the AMX path splits it.
static inline void split_scalar(float x, float* hi, float* lo) {
  *hi = bf16_to_f32(f32_to_bf16(x));
  *lo = bf16_to_f32(f32_to_bf16(x - *hi));
}

// Scalar split product (machines without AMX; same splits, fp32 sums).
static void b16_split_scalar(int64_t M, int64_t n, int64_t k, const float* A, int64_t lda,
                             const PackedB16Split& B, float* C, int64_t ldc) {
  const int64_t kp = (B.hi.K + 31) / 32 * 32;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t j = 0; j < n; ++j) {
      float s = 0.f;
      for (int64_t i = 0; i < k; ++i) {
        float ah, al;
        split_scalar(A[m * lda + i], &ah, &al);
        const int64_t bi = b16_index(j, i, kp);
        const float bh = bf16_to_f32(B.hi.data[bi]), bl = bf16_to_f32(B.lo.data[bi]);
        s += ah * bh + ah * bl + al * bh;
      }
      C[m * ldc + j] = s;
    }
}

#if defined(QVL_AMX_BF16) || defined(QVL_DP_BF16)

// Shared by both engines.
namespace {

// RNE fp32 → bf16 in the upper 16 bits of each lane (lower bits garbage);
// NaN becomes a quiet NaN.
inline __m512i rne_hi(__m512 x) {
  const __m512i u = _mm512_castps_si512(x);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff)));
  const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
  return _mm512_mask_mov_epi32(r, nan, _mm512_set1_epi32(0x7fc00000));
}

// 16 fp32 → 16 bf16 (RNE).
inline __m256i to_bf16(__m512 x) { return _mm512_cvtepi32_epi16(_mm512_srli_epi32(rne_hi(x), 16)); }

// Two fp32 rows (k, k+1) of 16 columns → 16 VNNI pairs (k low, k+1 high).
inline __m512i vnni_pair(__m512 k0, __m512 k1) {
  return _mm512_or_si512(_mm512_srli_epi32(rne_hi(k0), 16),
                         _mm512_and_si512(rne_hi(k1), _mm512_set1_epi32((int)0xffff0000u)));
}

// K == 0: C = 0 (or unchanged when accumulating).
void zero_c(int64_t M, int64_t N, float* C, int64_t ldc, bool accumulate) {
  if (!accumulate)
    for (int64_t m = 0; m < M; ++m) std::memset(C + m * ldc, 0, (size_t)N * sizeof(float));
}

}  // namespace

#endif

#if defined(QVL_DP_BF16)

// AVX512-BF16 engine (vdpbf16ps), used when AMX does not run.
namespace dp {
namespace {

constexpr int kKCd = 512;          // K slice: a B panel is [256 pairs][32] uint32 = 32 KB (L1)
constexpr int64_t kMCd = 768;      // rows of A per block (64 slivers, 768 KB at kKCd: L2)
constexpr int64_t kNCd = 2048;     // columns of B per packed block (2 MB at kKCd)
static_assert(kKCd % kKC == 0 && kKC % 2 == 0 && kMCd % kMR == 0, "pair-aligned blocking");

inline int64_t pairs(int64_t k) { return (k + 1) / 2; }

// A[M][K] fp32 (lda) → slivers of kMR rows of bf16 pairs (RNE): sliver s, pair
// p, row i at dst[(s·kp2 + p)·kMR + i] (k = 2p in the low half, 2p+1 in the
// high half), kp2 = ceil(K/2); rows ≥ M and k ≥ K are zero. Slivers [s0, s1).
// 32 k of 16 rows at a time: each row's bf16 are already its pairs, a 16×16
// 32-bit transpose turns rows into pair-major order.
void pack_a_pairs(const float* A, int64_t lda, int64_t M, int64_t K, int64_t s0, int64_t s1,
                  uint32_t* dst) {
  const int64_t kp2 = pairs(K);
  for (int64_t s = s0; s < s1; ++s) {
    const int64_t r0 = s * kMR;
    const int mr = (int)std::min<int64_t>(kMR, M - r0);
    float* d = reinterpret_cast<float*>(dst + s * kp2 * kMR);
    for (int64_t k = 0; k < K; k += 32) {
      const int64_t r = K - k;
      const __mmask16 m0 = r >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << r) - 1);
      const __mmask16 m1 = r >= 32 ? (__mmask16)0xffff : r <= 16 ? (__mmask16)0 : (__mmask16)((1u << (r - 16)) - 1);
      __m512 v[16];
      for (int i = 0; i < 16; ++i) {
        if (i >= mr) {
          v[i] = _mm512_setzero_ps();
          continue;
        }
        const float* src = A + (r0 + i) * lda + k;
        const __m256i lo = to_bf16(_mm512_maskz_loadu_ps(m0, src));
        const __m256i hi = to_bf16(_mm512_maskz_loadu_ps(m1, src + 16));
        v[i] = _mm512_castsi512_ps(_mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1));
      }
      vmath::transpose16(v);
      const int np = (int)std::min<int64_t>(16, kp2 - k / 2);
      for (int j = 0; j < np; ++j) _mm512_mask_storeu_ps(d + (k / 2 + j) * kMR, (__mmask16)0x0fff, v[j]);
    }
  }
}

// fp32 panel P[kc][kNR] → dst[p·kNR + j] = pair (P[2p][j], P[2p+1][j]) (RNE);
// the row after an odd kc is zero.
void panel_to_pairs(const float* P, int kc, uint32_t* dst) {
  const __m512 z = _mm512_setzero_ps();
  for (int k = 0; k < kc; k += 2)
    for (int t = 0; t < 2; ++t) {
      const __m512 a = _mm512_load_ps(P + (int64_t)k * kNR + 16 * t);
      const __m512 b = k + 1 < kc ? _mm512_load_ps(P + (int64_t)(k + 1) * kNR + 16 * t) : z;
      _mm512_store_si512((__m512i*)(dst + (int64_t)k / 2 * kNR + 16 * t), vnni_pair(a, b));
    }
}

inline __m512bh as_bh(__m512i x) { return (__m512bh)x; }

// C[mr × 32] (+)= Ap[np][kMR] · Bp[np][32] over np k-pairs; columns ≥ nr masked.
template <int MR>
void micro(int np, const uint32_t* Ap, const uint32_t* Bp, float* C, int64_t ldc, int nr, bool acc) {
  __m512 c0[MR], c1[MR];
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    c0[i] = c1[i] = _mm512_setzero_ps();
    _mm_prefetch((const char*)(C + i * ldc), _MM_HINT_T0);  // C is read / written at the end
    _mm_prefetch((const char*)(C + i * ldc + 31), _MM_HINT_T0);
  }
  for (int p = 0; p < np; ++p) {
    const __m512bh b0 = as_bh(_mm512_load_si512(Bp + p * kNR));
    const __m512bh b1 = as_bh(_mm512_load_si512(Bp + p * kNR + 16));
    _mm_prefetch((const char*)(Bp + (p + 8) * kNR), _MM_HINT_T0);
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      const __m512bh a = as_bh(_mm512_set1_epi32((int)Ap[p * kMR + i]));
      c0[i] = _mm512_dpbf16_ps(c0[i], a, b0);
      c1[i] = _mm512_dpbf16_ps(c1[i], a, b1);
    }
  }
  vmath::store_c_tile<MR>(c0, c1, C, ldc, nr, acc);
}

using MicroFn = void (*)(int, const uint32_t*, const uint32_t*, float*, int64_t, int, bool);
constexpr MicroFn kMicro[kMR + 1] = {nullptr,   micro<1>,  micro<2>,  micro<3>, micro<4>,
                                     micro<5>,  micro<6>,  micro<7>,  micro<8>, micro<9>,
                                     micro<10>, micro<11>, micro<12>};

struct Scratch {
  Buffer<float> panel;  // [kKC][kNR] fp32 from the packer
  Buffer<uint32_t> b;   // packed B block (pair panels)
  Buffer<uint32_t> a;   // packed A (serial calls)
};
Scratch& scratch() {
  static thread_local Scratch s;
  return s;
}

// Packed A of one threaded call, owned by the calling thread and read by its team.
Buffer<uint32_t>& shared_a() {
  static thread_local Buffer<uint32_t> a;
  return a;
}

// Columns [n_off, n_off + N) of B into C[:, 0..N); Ap = A in pair slivers
// (pack_a_pairs over the whole K, sliver 0 = rows 0..11 of this range).
void range(int64_t M, int64_t N, int64_t K, const uint32_t* Ap, const BPacker& B, int64_t n_off,
           float* C, int64_t ldc, bool accumulate) {
  if (M <= 0 || N <= 0) return;
  Scratch& s = scratch();
  const int64_t kp2 = pairs(K);
  const int64_t nc_max = std::min<int64_t>(kNCd, (N + kNR - 1) / kNR * kNR);
  grow(s.panel, (size_t)kKC * kNR);
  grow(s.b, (size_t)(pairs(std::min<int64_t>(kKCd, K)) * nc_max));
  // Row blocks of ≤ kMCd rows, equal up to a sliver (784 = 2 × 396, not 768 + 16).
  const int64_t nbm = (M + kMCd - 1) / kMCd;
  const int64_t mcb = ((M + nbm - 1) / nbm + kMR - 1) / kMR * kMR;
  for (int64_t jc = 0; jc < N; jc += kNCd) {
    const int64_t nc = std::min(kNCd, N - jc);
    for (int64_t pc = 0; pc < K; pc += kKCd) {
      const int kc = (int)std::min<int64_t>(kKCd, K - pc);
      const int np = (int)pairs(kc);
      const bool acc = accumulate || pc > 0;
      for (int64_t ic = 0; ic < M; ic += mcb) {
        const int64_t mc = std::min(mcb, M - ic);
        for (int64_t jr = 0; jr < nc; jr += kNR) {
          const int nr = (int)std::min<int64_t>(kNR, nc - jr);
          uint32_t* bp = s.b.data() + jr * np;
          // Each panel is packed by the first row block, just before its first
          // use (still in L1 / L2 then), and kept for the later row blocks.
          if (ic == 0)
            for (int k = 0; k < kc; k += kKC) {  // kKC (even) rows per packer call
              const int ck = std::min(kKC, kc - k);
              pack_b_f32(B, pc + k, ck, n_off + jc + jr, nr, s.panel.data());
              panel_to_pairs(s.panel.data(), ck, bp + (int64_t)k / 2 * kNR);
            }
          for (int64_t ir = 0; ir < mc; ir += kMR) {
            const int mr = (int)std::min<int64_t>(kMR, mc - ir);
            const uint32_t* ap = Ap + ((ic + ir) / kMR * kp2 + pc / 2) * kMR;
            kMicro[mr](np, ap, bp, C + (ic + ir) * ldc + jc + jr, ldc, nr, acc);
          }
        }
      }
    }
  }
}

}  // namespace

void serial(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const BPacker& B, float* C,
            int64_t ldc, bool accumulate) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) return zero_c(M, N, C, ldc, accumulate);
  const int64_t ns = (M + kMR - 1) / kMR;
  Buffer<uint32_t>& a = scratch().a;
  grow(a, (size_t)(ns * pairs(K) * kMR));
  pack_a_pairs(A, lda, M, K, 0, ns, a.data());
  range(M, N, K, a.data(), B, 0, C, ldc, accumulate);
}

void parallel(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const BPacker& B, float* C,
              int64_t ldc, bool accumulate) {
  const int nt = cpu::threads();
  if (nt == 1 || omp_in_parallel() || M * N * K < (1 << 18)) return serial(M, N, K, A, lda, B, C, ldc, accumulate);
  if (M <= 0 || N <= 0) return;
  if (K <= 0) return zero_c(M, N, C, ldc, accumulate);
  // A converted once (slivers split over the threads), then N split when every
  // thread gets at least two panels, else M (whole slivers).
  const int64_t ns = (M + kMR - 1) / kMR, kp2 = pairs(K);
  Buffer<uint32_t>& a = shared_a();
  grow(a, (size_t)(ns * kp2 * kMR));
  uint32_t* ap = a.data();
  const bool split_n = N >= (int64_t)nt * kNR * 2;
#pragma omp parallel num_threads(nt)
  {
    int64_t b, e;
    const int t = omp_get_thread_num(), T = omp_get_num_threads();
    cpu::split_range(ns, T, t, 1, &b, &e);
    pack_a_pairs(A, lda, M, K, b, e, ap);
#pragma omp barrier
    if (split_n) {
      cpu::split_range(N, T, t, kNR, &b, &e);
      if (b < e) range(M, e - b, K, ap, B, b, C + b, ldc, accumulate);
    } else {
      cpu::split_range(M, T, t, kMR, &b, &e);
      if (b < e) range(e - b, N, K, ap + b / kMR * kp2 * kMR, B, 0, C + b * ldc, ldc, accumulate);
    }
  }
}

// B in pair panels over the whole K (PackedB16 with pairs = true): panel j
// (columns 32j ..) at uint32 offset j·kp2·32, pair p of column c at [p·32 + c].
void pack_pairs(int64_t N, int64_t K, const BPacker& B, PackedB16* out) {
  const int64_t kp2 = pairs(K), np = (N + kNR - 1) / kNR;
  out->N = N;
  out->K = K;
  out->pairs = true;
  grow(out->data, (size_t)(np * kp2 * kNR * 2));
  Scratch& s = scratch();
  grow(s.panel, (size_t)kKC * kNR);
  uint32_t* dst = reinterpret_cast<uint32_t*>(out->data.data());
  for (int64_t j = 0; j < np; ++j) {
    const int nr = (int)std::min<int64_t>(kNR, N - j * kNR);
    for (int64_t k = 0; k < K; k += kKC) {
      const int ck = (int)std::min<int64_t>(kKC, K - k);
      pack_b_f32(B, k, ck, j * kNR, nr, s.panel.data());
      panel_to_pairs(s.panel.data(), ck, dst + (j * kp2 + k / 2) * kNR);
    }
  }
}

// C[M, N] (+)= A · B on pair panels: A converted into slivers once, then every
// (panel, sliver) micro-tile over the whole K (a panel is [kp2][32] uint32,
// 4 KB for K = 64, ~100 KB for 1568 keys: L1 / L2 either way).
// Prefixes: columns [0, N) and rows [0, K) of B. An odd K pairs row K − 1 of B
// with row K, which meets A's zero padding (B's rows are finite).
void pairs_serial(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const PackedB16& B, float* C,
                  int64_t ldc, bool accumulate) {
  const int64_t kp2 = pairs(K), ldp = pairs(B.K), ns = (M + kMR - 1) / kMR;
  Buffer<uint32_t>& a = scratch().a;
  grow(a, (size_t)(ns * kp2 * kMR));
  pack_a_pairs(A, lda, M, K, 0, ns, a.data());
  const uint32_t* bp = reinterpret_cast<const uint32_t*>(B.data.data());
  for (int64_t jr = 0; jr < N; jr += kNR) {
    const int nr = (int)std::min<int64_t>(kNR, N - jr);
    const uint32_t* panel = bp + jr * ldp;
    for (int64_t ir = 0; ir < M; ir += kMR) {
      const int mr = (int)std::min<int64_t>(kMR, M - ir);
      kMicro[mr]((int)kp2, a.data() + ir * kp2, panel, C + ir * ldc + jr, ldc, nr, accumulate);
    }
  }
}

}  // namespace dp

#endif

#if defined(QVL_AMX_BF16)

namespace {

constexpr int kKB = 512;       // K slice (multiple of 32 and of kKC)
constexpr int64_t kMCb = 128;  // rows of A per packed block (multiple of 32)
constexpr int64_t kNCb = 1024;  // columns of B per packed block (multiple of 32)

bool request_amx() {
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
}

// bf16 of x (RNE) back in fp32: the hi part of a split.
inline __m512 hi_part(__m512 x) {
  return _mm512_castsi512_ps(_mm512_and_si512(rne_hi(x), _mm512_set1_epi32((int)0xffff0000u)));
}

// fp32 panel P[kc][32] → two VNNI tiles per k-step: dst[(t·ks + s)·512 + r·32 + 2c + {0,1}]
// = P[32s + 2r + {0,1}][16t + c]; k ≥ kc zero. ks = ceil(kc / 32). With dst_lo, the
// residuals P − bf16(P) go there in the same layout (split operands).
void panel_to_vnni(const float* P, int kc, uint16_t* dst, uint16_t* dst_lo = nullptr) {
  const int ks = (kc + 31) / 32;
  const __m512 z = _mm512_setzero_ps();
  for (int s = 0; s < ks; ++s)
    for (int r = 0; r < 16; ++r) {
      const int k = 32 * s + 2 * r;
      for (int t = 0; t < 2; ++t) {
        const __m512 a = k < kc ? _mm512_load_ps(P + (int64_t)k * kNR + 16 * t) : z;
        const __m512 b = k + 1 < kc ? _mm512_load_ps(P + (int64_t)(k + 1) * kNR + 16 * t) : z;
        const int64_t o = ((int64_t)t * ks + s) * 512 + r * 32;
        _mm512_store_si512((__m512i*)(dst + o), vnni_pair(a, b));
        if (dst_lo)
          _mm512_store_si512((__m512i*)(dst_lo + o), vnni_pair(_mm512_sub_ps(a, hi_part(a)), _mm512_sub_ps(b, hi_part(b))));
      }
    }
}

// A [M][K] fp32 (lda) → bf16 tiles: row i, column k at
//   dst[((i/16)·ks + k/32)·512 + (i%16)·32 + k%32],  ks = ceil(K/32),
// so each A tile (16 rows × 32 k) is 1 KB contiguous (tile loads with a 64-byte
// stride, no cache-set conflicts). Zero padded in k and in rows M .. r1−1;
// rows [r0, r1) only (r0, r1 multiples of 16). With dst_lo, the residuals
// A − bf16(A) go there in the same layout (split operands).
void pack_a_rows(const float* A, int64_t lda, int64_t M, int64_t K, int64_t r0, int64_t r1,
                 uint16_t* dst, uint16_t* dst_lo = nullptr) {
  const int64_t ks = (K + 31) / 32;
  for (int64_t i = r0; i < r1; ++i) {
    const int64_t o = (i / 16) * ks * 512 + (i % 16) * 32;
    uint16_t* d = dst + o;
    if (i >= M) {
      for (int64_t s = 0; s < ks; ++s) std::memset(d + s * 512, 0, 64);
      if (dst_lo)
        for (int64_t s = 0; s < ks; ++s) std::memset(dst_lo + o + s * 512, 0, 64);
      continue;
    }
    const float* src = A + i * lda;
    for (int64_t s = 0; s < ks; ++s) {
      const int64_t k = s * 32;
      __m512 lo, hi;
      if (k + 32 <= K) {
        lo = _mm512_loadu_ps(src + k);
        hi = _mm512_loadu_ps(src + k + 16);
      } else {
        const int64_t r = K - k;
        lo = _mm512_maskz_loadu_ps((__mmask16)(r >= 16 ? 0xffff : (1u << r) - 1), src + k);
        hi = _mm512_maskz_loadu_ps((__mmask16)(r <= 16 ? 0 : (1u << (r - 16)) - 1), src + k + 16);
      }
      _mm256_storeu_si256((__m256i*)(d + s * 512), to_bf16(lo));
      _mm256_storeu_si256((__m256i*)(d + s * 512 + 16), to_bf16(hi));
      if (dst_lo) {
        _mm256_storeu_si256((__m256i*)(dst_lo + o + s * 512), to_bf16(_mm512_sub_ps(lo, hi_part(lo))));
        _mm256_storeu_si256((__m256i*)(dst_lo + o + s * 512 + 16), to_bf16(_mm512_sub_ps(hi, hi_part(hi))));
      }
    }
  }
}

// C[32 × 32] (ldc floats) (+)= A sliver · B panel over ks k-steps; a = first
// A tile of the upper 16 rows, a + a1 of the lower 16 (tiles 512 apart).
void micro_32x32(int ks, const uint16_t* a, int64_t a1off, const uint16_t* bp, float* c, int64_t ldc,
                 bool load_c) {
  const int64_t cs = ldc * 4;
  if (load_c) {
    _tile_loadd(0, c, cs);
    _tile_loadd(1, c + 16, cs);
    _tile_loadd(2, c + 16 * ldc, cs);
    _tile_loadd(3, c + 16 * ldc + 16, cs);
  } else {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
  }
  const uint16_t* b1 = bp + (int64_t)ks * 512;
  const uint16_t* a1 = a + a1off;
  for (int s = 0; s < ks; ++s) {
    _tile_loadd(4, a + 512 * s, 64);
    _tile_loadd(6, bp + 512 * s, 64);
    _tile_dpbf16ps(0, 4, 6);
    _tile_loadd(7, b1 + 512 * s, 64);
    _tile_dpbf16ps(1, 4, 7);
    _tile_loadd(5, a1 + 512 * s, 64);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  _tile_stored(0, c, cs);
  _tile_stored(1, c + 16, cs);
  _tile_stored(2, c + 16 * ldc, cs);
  _tile_stored(3, c + 16 * ldc + 16, cs);
}

// Edge block: mr ≤ 32 rows, nr ≤ 32 columns of C through a scratch tile.
void micro_edge(int ks, const uint16_t* a, int64_t a1off, const uint16_t* bp, float* C, int64_t ldc,
                int mr, int nr, bool acc) {
  alignas(64) float t[32 * 32];
  if (acc) {
    std::memset(t, 0, sizeof(t));
    for (int i = 0; i < mr; ++i) std::memcpy(t + i * 32, C + i * ldc, (size_t)nr * 4);
  }
  micro_32x32(ks, a, a1off, bp, t, 32, acc);
  for (int i = 0; i < mr; ++i) std::memcpy(C + i * ldc, t + i * 32, (size_t)nr * 4);
}

// C[32 × 32] (ldc floats) = split product over ks k-steps: A tiles ah / al (upper
// 16 rows; lower at + a1off), B panels bh / bl (second tile column at + b1off).
void micro_split_32x32(int ks, const uint16_t* ah, const uint16_t* al, int64_t a1off, const uint16_t* bh,
                       const uint16_t* bl, int64_t b1off, float* c, int64_t ldc) {
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  for (int s = 0; s < ks; ++s) {
    const int64_t o = 512 * (int64_t)s;
    _tile_loadd(4, ah + o, 64);  // a_hi · b_hi
    _tile_loadd(5, ah + a1off + o, 64);
    _tile_loadd(6, bh + o, 64);
    _tile_loadd(7, bh + b1off + o, 64);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
    _tile_loadd(6, bl + o, 64);  // a_hi · b_lo
    _tile_loadd(7, bl + b1off + o, 64);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
    _tile_loadd(4, al + o, 64);  // a_lo · b_hi
    _tile_loadd(5, al + a1off + o, 64);
    _tile_loadd(6, bh + o, 64);
    _tile_loadd(7, bh + b1off + o, 64);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  const int64_t cs = ldc * 4;
  _tile_stored(0, c, cs);
  _tile_stored(1, c + 16, cs);
  _tile_stored(2, c + 16 * ldc, cs);
  _tile_stored(3, c + 16 * ldc + 16, cs);
}

struct Scratch {
  Buffer<float> panel;  // [kKB][kNR] fp32
  Buffer<uint16_t> b;   // packed B block
  Buffer<uint16_t> a;   // packed A (serial calls)
  Buffer<uint16_t> a2;  // packed A lo (split calls)
};
Scratch& scratch() {
  static thread_local Scratch s;
  return s;
}

// Packed A of one sgemm_bf16 call, owned by the calling thread and read by
// its team (calls from inside parallel regions use the serial path).
Buffer<uint16_t>& shared_a() {
  static thread_local Buffer<uint16_t> a;
  return a;
}

// Columns [n_off, n_off + N) of B into C[:, 0..N); Ap = A in tiles
// (pack_a_rows, row 0 = row 0 of this range). Tiles already configured.
void range_amx(int64_t M, int64_t N, int64_t K, const uint16_t* Ap, const BPacker& B,
               int64_t n_off, float* C, int64_t ldc, bool accumulate) {
  Scratch& s = scratch();
  const int64_t nc_max = std::min<int64_t>(kNCb, (N + kNR - 1) / kNR * kNR);
  const int kp_max = (int)std::min<int64_t>(kKB, (K + 31) / 32 * 32);
  if (s.panel.size() < (size_t)kKB * kNR) s.panel.resize((size_t)kKB * kNR);
  if (s.b.size() < (size_t)(kp_max * nc_max)) s.b.resize((size_t)(kp_max * nc_max));
  for (int64_t jc = 0; jc < N; jc += kNCb) {
    const int64_t nc = std::min(kNCb, N - jc);
    for (int64_t pc = 0; pc < K; pc += kKB) {
      const int kc = (int)std::min<int64_t>(kKB, K - pc);
      const int kp = (kc + 31) / 32 * 32, ks = kp / 32;
      const bool acc = accumulate || pc > 0;
      for (int64_t jr = 0; jr < nc; jr += kNR) {
        pack_b_f32(B, pc, kc, n_off + jc + jr, (int)std::min<int64_t>(kNR, nc - jr), s.panel.data());
        panel_to_vnni(s.panel.data(), kc, s.b.data() + jr * kp);
      }
      for (int64_t ic = 0; ic < M; ic += kMCb) {
        const int64_t mc = std::min(kMCb, M - ic);
        const int64_t ks_all = (K + 31) / 32;
        for (int64_t jr = 0; jr < nc; jr += kNR) {
          const int nr = (int)std::min<int64_t>(kNR, nc - jr);
          const uint16_t* bp = s.b.data() + jr * kp;
          for (int64_t ir = 0; ir < mc; ir += 32) {
            const int mr = (int)std::min<int64_t>(32, mc - ir);
            float* c = C + (ic + ir) * ldc + jc + jr;
            const uint16_t* ap = Ap + ((ic + ir) / 16 * ks_all + pc / 32) * 512;
            if (mr == 32 && nr == kNR) micro_32x32(ks, ap, ks_all * 512, bp, c, ldc, acc);
            else micro_edge(ks, ap, ks_all * 512, bp, c, ldc, mr, nr, acc);
          }
        }
      }
    }
  }
}

// Configures this thread's tiles, runs range_amx, releases the tiles.
void range_tiles(int64_t M, int64_t N, int64_t K, const uint16_t* Ap, const BPacker& B,
                 int64_t n_off, float* C, int64_t ldc, bool accumulate) {
  if (M <= 0 || N <= 0) return;
  amx::configure_16x64();
  range_amx(M, N, K, Ap, B, n_off, C, ldc, accumulate);
  _tile_release();
}

}  // namespace

bool bf16_amx_available() {
  static const bool ok = request_amx();  // thread-safe one-time initialisation
  return ok;
}

// sgemm_bf16_serial / sgemm_bf16 on AMX (bf16_amx_available() checked by the caller).
static void amx_serial(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                       const BPacker& B, float* C, int64_t ldc, bool accumulate) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) return zero_c(M, N, C, ldc, accumulate);
  const int64_t kp = (K + 31) / 32 * 32, mp = (M + 31) / 32 * 32;
  Buffer<uint16_t>& a = scratch().a;
  if (a.size() < (size_t)(mp * kp)) a.resize((size_t)(mp * kp));
  pack_a_rows(A, lda, M, K, 0, mp, a.data());
  range_tiles(M, N, K, a.data(), B, 0, C, ldc, accumulate);
}

static void amx_parallel(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                         const BPacker& B, float* C, int64_t ldc, bool accumulate) {
  const int nt = cpu::threads();
  if (nt == 1 || omp_in_parallel() || M * N * K < (1 << 20)) {
    amx_serial(M, N, K, A, lda, B, C, ldc, accumulate);
    return;
  }
  if (M <= 0 || N <= 0) return;
  if (K <= 0) return zero_c(M, N, C, ldc, accumulate);
  // A converted once (rows split over the threads), then N split when every
  // thread gets at least two panels, else M (32-row slivers).
  const int64_t kp = (K + 31) / 32 * 32, mp = (M + 31) / 32 * 32;
  Buffer<uint16_t>& a = shared_a();
  if (a.size() < (size_t)(mp * kp)) a.resize((size_t)(mp * kp));
  uint16_t* ap = a.data();
  const bool split_n = N >= (int64_t)nt * kNR * 2;
#pragma omp parallel num_threads(nt)
  {
    int64_t b, e;
    const int t = omp_get_thread_num(), T = omp_get_num_threads();
    cpu::split_range(mp, T, t, 32, &b, &e);
    pack_a_rows(A, lda, M, K, b, e, ap);
#pragma omp barrier
    if (split_n) {
      cpu::split_range(N, T, t, kNR, &b, &e);
      if (b < e) range_tiles(M, e - b, K, ap, B, b, C + b, ldc, accumulate);
    } else {
      cpu::split_range(M, T, t, 32, &b, &e);
      if (b < e) range_tiles(e - b, N, K, ap + b * kp, B, 0, C + b * ldc, ldc, accumulate);
    }
  }
}

static void amx_pack_b16(int64_t N, int64_t K, const BPacker& B, PackedB16* out) {
  const int64_t kp = (K + 31) / 32 * 32, np = (N + 31) / 32;
  out->N = N;
  out->K = K;
  out->pairs = false;
  if (out->data.size() < (size_t)(np * 32 * kp)) out->data.resize((size_t)(np * 32 * kp));
  static thread_local Buffer<float> panel;
  if (panel.size() < (size_t)(kp * kNR)) panel.resize((size_t)(kp * kNR));
  for (int64_t p = 0; p < np; ++p) {
    if (K > 0) pack_b_f32(B, 0, (int)K, p * 32, (int)std::min<int64_t>(32, N - p * 32), panel.data());
    panel_to_vnni(panel.data(), (int)K, out->data.data() + p * 32 * kp);
  }
}

static void amx_b16_serial(int64_t M, const float* A, int64_t lda, const PackedB16& B, float* C,
                           int64_t ldc, bool accumulate) {
  const int64_t N = B.N, K = B.K;
  const int64_t kp = (K + 31) / 32 * 32, mp = (M + 31) / 32 * 32;
  const int ks = (int)(kp / 32);
  Buffer<uint16_t>& a = scratch().a;
  if (a.size() < (size_t)(mp * kp)) a.resize((size_t)(mp * kp));
  pack_a_rows(A, lda, M, K, 0, mp, a.data());
  amx::configure_16x64();
  for (int64_t jr = 0; jr < N; jr += 32) {
    const int nr = (int)std::min<int64_t>(32, N - jr);
    const uint16_t* bp = B.data.data() + jr * kp;
    for (int64_t ir = 0; ir < M; ir += 32) {
      const int mr = (int)std::min<int64_t>(32, M - ir);
      const uint16_t* ap = a.data() + ir * kp;
      if (mr == 32 && nr == 32) micro_32x32(ks, ap, (int64_t)ks * 512, bp, C + ir * ldc + jr, ldc, accumulate);
      else micro_edge(ks, ap, (int64_t)ks * 512, bp, C + ir * ldc + jr, ldc, mr, nr, accumulate);
    }
  }
  _tile_release();
}

void pack_b16_split(int64_t N, int64_t K, const BPacker& B, PackedB16Split* out) {
  const int64_t kp = (K + 31) / 32 * 32, np = (N + 31) / 32;
  for (PackedB16* p : {&out->hi, &out->lo}) {
    p->N = N;
    p->K = K;
    if (p->data.size() < (size_t)(np * 32 * kp)) p->data.resize((size_t)(np * 32 * kp));
  }
  static thread_local Buffer<float> panel;
  if (panel.size() < (size_t)(kp * kNR)) panel.resize((size_t)(kp * kNR));
  for (int64_t p = 0; p < np; ++p) {
    if (K > 0) pack_b_f32(B, 0, (int)K, p * 32, (int)std::min<int64_t>(32, N - p * 32), panel.data());
    panel_to_vnni(panel.data(), (int)K, out->hi.data.data() + p * 32 * kp, out->lo.data.data() + p * 32 * kp);
  }
}

void sgemm_b16_split_serial(int64_t M, int64_t n, int64_t k, const float* A, int64_t lda,
                            const PackedB16Split& B, float* C, int64_t ldc) {
  QVL_ASSERT(n <= B.hi.N && k <= B.hi.K);
  if (M <= 0 || n <= 0) return;
  if (k <= 0) return zero_c(M, n, C, ldc, false);
  if (!bf16_amx_available()) return b16_split_scalar(M, n, k, A, lda, B, C, ldc);
  const int64_t kpb = (B.hi.K + 31) / 32 * 32, kpa = (k + 31) / 32 * 32, mp = (M + 31) / 32 * 32;
  const int ks = (int)(kpa / 32);
  Scratch& sc = scratch();
  if (sc.a.size() < (size_t)(mp * kpa)) sc.a.resize((size_t)(mp * kpa));
  if (sc.a2.size() < (size_t)(mp * kpa)) sc.a2.resize((size_t)(mp * kpa));
  pack_a_rows(A, lda, M, k, 0, mp, sc.a.data(), sc.a2.data());
  amx::configure_16x64();
  alignas(64) float t[32 * 32];
  for (int64_t jr = 0; jr < n; jr += 32) {
    const int nr = (int)std::min<int64_t>(32, n - jr);
    const uint16_t *bh = B.hi.data.data() + jr * kpb, *bl = B.lo.data.data() + jr * kpb;
    for (int64_t ir = 0; ir < M; ir += 32) {
      const int mr = (int)std::min<int64_t>(32, M - ir);
      const uint16_t *ah = sc.a.data() + ir * kpa, *al = sc.a2.data() + ir * kpa;
      if (mr == 32 && nr == 32) {
        micro_split_32x32(ks, ah, al, (int64_t)ks * 512, bh, bl, kpb / 32 * 512, C + ir * ldc + jr, ldc);
        continue;
      }
      micro_split_32x32(ks, ah, al, (int64_t)ks * 512, bh, bl, kpb / 32 * 512, t, 32);
      for (int i = 0; i < mr; ++i) std::memcpy(C + (ir + i) * ldc + jr, t + i * 32, (size_t)nr * 4);
    }
  }
  _tile_release();
}

#else  // no AMX: scalar loops for the pre-packed products

bool bf16_amx_available() { return false; }
void pack_b16_split(int64_t N, int64_t K, const BPacker& B, PackedB16Split* out) {
  const int64_t kp = (K + 31) / 32 * 32, np = (N + 31) / 32;
  for (PackedB16* p : {&out->hi, &out->lo}) {
    p->N = N;
    p->K = K;
    if (p->data.size() < (size_t)(np * 32 * kp)) p->data.resize((size_t)(np * 32 * kp));
  }
  std::vector<float> panel((size_t)(std::max<int64_t>(K, 1) * kNR));
  for (int64_t p = 0; p < np; ++p) {
    if (K > 0) pack_b_f32(B, 0, (int)K, p * 32, (int)std::min<int64_t>(32, N - p * 32), panel.data());
    for (int64_t k = 0; k < kp; ++k)
      for (int j = 0; j < 32; ++j) {
        float h = 0.f, l = 0.f;
        if (k < K) split_scalar(panel[k * kNR + j], &h, &l);
        out->hi.data[b16_index(p * 32 + j, k, kp)] = f32_to_bf16(h);
        out->lo.data[b16_index(p * 32 + j, k, kp)] = f32_to_bf16(l);
      }
  }
}

void sgemm_b16_split_serial(int64_t M, int64_t n, int64_t k, const float* A, int64_t lda,
                            const PackedB16Split& B, float* C, int64_t ldc) {
  b16_split_scalar(M, n, k, A, lda, B, C, ldc);
}

#endif

bool bf16_available() {
#if defined(QVL_DP_BF16)
  return true;
#else
  return bf16_amx_available();
#endif
}

// AMX layout when AMX runs, else pair panels for the AVX512-BF16 engine, else
// the AMX layout for the scalar loop.
void pack_b16(int64_t N, int64_t K, const BPacker& B, PackedB16* out) {
#if defined(QVL_AMX_BF16)
  if (bf16_amx_available()) return amx_pack_b16(N, K, B, out);
#endif
#if defined(QVL_DP_BF16)
  dp::pack_pairs(N, K, B, out);
#else
  scalar_pack_b16(N, K, B, out);
#endif
}

void sgemm_b16_serial(int64_t M, const float* A, int64_t lda, const PackedB16& B, float* C,
                      int64_t ldc, bool accumulate, int64_t n, int64_t k) {
  QVL_ASSERT(n <= B.N && k <= B.K);
  const int64_t N = n < 0 ? B.N : n, K = k < 0 ? B.K : k;
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    for (int64_t m = 0; m < M && !accumulate; ++m) std::memset(C + m * ldc, 0, (size_t)N * sizeof(float));
    return;
  }
#if defined(QVL_DP_BF16)
  if (B.pairs) return dp::pairs_serial(M, N, K, A, lda, B, C, ldc, accumulate);
#endif
  QVL_ASSERT(!B.pairs && N == B.N && K == B.K);  // prefixes: pair layout only
#if defined(QVL_AMX_BF16)
  if (bf16_amx_available()) return amx_b16_serial(M, A, lda, B, C, ldc, accumulate);
#endif
  b16_scalar(M, A, lda, B, C, ldc, accumulate);
}

// AMX when it runs, else AVX512-BF16 when compiled in, else the fp32 engine.
void sgemm_bf16_serial(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                       const BPacker& B, float* C, int64_t ldc, bool accumulate) {
#if defined(QVL_AMX_BF16)
  if (bf16_amx_available()) return amx_serial(M, N, K, A, lda, B, C, ldc, accumulate);
#endif
#if defined(QVL_DP_BF16)
  dp::serial(M, N, K, A, lda, B, C, ldc, accumulate);
#else
  sgemm_serial(M, N, K, A, lda, B, C, ldc, accumulate);
#endif
}

void sgemm_bf16(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const BPacker& B,
                float* C, int64_t ldc, bool accumulate) {
#if defined(QVL_AMX_BF16)
  if (bf16_amx_available()) return amx_parallel(M, N, K, A, lda, B, C, ldc, accumulate);
#endif
#if defined(QVL_DP_BF16)
  dp::parallel(M, N, K, A, lda, B, C, ldc, accumulate);
#else
  sgemm(M, N, K, A, lda, B, C, ldc, accumulate);
#endif
}

}  // namespace qvl::gemm
