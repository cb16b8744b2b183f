// linear_q_split (AMX bf16 with split operands, kernels/linear_qsplit.cpp)
// against two references over the shared table of quantized-GEMM shapes (bits
// 4/8, block 16..256, fp32/fp16/bf16 scales, zero points, bias, K and N tails)
// and at full prefill size, for 1, 2 and 3 products:
//  1. linear_q_split_ref (the same bf16 splits, products summed in double): the
//     products are exact in fp32, so only fp32 summation differs:
//       |Δy| ≤ 2·(terms·K + 16)·ε·Σ_k Σ_terms |x̃||w̃|   (ε = 2⁻²⁴)
//  2. linear_ref (fp32 dequantize, double accumulation), the bound derived in
//     linear_qsplit.h: 2⁻⁸ + 2⁻¹⁸ (1 term), 2⁻⁹ + 2⁻¹⁷ (2) or 2⁻¹⁶ (3) times Σ|x||w|,
//     plus (terms·K + 16)·2ε·Σ|x||w| for the summation, plus ε·|bias|.
// Skipped only without AMX bf16.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/dtype.h"
#include "kernels/linear.h"
#include "kernels/linear_qamx.h"
#include "kernels/linear_qsplit.h"
#include "test_util.h"
#include "unit/quant_testing.h"

