// bf16 GEMM (kernels/gemm_bf16.h) against two references, shapes with tails
// in M, N and K:
//   * sgemm_bf16_ref (operands rounded to bf16, exact products, double sum):
//     only fp32 summation error is left, |err| ≤ γ·Σ|ã||b̃| with γ = K·2^−24
//     (plus 2^−24 relative for the final store); we allow 2·γ;
//   * a double-precision fp32 GEMM: operand rounding adds ≤ (2·2^−8 + 2^−16)
//     relative to Σ|a||b| (each operand off by ≤ 2^−8 relative); we test
//     against that bound and check that it is not vacuous (the observed error
//     is > 1/64 of it, i.e. bf16 rounding really happened) when a bf16 engine
//     runs (gemm::bf16_available(): AMX, or AVX512-BF16 without AMX).
// Edge shapes (M = 1..13 around the 12-row tile, N around the 32-column
// panel, odd K, K beyond the 512-deep slice), strides, accumulate, zero sizes,
// 1 vs 2 threads (bitwise equal: every element is summed in the same order).
// Also linear() under ScopedFloatCompute(BF16) for F32 / F16 / Q4 weights, the
// pre-packed B path (pack_b16) and bf16 segment attention.
#include <gtest/gtest.h>
#include <omp.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/attention.h"
#include "kernels/dtype.h"
#include "kernels/gemm.h"
#include "kernels/gemm_bf16.h"
#include "kernels/linear.h"
#include "tests/test_util.h"

