// linear_q_vnni_gemm (AVX-512 VNNI panel GEMM, kernels/linear_qgemm.cpp) against
// two references over a table of shapes (bits 4/8, block 16..256, fp32/fp16/bf16
// scales, zero points on/off, bias, K not a multiple of the block, M and N tails,
// act_bits 8 and 16), with AMX switched off so it is the path linear_qi8 takes:
//  1. linear_ref (fp32 dequantize, double accumulation). Bound per output from
//     the activation quantization (each xi·dx is off by at most dx_b/2 with
//     dx_b = max|x_b|/qmax, qmax 127 for Int8 and 32639 for Int16):
//       |Δy| ≤ Σ_b |s_b|·Σ_k |q−zp|·dx_b/2  + fp32 rounding (K+8)·4ε·Σ_k|s|(|q|+|zp|)(|x|+dx/2).
//  2. linear_qi8's register tiles (the GEMM switched off). Both compute the
//     same exact integer sums C_b = Σ(q−zp)·xi and differ only in fp32 rounding
//     of the per-block epilogue and the final sums: n·ε per path with n ≤ 2·kb + K/64 + 24
//     roundings, times the magnitude Σ_b |s_b|·Σ_k (|q|+|zp|)·(|x_k| + dx_b/2).
// ε = 2⁻²⁴. Failures report the worst element. Skipped only without AVX-512 VNNI.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernels/linear.h"
#include "kernels/linear_qamx.h"
#include "kernels/linear_qgemm.h"
#include "test_util.h"

