// Embedding-table row gather.
#pragma once
#include <cstdint>

#include "kernels/dtype.h"

namespace qvl {

// A token table [V, H]. Float tables: data [V, H] in dtype. Quantized tables
// (com.microsoft GatherBlockQuantized, quantize axis = last):
//   * bits 4 in uint8 data [V, H/2] (low nibble first), default zero point 8;
//   * bits 8 in uint8 data [V, H], default zero point 128;
//   * typed INT4 [V, H] (signed, default zero point 0) / UINT4 (default 0) /
//     INT8 (default 0); scales [V, ceil(H/block)] (F32/F16/BF16).
// out[i, h] = (q[id, h] − zp[id, h/block]) · scale[id, h/block].
// Zero points when `zero_points` is null: default_zero_point if non-zero, else
// the format default above. Packed zero points: U8 bits 4 → two per byte, each
// row ceil(nb/2) bytes (low nibble first); typed I4/U4 → two per byte over the
// flat [V, nb] tensor (I4 sign-extended); U8 bits 8 / I8 → one byte each.
struct EmbeddingTable {
  int64_t V = 0, H = 0;
  DType dtype = DType::F32;  // F32/F16/BF16, or U8 (packed `bits`), I4, U4, I8
  int bits = 0;              // quantized: 4 or 8
  int block_size = 0;        // quantized
  const void* data = nullptr;
  const void* scales = nullptr;
  DType scale_dtype = DType::F32;
  const uint8_t* zero_points = nullptr;  // optional
  int default_zero_point = 0;
};

// out[i, :] = table[ids[i], :] as fp32. ids must be < V (checked by caller).
void embedding_gather(const EmbeddingTable& t, const int64_t* ids, int64_t n, float* out);
void embedding_gather_ref(const EmbeddingTable& t, const int64_t* ids, int64_t n, float* out);

}  // namespace qvl
