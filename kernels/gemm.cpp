// AVX-512 SGEMM engine (see gemm.h). Goto-style blocking:
//   for each KC-deep slice of K: pack the B block [KC × n-range] in kNR-wide
//   panels (L2 / L3), then for each MC-row block of A: pack A in kMR-row
//   slivers ([KC][kMR], L2), and run the 12×32 micro-kernel over every
//   (sliver, panel) pair; a B panel (KC×32 floats = 32 KB) stays in L1.
// Micro-kernel: 24 zmm accumulators; per k two B loads, 12 broadcasts of A,
// 24 FMAs.
#include "kernels/gemm.h"

#include <cstring>
#include <utility>
#include <vector>

#include "kernels/base.h"
#include "kernels/cpu.h"
#include "kernels/vmath.h"

namespace qvl::gemm {


void PackF32::pack(int64_t k0, int kc, int64_t n0, int nr, float* dst) const {
  if (!trans) {
    for (int k = 0; k < kc; ++k) {
      const float* src = b + (k0 + k) * ldb + n0;
      float* d = dst + k * kNR;
      if (nr == kNR) {
        std::memcpy(d, src, kNR * sizeof(float));
      } else {
        for (int j = 0; j < nr; ++j) d[j] = src[j];
        for (int j = nr; j < kNR; ++j) d[j] = 0.f;
      }
    }
    return;
  }
  // [N, K]: row n0+j holds column j of B.
#if defined(__AVX512F__)
  // 16 rows × 16 k at a time through a register transpose (rows ≥ nr and the
  // k tail are loaded masked as zeros; only k < kc is stored).
  for (int jb = 0; jb < kNR; jb += 16) {
    for (int kk = 0; kk < kc; kk += 16) {
      const int kn = std::min(16, kc - kk);
      const __mmask16 km = kn == 16 ? (__mmask16)0xffff : (__mmask16)((1u << kn) - 1);
      __m512 v[16];
      for (int r = 0; r < 16; ++r)
        v[r] = jb + r < nr ? _mm512_maskz_loadu_ps(km, b + (n0 + jb + r) * ldb + k0 + kk) : _mm512_setzero_ps();
      vmath::transpose16(v);
      for (int c = 0; c < kn; ++c) _mm512_storeu_ps(dst + (kk + c) * kNR + jb, v[c]);
    }
  }
  return;
#endif
  for (int j = 0; j < nr; ++j) {
    const float* src = b + (n0 + j) * ldb + k0;
    for (int k = 0; k < kc; ++k) dst[k * kNR + j] = src[k];
  }
  for (int j = nr; j < kNR; ++j)
    for (int k = 0; k < kc; ++k) dst[k * kNR + j] = 0.f;
}

// Panels over the whole K (both engines).
void pack_b(int64_t N, int64_t K, const BPacker& B, PackedB* out) {
  const int64_t np = (N + kNR - 1) / kNR;
  out->N = N;
  out->K = K;
  grow(out->data, (size_t)(np * std::max<int64_t>(K, 1) * kNR));
  for (int64_t j = 0; j < np; ++j)
    for (int64_t k = 0; k < K; k += kKC)
      B.pack(k, (int)std::min<int64_t>(kKC, K - k), j * kNR, (int)std::min<int64_t>(kNR, N - j * kNR),
             out->data.data() + (j * K + k) * kNR);
}

#if defined(__AVX512F__)

bool available() { return true; }

namespace {

constexpr int64_t kMC = 144;   // rows of A per packed block (12 slivers)
constexpr int64_t kNC = 2048;  // columns of B per packed block

// Packs A[m0.., k0..] (mr ≤ kMR rows, kc deep) as dst[k·kMR + i], rows ≥ mr zero.
// Full slivers: 16 k of the 12 rows at a time through a register transpose
// (rows 12..15 zero, each k's 12 values stored masked).
void pack_a(const float* A, int64_t lda, int mr, int kc, float* dst) {
  if (mr == kMR) {
    __m512 v[16];
    for (int i = kMR; i < 16; ++i) v[i] = _mm512_setzero_ps();
    for (int k = 0; k < kc; k += 16) {
      const int kn = std::min(16, kc - k);
      const __mmask16 km = kn == 16 ? (__mmask16)0xffff : (__mmask16)((1u << kn) - 1);
      for (int i = 0; i < kMR; ++i) v[i] = _mm512_maskz_loadu_ps(km, A + i * lda + k);
      __m512 t[16];
      for (int i = 0; i < 16; ++i) t[i] = v[i];
      vmath::transpose16(t);
      for (int c = 0; c < kn; ++c) _mm512_mask_storeu_ps(dst + (k + c) * kMR, (__mmask16)0x0fff, t[c]);
    }
    return;
  }
  for (int k = 0; k < kc; ++k)
    for (int i = 0; i < kMR; ++i) dst[k * kMR + i] = i < mr ? A[i * lda + k] : 0.f;
}

// C[mr × 32] (+)= Ap[kc][12] · Bp[kc][32]; columns ≥ nr masked.
template <int MR>
void micro(int kc, const float* Ap, const float* Bp, float* C, int64_t ldc, int nr, bool acc) {
  __m512 c0[MR], c1[MR];
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) c0[i] = c1[i] = _mm512_setzero_ps();
  // The C tile (read back on every K slice after the first, mostly not cached)
  // is fetched for ownership while the tile computes (~3000 cycles at kc 256):
  // its loads and stores in store_c_tile otherwise wait on DRAM.
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    _mm_prefetch((const char*)(C + i * ldc), _MM_HINT_ET0);
    _mm_prefetch((const char*)(C + i * ldc + 16), _MM_HINT_ET0);
  }
  for (int k = 0; k < kc; ++k) {
    __m512 b0 = _mm512_load_ps(Bp + k * kNR), b1 = _mm512_load_ps(Bp + k * kNR + 16);
    _mm_prefetch((const char*)(Bp + (k + 8) * kNR), _MM_HINT_T0);
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      __m512 a = _mm512_set1_ps(Ap[k * kMR + i]);
      c0[i] = _mm512_fmadd_ps(a, b0, c0[i]);
      c1[i] = _mm512_fmadd_ps(a, b1, c1[i]);
    }
  }
  vmath::store_c_tile<MR>(c0, c1, C, ldc, nr, acc);
}

