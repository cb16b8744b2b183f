// Fast linear layer for float weights (F32 / F16 / BF16, [N,K] or [K,N]) and the
// dispatch of linear() on weight kind and M:
//   * M <= kGemvRows: streaming GEMV, threaded over N, weights read once,
//     converted in registers (vcvtph2ps / bf16 shift);
//   * larger M: the fp32 GEMM engine (gemm.h); F16/BF16 weights are converted
//     to fp32 while the engine packs its B panels; with FloatCompute::BF16 the
//     bf16 engine (gemm_bf16.h: AMX or AVX512-BF16) instead, also for Q4/Q8
//     weights (BF16 is the explicit, scoped choice) except when quant_compute()
//     is Int8, whose integer GEMM is as accurate and twice as fast.
// Quantized kinds live in linear_q.cpp.
#include <cstring>
#include <vector>

#include "kernels/base.h"
#include "kernels/cpu.h"
#include "kernels/gemm.h"
#include "kernels/gemm_bf16.h"
#include "kernels/quant.h"
#include "kernels/linear.h"

namespace qvl {

void linear_q(const float* X, int64_t M, const LinearWeight& W, float* Y);  // linear_q.cpp
// Quantized weight dequantized while the GEMM packs it (fp32, or bf16 under
// FloatCompute::BF16 when gemm::bf16_available()), + bias.
void linear_q_dequant_gemm(const float* X, int64_t M, const LinearWeight& W, float* Y);  // linear_q.cpp

namespace {

constexpr int64_t kGemvRows = 4;

// Element loaders: 16 consecutive weights of type T as fp32.
struct F32T { using T = float; };
struct F16T { using T = uint16_t; };
struct BF16T { using T = uint16_t; };

template <class Tag>
inline float load1(const typename Tag::T* p) {
  if constexpr (std::is_same_v<Tag, F32T>) return *p;
  else if constexpr (std::is_same_v<Tag, F16T>) return f16_to_f32(*p);
  else return bf16_to_f32(*p);
}

#if defined(__AVX512F__)
template <class Tag>
inline __m512 load16(const typename Tag::T* p) {
  if constexpr (std::is_same_v<Tag, F32T>) {
    return _mm512_loadu_ps(p);
  } else if constexpr (std::is_same_v<Tag, F16T>) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)p));
  } else {
    __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
  }
}
#endif

// Software prefetch distance of the GEMV weight streams, in bytes ahead of the
// line being read (each stream is short, so the hardware prefetcher alone ramps
// up too late; measured with bench_kernels BM_FloatLinear).
constexpr int64_t kPrefetchBytes = 512;

template <class Tag>
inline void prefetch_ahead(const typename Tag::T* p) {
#if defined(__AVX512F__)
  _mm_prefetch((const char*)p + kPrefetchBytes, _MM_HINT_T0);
#else
  (void)p;
#endif
}

// Y[m, n] (m < MR) = dot(X[m, :K], W[n, :K]) for rows n in [n0, n1) of an [N,K] weight.
// F16/BF16: two independent accumulators per m and a software prefetch.
template <class Tag, int MR>
void gemv_nk(const float* X, const typename Tag::T* W, int64_t K, int64_t N, int64_t n0,
             int64_t n1, float* Y) {
  for (int64_t n = n0; n < n1; ++n) {
    const typename Tag::T* w = W + n * K;
    float acc[MR];
    int64_t k = 0;
#if defined(__AVX512F__)
    __m512 va[MR], vb[MR];
    for (int m = 0; m < MR; ++m) va[m] = vb[m] = _mm512_setzero_ps();
    // Half types only: for fp32 rows (one long sequential stream the hardware
    // prefetcher keeps up with) the plain 16-wide loop below measured faster.
    for (; sizeof(typename Tag::T) == 2 && k + 32 <= K; k += 32) {
      prefetch_ahead<Tag>(w + k);
      __m512 w0 = load16<Tag>(w + k), w1 = load16<Tag>(w + k + 16);
      for (int m = 0; m < MR; ++m) {
        va[m] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(X + m * K + k), va[m]);
        vb[m] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(X + m * K + k + 16), vb[m]);
      }
    }
    for (; k + 16 <= K; k += 16) {
      __m512 wv = load16<Tag>(w + k);
      for (int m = 0; m < MR; ++m) va[m] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(X + m * K + k), va[m]);
    }
    for (int m = 0; m < MR; ++m) acc[m] = _mm512_reduce_add_ps(_mm512_add_ps(va[m], vb[m]));
#else
    for (int m = 0; m < MR; ++m) acc[m] = 0.f;
#endif
    for (; k < K; ++k) {
      float wv = load1<Tag>(w + k);
      for (int m = 0; m < MR; ++m) acc[m] += wv * X[m * K + k];
    }
    for (int m = 0; m < MR; ++m) Y[m * N + n] = acc[m];
  }
}

