// Shared helpers for the test executables: data paths, .npy references,
// element-wise comparison that names the worst element.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "loader/npy.h"

namespace qvl::test {

// tests/data inside the source tree (copied from the shared golden sets).
std::string data_dir();
std::string golden_dir();  // tests/data/qwen3vl-a
std::string source_dir();
std::string binary_dir();
// build/models: tools/qvl-convert outputs made by the `qvl_models` CTest fixture
// (qwen3vl-a-fp32, -fp16, -int4-b32, -int4-b128-zp); golden/e2e tests only.
std::string models_dir();
// A fresh, empty scratch folder under the build tree for this test
// (build/test-scratch/<name>.<pid>).
std::string scratch_dir(const std::string& name);

struct Diff {
  double max_abs = 0, max_rel = 0, cosine = 1;
  int64_t worst = -1;
  double got = 0, want = 0;
};
Diff compare(const float* got, const float* want, int64_t n);

// EXPECT that |got - want| <= tol everywhere; on failure reports the worst
// element's flat index, its values and the cosine similarity.
::testing::AssertionResult AllClose(const float* got, const float* want, int64_t n, double tol);
::testing::AssertionResult AllClose(const std::vector<float>& got, const std::vector<float>& want,
                                    double tol);

// Runs a shell command, returns exit status; stdout+stderr captured into *out.
int run_command(const std::string& cmd, std::string* out);

// Seeded uniform random floats in [lo, hi).
std::vector<float> random_floats(size_t n, uint64_t seed, float lo = -1.f, float hi = 1.f);

}  // namespace qvl::test