using MicroFn = void (*)(int, const float*, const float*, float*, int64_t, int, bool);
constexpr MicroFn kMicro[kMR + 1] = {nullptr,   micro<1>, micro<2>, micro<3>,  micro<4>,
                                     micro<5>,  micro<6>, micro<7>, micro<8>,  micro<9>,
                                     micro<10>, micro<11>, micro<12>};

// Thread-local packing buffers (64-byte aligned, grown on demand).
struct Scratch {
  Buffer<float> a, b;
};
Scratch& scratch() {
  static thread_local Scratch s;
  return s;
}

}  // namespace

namespace {
// Columns [n_off, n_off + N) of B into C[:, 0..N).
void sgemm_range(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const BPacker& B,
                 int64_t n_off, float* C, int64_t ldc, bool accumulate) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate)
      for (int64_t m = 0; m < M; ++m) std::memset(C + m * ldc, 0, N * sizeof(float));
    return;
  }
  Scratch& s = scratch();
  const int64_t nc_max = std::min<int64_t>(kNC, (N + kNR - 1) / kNR * kNR);
  if (s.b.size() < (size_t)(kKC * nc_max)) s.b.resize(kKC * nc_max);
  if (s.a.size() < (size_t)(kKC * kMC)) s.a.resize(kKC * kMC);
  for (int64_t jc = 0; jc < N; jc += kNC) {
    const int64_t nc = std::min(kNC, N - jc);
    for (int64_t pc = 0; pc < K; pc += kKC) {
      const int kc = (int)std::min<int64_t>(kKC, K - pc);
      const bool acc = accumulate || pc > 0;
      for (int64_t jr = 0; jr < nc; jr += kNR)
        B.pack(pc, kc, n_off + jc + jr, (int)std::min<int64_t>(kNR, nc - jr), s.b.data() + jr * kc);
      for (int64_t ic = 0; ic < M; ic += kMC) {
        const int64_t mc = std::min(kMC, M - ic);
        for (int64_t ir = 0; ir < mc; ir += kMR)
          pack_a(A + (ic + ir) * lda + pc, lda, (int)std::min<int64_t>(kMR, mc - ir), kc,
                 s.a.data() + ir * kc);
        for (int64_t jr = 0; jr < nc; jr += kNR) {
          const int nr = (int)std::min<int64_t>(kNR, nc - jr);
          const float* bp = s.b.data() + jr * kc;
          for (int64_t ir = 0; ir < mc; ir += kMR) {
            const int mr = (int)std::min<int64_t>(kMR, mc - ir);
            kMicro[mr](kc, s.a.data() + ir * kc, bp, C + (ic + ir) * ldc + jc + jr, ldc, nr, acc);
          }
        }
      }
    }
  }
}

}  // namespace

void sgemm_serial(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const BPacker& B,
                  float* C, int64_t ldc, bool accumulate) {
  sgemm_range(M, N, K, A, lda, B, 0, C, ldc, accumulate);
}