namespace qvl {
namespace {

constexpr double kEps = 1.0 / (1 << 24);

struct QWeight {
  std::vector<uint8_t> B, zp;
  std::vector<float> s32, bias;
  std::vector<uint16_t> s16;
  LinearWeight W;
};

QWeight make_q(int bits, int64_t N, int64_t K, int bs, bool with_zp, DType sdt, bool bias, uint64_t seed) {
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
  if (bias) q.bias = test::random_floats(N, seed + 1);
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
std::vector<float> make_x(int64_t M, int64_t K, int bs, uint64_t seed) {
  std::vector<float> X = test::random_floats(M * K, seed);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < K; ++k) {
      if (m % 7 == 3) X[m * K + k] *= 100.f;
      if (m % 5 == 1 && k >= bs && k < 2 * bs) X[m * K + k] = 0.f;
    }
  return X;
}

// q, zp, s of element (n, k), read straight from the MatMulNBits layout.
void qelem(const LinearWeight& W, int64_t n, int64_t k, int* q, int* z, double* s) {
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

// Per-output tolerances: vs linear_ref (quantization bound) and vs the tiles (rounding).
void bounds(const std::vector<float>& X, int64_t M, const LinearWeight& W, double qmax,
            std::vector<double>* ref_tol, std::vector<double>* tile_tol) {
  const int64_t K = W.K, bs = W.block_size, kb = W.k_blocks();
  ref_tol->assign(M * W.N, 0);
  tile_tol->assign(M * W.N, 0);
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
      (*ref_tol)[m * W.N + n] = quant * 1.0001 + (K + 8) * 4 * kEps * imag;
      (*tile_tol)[m * W.N + n] = 2 * rounds * kEps * imag;
    }
  }
}

// Worst |got − want| / tol; fails with the element's coordinates.
void expect_within(const std::vector<float>& got, const std::vector<float>& want,
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

void check_gemm(const LinearWeight& W, int64_t M, uint64_t seed, const std::string& what) {
  const std::vector<float> X = make_x(M, W.K, W.block_size, seed);
  std::vector<float> want(M * W.N);
  linear_ref(X.data(), M, W, want.data());
  set_amx_enabled(false);
  for (int act_bits : {8, 16}) {
    const std::string tag = what + " act" + std::to_string(act_bits) + " M=" + std::to_string(M) +
                            " N=" + std::to_string(W.N) + " K=" + std::to_string(W.K);
    std::vector<float> got(M * W.N, NAN), tiles(M * W.N, NAN), routed(M * W.N, NAN);
    ASSERT_TRUE(linear_q_vnni_gemm(X.data(), M, W, got.data(), act_bits)) << tag;
    linear_qi8(X.data(), M, W, routed.data(), act_bits);  // the dispatch line
    set_vnni_gemm_enabled(false);
    linear_qi8(X.data(), M, W, tiles.data(), act_bits);
    set_vnni_gemm_enabled(true);
    std::vector<double> ref_tol, tile_tol;
    bounds(X, M, W, act_bits == 16 ? 32639.0 : 127.0, &ref_tol, &tile_tol);
    expect_within(got, want, ref_tol, W.N, tag + " vs linear_ref");
    expect_within(got, tiles, tile_tol, W.N, tag + " vs VNNI tiles");
    if (M >= kVnniGemmMinRows) {
      EXPECT_EQ(got, routed) << tag << ": linear_qi8 must route to the GEMM";
    }
  }
  set_amx_enabled(true);
}

#define REQUIRE_VNNI()                                                                          \
  do {                                                                                          \
    if (!linear_qi8_available()) GTEST_SKIP() << "AVX-512 VNNI not compiled in";                \
  } while (0)

TEST(LinearQGemm, ShapeTable) {
  REQUIRE_VNNI();
  const DType sdts[] = {DType::F32, DType::F16, DType::BF16};
  int idx = 0;
  for (int bits : {4, 8})
    for (int bs : {16, 32, 64, 128, 256})
      for (bool zp : {false, true})
        for (int64_t M : {10, 16, 17, 100, 512}) {
          ++idx;
          const DType sdt = sdts[idx % 3];
          const bool bias = idx % 2 == 0;
          const int64_t K = idx % 4 == 0 ? 4 * bs : 3 * bs + bs / 2 + 3;  // padded K mostly
          const int64_t N = M == 512 ? 37 : 37 + 16 * (idx % 3);          // 37, 53, 69: panel tails
          QWeight q = make_q(bits, N, K, bs, zp, sdt, bias, 2000 + idx);
          check_gemm(q.W, M, 60 + idx, "Q" + std::to_string(bits) + " bs=" + std::to_string(bs) +
                                           (zp ? " zp " : " sym ") + dtype_name(sdt) + (bias ? " bias" : ""));
        }
}

// Several K chunks, many panels per thread, whole 32-row panels and a tail.
TEST(LinearQGemm, LargeShapes) {
  REQUIRE_VNNI();
  for (int bits : {4, 8}) {
    QWeight q = make_q(bits, 200, 2048 + 32 * 3 + 7, 32, bits == 8, DType::F16, true, 77 + bits);
    check_gemm(q.W, 130, 9 + bits, "Q" + std::to_string(bits) + " large");
  }
  QWeight q = make_q(4, 96, 6144, 128, true, DType::BF16, false, 5);
  check_gemm(q.W, 64, 3, "Q4 K=6144 bs=128");
}

// Without AMX, linear_quant sends Int8 and Int16 prefills of any length to the
// GEMM (bit-identical results; Int16 no longer falls back to fp32 above 128 rows).
TEST(LinearQGemm, DispatchFromLinearQuant) {
  REQUIRE_VNNI();
  QWeight q = make_q(4, 64, 512, 32, true, DType::F16, true, 4);
  const int64_t M = 200;
  const std::vector<float> X = make_x(M, 512, 32, 5);
  set_amx_enabled(false);
  for (int act_bits : {8, 16}) {
    std::vector<float> a(M * 64), b(M * 64);
    linear_quant(X.data(), M, q.W, a.data(), act_bits == 16 ? QuantCompute::Int16 : QuantCompute::Int8);
    ASSERT_TRUE(linear_q_vnni_gemm(X.data(), M, q.W, b.data(), act_bits));
    EXPECT_EQ(a, b) << "act_bits " << act_bits;
  }
  set_amx_enabled(true);
}

TEST(LinearQGemm, DeclinesUnsupported) {
  REQUIRE_VNNI();
  QWeight q = make_q(4, 16, 1024, 512, false, DType::F32, false, 1);
  std::vector<float> X(32 * 1024, 1.f), Y(32 * 16, 7.f);
  EXPECT_FALSE(linear_q_vnni_gemm(X.data(), 32, q.W, Y.data(), 8)) << "block 512";
  q.W.block_size = 32;
  EXPECT_FALSE(linear_q_vnni_gemm(X.data(), 32, q.W, Y.data(), 4)) << "act_bits 4";
  q.W.block_size = 48;
  EXPECT_FALSE(linear_q_vnni_gemm(X.data(), 32, q.W, Y.data(), 8)) << "block 48";
  q.W.block_size = 32;
  set_vnni_gemm_enabled(false);
  EXPECT_FALSE(linear_q_vnni_gemm(X.data(), 32, q.W, Y.data(), 8)) << "switched off";
  set_vnni_gemm_enabled(true);
  EXPECT_EQ(Y, std::vector<float>(32 * 16, 7.f)) << "a declined call must not write Y";
}

}  // namespace
}  // namespace qvl
