// Shared helpers of the quantized-linear engine tests (test_linear_amx.cpp,
// test_linear_qgemm.cpp, test_kernels_linear.cpp): random MatMulNBits weights
// with owned storage, activations with a spread of block magnitudes, the
// derived per-output tolerances and a worst-element check.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <random>
#include <string>
#include <vector>

#include "kernels/dtype.h"
#include "kernels/linear.h"
#include "test_util.h"

namespace qvl::test {

constexpr double kQuantEps = 1.0 / (1 << 24);

struct QWeight {
  std::vector<uint8_t> B, zp;
  std::vector<float> s32, bias;
  std::vector<uint16_t> s16;
  LinearWeight W;
};

inline QWeight make_q(int bits, int64_t N, int64_t K, int bs, bool with_zp, DType sdt, bool bias, uint64_t seed) {
  QWeight q;
  std::mt19937_64 rng(seed);
  const int64_t kb = (K + bs - 1) / bs;
  q.B.resize(N * kb * bs * bits / 8);
  for (auto& b : q.B) b = (uint8_t)rng();
  std::uniform_real_distribution<float> sd(-0.05f, 0.05f);
  q.s32.resize(N * kb);
  q.s16.resize(N * kb);
  for (int64_t i = 0; i < N * kb; ++i) {
    float s = sd(rng);
    if (sdt == DType::F16) q.s16[i] = f32_to_f16(s), s = f16_to_f32(q.s16[i]);
    if (sdt == DType::BF16) q.s16[i] = f32_to_bf16(s), s = bf16_to_f32(q.s16[i]);
    q.s32[i] = s;
  }
  if (with_zp) {
    q.zp.resize(N * ((kb * bits + 7) / 8));
    for (auto& z : q.zp) z = (uint8_t)rng();
  }
  if (bias) q.bias = random_floats(N, seed + 1);
  LinearWeight& W = q.W;
  W.kind = bits == 4 ? WeightKind::Q4 : WeightKind::Q8;
  W.N = N;
  W.K = K;
  W.bits = bits;
  W.block_size = bs;
  W.data = q.B.data();
  W.scales = sdt == DType::F32 ? (const void*)q.s32.data() : (const void*)q.s16.data();
  W.scale_dtype = sdt;
  W.zero_points = with_zp ? q.zp.data() : nullptr;
  W.bias = bias ? q.bias.data() : nullptr;
  return q;
}

// Activations in [-1, 1] with a spread of block magnitudes: every 7th row ×100,
// and the second block of every 5th row all zero (dx = 0).
inline std::vector<float> make_x(int64_t M, int64_t K, int bs, uint64_t seed) {
  std::vector<float> X = random_floats(M * K, seed);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < K; ++k) {
      if (m % 7 == 3) X[m * K + k] *= 100.f;
      if (m % 5 == 1 && k >= bs && k < 2 * bs) X[m * K + k] = 0.f;
    }
  return X;
}

// q, zp, s of element (n, k), read straight from the MatMulNBits layout.
inline void qelem(const LinearWeight& W, int64_t n, int64_t k, int* q, int* z, double* s) {
  const int64_t kb = W.k_blocks(), b = k / W.block_size, blob = W.block_size * W.bits / 8;
  const uint8_t* row = static_cast<const uint8_t*>(W.data) + n * kb * blob;
  *q = W.bits == 8 ? row[k] : (row[k / 2] >> (4 * (k % 2))) & 15;
  *z = 1 << (W.bits - 1);
  if (W.zero_points) {
    const uint8_t* zr = W.zero_points + n * ((kb * W.bits + 7) / 8);
    *z = W.bits == 8 ? zr[b] : (zr[b / 2] >> (4 * (b % 2))) & 15;
  }
  if (W.scale_dtype == DType::F32) *s = static_cast<const float*>(W.scales)[n * kb + b];
  else if (W.scale_dtype == DType::F16) *s = f16_to_f32(static_cast<const uint16_t*>(W.scales)[n * kb + b]);
  else *s = bf16_to_f32(static_cast<const uint16_t*>(W.scales)[n * kb + b]);
}

