// Golden test of the vision encoder with FloatCompute::BF16 (the --vision-bf16
// path: every linear and both attention products on the AMX bf16 engine,
// kernels/gemm_bf16.h) against Hugging Face's float32 tensors of the image
// cases: every block, image embeds and the DeepStack outputs, for the
// torch.onnx.export layout and the qvl-convert fp32 folder.
//
// Tolerance (derived): one bf16 product rounds both operands by ≤ u = 2^−8
// relative, so one matmul output is off by ≤ 2u·Σ|x||w|, and with the random,
// sign-mixed operands of a layer the rounding errors are independent and
// zero-mean: the error's standard deviation is ≈ (u/√3)·√2·‖x∘w‖₂, i.e. about
// 2^−8.3 of one output's magnitude. A block chains 6 products (qkv, Q·Kᵀ,
// P·V, proj, fc1, fc2) whose errors add on the residual stream, and block i
// carries the errors of blocks 0..i: after block i the relative error is about
// √(6(i+1))·2^−8.3 ≈ √(6(i+1))·0.0032. We allow 4σ of that, relative to the
// tensor's max |value| (LayerNorm keeps every block's input at unit scale, so
// the errors do not grow with the activations):
//   max|got − want| ≤ 4·√(6·(blocks so far))·0.0032·max|want|
// (image embeds / DeepStack count the merger's 2 products on top of the blocks
// they read). That is 0.03–0.06 relative: a wrong weight, bias or ordering
// gives O(1) relative errors. The fp32 path (tests/golden/test_vision_model.cpp)
// stays at ≤ 2.2e−5; the numbers measured here are printed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>

#include "kernels/gemm_bf16.h"
#include "kernels/linear.h"
#include "loader/config.h"
#include "loader/npy.h"
#include "model/model_files.h"
#include "model/vision_model.h"
#include "golden/golden_testing.h"
#include "test_util.h"

namespace qvl {
namespace {

using test::Recorder;
using test::case_dir;
using test::case_grids;
using test::npyf;

// Relative tolerance after `products` chained bf16 products (see the header).
double rel_tol(int products) { return 4.0 * std::sqrt((double)products) * 0.0032; }

struct Outputs {
  std::map<std::string, std::vector<float>> t;  // blocks, image_embeds, deepstack_k
};

Outputs encode(const std::string& folder, const std::string& c, FloatCompute mode, int* depth) {
  ModelFiles mf = find_model_files(folder);
  ModelConfig cfg = read_model_config(mf.config_dir);
  auto vm = VisionModel::load(mf, cfg);
  const std::vector<float> pixels = npyf(c, "pixel_values.npy");
  Recorder rec;
  std::vector<float> embeds;
  std::vector<std::vector<float>> ds;
  {
    ScopedFloatCompute fc(mode);
    vm->encode(pixels.data(), case_grids(c), &embeds, &ds, &rec);
  }
  Outputs o;
  *depth = cfg.vision.depth;
  for (int i = 0; i < cfg.vision.depth; ++i) o.t["vision_block_" + std::to_string(i)] = rec.t["vision.block." + std::to_string(i)];
  o.t["image_embeds"] = embeds;
  for (size_t k = 0; k < ds.size(); ++k) o.t["deepstack_" + std::to_string(k)] = ds[k];
  return o;
}

void check_case(const std::string& folder, const std::string& c) {
  int depth = 0;
  Outputs bf = encode(folder, c, FloatCompute::BF16, &depth);
  Outputs f32 = encode(folder, c, FloatCompute::F32, &depth);
  ASSERT_EQ(bf.t.size(), (size_t)depth + 4);
  double worst_ratio = 0, bf_vs_f32 = 0;
  for (auto& [name, got] : bf.t) {
    const std::vector<float> want = npyf(c, name + ".npy");
    ASSERT_EQ(got.size(), want.size()) << name;
    double scale = 0;
    for (float w : want) scale = std::max(scale, (double)std::fabs(w));
    // Products before this tensor: 6 per block (all blocks for the outputs) + 2 in a merger.
    const int products = name.rfind("vision_block_", 0) == 0 ? 6 * (std::stoi(name.substr(13)) + 1) : 6 * depth + 2;
    const double tol = rel_tol(products) * scale;
    test::Diff d = test::compare(got.data(), want.data(), (int64_t)got.size());
    test::Diff d32 = test::compare(f32.t[name].data(), want.data(), (int64_t)got.size());
    test::Diff dbf = test::compare(got.data(), f32.t[name].data(), (int64_t)got.size());
    std::printf("[ bf16 ] %-14s max|diff| %.3g (rel %.3g of max|x| %.3g; tol %.3g), cos %.7f; fp32 path %.3g\n",
                name.c_str(), d.max_abs, d.max_abs / scale, scale, tol, d.cosine, d32.max_abs);
    EXPECT_TRUE(test::AllClose(got, want, tol)) << name;
    worst_ratio = std::max(worst_ratio, d.max_abs / tol);
    bf_vs_f32 = std::max(bf_vs_f32, dbf.max_abs);
  }
  std::printf("[ bf16 ] %s %s: worst error / tolerance %.3f; bf16 vs fp32 path max|diff| %.3g\n",
              folder.substr(folder.rfind('/') + 1).c_str(), c.c_str(), worst_ratio, bf_vs_f32);
  // Non-vacuous: with a bf16 engine (AMX or AVX512-BF16) the bf16 path must differ from fp32 by more than fp32 noise.
  if (gemm::bf16_available()) {
    EXPECT_GT(bf_vs_f32, 1e-4) << "BF16 mode did not change the vision encoder";
  }
}

class VisionBf16Golden : public ::testing::TestWithParam<const char*> {};

TEST_P(VisionBf16Golden, TorchTraceLayout) { check_case(test::golden_dir() + "/onnx-torch", GetParam()); }

TEST_P(VisionBf16Golden, ConvertedFp32Layout) {
  const std::string dir = test::models_dir() + "/qwen3vl-a-fp32";
  ASSERT_TRUE(std::filesystem::exists(dir + "/vision.onnx")) << dir << " missing: run through ctest (fixture qvl_models)";
  check_case(dir, GetParam());
}

INSTANTIATE_TEST_SUITE_P(Cases, VisionBf16Golden, ::testing::Values("02_image", "03_resize"));

}  // namespace
}  // namespace qvl
