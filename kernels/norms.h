// Normalizations over the last dimension. All in place-safe (y may equal x).
#pragma once
#include <cstdint>

namespace qvl {

// RMSNorm: y[r,:] = w ⊙ x[r,:] / sqrt(mean(x[r,:]²) + eps). x, y [rows, dim].
void rms_norm(const float* x, const float* w, float* y, int64_t rows, int64_t dim, float eps);
void rms_norm_ref(const float* x, const float* w, float* y, int64_t rows, int64_t dim, float eps);

// LayerNorm: y = (x - mean) / sqrt(var + eps) ⊙ w + b (biased variance). [rows, dim].
void layer_norm(const float* x, const float* w, const float* b, float* y, int64_t rows,
                int64_t dim, float eps);
void layer_norm_ref(const float* x, const float* w, const float* b, float* y, int64_t rows,
                    int64_t dim, float eps);

}  // namespace qvl