// Per-output tolerances: vs linear_ref (quantization bound: each activation is
// off by ≤ dx_b/2 = max|x_b|/(2·qmax)) and vs another integer engine computing
// the same integer sums (fp32 rounding of ≤ 2·kb + K/64 + 24 steps).
inline void bounds(const std::vector<float>& X, int64_t M, const LinearWeight& W, double qmax,
            std::vector<double>* ref_tol, std::vector<double>* engine_tol) {
  const int64_t K = W.K, bs = W.block_size, kb = W.k_blocks();
  ref_tol->assign(M * W.N, 0);
  engine_tol->assign(M * W.N, 0);
  std::vector<double> wq(K), wm(K);  // |s·(q−zp)|, |s|·(|q|+|zp|)
  const double rounds = 2.0 * kb + K / 64 + 24;
  for (int64_t n = 0; n < W.N; ++n) {
    for (int64_t k = 0; k < K; ++k) {
      int q, z;
      double s;
      qelem(W, n, k, &q, &z, &s);
      wq[k] = std::fabs(s * (q - z));
      wm[k] = std::fabs(s) * (q + z);
    }
    for (int64_t m = 0; m < M; ++m) {
      const float* x = X.data() + m * K;
      double quant = 0, imag = W.bias ? std::fabs(W.bias[n]) : 0;
      for (int64_t k0 = 0; k0 < K; k0 += bs) {
        const int64_t k1 = std::min(K, k0 + bs);
        double amax = 0;
        for (int64_t k = k0; k < k1; ++k) amax = std::max(amax, (double)std::fabs(x[k]));
        const double half = amax / (2 * qmax);
        for (int64_t k = k0; k < k1; ++k) {
          quant += wq[k] * half;
          imag += wm[k] * (std::fabs(x[k]) + half);
        }
      }
      (*ref_tol)[m * W.N + n] = quant * 1.0001 + (K + 8) * 4 * kQuantEps * imag;
      (*engine_tol)[m * W.N + n] = 2 * rounds * kQuantEps * imag;
    }
  }
}

// Worst |got − want| / tol; fails with the element's coordinates.
inline void expect_within(const std::vector<float>& got, const std::vector<float>& want,
                   const std::vector<double>& tol, int64_t N, const std::string& what) {
  double worst = 0;
  int64_t wi = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double r = std::fabs((double)got[i] - want[i]) / tol[i];
    if (!(r <= worst)) worst = r, wi = (int64_t)i;
  }
  EXPECT_LE(worst, 1.0) << what << ": worst element m=" << wi / N << " n=" << wi % N << " got " << got[wi]
                        << " want " << want[wi] << " tol " << tol[wi];
}

// The shared table of quantized-GEMM cases: bits 4/8 × block 16..256 × zero
// points off/on × the given M values; scale dtype, bias, padded K and N tails
// (37, 53, 69 rows) rotate with the case index idx (1, 2, ...). The weight of
// case idx is make_q(..., seed0 + idx); fn(W, M, idx, tag) runs the checks.
template <class F>
void for_each_gemm_case(std::initializer_list<int64_t> ms, uint64_t seed0, F&& fn) {
  const DType sdts[] = {DType::F32, DType::F16, DType::BF16};
  int idx = 0;
  for (int bits : {4, 8})
    for (int bs : {16, 32, 64, 128, 256})
      for (bool zp : {false, true})
        for (int64_t M : ms) {
          ++idx;
          const DType sdt = sdts[idx % 3];
          const bool bias = idx % 2 == 0;
          const int64_t K = idx % 4 == 0 ? 4 * bs : 3 * bs + bs / 2 + 3;  // padded K mostly
          const int64_t N = M == 512 ? 37 : 37 + 16 * (idx % 3);          // panel / tile tails
          QWeight q = make_q(bits, N, K, bs, zp, sdt, bias, seed0 + idx);
          std::string tag = "Q";  // appended piecewise (GCC 12 warns falsely on "Q" + std::string)
          tag += std::to_string(bits);
          tag += " bs=" + std::to_string(bs);
          tag += zp ? " zp " : " sym ";
          tag += dtype_name(sdt);
          if (bias) tag += " bias";
          fn(q.W, M, idx, tag);
        }
}

}  // namespace qvl::test
