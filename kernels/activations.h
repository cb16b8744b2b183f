// Element-wise activations and softmax.
#pragma once
#include <cstdint>

namespace qvl {

// SwiGLU: out[i] = silu(gate[i]) * up[i], silu(v) = v / (1 + e^-v). n elements.
void swiglu(const float* gate, const float* up, float* out, int64_t n);
void swiglu_ref(const float* gate, const float* up, float* out, int64_t n);

// GELU, tanh approximation (gelu_pytorch_tanh), in place on n elements:
// 0.5·v·(1 + tanh(√(2/π)·(v + 0.044715·v³))). The fast version evaluates the
// identical v / (1 + e^{−2u}) with a vector exp (≈2 ulp).
void gelu_tanh(float* x, int64_t n);
void gelu_tanh_ref(float* x, int64_t n);

// GELU exact: 0.5·v·(1 + erf(v/√2)), in place. The fast version writes
// 1 + erf(v/√2) as erfc(−v/√2) with a rational-exp erfc (relative error
// < 1.2e−7); |fast − ref| ≤ 5e−7·max(|v|, 1) (checked in the unit test).
void gelu_erf(float* x, int64_t n);
void gelu_erf_ref(float* x, int64_t n);

// Numerically stable softmax over each row of x [rows, n], in place
// (p = e^{x − max} / Σ e^{x − max}; −inf entries give exactly 0).
void softmax(float* x, int64_t rows, int64_t n);
void softmax_ref(float* x, int64_t rows, int64_t n);

// y[i] += x[i]
void add_inplace(float* y, const float* x, int64_t n);

}  // namespace qvl