namespace qvl {
namespace {

struct Shape {
  int64_t M, N, K;
};

// Σ_k |a_mk|·|b_kn| in double (B [K, N] row-major).
std::vector<double> abs_products(const std::vector<float>& A, const std::vector<float>& B, Shape s) {
  std::vector<double> r((size_t)(s.M * s.N), 0.0);
  for (int64_t m = 0; m < s.M; ++m)
    for (int64_t k = 0; k < s.K; ++k)
      for (int64_t n = 0; n < s.N; ++n)
        r[m * s.N + n] += std::fabs((double)A[m * s.K + k]) * std::fabs((double)B[k * s.N + n]);
  return r;
}

std::vector<float> exact(const std::vector<float>& A, const std::vector<float>& B, Shape s) {
  std::vector<float> r((size_t)(s.M * s.N));
  for (int64_t m = 0; m < s.M; ++m)
    for (int64_t n = 0; n < s.N; ++n) {
      double acc = 0;
      for (int64_t k = 0; k < s.K; ++k) acc += (double)A[m * s.K + k] * B[k * s.N + n];
      r[m * s.N + n] = (float)acc;
    }
  return r;
}

// Largest |got − want| / bound over all elements (≤ 1 passes).
double worst_ratio(const std::vector<float>& got, const std::vector<float>& want,
                   const std::vector<double>& bound) {
  double w = 0;
  for (size_t i = 0; i < got.size(); ++i)
    w = std::max(w, std::fabs((double)got[i] - want[i]) / std::max(bound[i], 1e-30));
  return w;
}

class GemmBf16 : public ::testing::TestWithParam<Shape> {};

TEST_P(GemmBf16, MatchesReferences) {
  const Shape s = GetParam();
  auto A = test::random_floats((size_t)(s.M * s.K), 11 + s.M, -1.f, 1.f);
  auto B = test::random_floats((size_t)(s.K * s.N), 23 + s.N, -1.f, 1.f);
  gemm::PackF32 pb(B.data(), s.N, false);
  std::vector<float> got((size_t)(s.M * s.N), 0.f), ser(got.size(), 0.f), ref(got.size(), 0.f);
  gemm::sgemm_bf16(s.M, s.N, s.K, A.data(), s.K, pb, got.data(), s.N, false);
  gemm::sgemm_bf16_serial(s.M, s.N, s.K, A.data(), s.K, pb, ser.data(), s.N, false);
  gemm::sgemm_bf16_ref(s.M, s.N, s.K, A.data(), s.K, pb, ref.data(), s.N, false);
  const auto absp = abs_products(A, B, s);
  const auto ex = exact(A, B, s);
  const double gamma = (double)s.K * std::ldexp(1.0, -24) + std::ldexp(1.0, -24);
  const double rnd = 2 * std::ldexp(1.0, -8) + std::ldexp(1.0, -16);
  std::vector<double> tight(absp.size()), loose(absp.size());
  for (size_t i = 0; i < absp.size(); ++i) {
    tight[i] = 2 * gamma * absp[i] * (1 + rnd);
    loose[i] = (rnd + 2 * gamma) * absp[i];
  }
  if (gemm::bf16_available()) {
    EXPECT_LE(worst_ratio(got, ref, tight), 1.0) << "threaded vs bf16 reference";
    EXPECT_LE(worst_ratio(ser, ref, tight), 1.0) << "serial vs bf16 reference";
    // bf16 rounding must be visible: error vs exact is a sizeable part of the bound.
    EXPECT_GT(worst_ratio(got, ex, loose), 1.0 / 64) << "no bf16 rounding observed";
  }
  EXPECT_LE(worst_ratio(got, ex, loose), 1.0) << "threaded vs exact";
  EXPECT_LE(worst_ratio(ser, ex, loose), 1.0) << "serial vs exact";
}

INSTANTIATE_TEST_SUITE_P(Shapes, GemmBf16,
                         ::testing::Values(Shape{1, 1, 1}, Shape{5, 7, 3}, Shape{32, 32, 32},
                                           Shape{33, 65, 47}, Shape{17, 31, 513},
                                           Shape{100, 96, 1030}, Shape{131, 200, 64},
                                           Shape{64, 1100, 96}, Shape{300, 40, 257}));

TEST(GemmBf16Extra, AccumulateTransposedAndStrided) {
  // C (ldc 70) += A (lda 50) · Bᵀ with B stored [N, K].
  const int64_t M = 45, N = 61, K = 37, lda = 50, ldc = 70;
  auto A = test::random_floats((size_t)(M * lda), 3);
  auto Bt = test::random_floats((size_t)(N * K), 4);
  auto C0 = test::random_floats((size_t)(M * ldc), 5);
  gemm::PackF32 pb(Bt.data(), K, true);
  auto got = C0, ref = C0;
  gemm::sgemm_bf16(M, N, K, A.data(), lda, pb, got.data(), ldc, true);
  gemm::sgemm_bf16_ref(M, N, K, A.data(), lda, pb, ref.data(), ldc, true);
  double worst = 0;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double bound = 3;  // |c0| + Σ|a||b| ≤ 1 + K
      for (int64_t k = 0; k < K; ++k) bound += std::fabs(A[m * lda + k] * Bt[n * K + k]);
      const double tol = gemm::bf16_available() ? 2 * (K + 2) * std::ldexp(1.0, -24) * bound
                                                    : (2 * std::ldexp(1.0, -8) + 1e-6) * bound;
      worst = std::max(worst, std::fabs((double)got[m * ldc + n] - ref[m * ldc + n]) / tol);
    }
  EXPECT_LE(worst, 1.0);
  // Columns beyond N in the padded C rows are untouched.
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = N; n < ldc; ++n) ASSERT_EQ(got[m * ldc + n], C0[m * ldc + n]);
}

// fp32 B wrapped to check the packer contract the engines rely on: at most
// kKC rows per call, starting at a multiple of kKC (quantized packers need
// block-aligned k0), 1..kNR columns.
struct CheckedPack : gemm::BPacker {
  gemm::PackF32 inner;
  mutable std::atomic<int> bad{0};
  CheckedPack(const float* b, int64_t ldb, bool trans) : inner(b, ldb, trans) {}
  void pack(int64_t k0, int kc, int64_t n0, int nr, float* dst) const override {
    if (kc <= 0 || kc > gemm::kKC || k0 % gemm::kKC != 0 || nr <= 0 || nr > gemm::kNR) ++bad;
    inner.pack(k0, kc, n0, nr, dst);
  }
};

struct Case {
  int64_t M, N, K, lda, ldc;
  bool trans, acc;
};

std::string name(const Case& c) {
  return strfmt("M=%lld N=%lld K=%lld lda=%lld ldc=%lld%s%s", (long long)c.M, (long long)c.N, (long long)c.K,
                (long long)c.lda, (long long)c.ldc, c.trans ? " B[N,K]" : "", c.acc ? " accumulate" : "");
}