// Same for a transposed [K,N] weight, columns [n0, n1). K is walked in slabs
// of kSlab rows; within a slab every row is streamed over the whole column
// range (kSlab sequential streams, each prefetched kPrefetchBytes ahead),
// partial sums kept in Y (the thread's Y range stays in L1/L2).
template <class Tag, int MR>
void gemv_kn(const float* X, const typename Tag::T* W, int64_t K, int64_t N, int64_t n0,
             int64_t n1, float* Y) {
  constexpr int64_t kSlab = 16;
  const bool ahead = (n1 - n0) * (int64_t)sizeof(typename Tag::T) <= 16384;
  for (int m = 0; m < MR; ++m)
    for (int64_t n = n0; n < n1; ++n) Y[m * N + n] = 0.f;
  for (int64_t k0 = 0; k0 < K; k0 += kSlab) {
    const int64_t k1 = std::min(K, k0 + kSlab);
    int64_t n = n0;
#if defined(__AVX512F__)
    for (; n + 32 <= n1; n += 32) {
      __m512 acc[MR][2];
      for (int m = 0; m < MR; ++m) {
        acc[m][0] = _mm512_loadu_ps(Y + m * N + n);
        acc[m][1] = _mm512_loadu_ps(Y + m * N + n + 16);
      }
      for (int64_t k = k0; k < k1; ++k) {
        const typename Tag::T* w = W + k * N + n;
        prefetch_ahead<Tag>(w);
        if constexpr (sizeof(typename Tag::T) == 4) prefetch_ahead<Tag>(w + 16);
        // The same columns one slab further down, towards L2: short rows (a
        // thread's share of N) would otherwise start every slab cold. Long
        // rows (lm_head) are streamed well already; a slab ahead would be MBs.
        if (ahead && k + kSlab < K) {
          _mm_prefetch((const char*)(w + kSlab * N), _MM_HINT_T1);
          if constexpr (sizeof(typename Tag::T) == 4) _mm_prefetch((const char*)(w + kSlab * N + 16), _MM_HINT_T1);
        }
        __m512 w0 = load16<Tag>(w), w1 = load16<Tag>(w + 16);
        for (int m = 0; m < MR; ++m) {
          __m512 xv = _mm512_set1_ps(X[m * K + k]);
          acc[m][0] = _mm512_fmadd_ps(w0, xv, acc[m][0]);
          acc[m][1] = _mm512_fmadd_ps(w1, xv, acc[m][1]);
        }
      }
      for (int m = 0; m < MR; ++m) {
        _mm512_storeu_ps(Y + m * N + n, acc[m][0]);
        _mm512_storeu_ps(Y + m * N + n + 16, acc[m][1]);
      }
    }
#endif
    for (; n < n1; ++n)
      for (int64_t k = k0; k < k1; ++k) {
        float wv = load1<Tag>(W + k * N + n);
        for (int m = 0; m < MR; ++m) Y[m * N + n] += wv * X[m * K + k];
      }
  }
}

template <class Tag, int MR>
void gemv_float(const float* X, const LinearWeight& W, float* Y) {
  const auto* w = static_cast<const typename Tag::T*>(W.data);
  int nt = cpu::threads();
#pragma omp parallel num_threads(nt)
  {
    int64_t b, e;
    cpu::split_range(W.N, omp_get_num_threads(), omp_get_thread_num(), 64, &b, &e);
    if (W.transposed) gemv_kn<Tag, MR>(X, w, W.K, W.N, b, e, Y);
    else gemv_nk<Tag, MR>(X, w, W.K, W.N, b, e, Y);
  }
}

template <class Tag>
void gemv_dispatch(const float* X, int64_t M, const LinearWeight& W, float* Y) {
  switch (M) {
    case 1: gemv_float<Tag, 1>(X, W, Y); break;
    case 2: gemv_float<Tag, 2>(X, W, Y); break;
    case 3: gemv_float<Tag, 3>(X, W, Y); break;
    default: gemv_float<Tag, 4>(X, W, Y); break;
  }
}

// Converts count elements of T to fp32.
template <class Tag>
void convert_span(const typename Tag::T* src, int64_t count, float* dst) {
  int64_t i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= count; i += 16) _mm512_storeu_ps(dst + i, load16<Tag>(src + i));
#endif
  for (; i < count; ++i) dst[i] = load1<Tag>(src + i);
}