void sgemm_packed_serial(int64_t M, const float* A, int64_t lda, const PackedB& B, float* C, int64_t ldc,
                         bool accumulate, int64_t n, int64_t k) {
  QVL_ASSERT(n <= B.N && k <= B.K);
  const int64_t N = n < 0 ? B.N : n, K = k < 0 ? B.K : k, ldp = B.K;  // ldp: rows of a packed panel
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    for (int64_t m = 0; m < M && !accumulate; ++m) std::memset(C + m * ldc, 0, N * sizeof(float));
    return;
  }
  Scratch& s = scratch();
  grow(s.a, (size_t)(kKC * kMC));
  for (int64_t pc = 0; pc < K; pc += kKC) {
    const int kc = (int)std::min<int64_t>(kKC, K - pc);
    const bool acc = accumulate || pc > 0;
    for (int64_t ic = 0; ic < M; ic += kMC) {
      const int64_t mc = std::min(kMC, M - ic);
      for (int64_t ir = 0; ir < mc; ir += kMR)
        pack_a(A + (ic + ir) * lda + pc, lda, (int)std::min<int64_t>(kMR, mc - ir), kc, s.a.data() + ir * kc);
      for (int64_t jr = 0; jr < N; jr += kNR) {
        const int nr = (int)std::min<int64_t>(kNR, N - jr);
        const float* bp = B.data.data() + (jr * ldp + pc * kNR);
        for (int64_t ir = 0; ir < mc; ir += kMR)
          kMicro[std::min<int64_t>(kMR, mc - ir)](kc, s.a.data() + ir * kc, bp, C + (ic + ir) * ldc + jr, ldc, nr,
                                                  acc);
      }
    }
  }
}

void sgemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const BPacker& B,
           float* C, int64_t ldc, bool accumulate) {
  const int nt = cpu::threads();
  if (nt == 1 || (int64_t)M * N * K < (1 << 18)) {
    sgemm_serial(M, N, K, A, lda, B, C, ldc, accumulate);
    return;
  }
  // Split N when it is wide enough for every thread to get whole panels, else M.
  const bool split_n = N >= (int64_t)nt * kNR * 2;
#pragma omp parallel num_threads(nt)
  {
    int64_t b, e;
    const int t = omp_get_thread_num(), T = omp_get_num_threads();
    if (split_n) {
      cpu::split_range(N, T, t, kNR, &b, &e);
      if (b < e) sgemm_range(M, e - b, K, A, lda, B, b, C + b, ldc, accumulate);
    } else {
      cpu::split_range(M, T, t, kMR, &b, &e);
      if (b < e) sgemm_serial(e - b, N, K, A + b * lda, lda, B, C + b * ldc, ldc, accumulate);
    }
  }
}

#else

bool available() { return false; }

void sgemm_serial(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const BPacker& B,
                  float* C, int64_t ldc, bool accumulate) {
  std::vector<float> panel((size_t)K * kNR);
  for (int64_t n0 = 0; n0 < N; n0 += kNR) {
    const int nr = (int)std::min<int64_t>(kNR, N - n0);
    for (int64_t k0 = 0; k0 < K; k0 += kKC)
      B.pack(k0, (int)std::min<int64_t>(kKC, K - k0), n0, nr, panel.data() + k0 * kNR);
    for (int64_t m = 0; m < M; ++m)
      for (int j = 0; j < nr; ++j) {
        float s = accumulate ? C[m * ldc + n0 + j] : 0.f;
        for (int64_t k = 0; k < K; ++k) s += A[m * lda + k] * panel[k * kNR + j];
        C[m * ldc + n0 + j] = s;
      }
  }
}

void sgemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const BPacker& B,
           float* C, int64_t ldc, bool accumulate) {
  sgemm_serial(M, N, K, A, lda, B, C, ldc, accumulate);
}

void sgemm_packed_serial(int64_t M, const float* A, int64_t lda, const PackedB& B, float* C, int64_t ldc,
                         bool accumulate, int64_t n, int64_t k) {
  QVL_ASSERT(n <= B.N && k <= B.K);
  const int64_t N = n < 0 ? B.N : n, K = k < 0 ? B.K : k;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t j = 0; j < N; ++j) {
      const float* panel = B.data.data() + (j / kNR) * B.K * kNR + j % kNR;
      float s = accumulate ? C[m * ldc + j] : 0.f;
      for (int64_t i = 0; i < K; ++i) s += A[m * lda + i] * panel[i * kNR];
      C[m * ldc + j] = s;
    }
}

#endif

}  // namespace qvl::gemm
