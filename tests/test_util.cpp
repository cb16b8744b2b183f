#include "test_util.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>

#include <unistd.h>

namespace qvl::test {

std::string data_dir() { return QVL_TEST_DATA; }
std::string golden_dir() { return std::string(QVL_TEST_DATA) + "/qwen3vl-a"; }
std::string source_dir() { return QVL_SOURCE_DIR; }
std::string binary_dir() { return QVL_BINARY_DIR; }
std::string models_dir() {
#ifdef QVL_MODELS_DIR
  return QVL_MODELS_DIR;
#else
  return std::string(QVL_BINARY_DIR) + "/models";
#endif
}

std::string scratch_dir(const std::string& name) {
  namespace fs = std::filesystem;
  // One folder per process: ctest -j runs test executables (and the tests of
  // one executable) in parallel, and two of them may ask for the same name.
  fs::path p = fs::path(QVL_BINARY_DIR) / "test-scratch" / (name + "." + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

Diff compare(const float* got, const float* want, int64_t n) {
  Diff d;
  double dot = 0, ng = 0, nw = 0;
  for (int64_t i = 0; i < n; ++i) {
    double g = got[i], w = want[i];
    double a = std::fabs(g - w);
    if (std::isnan(g) != std::isnan(w)) a = INFINITY;
    if (a > d.max_abs || d.worst < 0) {
      if (a >= d.max_abs) {
        d.max_abs = a;
        d.worst = i;
        d.got = g;
        d.want = w;
      }
    }
    double r = a / std::max(std::fabs(w), 1e-6);
    if (r > d.max_rel) d.max_rel = r;
    dot += g * w;
    ng += g * g;
    nw += w * w;
  }
  d.cosine = (ng > 0 && nw > 0) ? dot / std::sqrt(ng * nw) : (ng == nw ? 1.0 : 0.0);
  return d;
}

::testing::AssertionResult AllClose(const float* got, const float* want, int64_t n, double tol) {
  Diff d = compare(got, want, n);
  if (d.max_abs <= tol) return ::testing::AssertionSuccess() << "max abs " << d.max_abs;
  return ::testing::AssertionFailure()
         << "max abs diff " << d.max_abs << " > tol " << tol << " at flat index " << d.worst
         << " (got " << d.got << ", want " << d.want << "), cosine " << d.cosine << ", n=" << n;
}

::testing::AssertionResult AllClose(const std::vector<float>& got, const std::vector<float>& want,
                                    double tol) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure()
           << "size mismatch: got " << got.size() << ", want " << want.size();
  return AllClose(got.data(), want.data(), static_cast<int64_t>(got.size()), tol);
}

int run_command(const std::string& cmd, std::string* out) {
  std::string full = cmd + " 2>&1";
  FILE* p = popen(full.c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  size_t n;
  if (out) out->clear();
  while ((n = fread(buf, 1, sizeof buf, p)) > 0)
    if (out) out->append(buf, n);
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

std::vector<float> random_floats(size_t n, uint64_t seed, float lo, float hi) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

}  // namespace qvl::test
