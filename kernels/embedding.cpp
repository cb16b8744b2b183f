// Embedding gather: float tables (F32/F16/BF16) and GatherBlockQuantized
// tables (uint8-packed 4/8-bit, typed INT4/UINT4/INT8), blocks along H:
//   out[i, h] = (q[id, h] − zp[id, h/block]) · scale[id, h/block].
// Zero points when EmbeddingTable::zero_points is null: default_zero_point if
// non-zero, else the format default (U8 bits 4 → 8, U8 bits 8 → 128, I4/U4/I8 → 0).
// Packed zero points: U8 bits 4 two per byte, each row ceil(nb/2) bytes;
// typed I4/U4 two per byte over the flat [V, nb] tensor (low nibble first, I4
// sign-extended); U8 bits 8 / I8 one byte each.
#include <cstring>

#include "kernels/base.h"
#include "kernels/cpu.h"
#include "kernels/embedding.h"

namespace qvl {

namespace {

bool is_float(const EmbeddingTable& t) {
  return t.dtype == DType::F32 || t.dtype == DType::F16 || t.dtype == DType::BF16;
}

// 4-bit nibble i of a packed byte array (low nibble first), optionally signed.
inline int nibble(const uint8_t* p, int64_t i, bool is_signed) {
  int v = (p[i >> 1] >> ((i & 1) * 4)) & 0xf;
  return is_signed && v >= 8 ? v - 16 : v;
}

inline float scale_at(const EmbeddingTable& t, int64_t i) {
  switch (t.scale_dtype) {
    case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(t.scales)[i]);
    case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(t.scales)[i]);
    default: return static_cast<const float*>(t.scales)[i];
  }
}

int64_t num_blocks(const EmbeddingTable& t) { return (t.H + t.block_size - 1) / t.block_size; }

int zero_point(const EmbeddingTable& t, int64_t v, int64_t b) {
  const int64_t nb = num_blocks(t);
  if (!t.zero_points) {
    if (t.default_zero_point) return t.default_zero_point;
    if (t.dtype == DType::U8) return t.bits == 4 ? 8 : 128;
    return 0;
  }
  switch (t.dtype) {
    case DType::U8:
      if (t.bits == 4) return nibble(t.zero_points + v * ((nb + 1) / 2), b, false);
      return t.zero_points[v * nb + b];
    case DType::I4: return nibble(t.zero_points, v * nb + b, true);
    case DType::U4: return nibble(t.zero_points, v * nb + b, false);
    case DType::I8: return (int8_t)t.zero_points[v * nb + b];
    default: return 0;
  }
}

// Raw quantized value of (v, h).
inline int qvalue(const EmbeddingTable& t, int64_t v, int64_t h) {
  const auto* d = static_cast<const uint8_t*>(t.data);
  switch (t.dtype) {
    case DType::U8: return t.bits == 4 ? nibble(d, v * t.H + h, false) : d[v * t.H + h];
    case DType::I4: return nibble(d, v * t.H + h, true);
    case DType::U4: return nibble(d, v * t.H + h, false);
    case DType::I8: return (int8_t)d[v * t.H + h];
    default: return 0;
  }
}

float float_value(const EmbeddingTable& t, int64_t i) {
  switch (t.dtype) {
    case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(t.data)[i]);
    case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(t.data)[i]);
    default: return static_cast<const float*>(t.data)[i];
  }
}

// Row v of a quantized table, block by block (scale and zero point hoisted).
void gather_quant_row(const EmbeddingTable& t, int64_t v, float* out) {
  const int64_t nb = num_blocks(t);
  for (int64_t b = 0; b < nb; ++b) {
    const float s = scale_at(t, v * nb + b);
    const int zp = zero_point(t, v, b);
    const int64_t h1 = std::min(t.H, (b + 1) * t.block_size);
    int64_t h = b * t.block_size;
#if defined(__AVX512F__)
    if (t.dtype == DType::U8 && t.bits == 4 && (t.H % 2) == 0) {
      const uint8_t* p = static_cast<const uint8_t*>(t.data) + (v * t.H + h) / 2;
      const __m512 vs = _mm512_set1_ps(s), vz = _mm512_set1_ps((float)zp);
      const __m128i mask = _mm_set1_epi8(0x0f);
      for (; h + 16 <= h1; h += 16, p += 8) {
        __m128i x = _mm_loadl_epi64((const __m128i*)p);
        __m128i lo = _mm_and_si128(x, mask), hi = _mm_and_si128(_mm_srli_epi16(x, 4), mask);
        __m512 f = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_unpacklo_epi8(lo, hi)));
        _mm512_storeu_ps(out + h, _mm512_mul_ps(_mm512_sub_ps(f, vz), vs));
      }
    }
#endif
    for (; h < h1; ++h) out[h] = (float)(qvalue(t, v, h) - zp) * s;
  }
}

void check_table(const EmbeddingTable& t) {
  QVL_CHECK(is_float(t) || ((t.dtype == DType::U8 || t.dtype == DType::I4 || t.dtype == DType::U4 ||
                             t.dtype == DType::I8) && t.block_size > 0 && t.scales),
            "embedding table: unsupported dtype %s or missing block_size/scales",
            dtype_name(t.dtype));
  QVL_CHECK(t.dtype != DType::U8 || is_float(t) || t.bits == 4 || t.bits == 8,
            "embedding table: uint8 data needs bits 4 or 8 (got %d)", t.bits);
}

}  // namespace

void embedding_gather_ref(const EmbeddingTable& t, const int64_t* ids, int64_t n, float* out) {
  check_table(t);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t v = ids[i];
    for (int64_t h = 0; h < t.H; ++h) {
      if (is_float(t)) {
        out[i * t.H + h] = float_value(t, v * t.H + h);
      } else {
        const int64_t b = h / t.block_size;
        out[i * t.H + h] = (float)((double)(qvalue(t, v, h) - zero_point(t, v, b)) *
                                   scale_at(t, v * num_blocks(t) + b));
      }
    }
  }
}

void embedding_gather(const EmbeddingTable& t, const int64_t* ids, int64_t n, float* out) {
  check_table(t);
  cpu::parallel_for_if(n * t.H >= (1 << 16), n, [&](int64_t i) {
    const int64_t v = ids[i];
    float* o = out + i * t.H;
    if (t.dtype == DType::F32) {
      std::memcpy(o, static_cast<const float*>(t.data) + v * t.H, t.H * sizeof(float));
    } else if (is_float(t)) {
      const auto* src = static_cast<const uint16_t*>(t.data) + v * t.H;
      int64_t h = 0;
#if defined(__AVX512F__)
      for (; h + 16 <= t.H; h += 16) {
        __m256i x = _mm256_loadu_si256((const __m256i*)(src + h));
        __m512 f = t.dtype == DType::F16
                       ? _mm512_cvtph_ps(x)
                       : _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(x), 16));
        _mm512_storeu_ps(o + h, f);
      }
#endif
      for (; h < t.H; ++h) o[h] = t.dtype == DType::F16 ? f16_to_f32(src[h]) : bf16_to_f32(src[h]);
    } else {
      gather_quant_row(t, v, o);
    }
  });
}

}  // namespace qvl
