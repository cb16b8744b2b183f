// Scalar references of the linear layer (element-wise dequantization, double
// accumulation), dequantize_row, LinearWeight::bytes and the fp32 GEMM helper
// (own AVX-512 engine in gemm.cpp, OpenBLAS when that is not compiled in).
#include <cblas.h>

#include <vector>

#include "kernels/base.h"
#include "kernels/gemm.h"
#include "kernels/gemm_bf16.h"
#include "kernels/linear.h"
#include "kernels/quant.h"

namespace qvl {

static int64_t dtype_size(WeightKind k) { return k == WeightKind::F32 ? 4 : 2; }

int64_t LinearWeight::bytes() const {
  if (kind == WeightKind::F32 || kind == WeightKind::F16 || kind == WeightKind::BF16)
    return N * K * dtype_size(kind);
  int64_t kb = k_blocks();
  int64_t b = N * kb * ((int64_t)block_size * bits / 8);
  b += N * kb * (scale_dtype == DType::F32 ? 4 : 2);
  if (zero_points) b += N * ((kb * bits + 7) / 8);
  return b;
}

// W[n, k] of a float-kind weight as fp32.
static float float_at(const LinearWeight& W, int64_t n, int64_t k) {
  int64_t i = W.transposed ? k * W.N + n : n * W.K + k;
  switch (W.kind) {
    case WeightKind::F16: return f16_to_f32(static_cast<const uint16_t*>(W.data)[i]);
    case WeightKind::BF16: return bf16_to_f32(static_cast<const uint16_t*>(W.data)[i]);
    default: return static_cast<const float*>(W.data)[i];
  }
}

void dequantize_row(const LinearWeight& W, int64_t n, float* out) {
  if (W.kind == WeightKind::Q4 || W.kind == WeightKind::Q8) {
    int64_t kb = W.k_blocks();
    for (int64_t k = 0; k < W.K; ++k) {
      int64_t b = k / W.block_size;
      float s = quant::load_scale(W.scales, W.scale_dtype, n * kb + b);
      out[k] = (float)(quant::qvalue(W, n, k) - quant::zero_point(W, n, b)) * s;
    }
    return;
  }
  for (int64_t k = 0; k < W.K; ++k) out[k] = float_at(W, n, k);
}

void linear_ref(const float* X, int64_t M, const LinearWeight& W, float* Y) {
  std::vector<float> w(W.K);
  for (int64_t n = 0; n < W.N; ++n) {
    dequantize_row(W, n, w.data());
    for (int64_t m = 0; m < M; ++m) {
      const float* x = X + m * W.K;
      double acc = W.bias ? W.bias[n] : 0.0;
      for (int64_t k = 0; k < W.K; ++k) acc += (double)x[k] * w[k];
      Y[m * W.N + n] = (float)acc;
    }
  }
}

void gemm_f32(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
              int64_t ldb, bool transB, float* C, int64_t ldc, float beta) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) C[m * ldc + n] = beta == 0.f ? 0.f : C[m * ldc + n] * beta;
    return;
  }
  if (gemm::available()) {
    // qvl's AVX-512 engine (OpenBLAS is the fallback for non-AVX-512 builds).
    if (beta != 0.f && beta != 1.f)
      for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n) C[m * ldc + n] *= beta;
    gemm::PackF32 pb(B, ldb, transB);
    if (float_compute() == FloatCompute::BF16) gemm::sgemm_bf16(M, N, K, A, lda, pb, C, ldc, beta != 0.f);
    else gemm::sgemm(M, N, K, A, lda, pb, C, ldc, beta != 0.f);
    return;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, transB ? CblasTrans : CblasNoTrans, (blasint)M,
              (blasint)N, (blasint)K, 1.f, A, (blasint)lda, B, (blasint)ldb, beta, C,
              (blasint)ldc);
}

}  // namespace qvl
