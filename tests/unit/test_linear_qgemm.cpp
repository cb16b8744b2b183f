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
#include "unit/quant_testing.h"

namespace qvl {
namespace {

using test::QWeight;
using test::bounds;
using test::expect_within;
using test::for_each_gemm_case;
using test::make_q;
using test::make_x;

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
  for_each_gemm_case({10, 16, 17, 100, 512}, 2000, [](const LinearWeight& W, int64_t M, int idx, const std::string& tag) {
    check_gemm(W, M, 60 + idx, tag);
  });
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