namespace qvl {
namespace {

using test::QWeight;
using test::expect_within;
using test::for_each_gemm_case;
using test::kQuantEps;
using test::make_q;
using test::make_x;

bool split_available() {
  QWeight q = make_q(4, 16, 32, 32, false, DType::F32, false, 1);
  std::vector<float> X(32, 0.5f), Y(16);
  return linear_q_split(X.data(), 1, q.W, Y.data(), 3);
}

#define REQUIRE_SPLIT()                                                                       \
  do {                                                                                        \
    if (!split_available()) GTEST_SKIP() << "AMX bf16 not compiled in or permission refused"; \
  } while (0)

void check_split(const LinearWeight& W, int64_t M, uint64_t seed, const std::string& what) {
  const std::vector<float> X = make_x(M, W.K, W.block_size, seed);
  const int64_t K = W.K, N = W.N;
  std::vector<float> exact(M * N);
  linear_ref(X.data(), M, W, exact.data());
  // Σ|x||w| per output, from the fp32 dequantized weights (and the split ones).
  std::vector<double> mag(M * N), mag_split(M * N);
  std::vector<float> w(K);
  for (int64_t n = 0; n < N; ++n) {
    dequantize_row(W, n, w.data());
    for (int64_t m = 0; m < M; ++m) {
      double a = 0;
      for (int64_t k = 0; k < K; ++k) a += std::fabs((double)X[m * K + k] * w[k]);
      mag[m * N + n] = a;
      mag_split[m * N + n] = a * (1 + 1.0 / 128);  // |x̃| ≤ |x|(1 + 2⁻⁹), Σ over the split parts
    }
  }
  for (int terms : {1, 2, 3}) {
    const std::string tag = what + " terms" + std::to_string(terms) + " M=" + std::to_string(M) +
                            " N=" + std::to_string(N) + " K=" + std::to_string(K);
    std::vector<float> got(M * N, NAN), ref(M * N);
    ASSERT_TRUE(linear_q_split(X.data(), M, W, got.data(), terms)) << tag;
    linear_q_split_ref(X.data(), M, W, ref.data(), terms);
    const double rel = terms == 1   ? std::ldexp(1.0, -8) + std::ldexp(1.0, -18)
                       : terms == 2 ? std::ldexp(1.0, -9) + std::ldexp(1.0, -17)
                                    : std::ldexp(1.0, -16);
    std::vector<double> tol_ref(M * N), tol_exact(M * N);
    for (int64_t i = 0; i < M * N; ++i) {
      const double b = W.bias ? std::fabs(W.bias[i % N]) : 0.0;
      const double sum = (terms * K + 16) * 2 * kQuantEps;
      tol_ref[i] = sum * mag_split[i] + 2 * kQuantEps * b + 1e-30;
      tol_exact[i] = rel * mag[i] + sum * mag_split[i] + 2 * kQuantEps * b + 1e-30;
    }
    expect_within(got, ref, tol_ref, N, tag + " vs linear_q_split_ref");
    expect_within(got, exact, tol_exact, N, tag + " vs linear_ref");
  }
}

TEST(LinearSplit, ShapeTable) {
  REQUIRE_SPLIT();
  for_each_gemm_case({5, 16, 17, 100, 512}, 3000, [](const LinearWeight& W, int64_t M, int idx, const std::string& tag) {
    check_split(W, M, 90 + idx, tag);
  });
}

// Full prefill size: several panel groups per thread, K = 6144 (one panel per group).
TEST(LinearSplit, LargeM) {
  REQUIRE_SPLIT();
  for (int bits : {4, 8}) {
    QWeight q = make_q(bits, 200, 2048 + 32 * 3 + 7, 32, bits == 8, DType::F16, true, 177 + bits);
    check_split(q.W, 512, 19 + bits, "Q" + std::to_string(bits) + " large");
  }
  QWeight q = make_q(4, 96, 6144, 128, false, DType::F32, false, 15);
  check_split(q.W, 300, 13, "Q4 K=6144 bs=128");
}

// 3 products are ~2^7 times closer to the exact product than 2 (the activation
// rounding dominates the 2-product error): checks the x_lo·w_hi term is there.
TEST(LinearSplit, ThirdProductAddsActivationResidual) {
  REQUIRE_SPLIT();
  QWeight q = make_q(4, 64, 1024, 32, false, DType::F16, false, 8);
  const std::vector<float> X = make_x(64, 1024, 32, 9);
  std::vector<float> exact(64 * 64), two(64 * 64), three(64 * 64);
  linear_ref(X.data(), 64, q.W, exact.data());
  ASSERT_TRUE(linear_q_split(X.data(), 64, q.W, two.data(), 2));
  ASSERT_TRUE(linear_q_split(X.data(), 64, q.W, three.data(), 3));
  double e2 = 0, e3 = 0;
  for (size_t i = 0; i < exact.size(); ++i) {
    e2 += std::fabs((double)two[i] - exact[i]);
    e3 += std::fabs((double)three[i] - exact[i]);
  }
  EXPECT_GT(e2, 0.0);
  EXPECT_LT(e3 * 16, e2) << "mean error 3 products " << e3 / exact.size() << ", 2 products " << e2 / exact.size();
}

// linear_quant sends Int16 prefill from 64 rows to 3 products and Int8 from 32
// rows to 1 (bit-identical); fewer rows keep the integer paths.
TEST(LinearSplit, DispatchFromIntModes) {
  REQUIRE_SPLIT();
  QWeight q = make_q(4, 64, 256, 32, true, DType::F32, true, 3);
  for (auto [mode, terms, m0, bits] : {std::tuple{QuantCompute::Int16, 3, int64_t{64}, 16},
                                       std::tuple{QuantCompute::Int8, 1, int64_t{32}, 8}}) {
    for (int64_t M : {m0 - 1, m0, m0 + 37}) {
      const std::vector<float> X = make_x(M, 256, 32, 4);
      std::vector<float> a(M * 64), b(M * 64);
      linear_quant(X.data(), M, q.W, a.data(), mode);
      if (M >= m0)
        ASSERT_TRUE(linear_q_split(X.data(), M, q.W, b.data(), terms));
      else if (M >= amx_min_rows(bits))
        ASSERT_TRUE(linear_q_amx(X.data(), M, q.W, b.data(), bits));
      else
        linear_qi8(X.data(), M, q.W, b.data(), bits);
      EXPECT_EQ(a, b) << "terms " << terms << " M=" << M;
    }
  }
}

TEST(LinearSplit, DeclinesUnsupported) {
  QWeight q = make_q(4, 16, 1024, 32, false, DType::F32, false, 1);
  std::vector<float> X(8 * 1024, 1.f), Y(8 * 16, 7.f);
  EXPECT_FALSE(linear_q_split(X.data(), 8, q.W, Y.data(), 4)) << "terms 4";
  EXPECT_FALSE(linear_q_split(X.data(), 8, q.W, Y.data(), 0)) << "terms 0";
  q.W.block_size = 24;
  EXPECT_FALSE(linear_q_split(X.data(), 8, q.W, Y.data(), 3)) << "block 24";
  q.W.block_size = 32;
  set_amx_enabled(false);
  EXPECT_FALSE(linear_q_split(X.data(), 8, q.W, Y.data(), 3)) << "switched off";
  set_amx_enabled(true);
  EXPECT_EQ(Y, std::vector<float>(8 * 16, 7.f)) << "a declined call must not write Y";
}

}  // namespace
}  // namespace qvl