// sgemm_bf16 and sgemm_bf16_serial on one case vs the bf16 reference (only the
// fp32 summation bound 2(K+2)·2^−24·(|c0| + Σ|ã||b̃|), when a bf16 engine runs)
// and vs the exact product (plus the operand-rounding bound (2·2^−8 + 2^−16)·Σ|a||b|).
// C starts as NaN when not accumulating (must be overwritten); columns ≥ N of
// the ldc-strided rows must stay bit-identical. Returns the largest
// |got − exact| / (operand-rounding bound) of the non-accumulating cases, for
// the non-vacuity check.
double check_case(const Case& c, unsigned seed) {
  const int64_t M = c.M, N = c.N, K = c.K;
  auto A = test::random_floats((size_t)(M * c.lda), seed, -1.f, 1.f);
  auto B = test::random_floats((size_t)std::max<int64_t>(1, K * N), seed + 1, -1.f, 1.f);
  auto C0 = test::random_floats((size_t)(M * c.ldc), seed + 2, -1.f, 1.f);
  if (!c.acc)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) C0[m * c.ldc + n] = NAN;
  auto b_at = [&](int64_t k, int64_t n) { return c.trans ? B[n * K + k] : B[k * N + n]; };
  CheckedPack pb(B.data(), c.trans ? K : N, c.trans);
  auto got = C0, ser = C0, ref = C0;
  gemm::sgemm_bf16(M, N, K, A.data(), c.lda, pb, got.data(), c.ldc, c.acc);
  gemm::sgemm_bf16_serial(M, N, K, A.data(), c.lda, pb, ser.data(), c.ldc, c.acc);
  gemm::sgemm_bf16_ref(M, N, K, A.data(), c.lda, pb, ref.data(), c.ldc, c.acc);
  EXPECT_EQ(pb.bad.load(), 0) << "packer contract broken: " << name(c);
  const double rnd = 2 * std::ldexp(1.0, -8) + std::ldexp(1.0, -16), eps = std::ldexp(1.0, -24);
  double worst_ref = 0, worst_ex = 0, vis = 0;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      const double c0 = c.acc ? C0[m * c.ldc + n] : 0.0;
      double ex = c0, absp = 0;
      for (int64_t k = 0; k < K; ++k) {
        ex += (double)A[m * c.lda + k] * b_at(k, n);
        absp += std::fabs((double)A[m * c.lda + k] * b_at(k, n));
      }
      const double sum_tol = 2 * (K + 2) * eps * (std::fabs(c0) + absp * (1 + rnd)) + 1e-30;
      for (const auto* v : {&got, &ser}) {
        const double g = (*v)[m * c.ldc + n];
        worst_ref = std::max(worst_ref, std::isnan(g) ? INFINITY : std::fabs(g - ref[m * c.ldc + n]) / sum_tol);
        worst_ex = std::max(worst_ex, std::isnan(g) ? INFINITY : std::fabs(g - ex) / (rnd * absp + sum_tol));
      }
      if (!c.acc) vis = std::max(vis, std::fabs(got[m * c.ldc + n] - ex) / (rnd * absp + 1e-30));
    }
  if (gemm::bf16_available()) {
    EXPECT_LE(worst_ref, 1.0) << "vs bf16 reference: " << name(c);
  }
  EXPECT_LE(worst_ex, 1.0) << "vs exact: " << name(c);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = N; n < c.ldc; ++n) {
      EXPECT_EQ(std::memcmp(&got[m * c.ldc + n], &C0[m * c.ldc + n], 4), 0) << "wrote past N: " << name(c);
      EXPECT_EQ(std::memcmp(&ser[m * c.ldc + n], &C0[m * c.ldc + n], 4), 0) << "wrote past N: " << name(c);
    }
  return vis;
}

