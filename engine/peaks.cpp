// Compute-peak probes (see peaks.h). Each probe keeps 12 independent
// accumulator chains per thread so latency never limits issue rate, runs in
// batches until `ms` has passed, and sums the per-thread rates.
#include "engine/peaks.h"

#include <omp.h>

#include <chrono>
#include <cstdint>
#include <cstring>

#include "kernels/linear_qamx.h"

#if defined(__AVX512F__) || defined(__AVX2__) || defined(__AMX_TILE__)
#include <immintrin.h>
#endif

namespace qvl {

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

constexpr int kChains = 12;
constexpr int64_t kBatch = 1 << 14;  // iterations between clock reads

// Runs body(iterations) on every thread for ~ms; returns the summed rate of
// `ops_per_iter` operations per second over all threads.
template <class Body>
double probe(int threads, double ms, double ops_per_iter, Body body) {
  double total = 0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
  {
    body(kBatch / 8);  // warm-up (clocks, AVX-512 license)
    int64_t iters = 0;
    double t0 = now_s(), t = t0;
    while (t - t0 < ms * 1e-3) {
      body(kBatch);
      iters += kBatch;
      t = now_s();
    }
    total += ops_per_iter * (double)iters / (t - t0);
  }
  return total;
}

double fp32_probe(int threads, double ms) {
#if defined(__AVX512F__)
  return probe(threads, ms, kChains * 32.0, [](int64_t n) {
    __m512 a[kChains];
    for (int i = 0; i < kChains; ++i) a[i] = _mm512_set1_ps(1.f + i * 1e-3f);
    const __m512 b = _mm512_set1_ps(0.9999f), c = _mm512_set1_ps(1e-4f);
    for (int64_t k = 0; k < n; ++k)
#pragma GCC unroll 12
      for (int i = 0; i < kChains; ++i) a[i] = _mm512_fmadd_ps(a[i], b, c);
    for (int i = 0; i < kChains; ++i) __asm__ volatile("" ::"v"(a[i]));
  });
#elif defined(__AVX2__) && defined(__FMA__)
  return probe(threads, ms, kChains * 16.0, [](int64_t n) {
    __m256 a[kChains];
    for (int i = 0; i < kChains; ++i) a[i] = _mm256_set1_ps(1.f + i * 1e-3f);
    const __m256 b = _mm256_set1_ps(0.9999f), c = _mm256_set1_ps(1e-4f);
    for (int64_t k = 0; k < n; ++k)
#pragma GCC unroll 12
      for (int i = 0; i < kChains; ++i) a[i] = _mm256_fmadd_ps(a[i], b, c);
    for (int i = 0; i < kChains; ++i) __asm__ volatile("" ::"x"(a[i]));
  });
#else
  return probe(threads, ms, kChains * 2.0, [](int64_t n) {
    volatile float sink;
    float a[kChains];
    for (int i = 0; i < kChains; ++i) a[i] = 1.f + i * 1e-3f;
    for (int64_t k = 0; k < n; ++k)
      for (int i = 0; i < kChains; ++i) a[i] = a[i] * 0.9999f + 1e-4f;
    sink = a[0];
    (void)sink;
  });
#endif
}

double vnni_probe(int threads, double ms) {
#if defined(__AVX512VNNI__)
  return probe(threads, ms, kChains * 128.0, [](int64_t n) {
    __m512i a[kChains];
    for (int i = 0; i < kChains; ++i) a[i] = _mm512_set1_epi32(i);
    const __m512i b = _mm512_set1_epi8(3), c = _mm512_set1_epi8(-2);
    for (int64_t k = 0; k < n; ++k)
#pragma GCC unroll 12
      for (int i = 0; i < kChains; ++i) a[i] = _mm512_dpbusd_epi32(a[i], b, c);
    for (int i = 0; i < kChains; ++i) __asm__ volatile("" ::"v"(a[i]));
  });
#else
  (void)threads, (void)ms;
  return 0;
#endif
}

#if defined(__AMX_TILE__) && defined(__AMX_INT8__) && defined(__AMX_BF16__)
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Four 16×16 accumulators from two A and two B tiles (all 16 rows × 64 bytes):
// one tdp* = 16·16·64 int8 (or 16·16·32 bf16) multiply-adds.
template <bool BF16>
double amx_probe(int threads, double ms) {
  const double ops = BF16 ? 4.0 * 16 * 16 * 32 * 2 : 4.0 * 16 * 16 * 64 * 2;
  return probe(threads, ms, ops / 8.0, [](int64_t n) {  // 8 probe iterations per tile step
    TileConfig cfg;
    for (int t = 0; t < 8; ++t) cfg.rows[t] = 16, cfg.colsb[t] = 64;
    _tile_loadconfig(&cfg);
    alignas(64) static const uint8_t src[16 * 64] = {1, 2, 3};
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_loadd(4, src, 64);
    _tile_loadd(5, src, 64);
    _tile_loadd(6, src, 64);
    _tile_loadd(7, src, 64);
    for (int64_t k = 0; k < n / 8; ++k) {
      if constexpr (BF16) {
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
      } else {
        _tile_dpbusd(0, 4, 6);
        _tile_dpbusd(1, 4, 7);
        _tile_dpbusd(2, 5, 6);
        _tile_dpbusd(3, 5, 7);
      }
    }
    _tile_release();
  });
}
#endif

}  // namespace

ComputePeaks measure_compute_peaks(int threads, double ms) {
  ComputePeaks p;
  p.threads = threads > 0 ? threads : omp_get_max_threads();
  p.fp32_gflops = fp32_probe(p.threads, ms) * 1e-9;
  p.int8_gops = vnni_probe(p.threads, ms) * 1e-9;
#if defined(__AMX_TILE__) && defined(__AMX_INT8__) && defined(__AMX_BF16__)
  if (amx_available()) {
    p.amx_int8_gops = amx_probe<false>(p.threads, ms) * 1e-9;
    p.amx_bf16_gflops = amx_probe<true>(p.threads, ms) * 1e-9;
  }
#endif
  return p;
}

nlohmann::json peaks_json(const ComputePeaks& p) {
  return {{"threads", p.threads},
          {"fp32_gflop_s", p.fp32_gflops},
          {"int8_vnni_gop_s", p.int8_gops},
          {"amx_int8_gop_s", p.amx_int8_gops},
          {"amx_bf16_gflop_s", p.amx_bf16_gflops}};
}

}  // namespace qvl
