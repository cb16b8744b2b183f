// Quantized linear (MatMulNBits Q4/Q8 weights × quantized activations) on
// Intel AMX tiles, for prefill (M > 4). Same numerics as the AVX-512 VNNI path
// (linear_qi8.cpp, schemes documented in linear.h): per row and weight block
// x ≈ dx_b·xi, exact integer dot products, y = Σ_b s_b·dx_b·Σ_k (q−zp)·xi (+bias).
// Compiled only with __AMX_TILE__ && __AMX_INT8__; enabled at runtime only when
// the kernel grants the AMX tile-data permission (arch_prctl), otherwise every
// entry point returns false and the caller keeps its AVX-512 path.
#pragma once
#include <cstdint>

#include "kernels/linear.h"

namespace qvl {

// AMX compiled in AND permission granted (requested once, thread-safe).
bool amx_available();

// Process-wide switch (default on): off makes linear_q_amx return false, so
// benchmarks and tests can reach the AVX-512 VNNI path through linear_quant.
void set_amx_enabled(bool on);
bool amx_enabled();

// Fewest activation rows for which linear_q_amx beats the AVX-512 paths
// (measured, Q4 block 32, K 2048 → N 6144, CPU time at 1 thread): Int8 against
// the VNNI panel GEMM (linear_qgemm.cpp, M ≥ 16) crosses over at M ≈ 32 (M 16:
// 2.25 vs 2.04 ms, M 32: 2.96 vs 2.93 ms, M 128: 7.3 vs 9.0 ms); Int16 at
// M ≈ 12-16 (M 12: 2.6 vs 3.0 ms, M 16: 2.8 vs 2.8 ms). Below, unpacking each
// weight panel costs more than the VNNI pass. linear_q_amx accepts any M ≥ 1.
inline int amx_min_rows(int act_bits) { return act_bits == 16 ? 16 : 32; }

// Y[M,N] = X[M,K]·Wᵀ (+bias) for a Q4/Q8 weight with quantized activations on AMX.
// act_bits 8: the Int8 scheme; 16: the Int16 scheme (xi = 256·h + l, two tdp per tile pair).
// Returns false (and does nothing) when AMX is not compiled in / not permitted at runtime
// / switched off, or for shapes it does not handle (bits not 4/8, block size not a power
// of two in [16, 256], K = 0), so the caller falls back to the AVX-512 path.
bool linear_q_amx(const float* X, int64_t M, const LinearWeight& W, float* Y, int act_bits);

}  // namespace qvl
