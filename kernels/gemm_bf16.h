// bf16 GEMM with fp32 accumulation (AMX tdpbf16ps, or AVX512-BF16 vdpbf16ps):
//   C[M, N] (ldc) = A[M, K] (fp32, lda) · B  (+ C when accumulate)
// B comes from a gemm::BPacker (fp32 panels, so F32/F16/BF16/quantized
// weights all work); both operands are rounded to bf16 (round to nearest
// even) while packing, products are exact in fp32 and summed in fp32.
//
// Error: with ã = a(1+δa), b̃ = b(1+δb), |δ| ≤ 2^−8 (bf16 unit roundoff),
//   |C − A·B| ≤ (2·2^−8 + 2^−16 + K·2^−24) · Σ_k |a_k|·|b_k|   (per element)
// i.e. ≈ 2^−7 relative to Σ|a||b| for the operand rounding plus the usual fp32
// summation term. Against the "bf16-rounded operands, exact sum" reference
// only the summation term γ_K·Σ|ã||b̃| remains. (Both instructions treat
// bf16 subnormal inputs as zero.)
//
// Engines: AMX when compiled with __AMX_TILE__/__AMX_BF16__ and the kernel
// grants the XTILEDATA permission; else the AVX512-BF16 engine (vdpbf16ps,
// 12×32 register tiles) when compiled with __AVX512BF16__; else every call
// runs the fp32 engine (gemm::sgemm), i.e. the result is then fp32-exact, not
// bf16-rounded. The pre-packed products below: PackedB16 on AMX or AVX512-BF16,
// PackedB16Split on AMX only.
#pragma once
#include <cstdint>

#include "kernels/base.h"
#include "kernels/gemm.h"

namespace qvl::gemm {

// True when the AMX bf16 path will run (compiled in and permitted by the OS;
// the permission is requested once, thread-safe).
bool bf16_amx_available();

// True when sgemm_bf16 / sgemm_bf16_serial really round to bf16 (AMX or the
// AVX512-BF16 engine runs); false when they fall back to the fp32 engine.
bool bf16_available();

// Single-threaded; safe inside OpenMP regions (on AMX it configures and
// releases the calling thread's tiles).
void sgemm_bf16_serial(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                       const BPacker& B, float* C, int64_t ldc, bool accumulate);

// Split over N (or M when N is narrow) across the OpenMP threads.
void sgemm_bf16(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const BPacker& B,
                float* C, int64_t ldc, bool accumulate);

// B converted once to bf16 in the AMX layout (VNNI pairs, 32-column panels
// over the whole K) for several products with the same B, e.g. attention's
// Kᵀ and V reused by every query block.
// Without AMX, pack_b16 writes the AVX512-BF16 engine's pair panels instead
// (pairs = true: 32-column panels of [ceil(K/2)][32] uint32 pairs).
struct PackedB16 {
  Buffer<uint16_t> data;  // ceil(N/32) panels × [K rounded up to 32] × 32
  int64_t N = 0, K = 0;
  bool pairs = false;
};
void pack_b16(int64_t N, int64_t K, const BPacker& B, PackedB16* out);
// C[M, N] (ldc) (+)= A[M, K] (fp32, lda) · B; serial, safe inside OpenMP regions.
// AMX or the AVX512-BF16 engine (whichever packed B), else a scalar loop with
// the same bf16 rounding.
// n, k < 0 mean B.N, B.K; prefixes n ≤ B.N columns, k ≤ B.K rows only on the
// pair layout (B.pairs).
void sgemm_b16_serial(int64_t M, const float* A, int64_t lda, const PackedB16& B, float* C,
                      int64_t ldc, bool accumulate, int64_t n = -1, int64_t k = -1);

// Split operands: a = a_hi + a_lo, b = b_hi + b_lo (bf16 each, RNE, lo = the
// rounded residual) and C = a_hi·b_hi + a_hi·b_lo + a_lo·b_hi — three AMX
// products, none of them rounded: |C − A·B| ≤ (2^−16 + γ_K)·Σ_k|a_k||b_k|
// (the dropped a_lo·b_lo and the two residuals are ≤ 2^−18 each; derivation in
// linear_qsplit.h). fp32-class accuracy at about a third of the bf16 speed.
struct PackedB16Split {
  PackedB16 hi, lo;
};
void pack_b16_split(int64_t N, int64_t K, const BPacker& B, PackedB16Split* out);
// C[M, n] (ldc) = A[M, k] (fp32, lda) · B[:k, :n] for the leading k ≤ B.K rows and
// n ≤ B.N columns of the packed B (causal attention uses growing prefixes).
// Serial, safe inside OpenMP regions; without AMX a scalar loop, same splits.
void sgemm_b16_split_serial(int64_t M, int64_t n, int64_t k, const float* A, int64_t lda,
                            const PackedB16Split& B, float* C, int64_t ldc);

// Scalar reference: A and B rounded to bf16 (RNE), products summed in double.
void sgemm_bf16_ref(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                    const BPacker& B, float* C, int64_t ldc, bool accumulate);

}  // namespace qvl::gemm
