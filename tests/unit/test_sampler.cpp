// Sampler: greedy, penalties, top-k/top-p/min-p cut-offs and seeded
// reproducibility, checked against hand-computed expectations.
#include <gtest/gtest.h>

#include <cmath>
#include <algorithm>
#include <map>
#include <set>

#include "engine/sampler.h"
#include "kernels/base.h"

using qvl::Sampler;
using qvl::SamplingParams;

TEST(Sampler, GreedyPicksArgmaxLowestIdOnTies) {
  Sampler s(SamplingParams{});
  std::vector<float> l = {0.1f, 2.f, -1.f, 2.f};
  EXPECT_EQ(s.sample(l.data(), 4, {}, {}), 1);
}

TEST(Sampler, RepetitionPenaltyDividesPositiveMultipliesNegative) {
  SamplingParams p;
  p.repetition_penalty = 2.f;
  Sampler s(p);
  std::vector<float> l = {3.f, 2.f, -1.f};
  // id 0 seen: 3 -> 1.5, so id 1 (2.0) wins; id 2 seen: -1 -> -2.
  EXPECT_EQ(s.sample(l.data(), 3, {0, 2}, {}), 1);
  EXPECT_FLOAT_EQ(l[0], 1.5f);
  EXPECT_FLOAT_EQ(l[2], -2.f);
}

TEST(Sampler, PresencePenaltyOnlyOnOutputOncePerId) {
  SamplingParams p;
  p.presence_penalty = 1.5f;
  Sampler s(p);
  std::vector<float> l = {3.f, 2.f};
  EXPECT_EQ(s.sample(l.data(), 2, {1}, {0, 0}), 1);
  EXPECT_FLOAT_EQ(l[0], 1.5f);
  EXPECT_FLOAT_EQ(l[1], 2.f);
}

TEST(Sampler, TopKOneIsGreedy) {
  SamplingParams p;
  p.temperature = 5.f;
  p.top_k = 1;
  p.seed = 7;
  Sampler s(p);
  for (int i = 0; i < 50; ++i) {
    std::vector<float> l = {0.f, 0.5f, 0.4f};
    EXPECT_EQ(s.sample(l.data(), 3, {}, {}), 1);
  }
}

TEST(Sampler, TopPKeepsSmallestNucleus) {
  // probs ~ {0.665, 0.245, 0.09}: top_p 0.6 keeps only id 0; 0.8 keeps {0, 1}.
  std::vector<float> base = {2.f, 1.f, 0.f};
  SamplingParams p;
  p.temperature = 1.f;
  p.top_p = 0.6f;
  p.seed = 1;
  Sampler s(p);
  for (int i = 0; i < 100; ++i) {
    auto l = base;
    EXPECT_EQ(s.sample(l.data(), 3, {}, {}), 0);
  }
  p.top_p = 0.8f;
  Sampler s2(p);
  std::map<int64_t, int> hist;
  for (int i = 0; i < 2000; ++i) {
    auto l = base;
    hist[s2.sample(l.data(), 3, {}, {})]++;
  }
  EXPECT_EQ(hist.count(2), 0u);
  // Renormalized p(0) = 0.665/0.91 = 0.731; 2000 draws -> sd ~ 10.
  EXPECT_NEAR(hist[0] / 2000.0, 0.731, 0.04);
}

TEST(Sampler, MinPDropsUnlikely) {
  std::vector<float> base = {2.f, 1.f, 0.f};  // p = .665 .245 .09
  SamplingParams p;
  p.temperature = 1.f;
  p.min_p = 0.2f;  // threshold 0.133: drops id 2
  p.seed = 3;
  Sampler s(p);
  for (int i = 0; i < 500; ++i) {
    auto l = base;
    EXPECT_NE(s.sample(l.data(), 3, {}, {}), 2);
  }
}

TEST(Sampler, TemperatureSamplingMatchesSoftmaxAndIsSeeded) {
  std::vector<float> base = {1.f, 0.f, -1.f, 0.5f};
  SamplingParams p;
  p.temperature = 0.7f;
  p.seed = 42;
  Sampler a(p), b(p);
  std::map<int64_t, int> hist;
  const int n = 4000;
  for (int i = 0; i < n; ++i) {
    auto la = base, lb = base;
    int64_t x = a.sample(la.data(), 4, {}, {});
    EXPECT_EQ(x, b.sample(lb.data(), 4, {}, {}));
    hist[x]++;
  }
  double z = 0;
  for (float v : base) z += std::exp(v / 0.7);
  for (int i = 0; i < 4; ++i) {
    double want = std::exp(base[i] / 0.7) / z;
    EXPECT_NEAR(hist[i] / double(n), want, 0.03) << "id " << i;
  }
}

TEST(Sampler, RejectsInvalidValues) {
  SamplingParams p;
  p.temperature = -1.f;
  EXPECT_THROW(Sampler{p}, qvl::Error);
  p = {};
  p.top_p = 0.f;
  EXPECT_THROW(Sampler{p}, qvl::Error);
  p = {};
  p.repetition_penalty = 0.f;
  EXPECT_THROW(Sampler{p}, qvl::Error);
  p = {};
  p.min_p = 1.f;
  EXPECT_THROW(Sampler{p}, qvl::Error);
}

// Top-k selection over a large vocabulary with many tied logits: the ids ever
// drawn (at a temperature high enough that every candidate is near-uniform)
// must be exactly the k best by (logit desc, id asc).
TEST(Sampler, TopKSetWithTiesMatchesSortedOrder) {
  const int64_t V = 5000;
  std::vector<float> base(V);
  uint64_t r = 12345;
  for (auto& x : base) {
    r = r * 6364136223846793005ull + 1442695040888963407ull;
    x = (float)((r >> 40) % 13) * 0.25f;  // 13 distinct values: ties everywhere
  }
  std::vector<int64_t> order(V);
  for (int64_t i = 0; i < V; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return base[a] > base[b]; });
  for (int k : {1, 7, 20, 256}) {
    SamplingParams p;
    p.temperature = 1000.f;
    p.top_k = k;
    p.seed = 7 + k;
    Sampler s(p);
    std::set<int64_t> seen;
    for (int i = 0; i < 60 * k; ++i) {
      auto l = base;
      seen.insert(s.sample(l.data(), V, {}, {}));
    }
    std::set<int64_t> want(order.begin(), order.begin() + k);
    EXPECT_EQ(seen, want) << "k=" << k;
  }
}
