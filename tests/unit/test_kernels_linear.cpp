// linear(): every weight kind and M regime against linear_ref, plus the fused
// Q4/Q8 kernels against "dequantize_row, then fp32 GEMM".
// Tolerance (stated once): fp32 summation of K products in any order is off by
// at most ≈ K·ε·Σ_k|x_k·w_k| (ε = 2⁻²⁴·2 for fp32 rounding of products and
// sums). For quantized weights the fast path computes s·(Σq·x − zp·Σx), so the
// magnitude term is Σ_k s·(|q|+|zp|)·|x|. tol = (K+8)·2ε·max over outputs of
// that magnitude; the worst element is reported on failure.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <tuple>
#include <vector>

#include "kernels/cpu.h"
#include "kernels/gemm.h"
#include "kernels/linear.h"
#include "test_util.h"
#include "unit/quant_testing.h"

namespace qvl {
namespace {

constexpr double kEps = 1.0 / (1 << 24);

using test::QWeight;
using test::make_q;

// |scale|·(|q| + |zp|) of element (n, k) of a quantized weight (read directly
// from the MatMulNBits layout; independent of the kernels' accessors).
double qmag(const LinearWeight& W, int64_t n, int64_t k) {
  const int64_t kb = W.k_blocks(), b = k / W.block_size, blob = W.block_size * W.bits / 8;
  const uint8_t* row = static_cast<const uint8_t*>(W.data) + n * kb * blob;
  int q = W.bits == 8 ? row[k] : (row[k / 2] >> (4 * (k % 2))) & 15;
  int z = 1 << (W.bits - 1);
  if (W.zero_points) {
    const uint8_t* zr = W.zero_points + n * ((kb * W.bits + 7) / 8);
    z = W.bits == 8 ? zr[b] : (zr[b / 2] >> (4 * (b % 2))) & 15;
  }
  double s;
  if (W.scale_dtype == DType::F32) s = static_cast<const float*>(W.scales)[n * kb + b];
  else if (W.scale_dtype == DType::F16) s = f16_to_f32(static_cast<const uint16_t*>(W.scales)[n * kb + b]);
  else s = bf16_to_f32(static_cast<const uint16_t*>(W.scales)[n * kb + b]);
  return std::fabs(s) * (q + z);
}

// max over (m, n) of Σ_k |x|·(|w| or |s|·(|q|+|zp|)), the rounding-error scale.
double magnitude(const std::vector<float>& X, int64_t M, const LinearWeight& W) {
  std::vector<float> w(W.K);
  double mx = 0;
  bool q = W.kind == WeightKind::Q4 || W.kind == WeightKind::Q8;
  for (int64_t n = 0; n < W.N; ++n) {
    dequantize_row(W, n, w.data());
    for (int64_t k = 0; k < W.K; ++k) w[k] = q ? qmag(W, n, k) : std::fabs(w[k]);
    for (int64_t m = 0; m < M; ++m) {
      double s = W.bias ? std::fabs(W.bias[n]) : 0.0;
      for (int64_t k = 0; k < W.K; ++k) s += w[k] * std::fabs(X[m * W.K + k]);
      mx = std::max(mx, s);
    }
  }
  return mx;
}

// Per-output bound of the integer compute modes: each activation is off by at
// most dx_b/2 = max|x_block|/(2·qmax) (qmax 127 for Int8, 32639 for Int16), so
// |Δy[m,n]| ≤ Σ_b |s_b|·Σ_k |q−zp|·max|x_b|/(2·qmax), plus fp32 rounding of the
// same magnitude scale as the F32 path.
std::vector<double> int_bounds(const std::vector<float>& X, int64_t M, const LinearWeight& W, double qmax) {
  std::vector<double> bound(M * W.N);
  std::vector<float> w(W.K), qm(W.K);
  const int bs = W.block_size;
  for (int64_t n = 0; n < W.N; ++n) {
    dequantize_row(W, n, w.data());
    for (int64_t k = 0; k < W.K; ++k) qm[k] = qmag(W, n, k);
    for (int64_t m = 0; m < M; ++m) {
      double sum = 0, mag = 0;
      for (int64_t k0 = 0; k0 < W.K; k0 += bs) {
        double amax = 0, wabs = 0;
        for (int64_t k = k0; k < std::min<int64_t>(W.K, k0 + bs); ++k) {
          amax = std::max(amax, (double)std::fabs(X[m * W.K + k]));
          wabs += std::fabs(w[k]);
          mag += qm[k] * std::fabs(X[m * W.K + k]);
        }
        sum += wabs * amax / (2.0 * qmax);
      }
      bound[m * W.N + n] = sum * 1.0001 + (W.K + 8) * 2 * kEps * mag * 2;
    }
  }
  return bound;
}

void check_linear(const LinearWeight& W, int64_t M, uint64_t seed, const std::string& what) {
  std::vector<float> X = test::random_floats(M * W.K, seed);
  std::vector<float> got(M * W.N, NAN), want(M * W.N);
  linear_ref(X.data(), M, W, want.data());
  bool q = W.kind == WeightKind::Q4 || W.kind == WeightKind::Q8;
  if (q) linear_quant(X.data(), M, W, got.data(), QuantCompute::F32);
  else linear(X.data(), M, W, got.data());
  double tol = (W.K + 8) * 2 * kEps * magnitude(X, M, W);
  EXPECT_TRUE(test::AllClose(got, want, tol)) << what << " F32 M=" << M << " N=" << W.N << " K=" << W.K;
  if (!q) return;
  // Integer activations: element-wise derived bound; report the worst ratio.
  for (auto [mode, qmax, name] : {std::tuple{QuantCompute::Int8, 127.0, "Int8"},
                                  std::tuple{QuantCompute::Int16, 32639.0, "Int16"}}) {
    std::fill(got.begin(), got.end(), NAN);
    linear_quant(X.data(), M, W, got.data(), mode);
    std::vector<double> bound = int_bounds(X, M, W, qmax);
    double worst = 0;
    int64_t wi = 0;
    for (int64_t i = 0; i < M * W.N; ++i) {
      double r = std::fabs((double)got[i] - want[i]) / bound[i];
      if (!(r <= worst)) worst = r, wi = i;
    }
    EXPECT_LE(worst, 1.0) << what << " " << name << " M=" << M << ": worst element " << wi << " got "
                          << got[wi] << " want " << want[wi] << " bound " << bound[wi];
  }
}

TEST(KernelsLinear, Q4AllBlockSizesZeroPointsScales) {
  for (int bs : {16, 32, 64, 128, 256})
    for (bool zp : {false, true})
      for (DType sdt : {DType::F32, DType::F16, DType::BF16})
        for (int64_t M : {1, 3, 17, 64}) {
          int64_t K = bs * 3 + bs / 2 + 3;  // not a multiple of the block: padded
          QWeight q = make_q(4, 37, K, bs, zp, sdt, M == 3, 100 + bs + M);
          check_linear(q.W, M, 7 + M, std::string("Q4 bs=") + std::to_string(bs) +
                                          (zp ? " zp" : " sym") + " " + dtype_name(sdt));
        }
}

TEST(KernelsLinear, Q8AllBlockSizes) {
  for (int bs : {16, 32, 128, 256})
    for (bool zp : {false, true})
      for (int64_t M : {1, 2, 4, 17, 64}) {
        QWeight q = make_q(8, 29, 2 * bs + 5, bs, zp, M == 2 ? DType::F16 : DType::F32, M == 4, 300 + bs + M);
        check_linear(q.W, M, 11 + M, "Q8");
      }
}

// Decode GEMV (M <= 4) with many blocks per row: block chunks of 16 with a
// partial last chunk (kb = 37, 19), odd N (row-group tails), padded K, zero
// points (odd kb → half-used last zp byte), every scale dtype, Q4 and Q8.
TEST(KernelsLinear, QuantGemvManyBlocksAllDecodeM) {
  for (int bits : {4, 8})
    for (int bs : {32, 64})
      for (bool zp : {false, true})
        for (DType sdt : {DType::F32, DType::F16, DType::BF16})
          for (int64_t M : {1, 2, 3, 4}) {
            const int64_t K = bs == 32 ? 32 * 36 + 5 : 64 * 18 + 40;  // kb = 37 / 19
            QWeight q = make_q(bits, 23, K, bs, zp, sdt, M == 2, 500 + bits + bs + M);
            check_linear(q.W, M, 31 + M, std::string("Q") + std::to_string(bits) + " gemv bs=" + std::to_string(bs) +
                                             (zp ? " zp" : " sym") + " " + dtype_name(sdt));
          }
}

// Int8 decode reads its rows either in 8-row tiles or one after the other (the
// CPU picks); both orders are checked against the bound, and give the same bits
// (each row's sums run in the same order either way).
TEST(KernelsLinear, QuantGemvBothDecodeRowOrders) {
  if (!linear_qi8_available()) GTEST_SKIP() << "no AVX-512 VNNI: the integer decode path is not built";
  for (int bits : {4, 8})
    for (bool zp : {false, true})
      for (DType sdt : {DType::F16, DType::BF16}) {
        QWeight q = make_q(bits, 61, 32 * 36 + 5, 32, zp, sdt, false, 700 + bits + zp);
        std::vector<float> X = test::random_floats(q.W.K, 41);
        std::vector<float> tiles(q.W.N), stream(q.W.N);
        const std::string what = std::string("Q") + std::to_string(bits) + (zp ? " zp " : " sym ") + dtype_name(sdt);
        set_decode_row_order(DecodeRowOrder::Tiles);
        check_linear(q.W, 1, 41, what + " tiles");
        linear_quant(X.data(), 1, q.W, tiles.data(), QuantCompute::Int8);
        set_decode_row_order(DecodeRowOrder::Stream);
        check_linear(q.W, 1, 41, what + " stream");
        linear_quant(X.data(), 1, q.W, stream.data(), QuantCompute::Int8);
        set_decode_row_order(DecodeRowOrder::Auto);
        for (int64_t n = 0; n < q.W.N; ++n) ASSERT_EQ(tiles[n], stream[n]) << what << " row " << n;
      }
}

TEST(KernelsCpu, HalfRate512OnlyOnAmdFamily25) {
  EXPECT_TRUE(cpu::half_rate_512_family(true, 25));    // Zen 4 (Zen 3 has no AVX-512 to run)
  EXPECT_FALSE(cpu::half_rate_512_family(true, 26));   // Zen 5: full-width 512-bit units
  EXPECT_FALSE(cpu::half_rate_512_family(false, 25));  // other vendors' family numbers mean nothing here
  EXPECT_FALSE(cpu::half_rate_512_family(true, 23));
}

TEST(KernelsLinear, Q4ExactMultipleLargeN) {
  QWeight q = make_q(4, 515, 2048, 128, false, DType::F32, false, 5);
  for (int64_t M : {1, 4, 64}) check_linear(q.W, M, 21, "Q4 K=2048");
}

// Fused quantized linear == dequantize every row, then a plain fp32 GEMM.
TEST(KernelsLinear, Q4MatchesDequantizeThenGemm) {
  for (int64_t M : {1, 3, 17, 64}) {
    QWeight q = make_q(4, 70, 300, 32, true, DType::F16, false, 77 + M);
    const LinearWeight& W = q.W;
    std::vector<float> Wf(W.N * W.K), X = test::random_floats(M * W.K, 9);
    for (int64_t n = 0; n < W.N; ++n) dequantize_row(W, n, Wf.data() + n * W.K);
    std::vector<float> got(M * W.N), want(M * W.N);
    linear_quant(X.data(), M, W, got.data(), QuantCompute::F32);
    gemm_f32(M, W.N, W.K, X.data(), W.K, Wf.data(), W.K, true, want.data(), W.N);
    double tol = (W.K + 8) * 4 * kEps * magnitude(X, M, W);
    EXPECT_TRUE(test::AllClose(got, want, tol)) << "M=" << M;
  }
}

// dequantize_row reproduces the MatMulNBits formula on a hand-made block.
TEST(KernelsLinear, DequantizeRowFormula) {
  // K = 20, block 16 → kb = 2, blob 8 bytes; row bytes 0x21 = (1, 2), zp packed (3, 5).
  std::vector<uint8_t> B(16, 0x21), zp = {0x53};
  std::vector<float> s = {0.5f, -2.f};
  LinearWeight W;
  W.kind = WeightKind::Q4;
  W.N = 1;
  W.K = 20;
  W.bits = 4;
  W.block_size = 16;
  W.data = B.data();
  W.scales = s.data();
  W.zero_points = zp.data();
  std::vector<float> out(20);
  dequantize_row(W, 0, out.data());
  EXPECT_FLOAT_EQ(out[0], (1 - 3) * 0.5f);
  EXPECT_FLOAT_EQ(out[1], (2 - 3) * 0.5f);
  EXPECT_FLOAT_EQ(out[16], (1 - 5) * -2.f);
  EXPECT_FLOAT_EQ(out[19], (2 - 5) * -2.f);
  W.zero_points = nullptr;  // default 8
  dequantize_row(W, 0, out.data());
  EXPECT_FLOAT_EQ(out[17], (2 - 8) * -2.f);
  EXPECT_EQ(W.bytes(), 16 + 2 * 4);
}

struct FWeight {
  std::vector<float> f32;
  std::vector<uint16_t> h;
  std::vector<float> bias;
  LinearWeight W;
};

FWeight make_f(WeightKind kind, int64_t N, int64_t K, bool transposed, bool bias, uint64_t seed) {
  FWeight f;
  f.f32 = test::random_floats(N * K, seed);
  if (kind == WeightKind::F16 || kind == WeightKind::BF16) {
    f.h.resize(N * K);
    for (int64_t i = 0; i < N * K; ++i)
      f.h[i] = kind == WeightKind::F16 ? f32_to_f16(f.f32[i]) : f32_to_bf16(f.f32[i]);
  }
  if (bias) f.bias = test::random_floats(N, seed + 3);
  f.W.kind = kind;
  f.W.N = N;
  f.W.K = K;
  f.W.transposed = transposed;
  f.W.data = kind == WeightKind::F32 ? (const void*)f.f32.data() : (const void*)f.h.data();
  f.W.bias = bias ? f.bias.data() : nullptr;
  return f;
}

TEST(KernelsLinear, FloatKindsBothLayouts) {
  for (WeightKind kind : {WeightKind::F32, WeightKind::F16, WeightKind::BF16})
    for (bool tr : {false, true})
      for (int64_t M : {1, 2, 3, 4, 17, 64})
        for (int64_t N : {53, 131}) {
          FWeight f = make_f(kind, N, 77, tr, M == 17, 40 + M + N);
          check_linear(f.W, M, 3 + M, tr ? "float [K,N]" : "float [N,K]");
          // K = 93: the GEMV's 32-wide, 16-wide and scalar K steps all run.
          FWeight g = make_f(kind, N, 93, tr, false, 50 + M + N);
          check_linear(g.W, M, 5 + M, tr ? "float [K,N] K=93" : "float [N,K] K=93");
        }
}

TEST(KernelsLinear, GemmF32BetaAndTranspose) {
  const int64_t M = 13, N = 29, K = 31;
  auto A = test::random_floats(M * K, 1), B = test::random_floats(K * N, 2);
  auto C = test::random_floats(M * N, 3);
  std::vector<float> want(M * N);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double s = C[m * N + n];
      for (int64_t k = 0; k < K; ++k) s += (double)A[m * K + k] * B[k * N + n];
      want[m * N + n] = (float)s;
    }
  gemm_f32(M, N, K, A.data(), K, B.data(), N, false, C.data(), N, 1.f);
  EXPECT_TRUE(test::AllClose(C, want, (K + 8) * 2 * kEps * (K + 1)));
  // transB: B stored [N, K].
  std::vector<float> Bt(N * K), C2(M * N);
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n) Bt[n * K + k] = B[k * N + n];
  auto C0 = test::random_floats(M * N, 3);
  gemm_f32(M, N, K, A.data(), K, Bt.data(), K, true, C2.data(), N, 0.f);
  for (int64_t i = 0; i < M * N; ++i) C2[i] += C0[i];
  EXPECT_TRUE(test::AllClose(C2, want, (K + 8) * 2 * kEps * (K + 1)));
}

