// Quantized linear (MatMulNBits Q4/Q8 weights) for prefill on AMX bf16 with
// split operands: no activation quantization and no per-block epilogue.
//   w = (q − zp)·s (fp32) is split into two bf16, w = w_hi + w_lo + r_w with
//   |r_w| ≤ 2^−18·|w| (8 + 8 significant bits; exact for fp16 scales, whose
//   products with 4-bit q have ≤ 15 significant bits); x = x_hi + x_lo + r_x
//   likewise. tdpbf16ps multiplies bf16 pairs exactly and accumulates in fp32
//   over the whole K, so the per-block scale is already inside each product.
//     terms 1: Y = x_hi·w_hi                     — both rounded to bf16:
//              |Y − X·Wᵀ| ≤ (2^−8 + 2^−18 + γ_K)·Σ_k|x_k||w_k|, per element below
//              the Int8 scheme's max|x_block|/254·|w| (1/254 > 2^−8 + 2^−18)
//     terms 2: Y = x_hi·(w_hi + w_lo)            — the file's weights, activations
//              rounded to bf16: |Y − X·Wᵀ| ≤ (2^−9 + 2^−17 + γ_K)·Σ_k|x_k||w_k|
//     terms 3: Y = x_hi·(w_hi + w_lo) + x_lo·w_hi — x_lo·w_lo (≤ 2^−18) and the
//              two residuals (≤ 2^−18 each) dropped:
//              |Y − X·Wᵀ| ≤ (2^−16 + γ_K)·Σ_k|x_k||w_k|
//   (γ_K ≈ K·2^−24, the fp32 summation term; bias added in fp32.)
// For comparison the Int16 scheme's bound is dx/2 = max|x_block|/65278 per
// activation, the Int8 one max|x_block|/254 (linear.h).
// Layout: activations are converted once per call into VNNI B tiles
// (16 k-pairs × 16 rows), weights are unpacked per 32-row panel into A tiles
// (16 rows × 32 k, hi and lo), so C tiles hold [16 weight rows][16 rows of X]
// and are transposed on the way out.
// Compiled only with __AMX_TILE__, __AMX_BF16__ and __AVX512BF16__, run only
// when the OS grants the tile-data permission (amx_available()).
#pragma once
#include <cstdint>

#include "kernels/linear.h"

namespace qvl {

// Y[M,N] = X[M,K]·Wᵀ (+bias) for a Q4/Q8 weight (bits 4|8, block a power of
// two ≥ 16). terms: 1, 2 or 3 (above). Returns false and does nothing when AMX
// bf16 is not available / switched off (set_amx_enabled) or the weight is not
// supported, so the caller keeps another path.
bool linear_q_split(const float* X, int64_t M, const LinearWeight& W, float* Y, int terms);

// Scalar reference of the same arithmetic (operands split and rounded as
// above, products summed in double): the exact target of linear_q_split up to
// fp32 summation order.
void linear_q_split_ref(const float* X, int64_t M, const LinearWeight& W, float* Y, int terms);

}  // namespace qvl
