// Shared helpers of the golden tests: reading a case's reference tensors
// (tests/data/qwen3vl-a/cases/<case>/*.npy) and recording the named
// intermediate tensors a model reports through its TensorObserver.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "loader/npy.h"
#include "model/observer.h"
#include "model/positions.h"
#include "test_util.h"

namespace qvl::test {

// Every tensor the observer saw, by name (last value wins), with its shape.
struct Recorder : TensorObserver {
  std::map<std::string, std::vector<float>> t;
  std::map<std::string, std::vector<int64_t>> shape;
  void on_tensor(const std::string& name, const float* data, const std::vector<int64_t>& s) override {
    int64_t n = 1;
    for (auto d : s) n *= d;
    t[name].assign(data, data + n);
    shape[name] = s;
  }
};

inline std::string case_dir(const std::string& c) { return golden_dir() + "/cases/" + c; }
inline std::vector<float> npyf(const std::string& c, const std::string& f) {
  return npy_load(case_dir(c) + "/" + f).to_f32();
}
inline std::vector<int64_t> npyi(const std::string& c, const std::string& f) {
  return npy_load(case_dir(c) + "/" + f).to_i64();
}

// The case's image_grid_thw as grids.
inline std::vector<Grid3> case_grids(const std::string& c) {
  auto g = npyi(c, "image_grid_thw.npy");
  std::vector<Grid3> out;
  for (size_t i = 0; i + 2 < g.size(); i += 3) out.push_back({g[i], g[i + 1], g[i + 2]});
  return out;
}

}  // namespace qvl::test