// The GEMM engine across block boundaries (M > kMC=144, N > kNC=2048 in the
// threaded split, K > kKC=256), both B layouts, overwrite and accumulate,
// against a double-precision triple loop. |A|,|B| ≤ 1 so Σ|a·b| ≤ K.
TEST(KernelsLinear, SgemmEngineBlocksAndLayouts) {
  struct Shape { int64_t M, N, K; };
  for (Shape sh : {Shape{1, 1, 1}, Shape{13, 33, 7}, Shape{150, 97, 300}, Shape{37, 2100, 260}})
    for (bool trans : {false, true})
      for (bool acc : {false, true}) {
        const int64_t M = sh.M, N = sh.N, K = sh.K, lda = K + 3, ldb = (trans ? K : N) + 5, ldc = N + 2;
        auto A = test::random_floats(M * lda, M + N), B = test::random_floats((trans ? N : K) * ldb, K);
        auto C = test::random_floats(M * ldc, 5);
        std::vector<float> want(C);
        for (int64_t m = 0; m < M; ++m)
          for (int64_t n = 0; n < N; ++n) {
            double s = acc ? C[m * ldc + n] : 0.0;
            for (int64_t k = 0; k < K; ++k)
              s += (double)A[m * lda + k] * (trans ? B[n * ldb + k] : B[k * ldb + n]);
            want[m * ldc + n] = (float)s;
          }
        gemm::PackF32 pb(B.data(), ldb, trans);
        gemm::sgemm(M, N, K, A.data(), lda, pb, C.data(), ldc, acc);
        // Untouched padding columns keep their values on both sides.
        EXPECT_TRUE(test::AllClose(C, want, (K + 8) * 2 * kEps * (K + 1)))
            << "M=" << M << " N=" << N << " K=" << K << " trans=" << trans << " acc=" << acc;
      }
}