TEST(GemmBf16Extra, EdgeShapesStridesAccumulate) {
  // M = 1..13 (every micro-tile height, one row past a tile), N around the
  // 32-column panel, K odd / even / around the 256-row packer chunk and the
  // 512-deep slice; strides, B layout and accumulate vary with the case.
  double vis = 0;
  int i = 0;
  for (int64_t M = 1; M <= 13; ++M)
    for (int64_t N : {1, 16, 31, 32, 33, 70})
      for (int64_t K : {1, 2, 3, 8, 33, 256, 257, 511, 512, 513, 1025}) {
        ++i;
        const Case c{M, N, K, K + (i % 3) * 5, N + (i % 2) * 7, i % 4 >= 2, i % 2 == 1};
        vis = std::max(vis, check_case(c, 100 + i));
        if (HasFailure()) return;
      }
  std::printf("[ bf16 edge shapes ] %d cases, worst |got - exact| / operand-rounding bound %.3f\n", i, vis);
  if (gemm::bf16_available()) {
    EXPECT_GT(vis, 1.0 / 64) << "no bf16 rounding observed";
  }
}

TEST(GemmBf16Extra, ZeroSizes) {
  // M, N or K = 0: nothing written, except K = 0 without accumulate (C = 0).
  std::vector<float> C(4 * 10, 7.f);
  const float a[4] = {1, 2, 3, 4}, b[4] = {1, 2, 3, 4};
  gemm::PackF32 pb(b, 4, false);
  for (bool ser : {false, true}) {
    auto run = [&](int64_t M, int64_t N, int64_t K, bool acc) {
      if (ser) gemm::sgemm_bf16_serial(M, N, K, a, 1, pb, C.data(), 10, acc);
      else gemm::sgemm_bf16(M, N, K, a, 1, pb, C.data(), 10, acc);
    };
    run(0, 4, 4, false);
    run(4, 0, 4, false);
    run(4, 4, 0, true);
    for (float x : C) ASSERT_EQ(x, 7.f);
    run(3, 5, 0, false);
    for (int m = 0; m < 4; ++m)
      for (int n = 0; n < 10; ++n) ASSERT_EQ(C[m * 10 + n], m < 3 && n < 5 ? 0.f : 7.f) << m << "," << n;
    std::fill(C.begin(), C.end(), 7.f);
  }
}

TEST(GemmBf16Extra, TwoThreadsMatchOneBitwise) {
  // Threaded calls split N (wide) or M (narrow) but sum every element in the
  // same order as the serial call: results must be bit-identical.
  const int saved = omp_get_max_threads();
  for (const Case& c : {Case{100, 300, 1100, 1100, 300, false, false},  // split N
                        Case{131, 40, 777, 790, 45, true, true},        // split M (N < 2 threads × 2 panels)
                        Case{50, 1000, 513, 520, 1003, false, true},    // split N, ragged ranges
                        Case{785, 96, 1024, 1024, 96, false, false}}) { // split M, vision-like depth
    auto A = test::random_floats((size_t)(c.M * c.lda), 61, -1.f, 1.f);
    auto B = test::random_floats((size_t)(c.K * c.N), 62, -1.f, 1.f);
    auto C0 = test::random_floats((size_t)(c.M * c.ldc), 63, -1.f, 1.f);
    gemm::PackF32 pb(B.data(), c.trans ? c.K : c.N, c.trans);
    auto one = C0, two = C0, ser = C0;
    omp_set_num_threads(1);
    gemm::sgemm_bf16(c.M, c.N, c.K, A.data(), c.lda, pb, one.data(), c.ldc, c.acc);
    omp_set_num_threads(2);
    gemm::sgemm_bf16(c.M, c.N, c.K, A.data(), c.lda, pb, two.data(), c.ldc, c.acc);
    gemm::sgemm_bf16_serial(c.M, c.N, c.K, A.data(), c.lda, pb, ser.data(), c.ldc, c.acc);
    EXPECT_EQ(std::memcmp(one.data(), two.data(), one.size() * 4), 0) << "1 vs 2 threads: " << name(c);
    EXPECT_EQ(std::memcmp(one.data(), ser.data(), one.size() * 4), 0) << "threaded vs serial: " << name(c);
  }
  omp_set_num_threads(2);
  check_case(Case{100, 300, 1100, 1105, 303, true, true}, 70);  // threaded path vs references
  check_case(Case{131, 40, 777, 777, 40, false, false}, 71);
  omp_set_num_threads(saved);
}

