// linear_q_amx (AMX int8 tiles, kernels/linear_qamx.cpp) against two references
// over a table of shapes (bits 4/8, block 16..256, fp32/fp16/bf16 scales, with
// and without zero points and bias, K not a multiple of the block, M and N tails):
//  1. linear_ref (fp32 dequantize, double accumulation). Bound per output, from
//     the activation quantization (each xi·dx is off by at most dx_b/2 with
//     dx_b = max|x_b|/qmax, qmax 127 for Int8 and 32639 for Int16):
//       |Δy| ≤ Σ_b |s_b|·Σ_k |q−zp|·dx_b/2  + fp32 rounding (K+8)·4ε·Σ_k|s|(|q|+|zp|)|x|.
//  2. the AVX-512 VNNI path (linear_qi8 with AMX switched off). Both compute the
//     same exact integer sums C_b = Σ(q−zp)·xi and differ only in fp32 rounding
//     of the per-block epilogue, so the tolerance is n·ε per path with n the
//     number of roundings (≤ 2·kb + K/64 + 24) times the magnitude
//       Σ_b |s_b|·Σ_k (|q|+|zp|)·(|x_k| + dx_b/2)  (≥ Σ |s|·(|q|+|zp|)·dx·|xi|).
// ε = 2⁻²⁴. Failures report the worst element. Skipped only without AMX.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernels/linear.h"
#include "kernels/linear_qamx.h"
#include "kernels/linear_qsplit.h"
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

void check_amx(const LinearWeight& W, int64_t M, uint64_t seed, const std::string& what) {
  const std::vector<float> X = make_x(M, W.K, W.block_size, seed);
  std::vector<float> want(M * W.N);
  linear_ref(X.data(), M, W, want.data());
  for (int act_bits : {8, 16}) {
    const std::string tag = what + " act" + std::to_string(act_bits) + " M=" + std::to_string(M) +
                            " N=" + std::to_string(W.N) + " K=" + std::to_string(W.K);
    std::vector<float> got(M * W.N, NAN), vnni(M * W.N, NAN);
    ASSERT_TRUE(linear_q_amx(X.data(), M, W, got.data(), act_bits)) << tag;
    set_amx_enabled(false);
    linear_qi8(X.data(), M, W, vnni.data(), act_bits);
    set_amx_enabled(true);
    std::vector<double> ref_tol, vnni_tol;
    bounds(X, M, W, act_bits == 16 ? 32639.0 : 127.0, &ref_tol, &vnni_tol);
    expect_within(got, want, ref_tol, W.N, tag + " vs linear_ref");
    expect_within(got, vnni, vnni_tol, W.N, tag + " vs VNNI");
  }
}

#define REQUIRE_AMX()                                                                        \
  do {                                                                                       \
    if (!amx_available()) GTEST_SKIP() << "AMX not compiled in or arch_prctl permission refused"; \
  } while (0)

TEST(LinearAmx, ShapeTable) {
  REQUIRE_AMX();
  for_each_gemm_case({5, 16, 17, 100, 512}, 1000, [](const LinearWeight& W, int64_t M, int idx, const std::string& tag) {
    check_amx(W, M, 50 + idx, tag);
  });
}

// Full prefill size with several M blocks and many panels per thread.
TEST(LinearAmx, LargeM) {
  REQUIRE_AMX();
  for (int bits : {4, 8}) {
    QWeight q = make_q(bits, 200, 2048 + 32 * 3 + 7, 32, bits == 8, DType::F16, true, 77 + bits);
    check_amx(q.W, 512, 9 + bits, "Q" + std::to_string(bits) + " large");
  }
  QWeight q = make_q(4, 96, 6144, 128, false, DType::F32, false, 5);
  check_amx(q.W, 512, 3, "Q4 K=6144 bs=128");
}

// linear_quant(Int8 / Int16) from amx_min_rows rows on is AMX (bit-identical);
// below it the VNNI path runs (equal to the AMX result only within rounding).
// (Int8 from 32 rows is the split-bf16 engine when the CPU has AMX-BF16.)
TEST(LinearAmx, DispatchFromIntPaths) {
  REQUIRE_AMX();
  QWeight q = make_q(4, 64, 256, 32, true, DType::F32, true, 3);
  for (int act_bits : {8, 16}) {
    const int64_t m0 = amx_min_rows(act_bits);
    for (int64_t M : {m0 - 1, m0, int64_t{33}}) {
      const std::vector<float> X = make_x(M, 256, 32, 4);
      std::vector<float> a(M * 64), b(M * 64), c(M * 64);
      linear_quant(X.data(), M, q.W, a.data(), act_bits == 16 ? QuantCompute::Int16 : QuantCompute::Int8);
      ASSERT_TRUE(linear_q_amx(X.data(), M, q.W, b.data(), act_bits));
      linear_qi8(X.data(), M, q.W, c.data(), act_bits);
      // Int8 from 32 rows runs the split-bf16 engine where AMX-BF16 exists
      // (test_linear_qsplit.cpp checks that dispatch).
      if (act_bits == 8 && M >= m0 && linear_q_split(X.data(), M, q.W, b.data(), 1)) continue;
      EXPECT_EQ(a, M >= m0 ? b : c) << "act_bits " << act_bits << " M=" << M;
    }
  }
}

// Small layers (the tiny test checkpoint: hidden 32, MLP 96, vision patch 1536):
// a single block per row, N of one panel or less.
TEST(LinearAmx, SmallLayers) {
  REQUIRE_AMX();
  int idx = 0;
  for (auto [K, N] : {std::pair<int64_t, int64_t>{32, 64}, {32, 32}, {64, 32}, {32, 96}, {96, 32}, {1536, 32}, {128, 32}, {32, 8}})
    for (int64_t M : {12, 100, 300}) {
      ++idx;
      QWeight q = make_q(4, N, K, 32, idx % 2 == 0, DType::F32, idx % 3 == 0, 2000 + idx);
      check_amx(q.W, M, 70 + idx, "small");
    }
}

TEST(LinearAmx, DeclinesUnsupported) {
  QWeight q = make_q(4, 16, 1024, 512, false, DType::F32, false, 1);
  std::vector<float> X(8 * 1024, 1.f), Y(8 * 16, 7.f);
  EXPECT_FALSE(linear_q_amx(X.data(), 8, q.W, Y.data(), 8)) << "block 512";
  q.W.block_size = 32;
  EXPECT_FALSE(linear_q_amx(X.data(), 8, q.W, Y.data(), 4)) << "act_bits 4";
  set_amx_enabled(false);
  EXPECT_FALSE(linear_q_amx(X.data(), 8, q.W, Y.data(), 8)) << "switched off";
  set_amx_enabled(true);
  EXPECT_EQ(Y, std::vector<float>(8 * 16, 7.f)) << "a declined call must not write Y";
}

}  // namespace
}  // namespace qvl
