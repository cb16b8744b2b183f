// ISA selection and small helpers shared by the kernel .cpp files (not part of
// the public kernel interface; nothing outside kernels/ needs it).
// Fast paths are compiled with intrinsics under __AVX512F__ / __AVX2__; every
// kernel keeps a portable scalar fallback so -DQVL_NATIVE=OFF builds run.
#pragma once
#include <omp.h>

#include <algorithm>
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

#if defined(__AVX512F__)
// Horizontal sum of 16 floats.
inline float hsum(__m512 v) { return _mm512_reduce_add_ps(v); }
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
