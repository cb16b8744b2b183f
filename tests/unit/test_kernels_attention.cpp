// attention_causal / attention_segments vs their double-precision references.
// Tolerance: a score s = scale·q·k is off by ≤ (D+2)·ε·scale·Σ|q||k|; softmax
// turns an absolute score error δ into relative weight error ≤ 2δ (+ exp ~2 ulp
// + L·ε from the normalizing sum); the output is a convex combination of V, so
// |err| ≤ max|v|·(2δ + (L+8)·ε) + (L+4)·ε·max|v|.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/attention.h"
#include "kernels/dtype.h"
#include "kernels/gemm_bf16.h"
#include "test_util.h"

namespace qvl {
namespace {

constexpr double kEps = 1.0 / (1 << 24);

double tolerance(int D, int64_t L, float scale, double qmax, double kmax, double vmax) {
  double delta = (D + 2) * kEps * scale * D * qmax * kmax;
  return vmax * (2 * delta + 2 * (L + 8) * kEps);
}

TEST(KernelsAttention, CausalGqaDecodeAndPrefill) {
  for (int D : {64, 80, 128})
  for (int group : {1, 2, 4})
    for (int Hkv : {1, 2})
      for (int64_t past : {0, 5, 300})
        for (int64_t S : {1, 3, 7, 130}) {
          const int Hq = Hkv * group;
          const int64_t ctx = past + S + 3;  // spare cache slots must be ignored
          const int64_t qs = Hq * D + 8, os = Hq * D + 4;
          auto q = test::random_floats(S * qs, group + past + S, -2.f, 2.f);
          auto k = test::random_floats(Hkv * ctx * D, 2, -2.f, 2.f);
          auto v = test::random_floats(Hkv * ctx * D, 3);
          std::vector<float> got(S * os, 0.f), want(S * os, 0.f);
          float scale = 1.f / std::sqrt((float)D);
          attention_causal(q.data(), qs, S, Hq, Hkv, D, k.data(), v.data(), ctx, past, scale,
                           got.data(), os);
          attention_causal_ref(q.data(), qs, S, Hq, Hkv, D, k.data(), v.data(), ctx, past, scale,
                               want.data(), os);
          EXPECT_TRUE(test::AllClose(got, want, tolerance(D, past + S, scale, 2, 2, 1)))
              << "D=" << D << " Hq=" << Hq << " Hkv=" << Hkv << " past=" << past << " S=" << S;
        }
}

TEST(KernelsAttention, SegmentsBidirectional) {
  const int H = 3;
  for (int D : {16, 72, 80}) {
    std::vector<int64_t> cu = {0, 1, 50, 64, 200, 201, 331};
    const int64_t N = cu.back();
    const int64_t stride = 3 * H * D;  // packed qkv rows
    auto qkv = test::random_floats(N * stride, D, -1.5f, 1.5f);
    std::vector<float> got(N * H * D), want(N * H * D);
    float scale = 1.f / std::sqrt((float)D);
    attention_segments(qkv.data(), qkv.data() + H * D, qkv.data() + 2 * H * D, stride, N, H, D,
                       cu.data(), 6, scale, got.data());
    attention_segments_ref(qkv.data(), qkv.data() + H * D, qkv.data() + 2 * H * D, stride, N, H, D,
                           cu.data(), 6, scale, want.data());
    EXPECT_TRUE(test::AllClose(got, want, tolerance(D, 136, scale, 1.5, 1.5, 1.5))) << "D=" << D;
  }
}

// fp16 KV cache: the kernel (decode reads halves in registers; prefill converts
// the used rows once) against the double reference over the same fp16 values,
// with the fp32 tolerance (the halves are exact inputs for both); and the
// cache's write / copy_rows round trip is the element-wise fp16 rounding.
TEST(KernelsAttention, CausalGqaF16Cache) {
  for (int D : {64, 128})
    for (int64_t past : {0, 37, 600})
      for (int64_t S : {1, 4, 9, 70}) {
        const int Hkv = 2, Hq = 4;
        const int64_t ctx = past + S + 5;
        const int64_t qs = Hq * D, os = Hq * D;
        auto q = test::random_floats(S * qs, past + S, -2.f, 2.f);
        auto kf = test::random_floats(Hkv * ctx * D, 4, -2.f, 2.f);
        auto vf = test::random_floats(Hkv * ctx * D, 5);
        std::vector<uint16_t> kh(kf.size()), vh(vf.size());
        f32_to_f16_row(kf.data(), kh.data(), (int64_t)kf.size());
        f32_to_f16_row(vf.data(), vh.data(), (int64_t)vf.size());
        for (size_t i = 0; i < kf.size(); i += 97) ASSERT_EQ(kh[i], f32_to_f16(kf[i]));  // row == scalar RNE
        KVBlock kv{kh.data(), vh.data(), ctx, DType::F16};
        std::vector<float> got(S * os, 0.f), want(S * os, 0.f);
        const float scale = 1.f / std::sqrt((float)D);
        attention_causal(q.data(), qs, S, Hq, Hkv, D, kv, past, scale, got.data(), os);
        attention_causal_ref(q.data(), qs, S, Hq, Hkv, D, kv, past, scale, want.data(), os);
        EXPECT_TRUE(test::AllClose(got, want, tolerance(D, past + S, scale, 2, 2, 1)))
            << "f16 D=" << D << " past=" << past << " S=" << S;
      }
}

// AttnPrecision::Split (prefill on AMX with split-bf16 products; fp32 where AMX-BF16
// is missing, which the same tolerance covers): scores off by
// ≤ scale·(2^−16 + 2(D+2)ε)·Σ|q||k|, so δ grows by the 2^−16 term; P·V adds
// ≤ (2^−16 + 2(L+2)ε)·Σp|v| ≤ 2^−15·max|v|.
TEST(KernelsAttention, CausalSplitPrefill) {
  for (int D : {64, 128})
    for (int group : {1, 2})
      for (int64_t past : {0, 37, 300})
        for (int64_t S : {5, 70, 130}) {
          const int Hkv = 2, Hq = Hkv * group;
          const int64_t ctx = past + S + 3;
          const int64_t qs = Hq * D + 8, os = Hq * D + 4;
          auto q = test::random_floats(S * qs, 11 + past + S, -2.f, 2.f);
          auto k = test::random_floats(Hkv * ctx * D, 12, -2.f, 2.f);
          auto v = test::random_floats(Hkv * ctx * D, 13);
          std::vector<float> got(S * os, 0.f), want(S * os, 0.f);
          const float scale = 1.f / std::sqrt((float)D);
          attention_causal(q.data(), qs, S, Hq, Hkv, D, k.data(), v.data(), ctx, past, scale, got.data(), os,
                           AttnPrecision::Split);
          attention_causal_ref(q.data(), qs, S, Hq, Hkv, D, k.data(), v.data(), ctx, past, scale, want.data(), os);
          const double delta = (std::ldexp(1.0, -16) + 2 * (D + 2) * kEps) * scale * D * 2 * 2;
          const double tol = 2 * delta + std::ldexp(1.0, -15) + 2 * (past + S + 8) * kEps;
          EXPECT_TRUE(test::AllClose(got, want, tol)) << "D=" << D << " Hq=" << Hq << " past=" << past << " S=" << S;
          if (D == 128 && past == 300 && S == 130) {  // far tighter than bf16 (2^−8): the lo products are in
            test::Diff d = test::compare(got.data(), want.data(), (int64_t)got.size());
            EXPECT_LT(d.max_abs, 1e-4);
          }
        }
  // fp16 cache: converted to fp32 once, then the same split path.
  const int D = 128, Hkv = 2, Hq = 4;
  const int64_t past = 40, S = 90, ctx = past + S;
  auto q = test::random_floats(S * Hq * D, 21, -2.f, 2.f);
  auto kf = test::random_floats(Hkv * ctx * D, 22, -2.f, 2.f), vf = test::random_floats(Hkv * ctx * D, 23);
  std::vector<uint16_t> kh(kf.size()), vh(vf.size());
  f32_to_f16_row(kf.data(), kh.data(), (int64_t)kf.size());
  f32_to_f16_row(vf.data(), vh.data(), (int64_t)vf.size());
  KVBlock kv{kh.data(), vh.data(), ctx, DType::F16};
  std::vector<float> got(S * Hq * D), want(S * Hq * D);
  const float scale = 1.f / std::sqrt((float)D);
  attention_causal(q.data(), Hq * D, S, Hq, Hkv, D, kv, past, scale, got.data(), Hq * D, AttnPrecision::Split);
  attention_causal_ref(q.data(), Hq * D, S, Hq, Hkv, D, kv, past, scale, want.data(), Hq * D);
  const double delta = (std::ldexp(1.0, -16) + 2 * (D + 2) * kEps) * scale * D * 2 * 2;
  EXPECT_TRUE(test::AllClose(got, want, 2 * delta + std::ldexp(1.0, -15) + 2 * (ctx + 8) * kEps)) << "f16 cache";
}

// AttnPrecision::BF16 (prefill with bf16 operands on the bf16 engine). With q,
// k, v already bf16 values the operand rounding of Q, K and V is exact, so the
// only rounding left is P's (bf16 unit roundoff 2^−8 per probability):
// |ΔO| ≤ 2^−8·Σp|v| ≤ 2^−8·max|v|, plus the fp32 sums' terms of the F32 test. Against the fp32 reference on the
// same bf16-valued inputs, that checks masking, blocking and GQA mapping
// tightly; on general inputs the error is that of rounding q, k, v (2^−8 each).
TEST(KernelsAttention, CausalBf16Prefill) {
  if (!gemm::bf16_available()) GTEST_SKIP() << "no bf16 engine (AMX or AVX512-BF16) on this CPU";
  auto round_bf16 = [](std::vector<float>& x) {
    for (float& f : x) f = bf16_to_f32(f32_to_bf16(f));
  };
  for (int D : {64, 128})
    for (int group : {1, 2})
      for (int64_t past : {0, 37, 300})
        for (int64_t S : {5, 70, 130}) {
          const int Hkv = 2, Hq = Hkv * group;
          const int64_t ctx = past + S + 3;
          const int64_t qs = Hq * D + 8, os = Hq * D + 4;
          auto q = test::random_floats(S * qs, 31 + past + S, -2.f, 2.f);
          auto k = test::random_floats(Hkv * ctx * D, 32, -2.f, 2.f);
          auto v = test::random_floats(Hkv * ctx * D, 33);
          round_bf16(q), round_bf16(k), round_bf16(v);
          std::vector<float> got(S * os, 0.f), want(S * os, 0.f);
          const float scale = 1.f / std::sqrt((float)D);
          attention_causal(q.data(), qs, S, Hq, Hkv, D, k.data(), v.data(), ctx, past, scale, got.data(), os,
                           AttnPrecision::BF16);
          attention_causal_ref(q.data(), qs, S, Hq, Hkv, D, k.data(), v.data(), ctx, past, scale, want.data(), os);
          float vmax = 0.f;
          for (float x : v) vmax = std::max(vmax, std::fabs(x));
          // fp32 score sums: δ ≤ (D+2)ε·scale·D·max|q|·max|k| moves p by ≤ 2δ relative.
          const double delta = (D + 2) * kEps * scale * D * 2 * 2;
          const double tol = vmax * (std::ldexp(1.0, -8) + 2 * delta + 2 * (past + S + 8) * kEps);
          EXPECT_TRUE(test::AllClose(got, want, tol)) << "D=" << D << " Hq=" << Hq << " past=" << past << " S=" << S;
        }
}

}  // namespace
}  // namespace qvl