// pack_b + sgemm_packed_serial (attention's pre-packed Kᵀ / V): whole B and
// leading prefixes (n ≤ N columns, k ≤ K rows, as causal attention uses), both
// layouts, accumulate, against a double-precision loop; same bound as above.
TEST(KernelsLinear, PackedBProductsAndPrefixes) {
  struct Shape { int64_t M, N, K, n, k; };
  for (Shape sh : {Shape{13, 33, 7, 33, 7}, Shape{96, 100, 64, 71, 64}, Shape{25, 64, 530, 64, 301},
                   Shape{150, 45, 300, 1, 1}})
    for (bool trans : {false, true})
      for (bool acc : {false, true}) {
        const int64_t M = sh.M, N = sh.N, K = sh.K, n = sh.n, k = sh.k, lda = k + 3, ldb = (trans ? K : N) + 5,
                      ldc = n + 2;
        auto A = test::random_floats(M * lda, M + N), B = test::random_floats((trans ? N : K) * ldb, K);
        auto C = test::random_floats(M * ldc, 6);
        std::vector<float> want(C);
        for (int64_t m = 0; m < M; ++m)
          for (int64_t j = 0; j < n; ++j) {
            double s = acc ? C[m * ldc + j] : 0.0;
            for (int64_t i = 0; i < k; ++i) s += (double)A[m * lda + i] * (trans ? B[j * ldb + i] : B[i * ldb + j]);
            want[m * ldc + j] = (float)s;
          }
        gemm::PackedB packed;
        gemm::pack_b(N, K, gemm::PackF32(B.data(), ldb, trans), &packed);
        gemm::sgemm_packed_serial(M, A.data(), lda, packed, C.data(), ldc, acc, n == N ? -1 : n, k == K ? -1 : k);
        EXPECT_TRUE(test::AllClose(C, want, (k + 8) * 2 * kEps * (k + 1)))
            << "M=" << M << " n=" << n << "/" << N << " k=" << k << "/" << K << " trans=" << trans << " acc=" << acc;
      }
}

