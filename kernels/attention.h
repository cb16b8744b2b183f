// Scaled dot-product attention, softmax in fp32.
#pragma once
#include <cstdint>

#include "kernels/dtype.h"

namespace qvl {

// One layer's K / V cache blocks, each [Hkv, ctx, D], as fp32 or fp16.
struct KVBlock {
  const void* k = nullptr;
  const void* v = nullptr;
  int64_t ctx = 0;
  DType dtype = DType::F32;  // F32 or F16
};

// How prefill attention (S > 4) multiplies: F32 = fp32 GEMMs; Split = Q·Kᵀ and
// P·V as split-bf16 products on AMX (gemm_bf16.h PackedB16Split, 3 products:
// ≤ 2^−16·Σ|a||b| per score / output, fp32 softmax between), the fp32 path
// where AMX-BF16 is missing; BF16 = both products with operands rounded to
// bf16 (relative 2^−8 each, fp32 sums and softmax) on the bf16 engine (AMX or
// AVX512-BF16), the fp32 path where neither exists. Decode (S ≤ 4) is always
// fp32.
enum class AttnPrecision { F32, Split, BF16 };

// Causal GQA over a KV cache.
//   q      [S, Hq, D] (row stride q_stride floats), the S new tokens at cache
//          positions past .. past+S−1 (their K/V already written to the cache)
//   kcache [Hkv, ctx, D], vcache [Hkv, ctx, D] for one layer
//   out    [S, Hq, D] (row stride out_stride)
// Query head h reads KV head h / (Hq/Hkv). Token i sees cache positions
// 0 .. past+i. scale usually D^−0.5.
void attention_causal(const float* q, int64_t q_stride, int64_t S, int Hq, int Hkv, int D,
                      const float* kcache, const float* vcache, int64_t ctx, int64_t past,
                      float scale, float* out, int64_t out_stride, AttnPrecision prec = AttnPrecision::F32);
void attention_causal_ref(const float* q, int64_t q_stride, int64_t S, int Hq, int Hkv, int D,
                          const float* kcache, const float* vcache, int64_t ctx, int64_t past,
                          float scale, float* out, int64_t out_stride);
// The same over an fp32 or fp16 cache. fp16: decode reads the halves directly
// (converted in registers); prefill (S > 4) converts the used rows to fp32 once.
void attention_causal(const float* q, int64_t q_stride, int64_t S, int Hq, int Hkv, int D, const KVBlock& kv,
                      int64_t past, float scale, float* out, int64_t out_stride,
                      AttnPrecision prec = AttnPrecision::F32);
void attention_causal_ref(const float* q, int64_t q_stride, int64_t S, int Hq, int Hkv, int D,
                          const KVBlock& kv, int64_t past, float scale, float* out, int64_t out_stride);

// Bidirectional attention restricted to segments (vision: one per image / per
// temporal patch). q, k, v are [N, H, D] with row stride `stride` (e.g. the
// packed qkv output, 3·H·D). cu_seqlens[0..nseg] are segment boundaries
// (cu[0] = 0, cu[nseg] = N). out [N, H, D] packed (stride H·D).
void attention_segments(const float* q, const float* k, const float* v, int64_t stride,
                        int64_t N, int H, int D, const int64_t* cu_seqlens, int nseg,
                        float scale, float* out);
void attention_segments_ref(const float* q, const float* k, const float* v, int64_t stride,
                            int64_t N, int H, int D, const int64_t* cu_seqlens, int nseg,
                            float scale, float* out);

}  // namespace qvl
