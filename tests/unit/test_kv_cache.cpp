// KVCache: rows land where the attention kernels read them, fp16 rounding, and the
// cache maps memory only for the positions about to be used (not the whole context
// on the first write, which made the first prefill zero the entire cache).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <vector>

#include "model/kv_cache.h"

namespace qvl {
namespace {

// Resident set size of this process in bytes (/proc/self/statm, second field).
size_t resident_bytes() {
  std::ifstream f("/proc/self/statm");
  size_t total = 0, resident = 0;
  f >> total >> resident;
  return resident * (size_t)sysconf(_SC_PAGESIZE);
}

TEST(KVCache, RowsLandAtTheirPositionInEveryHeadBlock) {
  for (DType dt : {DType::F32, DType::F16}) {
    const int L = 2, H = 3, D = 8;
    KVCache c(L, H, D, 16, dt);
    // Two forwards on layer 1: 3 tokens then 2; row (t, h) holds 100·pos + 10·h + d/8.
    auto rows = [&](int64_t p0, int64_t S, float sign) {
      std::vector<float> r(S * H * D);
      for (int64_t t = 0; t < S; ++t)
        for (int h = 0; h < H; ++h)
          for (int d = 0; d < D; ++d) r[(t * H + h) * D + d] = sign * (100.f * (p0 + t) + 10.f * h + d / 8.f);
      return r;
    };
    for (auto [p0, S] : {std::pair<int64_t, int64_t>{0, 3}, {3, 2}}) {
      auto k = rows(p0, S, 1.f), v = rows(p0, S, -1.f);
      for (int l = 0; l < L; ++l) c.write(l, S, k.data(), v.data());
      c.len += S;
    }
    ASSERT_EQ(c.len, 5);
    std::vector<float> out(H * 5 * D);
    c.copy_rows(1, false, 5, out.data());
    for (int h = 0; h < H; ++h)
      for (int p = 0; p < 5; ++p)
        for (int d = 0; d < D; ++d) {
          const float want = 100.f * p + 10.f * h + d / 8.f;
          // fp16 keeps 11 significant bits: relative error ≤ 2^-11.
          const float tol = dt == DType::F16 ? std::ldexp(std::fabs(want), -11) : 0.f;
          EXPECT_NEAR(out[(h * 5 + p) * D + d], want, tol) << dtype_name(dt) << " head " << h << " pos " << p;
        }
    c.copy_rows(0, true, 5, out.data());
    EXPECT_NEAR(out[(2 * 5 + 4) * D + 0], -(400.f + 20.f), dt == DType::F16 ? 0.25f : 0.f);
  }
}

// 2B shapes at the default 4096-token context: 28 layers × 8 KV heads × 128 fp32 =
// 896 MiB for K and V. One written token maps positions [0, 256) of each block
// (58 MiB); with huge pages each 2 MiB (layer, head) block would be mapped whole.
TEST(KVCache, FirstWriteMapsOnlyThePopulatedPositions) {
  const int L = 28, H = 8, D = 128;
  const int64_t ctx = 4096;
  const size_t before = resident_bytes();
  KVCache c(L, H, D, ctx);
  std::vector<float> k(H * D, 1.f), v(H * D, 2.f);
  for (int l = 0; l < L; ++l) c.write(l, 1, k.data(), v.data());
  c.len = 1;
  const size_t grown = resident_bytes() - before;
  const size_t whole = c.bytes();
  ASSERT_EQ(whole, size_t(2) * L * H * ctx * D * sizeof(float));
  EXPECT_LT(grown, whole / 8) << "first write made " << grown / (1 << 20) << " MiB of the " << whole / (1 << 20)
                              << " MiB cache resident";
  EXPECT_GE(c.populated(), 1);
  EXPECT_LT(c.populated(), ctx);
}

// A long first write (a long prompt: ≥ 1 MiB per block switches the cache to huge
// pages) lands like a short one, and later rows follow it.
TEST(KVCache, LongFirstWriteThenDecodeRows) {
  for (DType dt : {DType::F32, DType::F16}) {
    const int L = 2, H = 2, D = 128;
    const int64_t S = 4200, ctx = 8192;
    KVCache c(L, H, D, ctx, dt);
    std::vector<float> k(S * H * D), v(S * H * D);
    for (int64_t t = 0; t < S; ++t)
      for (int h = 0; h < H; ++h)
        for (int d = 0; d < D; ++d) {
          k[(t * H + h) * D + d] = (float)((t * 7 + h * 3 + d) % 1000);
          v[(t * H + h) * D + d] = -(float)((t * 5 + h + d) % 1000);
        }
    for (int l = 0; l < L; ++l) c.write(l, S, k.data(), v.data());
    c.len = S;
    std::vector<float> one(H * D, 0.5f);
    for (int l = 0; l < L; ++l) c.write(l, 1, one.data(), one.data());
    c.len = S + 1;
    std::vector<float> out(H * (S + 1) * D);
    for (bool value : {false, true}) {
      c.copy_rows(L - 1, value, S + 1, out.data());
      const std::vector<float>& src = value ? v : k;
      for (int h = 0; h < H; ++h) {
        for (int64_t t : {int64_t(0), int64_t(1), int64_t(2047), int64_t(2048), S - 1})
          for (int d = 0; d < D; d += 31)
            ASSERT_EQ(out[(h * (S + 1) + t) * D + d], src[(t * H + h) * D + d])  // integers < 2^11: exact in fp16
                << dtype_name(dt) << (value ? " V" : " K") << " head " << h << " pos " << t;
        EXPECT_EQ(out[(h * (S + 1) + S) * D + 5], 0.5f);
      }
    }
  }
}

}  // namespace
}  // namespace qvl
