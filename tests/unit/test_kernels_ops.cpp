// Norms, activations, softmax, rope and embedding gather: fast kernels vs
// their scalar references on seeded random data with odd sizes.
// Tolerances: fp32 row reductions over n terms are off by ≲ n·ε relative
// (ε = 2⁻²⁴), element-wise maps by a few ulp; each test states its bound.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/activations.h"
#include "kernels/cpu.h"
#include "kernels/embedding.h"
#include "kernels/norms.h"
#include "kernels/rope.h"
#include "test_util.h"

namespace qvl {
namespace {

// StealQueue hands out every index exactly once, in chunks aligned to the
// alignment (except the last one), whether threads take only their own range,
// steal all of it (one thread doing everything) or race.
TEST(StealQueue, EveryIndexOnceAligned) {
  for (int64_t n : {0, 1, 15, 16, 17, 1000, 2048, 151936}) {
    for (int parts : {1, 2, 3, 8}) {
      for (int mode = 0; mode < 2; ++mode) {
        cpu::StealQueue q(n, 40, parts, 16);  // chunk rounds up to 48
        std::vector<int> seen(n, 0);
        auto drain = [&](int me) {
          int64_t b, e;
          while (q.pop(me, &b, &e)) {
            ASSERT_LT(b, e);
            ASSERT_LE(e, n);
            EXPECT_EQ(b % 16, 0) << "n " << n << " parts " << parts;
            EXPECT_TRUE(e % 16 == 0 || e == n);
            EXPECT_LE(e - b, 48);
            for (int64_t i = b; i < e; ++i) {
#pragma omp atomic
              seen[i]++;
            }
          }
        };
        if (mode == 0) {
          drain(parts - 1);  // one thread: its own range, then steals the rest
        } else {
#pragma omp parallel num_threads(std::max(2, parts))
          drain(omp_get_thread_num());
        }
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(seen[i], 1) << "index " << i << " n " << n << " parts " << parts;
      }
    }
  }
}

constexpr double kEps = 1.0 / (1 << 24);

TEST(KernelsOps, RmsNormAndLayerNorm) {
  for (int64_t dim : {7, 64, 1000, 2048})
    for (int64_t rows : {1, 5, 33}) {
      auto x = test::random_floats(rows * dim, dim + rows, -3.f, 3.f);
      auto w = test::random_floats(dim, 2), b = test::random_floats(dim, 3);
      std::vector<float> got(rows * dim), want(rows * dim);
      // Output = w·x·r with r = 1/rms; the sum of squares is off by ≤ dim·ε relative,
      // so r by dim·ε/2, plus ~3 ulp of products: |err| ≤ (dim/2+4)·ε·|w||x|r ≤ …·max|y|.
      rms_norm(x.data(), w.data(), got.data(), rows, dim, 1e-6f);
      rms_norm_ref(x.data(), w.data(), want.data(), rows, dim, 1e-6f);
      double ymax = 0;
      for (float v : want) ymax = std::max(ymax, (double)std::fabs(v));
      EXPECT_TRUE(test::AllClose(got, want, (dim / 2.0 + 4) * kEps * ymax * 2)) << "rms dim=" << dim;
      // LayerNorm: mean and variance each off by ≲ dim·ε relative to their inputs
      // (|x| ≤ 3, so |mean err| ≤ 3·dim·ε); y scales by r ≤ 1/σ ≈ 0.6.
      layer_norm(x.data(), w.data(), b.data(), got.data(), rows, dim, 1e-5f);
      layer_norm_ref(x.data(), w.data(), b.data(), want.data(), rows, dim, 1e-5f);
      ymax = 0;
      for (float v : want) ymax = std::max(ymax, (double)std::fabs(v));
      EXPECT_TRUE(test::AllClose(got, want, (dim + 8) * kEps * (ymax + 3.0) * 2)) << "ln dim=" << dim;
    }
}

TEST(KernelsOps, SwigluAndGelu) {
  for (int64_t n : {1, 15, 16, 17, 1001, 70001}) {
    auto g = test::random_floats(n, n, -12.f, 12.f), u = test::random_floats(n, n + 1, -2.f, 2.f);
    std::vector<float> got(n), want(n);
    swiglu(g.data(), u.data(), got.data(), n);
    swiglu_ref(g.data(), u.data(), want.data(), n);
    // exp within a few ulp, one divide and two products: ≤ 8 ulp of |g·u| ≤ 24.
    EXPECT_TRUE(test::AllClose(got, want, 8 * kEps * 24)) << "swiglu n=" << n;

    auto a = g, b = g;
    gelu_tanh(a.data(), n);
    gelu_tanh_ref(b.data(), n);
    // v/(1+e^{−2u}) with e^x within ~2 ulp: relative ≤ 8 ulp of |v| ≤ 12.
    EXPECT_TRUE(test::AllClose(a, b, 8 * kEps * 12)) << "gelu_tanh n=" << n;

    a = g;
    b = g;
    gelu_erf(a.data(), n);
    gelu_erf_ref(b.data(), n);
    // erfc approximation has relative error < 1.2e−7, so 0.5·v·(1+erf) is off
    // by ≤ (1.2e−7 + 6 ulp)·|v|·max(1+erf) ≤ (1.2e−7 + 6ε)·12·2 ≈ 1.2e−5 absolute at
    // |v| = 12; the stated bound is relative: |err| ≤ 5e−7·max(|v|, 1).
    double worst = 0;
    for (int64_t i = 0; i < n; ++i)
      worst = std::max(worst, std::fabs(a[i] - b[i]) / std::max(1.0, (double)std::fabs(g[i])));
    EXPECT_LE(worst, 5e-7) << "gelu_erf n=" << n;
  }
}

TEST(KernelsOps, Softmax) {
  for (int64_t n : {1, 3, 16, 77, 4099})
    for (int64_t rows : {1, 9}) {
      auto x = test::random_floats(rows * n, n * rows, -20.f, 20.f);
      x[0] = -INFINITY;  // masked entry stays exactly 0
      auto y = x;
      softmax(x.data(), rows, n);
      softmax_ref(y.data(), rows, n);
      // Each p = e^{x−max}/Σ: exp ~2 ulp, sum over n terms ≤ n·ε relative.
      EXPECT_TRUE(test::AllClose(x, y, (n + 8) * kEps)) << "softmax n=" << n;
      if (n > 1) {
        EXPECT_EQ(x[0], 0.f);
      }
    }
}

TEST(KernelsOps, RopeApply) {
  for (int D : {64, 80, 128})
    for (int64_t S : {1, 7, 200}) {
      int heads = 3;
      int64_t stride = heads * D + 5;  // padded rows
      auto x = test::random_floats(S * stride, D + S);
      std::vector<float> c(S * D / 2), s(S * D / 2);
      std::mt19937 rng(D);
      for (size_t i = 0; i < c.size(); ++i) {
        float a = std::uniform_real_distribution<float>(-10, 10)(rng);
        c[i] = std::cos(a);
        s[i] = std::sin(a);
      }
      auto y = x;
      rope_apply(x.data(), S, heads, D, stride, c.data(), s.data());
      rope_apply_ref(y.data(), S, heads, D, stride, c.data(), s.data());
      // Two products and one sum of |values| ≤ 1: ≤ 4 ulp.
      EXPECT_TRUE(test::AllClose(x, y, 4 * kEps * 2)) << "rope D=" << D;
    }
}

// Table layout check against the header's diagram (independent double math).
TEST(KernelsOps, MropeTablesInterleavedAndSectioned) {
  const int D = 128, sec[3] = {24, 20, 20};
  const int64_t S = 3;
  std::vector<int64_t> pos = {1, 2, 3, 10, 20, 30, 100, 200, 300};  // rows T, H, W
  std::vector<float> c(S * 64), s(S * 64);
  for (bool inter : {true, false}) {
    mrope_tables(pos.data(), S, D, 5e6, sec, inter, c.data(), s.data());
    for (int64_t t = 0; t < S; ++t)
      for (int j = 0; j < 64; ++j) {
        int axis;
        if (inter) axis = (j < 60 && j % 3 == 1) ? 1 : (j < 60 && j % 3 == 2) ? 2 : 0;
        else axis = j < 24 ? 0 : j < 44 ? 1 : 2;
        double a = (double)pos[axis * S + t] * std::pow(5e6, -2.0 * j / D);
        // fp32 angle: |Δa| ≤ ε·|a| ≤ 300·6e−8 → tolerance 2e−5.
        EXPECT_NEAR(c[t * 64 + j], std::cos(a), 2e-5) << "t=" << t << " j=" << j << " inter=" << inter;
        EXPECT_NEAR(s[t * 64 + j], std::sin(a), 2e-5) << "t=" << t << " j=" << j;
      }
  }
}

TEST(KernelsOps, VisionRopeTables) {
  const int Dv = 64;
  std::vector<int32_t> r = {0, 5, 47}, cc = {3, 0, 12};
  std::vector<float> c(3 * 32), s(3 * 32);
  vision_rope_tables(r.data(), cc.data(), 3, Dv, c.data(), s.data());
  for (int t = 0; t < 3; ++t)
    for (int j = 0; j < 16; ++j) {
      double inv = std::pow(10000.0, -2.0 * j / 32);
      EXPECT_NEAR(c[t * 32 + j], std::cos(r[t] * inv), 1e-5);
      EXPECT_NEAR(s[t * 32 + 16 + j], std::sin(cc[t] * inv), 1e-5);
    }
}

// ---- embedding gather --------------------------------------------------------

struct Table {
  std::vector<uint8_t> data, zp;
  std::vector<float> f32, s32;
  std::vector<uint16_t> h16, s16;
  EmbeddingTable t;
};

Table make_table(DType dt, int bits, int64_t V, int64_t H, int bs, bool zp, DType sdt) {
  Table tb;
  std::mt19937_64 rng(V * 31 + H + bits);
  tb.t.V = V;
  tb.t.H = H;
  tb.t.dtype = dt;
  if (dt == DType::F32 || dt == DType::F16 || dt == DType::BF16) {
    tb.f32 = test::random_floats(V * H, 5);
    tb.h16.resize(V * H);
    for (int64_t i = 0; i < V * H; ++i)
      tb.h16[i] = dt == DType::F16 ? f32_to_f16(tb.f32[i]) : f32_to_bf16(tb.f32[i]);
    tb.t.data = dt == DType::F32 ? (const void*)tb.f32.data() : (const void*)tb.h16.data();
    return tb;
  }
  int64_t nb = (H + bs - 1) / bs;
  int64_t ebits = dt == DType::U8 ? bits : dtype_bits(dt);
  tb.data.resize((V * H * ebits + 7) / 8);
  for (auto& b : tb.data) b = (uint8_t)rng();
  tb.s32 = test::random_floats(V * nb, 7, -0.1f, 0.1f);
  tb.s16.resize(V * nb);
  for (int64_t i = 0; i < V * nb; ++i) tb.s16[i] = f32_to_f16(tb.s32[i]);
  if (zp) {
    tb.zp.resize(V * nb + 8);
    for (auto& b : tb.zp) b = (uint8_t)rng();
  }
  tb.t.bits = ebits;
  tb.t.block_size = bs;
  tb.t.data = tb.data.data();
  tb.t.scales = sdt == DType::F32 ? (const void*)tb.s32.data() : (const void*)tb.s16.data();
  tb.t.scale_dtype = sdt;
  tb.t.zero_points = zp ? tb.zp.data() : nullptr;
  return tb;
}

TEST(KernelsOps, EmbeddingGatherAllKinds) {
  std::vector<int64_t> ids = {0, 17, 3, 17, 40, 1};
  struct Case { DType dt; int bits; };
  for (Case c : {Case{DType::F32, 0}, Case{DType::F16, 0}, Case{DType::BF16, 0}, Case{DType::U8, 4},
                 Case{DType::U8, 8}, Case{DType::I4, 4}, Case{DType::U4, 4}, Case{DType::I8, 8}})
    for (bool zp : {false, true})
      for (int bs : {16, 32, 128}) {
        Table tb = make_table(c.dt, c.bits, 41, 256, bs, zp, bs == 32 ? DType::F16 : DType::F32);
        std::vector<float> got(ids.size() * 256), want(ids.size() * 256);
        embedding_gather(tb.t, ids.data(), ids.size(), got.data());
        embedding_gather_ref(tb.t, ids.data(), ids.size(), want.data());
        // (q − zp)·s is one fp32 product of exact operands: identical results.
        EXPECT_TRUE(test::AllClose(got, want, 0.0)) << dtype_name(c.dt) << " bits " << c.bits;
      }
}

// Hand-made rows pin the reference semantics (defaults and nibble order).
TEST(KernelsOps, EmbeddingGatherFormula) {
  std::vector<uint8_t> data(16, 0x2A);  // nibbles low→high: 10, 2
  std::vector<float> sc = {0.5f, 0.5f};
  EmbeddingTable t;
  t.V = 1;
  t.H = 32;
  t.dtype = DType::U8;
  t.bits = 4;
  t.block_size = 16;
  t.data = data.data();
  t.scales = sc.data();
  int64_t id = 0;
  std::vector<float> out(32);
  embedding_gather_ref(t, &id, 1, out.data());
  EXPECT_FLOAT_EQ(out[0], (10 - 8) * 0.5f);
  EXPECT_FLOAT_EQ(out[1], (2 - 8) * 0.5f);
  t.dtype = DType::I4;  // signed nibbles: 10 → −6, default zero point 0
  embedding_gather_ref(t, &id, 1, out.data());
  EXPECT_FLOAT_EQ(out[0], -6 * 0.5f);
  EXPECT_FLOAT_EQ(out[1], 2 * 0.5f);
  t.dtype = DType::U8;
  t.bits = 8;
  t.H = 16;  // 0x2A = 42, default zero point 128
  std::vector<float> o8(16);
  embedding_gather_ref(t, &id, 1, o8.data());
  EXPECT_FLOAT_EQ(o8[3], (42 - 128) * 0.5f);
}

}  // namespace
}  // namespace qvl
