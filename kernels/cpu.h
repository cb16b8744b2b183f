// ISA selection and small helpers shared by the kernel .cpp files (not part of
// the public kernel interface; nothing outside kernels/ needs it).
// Fast paths are compiled with intrinsics under __AVX512F__ / __AVX2__; every
// kernel keeps a portable scalar fallback so -DQVL_NATIVE=OFF builds run.
#pragma once
#include <omp.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include <algorithm>
#include <atomic>
#include <cstdint>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

// GCC 12 reports the _mm512_reduce_* helpers' internal undefined vectors as
// maybe-uninitialized (false positive); silence it in the kernel files.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace qvl::cpu {

// Worker count the kernels split work over (OpenMP's current setting).
inline int threads() { return std::max(1, omp_get_max_threads()); }

// body(i) for i in [0, n): an OpenMP static loop when `parallel` (and more than one
// thread), else a plain loop. Not `#pragma omp parallel for if (...)`: a region whose
// if-clause is false still builds a one-thread team and ends in a futex wake, a
// syscall of ≈ 1.4 µs on the VMs measured, and decode runs hundreds of such small
// ops per token.
template <class F>
inline void parallel_for_if(bool parallel, int64_t n, F&& body) {
  if (parallel && n > 1 && threads() > 1) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) body(i);
  } else {
    for (int64_t i = 0; i < n; ++i) body(i);
  }
}

// worker(thread index) on every thread of a team; inline at one thread (no one-thread
// team and its closing futex wake, see parallel_for_if).
template <class F>
inline void run_team(F&& worker) {
  if (threads() == 1) {
    worker(0);
  } else {
#pragma omp parallel
    worker(omp_get_thread_num());
  }
}

// Splits [0, n) into `parts` contiguous ranges aligned to `align`; range i.
inline void split_range(int64_t n, int parts, int i, int64_t align, int64_t* begin,
                        int64_t* end) {
  int64_t units = (n + align - 1) / align;
  int64_t per = units / parts, rem = units % parts;
  int64_t b = i * per + std::min<int64_t>(i, rem);
  int64_t e = b + per + (i < rem ? 1 : 0);
  *begin = std::min(n, b * align);
  *end = std::min(n, e * align);
}

// Dynamic work sharing for streaming kernels: [0, n) handed out in chunks of
// `chunk` (a multiple of the caller's alignment) from an atomic counter. A
// thread slowed by another process simply takes fewer chunks, where static
// halves would make every call wait for the slowest core.
class ChunkQueue {
 public:
  ChunkQueue(int64_t n, int64_t chunk) : n_(n), chunk_(std::max<int64_t>(1, chunk)) {}
  // Next range [*b, *e); false when the work is gone.
  bool pop(int64_t* b, int64_t* e) {
    int64_t s = next_.fetch_add(chunk_, std::memory_order_relaxed);
    if (s >= n_) return false;
    *b = s;
    *e = std::min(n_, s + chunk_);
    return true;
  }

 private:
  std::atomic<int64_t> next_{0};
  int64_t n_, chunk_;
};

// Work sharing that keeps each thread on one contiguous stream: [0, n) is
// split into one range per thread (aligned); a thread takes chunks from the
// front of its own range in order, and when that is empty steals chunks from
// the back of the others'. Streaming kernels (decode GEMVs) then read one
// ascending address stream per core, so hardware and software prefetch run
// on across chunk boundaries (with a shared counter the two cores' chunks
// interleave and every chunk starts cold), while a thread slowed by another
// process still ends up doing less. Chunks are multiples of `chunk` except at
// range ends; n < 2^31. At most kMaxParts ranges.
class StealQueue {
 public:
  static constexpr int kMaxParts = 64;
  StealQueue(int64_t n, int64_t chunk, int parts, int64_t align)
      : parts_(std::clamp(parts, 1, kMaxParts)),
        align_(std::max<int64_t>(1, align)),
        chunk_(std::max<int64_t>(1, chunk) + align_ - 1 - (std::max<int64_t>(1, chunk) + align_ - 1) % align_) {
    for (int i = 0; i < parts_; ++i) {
      int64_t b, e;
      split_range(n, parts_, i, align, &b, &e);
      r_[i].v.store(pack(b, e), std::memory_order_relaxed);
    }
  }
  // Next range [*b, *e) for thread `me`; false when all the work is gone.
  bool pop(int me, int64_t* b, int64_t* e) {
    me = std::clamp(me, 0, parts_ - 1);
    if (take(me, true, b, e)) return true;
    for (int k = 1; k < parts_; ++k)
      if (take((me + k) % parts_, false, b, e)) return true;
    return false;
  }

 private:
  static uint64_t pack(int64_t f, int64_t b) { return (uint64_t)(uint32_t)f << 32 | (uint32_t)b; }
  // Front chunk (owner) or back chunk (thief) of range i.
  bool take(int i, bool front, int64_t* b, int64_t* e) {
    uint64_t v = r_[i].v.load(std::memory_order_relaxed);
    for (;;) {
      const int64_t f = (int64_t)(v >> 32), k = (int64_t)(uint32_t)v;
      if (f >= k) return false;
      const int64_t nf = front ? std::min(k, f + chunk_) : f;
      const int64_t nk = front ? k : std::max(f, (k - chunk_ + align_ - 1) / align_ * align_);
      if (r_[i].v.compare_exchange_weak(v, pack(nf, nk), std::memory_order_relaxed)) {
        *b = front ? f : nk;
        *e = front ? nf : k;
        return true;
      }
    }
  }
  struct alignas(64) Range {
    std::atomic<uint64_t> v{0};
  };
  int parts_;
  int64_t align_, chunk_;  // chunk_ rounded up to a multiple of align_
  Range r_[kMaxParts];
};

// Chunk size giving each of `parts` threads about `per_thread` chunks, aligned.
inline int64_t chunk_size(int64_t n, int parts, int64_t align, int per_thread = 8) {
  int64_t c = (n + (int64_t)parts * per_thread - 1) / ((int64_t)parts * per_thread);
  return std::max(align, (c + align - 1) / align * align);
}

// AMD Zen 4 (CPUID family 25 with AVX-512) runs each 512-bit instruction as
// two 256-bit halves, so its in-core cost per byte is twice Zen 5's and kernels
// that are DRAM-bound on Zen 5 can be bound by instruction issue there. Pure
// mapping (tested); half_rate_512() applies it to this CPU.
inline bool half_rate_512_family(bool amd, int family) { return amd && family == 25; }

inline bool half_rate_512() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool v = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return false;
    const bool amd = b == 0x68747541u && d == 0x69746e65u && c == 0x444d4163u;  // "AuthenticAMD"
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    int family = (a >> 8) & 0xf;
    if (family == 0xf) family += (a >> 20) & 0xff;
    return half_rate_512_family(amd, family);
  }();
  return v;
#else
  return false;
#endif
}

#if defined(__AVX512F__)
// Horizontal sum of 16 floats (by value; GCC's _mm512_reduce_add_ps can make
// accumulator arrays live in memory).
inline float hsum(__m512 v) {
  __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v),
                           _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
  __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  b = _mm_add_ps(b, _mm_movehl_ps(b, b));
  b = _mm_add_ss(b, _mm_movehdup_ps(b));
  return _mm_cvtss_f32(b);
}
#endif

#if defined(__AVX2__)
inline float hsum8(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 1));
  return _mm_cvtss_f32(lo);
}
#endif

}  // namespace qvl::cpu
