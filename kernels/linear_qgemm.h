// Quantized prefill GEMM on AVX-512 VNNI without AMX (e.g. AMD Zen 5):
// MatMulNBits Q4/Q8 weights × Int8 / Int16 activations (schemes of linear.h),
// y[m,n] = Σ_b s_b(n)·dx_b(m)·C_b(m,n) + bias[n],  C_b = Σ_{k∈b} (q_k − zp_b)·xi_k.
// Weight panels of 32 rows are unpacked once into the VNNI layout and reused
// over all M rows (kernels/linear_qgemm.cpp). The integer sums are exact, so the
// results equal linear_qi8's register tiles up to fp32 rounding of the epilogue.
#pragma once
#include <cstdint>

#include "kernels/linear.h"

namespace qvl {

// Fewest activation rows for which linear_q_vnni_gemm beats linear_qi8's
// register tiles (measured, bench/bench_qgemm.cpp BM_QGemmThreshold: Q4 block 32,
// K 2048 → N 6144, CPU time at 1 thread, GEMM vs tiles: Int8 M 8: 1.59 vs 1.44 ms,
// M 10: 1.69 vs 1.88 ms, M 16: 2.0 vs 2.9 ms; Int16 M 6: 1.73 vs 1.56 ms, M 8:
// 1.93 vs 2.04 ms). Below, unpacking each weight panel costs more than the tiles'
// whole pass. Used by the dispatch line in linear_qi8().
constexpr int64_t kVnniGemmMinRows = 10;

// Process-wide switch (default on): off makes linear_q_vnni_gemm return false,
// so tests and benchmarks can reach linear_qi8's register tiles at any M.
void set_vnni_gemm_enabled(bool on);
bool vnni_gemm_enabled();

// Y[M,N] = X[M,K]·Wᵀ (+bias) for a Q4/Q8 weight with act_bits 8 (Int8) or 16
// (Int16) activations. Returns false (and writes nothing) when not compiled
// (needs AVX512 VNNI/BW/VL), switched off, or for shapes it does not handle (kind not Q4/Q8,
// block size not a power of two in [16, 256], act_bits not 8/16).
bool linear_q_vnni_gemm(const float* X, int64_t M, const LinearWeight& W, float* Y, int act_bits);

}  // namespace qvl
