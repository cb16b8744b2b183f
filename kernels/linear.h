// Linear layers: Y[M,N] = X[M,K] · Wᵀ (+ bias), the one convention of qvl.
// W is logically [N, K] (PyTorch Linear: row = output feature). It may be
// stored as
//   * F32 / F16 / BF16, either [N, K] row-major (transposed == false) or
//     [K, N] row-major (transposed == true, the layout of an ONNX MatMul B);
//   * Q4 / Q8: com.microsoft MatMulNBits blocks, B uint8 [N, kb, block*bits/8],
//     scales [N, kb] (F32/F16/BF16), optional packed zero points
//     uint8 [N, ceil(kb*bits/8)] (low nibble first), default zero point
//     2^(bits-1). K is zero-padded to kb*block. w = (q - zp) * scale.
// All pointers are non-owning (usually into an mmap'd weight file).
#pragma once
#include <cstdint>

#include "kernels/dtype.h"

namespace qvl {

enum class WeightKind { F32, F16, BF16, Q4, Q8 };

struct LinearWeight {
  WeightKind kind = WeightKind::F32;
  int64_t N = 0;  // output features
  int64_t K = 0;  // input features
  bool transposed = false;       // float kinds: data is [K, N]
  const void* data = nullptr;    // float kinds: the matrix; Q kinds: B [N, kb, blob]
  int block_size = 0;            // Q kinds
  int bits = 0;                  // Q kinds: 4 or 8
  const void* scales = nullptr;  // Q kinds: [N, kb]
  DType scale_dtype = DType::F32;
  const uint8_t* zero_points = nullptr;  // Q kinds, optional: [N, ceil(kb*bits/8)]
  const float* bias = nullptr;           // optional [N], fp32

  int64_t k_blocks() const { return block_size ? (K + block_size - 1) / block_size : 0; }
  // Bytes of weight data (incl. scales / zero points) one full pass reads.
  int64_t bytes() const;
};

// Y[M, N] = X[M, K] · Wᵀ + bias. X rows are K contiguous floats, Y rows N.
// Threaded with OpenMP; dispatches on W.kind and M (GEMV for M small).
void linear(const float* X, int64_t M, const LinearWeight& W, float* Y);

// How Q4/Q8 weights are multiplied (process-wide setting, default F32; the
// integer modes need AVX-512 VNNI and fall back to F32 without it):
//   Int8:  activations quantized per row and weight block, x ≈ dx·xi with
//          xi = round(127·x / max|x_block|) ∈ [−127, 127], dx = max|x_block|/127;
//          integer dot products (vpdpbusd / AMX), then y = Σ_b s_b·dx_b·Σ(q−zp)·xi.
//          Error per output ≤ Σ_b |s_b|·Σ_k|q−zp|·dx_b/2 (≈1e−3 relative, the
//          same scheme as ONNX Runtime's accuracy_level 4).
//   Int16: the same with 15-bit activations, xi = round(32639·x / max|x_block|),
//          split as xi = 256·h + l with h, l ∈ [−128, 127] (two int8 planes, two
//          integer dot products); error bound as above with dx = max|x_block|/32639
//          (257× smaller than Int8).
// Integer engines by rows M: register tiles (decode, M small), the VNNI panel
// GEMM (linear_qgemm.h, M ≥ 10), AMX tiles where available (linear_qamx.h,
// M ≥ 32 Int8 / 16 Int16); all compute the same integer sums. With AMX-BF16,
// prefill from 64 rows (Int16) / 32 rows (Int8) instead runs the split-bf16
// engine (linear_qsplit.h), whose error is below each mode's integer bound:
// Int16 → 3 products, ≤ 2^−16·Σ|x||w|; Int8 → activations and weights rounded
// to bf16, ≤ (2^−8 + 2^−18)·|x||w| per term (< max|x_block|/254·|w|).
//   F32:   weights dequantized in registers, fp32 activations (fp32 rounding only).
enum class QuantCompute { Int8, F32, Int16 };
void set_quant_compute(QuantCompute mode);
QuantCompute quant_compute();
// linear() for a Q4/Q8 weight with an explicit compute mode (Int8 falls back
// to F32 without VNNI).
void linear_quant(const float* X, int64_t M, const LinearWeight& W, float* Y, QuantCompute mode);

// The AVX-512 VNNI integer path itself (act_bits 8 = Int8, 16 = Int16), for
// tests and benchmarks; M > 4 goes to AMX unless set_amx_enabled(false)
// (linear_qamx.h). Needs linear_qi8_available().
bool linear_qi8_available();
void linear_qi8(const float* X, int64_t M, const LinearWeight& W, float* Y, int act_bits);
// Order in which int8-activation decode (M = 1) reads its weight rows: tiles of
// 8 interleaved rows with software prefetch, or one row after the other (a
// single forward stream, faster on Zen 4's half-rate 512-bit units). Auto picks
// by CPU; the explicit orders are for tests and A/B benchmarks. Same results.
enum class DecodeRowOrder { Auto, Tiles, Stream };
void set_decode_row_order(DecodeRowOrder order);

// How float-weight GEMMs (M > 4 rows) multiply (process-wide setting, default
// F32). BF16: both operands rounded to bf16, fp32 accumulation on AMX or
// AVX512-BF16 (kernels/gemm_bf16.h, relative error ≈ 2^−7 of Σ|x||w| per output); used by
// the M > 4 paths of linear() for F32/F16/BF16 weights, by Q4/Q8 weights
// (dequantized panels rounded to bf16; takes precedence over quant_compute(),
// 3-5x faster than the Int16 path at the vision shapes on AMX, about even with
// it on AVX512-BF16), and by gemm_f32. The GEMV path (M ≤ 4) is unchanged.
// Without either engine BF16 is ignored (every path behaves as with F32).
enum class FloatCompute { F32, BF16 };
void set_float_compute(FloatCompute mode);
FloatCompute float_compute();
// Sets the mode for one scope, restores the previous one on exit.
class ScopedFloatCompute {
 public:
  explicit ScopedFloatCompute(FloatCompute mode) : prev_(float_compute()) { set_float_compute(mode); }
  ~ScopedFloatCompute() { set_float_compute(prev_); }
  ScopedFloatCompute(const ScopedFloatCompute&) = delete;
  ScopedFloatCompute& operator=(const ScopedFloatCompute&) = delete;

 private:
  FloatCompute prev_;
};

// Several linears over the same input, Y[i] = X · W[i]ᵀ (q/k/v, gate/up).
// Decode-sized M with quantized weights in an integer mode share one
// activation quantization and one threaded pass over all their rows; any
// other case runs linear() per weight. Same results as separate linear() calls.
void linear_multi(const float* X, int64_t M, const LinearWeight* const* W, float* const* Y, int n);

// Scalar reference: dequantize element by element, accumulate in double.
void linear_ref(const float* X, int64_t M, const LinearWeight& W, float* Y);

// Dequantize/convert row n of W (K values) to fp32.
void dequantize_row(const LinearWeight& W, int64_t n, float* out);

// Plain fp32 GEMM helper: C[M,N] = A[M,K] · B (B [K,N] if !transB else [N,K]),
// C = A·B + beta·C (beta 0 overwrites). Threaded; runs qvl's AVX-512 engine
// (kernels/gemm.h, also usable with custom B packers) or OpenBLAS without it.
// Used by the F32 linear path (M > 4).
void gemm_f32(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
              int64_t ldb, bool transB, float* C, int64_t ldc, float beta = 0.f);

}  // namespace qvl
