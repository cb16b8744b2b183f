// Multi-threaded streaming-read bandwidth probe (see bandwidth.h).
#include "engine/bandwidth.h"

#include <immintrin.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "kernels/base.h"

namespace qvl {

namespace {

// Parses a sysfs cache size such as "32K", "2048K", "480M".
size_t parse_size(const std::string& s) {
  if (s.empty()) return 0;
  size_t v = std::strtoull(s.c_str(), nullptr, 10);
  char unit = s.back() == '\n' && s.size() > 1 ? s[s.size() - 2] : s.back();
  if (unit == 'K') v <<= 10;
  if (unit == 'M') v <<= 20;
  if (unit == 'G') v <<= 30;
  return v;
}

// MemAvailable from /proc/meminfo in bytes (0 if unknown).
size_t mem_available() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  size_t kb = 0;
  std::string unit;
  while (f >> key >> kb >> unit)
    if (key == "MemAvailable:") return kb << 10;
  return 0;
}

double seconds_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

size_t last_level_cache_bytes() {
  size_t best = 0;
  for (int i = 0; i < 8; ++i) {
    std::ifstream f("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/size");
    if (!f) continue;
    std::string s;
    f >> s;
    best = std::max(best, parse_size(s));
  }
  return best;
}

size_t default_probe_bytes() {
  size_t want = std::max<size_t>(size_t(1) << 30, 4 * last_level_cache_bytes());
  size_t avail = mem_available();
  if (avail) want = std::min(want, avail / 4);
  return std::max<size_t>(want, size_t(64) << 20) / 4096 * 4096;
}

double stream_read_sum(const float* p, int64_t n) {
  int64_t i = 0;
  double total = 0;
#if defined(__AVX512F__)
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (; i + 64 <= n; i += 64) {
    a0 = _mm512_add_ps(a0, _mm512_loadu_ps(p + i));
    a1 = _mm512_add_ps(a1, _mm512_loadu_ps(p + i + 16));
    a2 = _mm512_add_ps(a2, _mm512_loadu_ps(p + i + 32));
    a3 = _mm512_add_ps(a3, _mm512_loadu_ps(p + i + 48));
  }
  total = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
#elif defined(__AVX2__)
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_loadu_ps(p + i));
    a1 = _mm256_add_ps(a1, _mm256_loadu_ps(p + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_loadu_ps(p + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_loadu_ps(p + i + 24));
  }
  alignas(32) float t[8];
  _mm256_store_ps(t, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  for (float v : t) total += v;
#endif
  for (; i < n; ++i) total += p[i];
  return total;
}

BandwidthResult measure_read_bandwidth(size_t bytes, int threads, int passes) {
  if (bytes == 0) bytes = default_probe_bytes();
  if (threads <= 0) threads = omp_get_max_threads();
  passes = std::max(passes, 1);
  const int64_t n = static_cast<int64_t>(bytes / sizeof(float));
  Buffer<float> buf(static_cast<size_t>(n));
  float* p = buf.data();
  // First touch by the threads that will read (page placement), small values.
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(i & 7) * 0.125f;

  std::vector<double> rates;
  volatile double sink = 0;
  for (int pass = 0; pass < passes + 1; ++pass) {  // pass 0 is a warm-up
    double t0 = seconds_now();
    double sum = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sum)
    {
      int nt = omp_get_num_threads(), t = omp_get_thread_num();
      int64_t chunk = (n / nt + 15) / 16 * 16;
      int64_t lo = std::min<int64_t>(n, t * chunk), hi = std::min<int64_t>(n, lo + chunk);
      sum += stream_read_sum(p + lo, hi - lo);
    }
    double dt = seconds_now() - t0;
    sink = sink + sum;
    if (pass > 0 && dt > 0) rates.push_back(static_cast<double>(n) * sizeof(float) / dt * 1e-9);
  }
  (void)sink;
  BandwidthResult r;
  r.bytes = static_cast<size_t>(n) * sizeof(float);
  r.threads = threads;
  r.passes = static_cast<int>(rates.size());
  std::sort(rates.begin(), rates.end());
  r.gb_s = rates.back();
  r.median_gb_s = rates[rates.size() / 2];
  return r;
}

}  // namespace qvl