TEST(GemmBf16Extra, LinearScopedModeUsesBf16) {
  // linear() with BF16 selected: F32 [K,N] weight, F16 [N,K] weight; compared
  // with linear_ref at the operand-rounding bound; GEMV rows (M ≤ 4) unchanged.
  const int64_t M = 37, N = 70, K = 300;
  auto X = test::random_floats((size_t)(M * K), 7);
  auto Wf = test::random_floats((size_t)(K * N), 8);
  std::vector<uint16_t> Wh((size_t)(N * K));
  for (size_t i = 0; i < Wh.size(); ++i) Wh[i] = f32_to_f16(Wf[i]);
  LinearWeight wf{WeightKind::F32, N, K, true, Wf.data()};
  LinearWeight wh{WeightKind::F16, N, K, false, Wh.data()};
  for (const LinearWeight* w : {&wf, &wh}) {
    std::vector<float> y((size_t)(M * N)), y32(y.size()), ref(y.size());
    EXPECT_EQ(float_compute(), FloatCompute::F32);
    linear(X.data(), M, *w, y32.data());
    {
      ScopedFloatCompute bf(FloatCompute::BF16);
      EXPECT_EQ(float_compute(), FloatCompute::BF16);
      linear(X.data(), M, *w, y.data());
    }
    EXPECT_EQ(float_compute(), FloatCompute::F32);
    linear_ref(X.data(), M, *w, ref.data());
    double worst = 0, diff32 = 0;
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        double absp = 0;
        for (int64_t k = 0; k < K; ++k) {
          float wv = w == &wf ? Wf[k * N + n] : f16_to_f32(Wh[n * K + k]);
          absp += std::fabs(X[m * K + k] * wv);
        }
        const double tol = (2 * std::ldexp(1.0, -8) + 2 * K * std::ldexp(1.0, -24)) * absp;
        worst = std::max(worst, std::fabs((double)y[m * N + n] - ref[m * N + n]) / tol);
        diff32 = std::max(diff32, std::fabs((double)y[m * N + n] - y32[m * N + n]));
      }
    EXPECT_LE(worst, 1.0);
    if (gemm::bf16_available()) {
      EXPECT_GT(diff32, 0.0) << "BF16 mode did not change the result";
    }
  }
}

// Worst |got − ref| / tol over C[M, n] (strides ldc) of a bf16-operand product
// accumulated into C: tol = 2·(k + 2)·2^-24·(1 + Σ_i |a_mi·b_ji|·1.01), the fp32
// summation error of both sides over the exact bf16 products (A [M, k] stride
// k, Bᵀ rows of stride ldb).
double worst_vs_bf16_ref(int64_t M, int64_t n, int64_t k, const std::vector<float>& A,
                         const std::vector<float>& Bt, int64_t ldb, const std::vector<float>& got,
                         const std::vector<float>& ref, int64_t ldc) {
  double worst = 0;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t j = 0; j < n; ++j) {
      double bound = 1;  // |c0| + Σ|ã||b̃|
      for (int64_t i = 0; i < k; ++i) bound += std::fabs(A[m * k + i] * Bt[j * ldb + i]) * 1.01;
      const double tol = 2 * (k + 2) * std::ldexp(1.0, -24) * bound;
      worst = std::max(worst, std::fabs((double)got[m * ldc + j] - ref[m * ldc + j]) / tol);
    }
  return worst;
}

TEST(GemmBf16Extra, PrepackedBMatchesReference) {
  // pack_b16 + sgemm_b16_serial (Bᵀ stored [N, K], as attention's K) vs the
  // bf16 reference; tails in M, N, K; accumulate into a strided C.
  for (auto [M, N, K] : {std::tuple<int64_t, int64_t, int64_t>{72, 100, 64}, {5, 33, 70}, {40, 64, 300}, {13, 45, 1101}}) {
    const int64_t ldc = N + 3;
    auto A = test::random_floats((size_t)(M * K), 31);
    auto Bt = test::random_floats((size_t)(N * K), 32);
    auto C0 = test::random_floats((size_t)(M * ldc), 33);
    gemm::PackF32 pb(Bt.data(), K, true);
    gemm::PackedB16 packed;
    gemm::pack_b16(N, K, pb, &packed);
    auto got = C0, ref = C0;
    gemm::sgemm_b16_serial(M, A.data(), K, packed, got.data(), ldc, true);
    gemm::sgemm_bf16_ref(M, N, K, A.data(), K, pb, ref.data(), ldc, true);
    EXPECT_LE(worst_vs_bf16_ref(M, N, K, A, Bt, K, got, ref, ldc), 1.0) << M << "x" << N << "x" << K;
  }
}