// B packer for F16/BF16 weights: converts while packing ([N,K] or [K,N]).
template <class Tag>
struct PackHalf : gemm::BPacker {
  const uint16_t* w;
  int64_t N, K;
  bool transposed;
  PackHalf(const uint16_t* w_, int64_t N_, int64_t K_, bool t) : w(w_), N(N_), K(K_), transposed(t) {}
  void pack(int64_t k0, int kc, int64_t n0, int nr, float* dst) const override {
    constexpr int NR = gemm::kNR;
    if (transposed) {  // row k holds columns n contiguously
      for (int k = 0; k < kc; ++k) {
        const uint16_t* src = w + (k0 + k) * N + n0;
        float* d = dst + k * NR;
        if (nr == NR) {
          convert_span<Tag>(src, NR, d);
        } else {
          convert_span<Tag>(src, nr, d);
          for (int j = nr; j < NR; ++j) d[j] = 0.f;
        }
      }
      return;
    }
    float tmp[gemm::kKC];
    for (int j = 0; j < NR; ++j) {
      if (j < nr) convert_span<Tag>(w + (n0 + j) * K + k0, kc, tmp);
      for (int k = 0; k < kc; ++k) dst[k * NR + j] = j < nr ? tmp[k] : 0.f;
    }
  }
};

// Half-precision weight, M large: the GEMM engine converts B while packing.
template <class Tag>
void gemm_half(const float* X, int64_t M, const LinearWeight& W, float* Y) {
  if (!gemm::available()) {  // convert panels to fp32, multiply with OpenBLAS
    const auto* w = static_cast<const uint16_t*>(W.data);
    const int64_t K = W.K, N = W.N;
    const int64_t np = std::max<int64_t>(16, std::min<int64_t>(N, (int64_t)(2 << 20) / (4 * K) / 16 * 16));
    Buffer<float> panel(np * K);
    for (int64_t n0 = 0; n0 < N; n0 += np) {
      int64_t nn = std::min(np, N - n0);
      if (!W.transposed) {
        for (int64_t r = 0; r < nn; ++r) convert_span<Tag>(w + (n0 + r) * K, K, panel.data() + r * K);
        gemm_f32(M, nn, K, X, K, panel.data(), K, true, Y + n0, N);
      } else {
        for (int64_t k = 0; k < K; ++k) convert_span<Tag>(w + k * N + n0, nn, panel.data() + k * nn);
        gemm_f32(M, nn, K, X, K, panel.data(), nn, false, Y + n0, N);
      }
    }
    return;
  }
  PackHalf<Tag> pb(static_cast<const uint16_t*>(W.data), W.N, W.K, W.transposed);
  if (float_compute() == FloatCompute::BF16) gemm::sgemm_bf16(M, W.N, W.K, X, W.K, pb, Y, W.N, false);
  else gemm::sgemm(M, W.N, W.K, X, W.K, pb, Y, W.N, false);
}

void add_bias(const float* bias, int64_t M, int64_t N, float* Y) {
  if (!bias) return;
  cpu::parallel_for_if(M * N > 65536, M, [&](int64_t m) {
    for (int64_t n = 0; n < N; ++n) Y[m * N + n] += bias[n];
  });
}

}  // namespace

static FloatCompute g_float_compute = FloatCompute::F32;

void set_float_compute(FloatCompute mode) { g_float_compute = mode; }
FloatCompute float_compute() { return g_float_compute; }

void linear(const float* X, int64_t M, const LinearWeight& W, float* Y) {
  if (M <= 0 || W.N <= 0) return;
  if (W.kind == WeightKind::Q4 || W.kind == WeightKind::Q8) {
    // bf16 float mode (the vision encoder under --vision-bf16): weights
    // dequantized to bf16 panels, unless the activation mode already allows
    // int8 activations (--act-bits 8), whose VNNI / AMX integer GEMM is the
    // same accuracy class (≈2^−8) at twice the bf16 rate.
    if (M > kGemvRows && float_compute() == FloatCompute::BF16 && gemm::bf16_available() &&
        !(quant_compute() == QuantCompute::Int8 && linear_qi8_available())) {
      linear_q_dequant_gemm(X, M, W, Y);  // bf16 (AMX or AVX512-BF16)
      return;
    }
    linear_q(X, M, W, Y);
    return;
  }
  if (M <= kGemvRows) {
    switch (W.kind) {
      case WeightKind::F32: gemv_dispatch<F32T>(X, M, W, Y); break;
      case WeightKind::F16: gemv_dispatch<F16T>(X, M, W, Y); break;
      default: gemv_dispatch<BF16T>(X, M, W, Y); break;
    }
  } else if (W.kind == WeightKind::F32) {
    const auto* w = static_cast<const float*>(W.data);
    gemm_f32(M, W.N, W.K, X, W.K, w, W.transposed ? W.N : W.K, !W.transposed, Y, W.N);
  } else if (W.kind == WeightKind::F16) {
    gemm_half<F16T>(X, M, W, Y);
  } else {
    gemm_half<BF16T>(X, M, W, Y);
  }
  add_bias(W.bias, M, W.N, Y);
}

}  // namespace qvl
