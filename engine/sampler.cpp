#include "engine/sampler.h"

#include <algorithm>
#include <cmath>

#include "kernels/base.h"

namespace qvl {

void validate(const SamplingParams& p) {
  QVL_CHECK(std::isfinite(p.temperature) && p.temperature >= 0.f,
            "--temp must be >= 0 (got %g)", p.temperature);
  QVL_CHECK(p.top_k >= 0, "--top-k must be >= 0 (got %d)", p.top_k);
  QVL_CHECK(p.top_p > 0.f && p.top_p <= 1.f, "--top-p must be in (0, 1] (got %g)", p.top_p);
  QVL_CHECK(p.min_p >= 0.f && p.min_p < 1.f, "--min-p must be in [0, 1) (got %g)", p.min_p);
  QVL_CHECK(std::isfinite(p.repetition_penalty) && p.repetition_penalty > 0.f,
            "--repeat-penalty must be > 0 (got %g)", p.repetition_penalty);
  QVL_CHECK(std::isfinite(p.presence_penalty), "--presence-penalty must be finite");
}

int64_t argmax(const float* x, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (x[i] > x[best]) best = i;
  return best;
}

Sampler::Sampler(const SamplingParams& p) : p_(p), rng_(p.seed) { validate(p); }

int64_t Sampler::sample(float* logits, int64_t V, const std::vector<int64_t>& context,
                        const std::vector<int64_t>& output) {
  if (p_.repetition_penalty != 1.f) {
    seen_.assign(static_cast<size_t>(V), 0);
    auto mark = [&](const std::vector<int64_t>& ids) {
      for (int64_t id : ids)
        if (id >= 0 && id < V) seen_[id] = 1;
    };
    mark(context);
    mark(output);
    for (int64_t i = 0; i < V; ++i)
      if (seen_[i]) logits[i] = logits[i] > 0 ? logits[i] / p_.repetition_penalty
                                              : logits[i] * p_.repetition_penalty;
  }
  if (p_.presence_penalty != 0.f) {
    seen_.assign(static_cast<size_t>(V), 0);
    for (int64_t id : output)
      if (id >= 0 && id < V && !seen_[id]) {
        seen_[id] = 1;
        logits[id] -= p_.presence_penalty;
      }
  }
  if (p_.temperature == 0.f) return argmax(logits, V);

  // Candidates sorted by logit (ties: lower id first), cut by top-k.
  auto by_logit = [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  size_t k = static_cast<size_t>(V);
  if (p_.top_k > 0 && static_cast<size_t>(p_.top_k) < k) k = static_cast<size_t>(p_.top_k);
  cand_.clear();
  if (k < static_cast<size_t>(V) && k <= 256) {
    // Small k: one pass keeping the best k sorted. Ids arrive in increasing
    // order, so a value equal to the current k-th never enters (it ranks after
    // it) and the result equals the partial sort below.
    cand_.reserve(k + 1);
    for (int64_t i = 0; i < V; ++i) {
      const float v = logits[i] / p_.temperature;
      if (cand_.size() == k && !(v > cand_.back().first)) continue;
      auto pos = std::upper_bound(cand_.begin(), cand_.end(), std::pair<float, int64_t>(v, i), by_logit);
      cand_.insert(pos, {v, i});
      if (cand_.size() > k) cand_.pop_back();
    }
  } else {
    cand_.reserve(static_cast<size_t>(V));
    for (int64_t i = 0; i < V; ++i) cand_.emplace_back(logits[i] / p_.temperature, i);
    std::partial_sort(cand_.begin(), cand_.begin() + static_cast<long>(k), cand_.end(), by_logit);
    cand_.resize(k);
  }

  // Softmax over the candidates.
  double mx = cand_[0].first, sum = 0;
  std::vector<double> prob(k);
  for (size_t i = 0; i < k; ++i) sum += prob[i] = std::exp(cand_[i].first - mx);
  for (auto& q : prob) q /= sum;

  size_t keep = k;
  if (p_.top_p < 1.f) {
    double cum = 0;
    for (size_t i = 0; i < k; ++i) {
      cum += prob[i];
      if (cum >= p_.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  if (p_.min_p > 0.f) {
    double thr = p_.min_p * prob[0];
    size_t n = 1;
    while (n < keep && prob[n] >= thr) ++n;
    keep = n;
  }
  double total = 0;
  for (size_t i = 0; i < keep; ++i) total += prob[i];
  std::uniform_real_distribution<double> u(0.0, total);
  double r = u(rng_), acc = 0;
  for (size_t i = 0; i < keep; ++i) {
    acc += prob[i];
    if (r < acc) return cand_[i].second;
  }
  return cand_[keep - 1].second;
}

}  // namespace qvl