TEST(GemmBf16Extra, PrepackedBPrefixes) {
  // Leading prefixes of a pack_b16 (n ≤ N columns, k ≤ K rows; odd k pairs
  // row k − 1 with a packed row past the prefix, which must not contribute) on
  // the AVX512-BF16 pair layout, the layout causal attention multiplies by
  // prefix; vs the bf16 reference on the prefix alone.
  gemm::PackedB16 probe;
  gemm::pack_b16(4, 4, gemm::PackF32(std::vector<float>(16, 1.f).data(), 4, true), &probe);
  if (!probe.pairs) GTEST_SKIP() << "prefix products need the AVX512-BF16 pair layout (AMX or no bf16 engine here)";
  for (auto [M, N, K, n, k] : {std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t>{30, 100, 64, 71, 64},
                               {12, 64, 301, 64, 137}, {5, 33, 70, 1, 1}, {40, 130, 515, 97, 514}}) {
    const int64_t ldc = n + 3;
    auto A = test::random_floats((size_t)(M * k), 61);
    auto Bt = test::random_floats((size_t)(N * K), 62);
    auto C0 = test::random_floats((size_t)(M * ldc), 63);
    gemm::PackedB16 packed;
    gemm::pack_b16(N, K, gemm::PackF32(Bt.data(), K, true), &packed);
    auto got = C0, ref = C0;
    gemm::sgemm_b16_serial(M, A.data(), k, packed, got.data(), ldc, true, n, k);
    gemm::sgemm_bf16_ref(M, n, k, A.data(), k, gemm::PackF32(Bt.data(), K, true), ref.data(), ldc, true);
    EXPECT_LE(worst_vs_bf16_ref(M, n, k, A, Bt, K, got, ref, ldc), 1.0)
        << M << "x" << n << "/" << N << "x" << k << "/" << K;
    for (int64_t m = 0; m < M; ++m)  // the padding columns past n are untouched
      for (int64_t j = n; j < ldc; ++j) EXPECT_EQ(got[m * ldc + j], C0[m * ldc + j]);
  }
}

TEST(GemmBf16Extra, SplitProductMatchesExact) {
  // pack_b16_split + sgemm_b16_split_serial on leading prefixes (n ≤ N columns,
  // k ≤ K rows of B) vs the exact product in double. Bound (gemm_bf16.h):
  // (2^−16 + 2(k+2)ε)·Σ|a||b|; a single bf16 product would be off by ~2^−8.
  for (auto [M, N, K, n, k] : {std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t>{72, 100, 64, 100, 64},
                               {5, 33, 70, 20, 45}, {40, 64, 300, 64, 257}, {33, 130, 128, 97, 128}}) {
    const int64_t ldc = n + 3;
    auto A = test::random_floats((size_t)(M * k), 51, -3.f, 3.f);
    auto Bt = test::random_floats((size_t)(N * K), 52, -3.f, 3.f);
    gemm::PackedB16Split packed;
    gemm::pack_b16_split(N, K, gemm::PackF32(Bt.data(), K, true), &packed);
    std::vector<float> got((size_t)(M * ldc), NAN);
    gemm::sgemm_b16_split_serial(M, n, k, A.data(), k, packed, got.data(), ldc);
    double worst = 0;
    for (int64_t m = 0; m < M; ++m)
      for (int64_t j = 0; j < n; ++j) {
        double exact = 0, mag = 0;
        for (int64_t i = 0; i < k; ++i) {
          exact += (double)A[m * k + i] * Bt[j * K + i];
          mag += std::fabs((double)A[m * k + i] * Bt[j * K + i]);
        }
        const double tol = (std::ldexp(1.0, -16) + 2 * (k + 2) * std::ldexp(1.0, -24)) * mag * 1.01 + 1e-30;
        worst = std::max(worst, std::fabs(got[m * ldc + j] - exact) / tol);
      }
    EXPECT_LE(worst, 1.0) << M << "x" << n << "x" << k;
  }
}

