// Shared inputs of the kernel benchmarks (bench_kernels, bench_amx, bench_qgemm):
// a random symmetric MatMulNBits weight with fp32 scales and owned storage, and
// uniform random activations. Fixed seeds, so every benchmark sees the same data.
#pragma once
#include <cstdint>
#include <random>
#include <vector>

#include "kernels/linear.h"

namespace qvl::bench {

struct QW {
  std::vector<uint8_t> B;
  std::vector<float> s;
  LinearWeight W;
};

inline QW make_q(int bits, int64_t N, int64_t K, int bs) {
  QW q;
  std::mt19937 rng(1);
  const int64_t kb = (K + bs - 1) / bs;
  q.B.resize(N * kb * bs * bits / 8);
  for (auto& b : q.B) b = (uint8_t)rng();
  q.s.resize(N * kb);
  for (auto& s : q.s) s = 0.01f * (float)(rng() % 100) / 100.f;
  q.W.kind = bits == 4 ? WeightKind::Q4 : WeightKind::Q8;
  q.W.N = N;
  q.W.K = K;
  q.W.bits = bits;
  q.W.block_size = bs;
  q.W.data = q.B.data();
  q.W.scales = q.s.data();
  return q;
}

inline std::vector<float> rnd(size_t n) {
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> d(-1, 1);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

}  // namespace qvl::bench
