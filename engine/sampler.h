// Next-token selection from a row of logits.
//
// Order (as Hugging Face's generate applies its processors):
//   repetition penalty (every id seen in prompt + output: l>0 ? l/r : l*r)
//   presence penalty   (every id seen in the output: l -= p)
//   temperature == 0   → greedy argmax (ties: lowest id)
//   temperature        (l /= T)
//   top-k  → top-p (smallest set with cumulative prob ≥ p) → min-p (drop
//   p < min_p·p_max) → draw from the renormalized distribution with a seeded
//   64-bit Mersenne twister (same seed + same logits → same ids).
#pragma once
#include <cstdint>
#include <random>
#include <vector>

namespace qvl {

struct SamplingParams {
  float temperature = 0.f;  // 0 = greedy
  int top_k = 0;            // 0 = off
  float top_p = 1.f;        // 1 = off
  float min_p = 0.f;        // 0 = off
  float repetition_penalty = 1.f;
  float presence_penalty = 0.f;
  uint64_t seed = 0;
};

// Throws qvl::Error naming the flag when a value is out of range.
void validate(const SamplingParams& p);

class Sampler {
 public:
  explicit Sampler(const SamplingParams& p);
  // logits [V] is modified (penalties, temperature). `context` = prompt ids
  // (repetition penalty only), `output` = generated ids so far.
  int64_t sample(float* logits, int64_t V, const std::vector<int64_t>& context,
                 const std::vector<int64_t>& output);
  const SamplingParams& params() const { return p_; }

 private:
  SamplingParams p_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int64_t>> cand_;  // scratch
  std::vector<uint8_t> seen_;                    // scratch, per vocab id
};

int64_t argmax(const float* x, int64_t n);

}  // namespace qvl