TEST(KernelsLinear, BytesCountsScalesAndZeroPoints) {
  QWeight q = make_q(4, 10, 100, 32, true, DType::F16, false, 1);
  // kb = 4: data 10·4·16, scales 10·4·2, zero points 10·ceil(4·4/8)=10·2.
  EXPECT_EQ(q.W.bytes(), 640 + 80 + 20);
  FWeight f = make_f(WeightKind::BF16, 10, 7, true, false, 1);
  EXPECT_EQ(f.W.bytes(), 140);
}

}  // namespace
// linear_multi (one shared activation quantization and pass, as q/k/v and
// gate/up use it) gives exactly the results of separate linear() calls, in
// every compute mode, for decode and prefill row counts, mixed N and bits.
TEST(KernelsLinear, LinearMultiEqualsSeparateCalls) {
  QWeight a = make_q(4, 70, 300, 32, false, DType::F16, true, 11);
  QWeight b = make_q(4, 33, 300, 32, true, DType::F32, false, 12);
  QWeight c = make_q(8, 51, 300, 32, false, DType::BF16, false, 13);
  const QuantCompute before = quant_compute();
  for (QuantCompute mode : {QuantCompute::Int8, QuantCompute::Int16, QuantCompute::F32})
    for (int64_t M : {1, 3, 9}) {
      set_quant_compute(mode);
      std::vector<float> X = test::random_floats(M * 300, 40 + M);
      std::vector<float> ya(M * 70), yb(M * 33), yc(M * 51), ra(M * 70), rb(M * 33), rc(M * 51);
      const LinearWeight* w2[2] = {&a.W, &b.W};  // same K / bits / block: the shared pass
      float* y2[2] = {ya.data(), yb.data()};
      linear_multi(X.data(), M, w2, y2, 2);
      linear(X.data(), M, a.W, ra.data());
      linear(X.data(), M, b.W, rb.data());
      EXPECT_EQ(ya, ra) << "pair M=" << M << " mode " << (int)mode;
      EXPECT_EQ(yb, rb) << "pair M=" << M << " mode " << (int)mode;
      const LinearWeight* w[3] = {&a.W, &b.W, &c.W};  // mixed bits: per-weight fallback
      float* y[3] = {ya.data(), yb.data(), yc.data()};
      linear_multi(X.data(), M, w, y, 3);
      linear(X.data(), M, a.W, ra.data());
      linear(X.data(), M, b.W, rb.data());
      linear(X.data(), M, c.W, rc.data());
      EXPECT_EQ(ya, ra) << "M=" << M << " mode " << (int)mode;
      EXPECT_EQ(yb, rb) << "M=" << M << " mode " << (int)mode;
      EXPECT_EQ(yc, rc) << "M=" << M << " mode " << (int)mode;
    }
  set_quant_compute(before);
}

}  // namespace qvl