TEST(GemmBf16Extra, SegmentAttentionBf16) {
  // Two segments (150 and 37 rows), 3 heads of 64. Inputs pre-rounded to bf16,
  // so Q·Kᵀ products are exact and the reference (double) sees the same
  // operands: what remains is the bf16 rounding of the probabilities P
  // (≤ 2^−8·Σp|v| ≤ 2^−8·max|v|) plus fp32 sums; tolerance 2·2^−8·max|v|.
  const int H = 3, D = 64;
  const int64_t N = 187, stride = 3 * H * D;
  const int64_t cu[3] = {0, 150, 187};
  auto qkv = test::random_floats((size_t)(N * stride), 41, -2.f, 2.f);
  for (auto& x : qkv) x = bf16_to_f32(f32_to_bf16(x));
  std::vector<float> got((size_t)(N * H * D)), ref(got.size());
  {
    ScopedFloatCompute bf(FloatCompute::BF16);
    attention_segments(qkv.data(), qkv.data() + H * D, qkv.data() + 2 * H * D, stride, N, H, D, cu, 2,
                       0.125f, got.data());
  }
  attention_segments_ref(qkv.data(), qkv.data() + H * D, qkv.data() + 2 * H * D, stride, N, H, D, cu, 2,
                         0.125f, ref.data());
  EXPECT_TRUE(test::AllClose(got, ref, 2 * std::ldexp(1.0, -8) * 2.0));
  test::Diff d = test::compare(got.data(), ref.data(), (int64_t)got.size());
  std::printf("[ bf16 attention ] max|diff| %.3g (tolerance %.3g)\n", d.max_abs, 4 * std::ldexp(1.0, -8));
}

TEST(GemmBf16Extra, LinearQ4Bf16) {
  // Q4 weight, block 32, with zero points: BF16 mode vs linear_ref.
  const int64_t M = 20, N = 48, K = 96, bs = 32, kb = K / bs;
  std::vector<uint8_t> q((size_t)(N * K / 2)), zp((size_t)(N * ((kb + 1) / 2)));
  std::vector<float> sc((size_t)(N * kb));
  auto r = test::random_floats(q.size() + zp.size() + sc.size(), 9, 0.f, 1.f);
  size_t t = 0;
  for (auto& v : q) v = (uint8_t)(r[t++] * 256);
  for (auto& v : zp) v = (uint8_t)(r[t++] * 256);
  for (auto& v : sc) v = 0.01f + 0.05f * r[t++];
  LinearWeight w{WeightKind::Q4, N, K, false, q.data(), (int)bs, 4, sc.data(), DType::F32, zp.data()};
  auto X = test::random_floats((size_t)(M * K), 10);
  std::vector<float> y((size_t)(M * N)), ref(y.size()), row((size_t)K);
  {
    ScopedFloatCompute bf(FloatCompute::BF16);
    linear(X.data(), M, w, y.data());
  }
  linear_ref(X.data(), M, w, ref.data());
  std::vector<float> y32(y.size());
  linear(X.data(), M, w, y32.data());
  if (gemm::bf16_available()) {
    double diff32 = 0;
    for (size_t i = 0; i < y.size(); ++i) diff32 = std::max(diff32, std::fabs((double)y[i] - y32[i]));
    EXPECT_GT(diff32, 0.0) << "BF16 mode did not change the Q4 result";
  }
  double worst = 0;
  for (int64_t n = 0; n < N; ++n) {
    dequantize_row(w, n, row.data());
    for (int64_t m = 0; m < M; ++m) {
      double absp = 0;
      for (int64_t k = 0; k < K; ++k) absp += std::fabs(X[m * K + k] * row[k]);
      const double tol = (2 * std::ldexp(1.0, -8) + 2 * K * std::ldexp(1.0, -24)) * absp;
      worst = std::max(worst, std::fabs((double)y[m * N + n] - ref[m * N + n]) / tol);
    }
  }
  EXPECT_LE(worst, 1.0);
}

}  // namespace
}  // namespace qvl
