// MatMulNBits block-format accessors shared by the linear kernels (internal).
// Layout (see linear.h): B uint8 [N, kb, blob], blob = block·bits/8, 4-bit values
// low nibble first; scales [N, kb] in scale_dtype; zero points uint8
// [N, ceil(kb·bits/8)] packed like B (each row starts on a byte), default 2^(bits−1).
#pragma once
#include <cstdint>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "kernels/dtype.h"
#include "kernels/linear.h"

namespace qvl::quant {

// Scale of element i of an [.. ] array of scale_dtype values.
inline float load_scale(const void* scales, DType t, int64_t i) {
  switch (t) {
    case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(scales)[i]);
    case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(scales)[i]);
    default: return static_cast<const float*>(scales)[i];
  }
}

inline int64_t blob_bytes(const LinearWeight& W) { return (int64_t)W.block_size * W.bits / 8; }
inline int64_t zp_row_bytes(const LinearWeight& W) { return (W.k_blocks() * W.bits + 7) / 8; }

// Zero point of (row n, block b).
inline int zero_point(const LinearWeight& W, int64_t n, int64_t b) {
  if (!W.zero_points) return 1 << (W.bits - 1);
  const uint8_t* z = W.zero_points + n * zp_row_bytes(W);
  if (W.bits == 8) return z[b];
  return (z[b >> 1] >> ((b & 1) * 4)) & 0xf;
}

// Raw quantized value of (row n, column k).
inline int qvalue(const LinearWeight& W, int64_t n, int64_t k) {
  const uint8_t* row = static_cast<const uint8_t*>(W.data) + n * W.k_blocks() * blob_bytes(W);
  if (W.bits == 8) return row[k];
  return (row[k >> 1] >> ((k & 1) * 4)) & 0xf;
}

#if defined(__AVX512F__)
// Scales [kb] of row n as fp32 into out (vector conversion; writes kb values).
inline void row_scales(const LinearWeight& W, int64_t n, int64_t kb, float* out) {
  const int64_t i0 = n * kb;
  for (int64_t b = 0; b < kb; b += 16) {
    const __mmask16 mk = kb - b >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (kb - b)) - 1);
    __m512 v;
    if (W.scale_dtype == DType::F32) {
      v = _mm512_maskz_loadu_ps(mk, static_cast<const float*>(W.scales) + i0 + b);
    } else {
      const __m256i h = _mm256_maskz_loadu_epi16(mk, static_cast<const uint16_t*>(W.scales) + i0 + b);
      v = W.scale_dtype == DType::F16 ? _mm512_cvtph_ps(h)
                                      : _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    _mm512_mask_storeu_ps(out + b, mk, v);
  }
}
#endif

}  // namespace qvl::quant
