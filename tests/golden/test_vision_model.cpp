// Golden tests of model/vision_model (+ vision_inputs): the Qwen3-VL vision encoder
// bound from
//   * the torch.onnx.export single-grid traces (onnx-torch/vision_<case>.onnx: Conv
//     patch embed, Gemm(transB) linears, folded position/rotary constants), and
//   * the qvl-convert fp32 folder (grid-independent vision.onnx, MatMul B + Add bias),
// against Hugging Face's float32 tensors of the image cases: patch embedding, the
// interpolated position table, patch+pos, every block, image embeds and DeepStack.
//
// Tolerance: the vision activations stay below |x| ~ 3. qvl lands at <= 2.2e-5: the
// position-table blend weights come from a float32 linspace that differs from PyTorch's
// by an ulp at some points (7.9e-6 on vision_pos_embeds), the rest is float32 summation
// order. 1e-4 (~5x margin) still catches any wrong weight, bias or ordering (errors of
// those kinds are O(0.1)).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>

#include "loader/config.h"
#include "loader/npy.h"
#include "loader/onnx_file.h"
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

constexpr double kTol = 1e-4;

// The fp32 folder the `qvl_models` CTest fixture converted with tools/qvl-convert.
std::string converted_fp32() {
  std::string dir = test::models_dir() + "/qwen3vl-a-fp32";
  EXPECT_TRUE(std::filesystem::exists(dir + "/vision.onnx")) << dir << " missing: run through ctest (fixture qvl_models)";
  return dir;
}

// Worst |diff| over every compared tensor, printed once per case.
double g_worst = 0;
::testing::AssertionResult close(const std::vector<float>& got, const std::vector<float>& want) {
  if (got.size() == want.size()) g_worst = std::max(g_worst, test::compare(got.data(), want.data(), got.size()).max_abs);
  return test::AllClose(got, want, kTol);
}

void check_case(const std::string& folder, const std::string& c) {
  g_worst = 0;
  ModelFiles mf = find_model_files(folder);
  ModelConfig cfg = read_model_config(mf.config_dir);
  auto vm = VisionModel::load(mf, cfg);
  ASSERT_EQ(vm->deepstack_levels(), 3);
  const std::vector<float> pixels = npyf(c, "pixel_values.npy");
  Recorder rec;
  std::vector<float> embeds;
  std::vector<std::vector<float>> ds;
  vm->encode(pixels.data(), case_grids(c), &embeds, &ds, &rec);
  EXPECT_TRUE(close(rec.t["vision.patch_embed"], npyf(c, "vision_patch_embed.npy"))) << "patch_embed";
  EXPECT_TRUE(close(rec.t["vision.pos_embeds"], npyf(c, "vision_pos_embeds.npy"))) << "pos_embeds";
  EXPECT_TRUE(close(rec.t["vision.patch_embed_pos"], npyf(c, "vision_patch_embed_pos.npy")))
      << "patch_embed_pos";
  for (int i = 0; i < cfg.vision.depth; ++i)
    EXPECT_TRUE(close(rec.t["vision.block." + std::to_string(i)], npyf(c, "vision_block_" + std::to_string(i) + ".npy")))
        << "vision_block_" << i;
  EXPECT_TRUE(close(embeds, npyf(c, "image_embeds.npy"))) << "image_embeds";
  ASSERT_EQ(ds.size(), 3u);
  for (int k = 0; k < 3; ++k)
    EXPECT_TRUE(close(ds[k], npyf(c, "deepstack_" + std::to_string(k) + ".npy"))) << "deepstack_" << k;
  std::printf("[ max|diff| ] %s %s: %g over all vision tensors\n", folder.substr(folder.rfind('/') + 1).c_str(),
              c.c_str(), g_worst);
}

class VisionModelGolden : public ::testing::TestWithParam<const char*> {};

TEST_P(VisionModelGolden, TorchTraceLayout) { check_case(test::golden_dir() + "/onnx-torch", GetParam()); }
TEST_P(VisionModelGolden, ConvertedFp32Layout) { check_case(converted_fp32(), GetParam()); }

INSTANTIATE_TEST_SUITE_P(Cases, VisionModelGolden, ::testing::Values("02_image", "03_resize"));

// Several items in one call (two images, and a 2-slice video item) give the rows of
// the items encoded one by one: attention stays inside each segment, position tables
// and rope rows restart per item / repeat per temporal slice.
TEST(VisionModel, BatchedItemsEqualSeparateRuns) {
  ModelFiles mf = find_model_files(converted_fp32());
  auto vm = VisionModel::load(mf, read_model_config(mf.config_dir));
  const std::vector<float> a = npyf("02_image", "pixel_values.npy"), b = npyf("03_resize", "pixel_values.npy");
  const Grid3 ga = case_grids("02_image")[0], gb = case_grids("03_resize")[0];
  auto run = [&](const std::vector<float>& px, const std::vector<Grid3>& g) {
    std::vector<float> e;
    std::vector<std::vector<float>> ds;
    vm->encode(px.data(), g, &e, &ds, nullptr);
    for (auto& d : ds) e.insert(e.end(), d.begin(), d.end());
    return e;
  };
  auto split = [](const std::vector<float>& joint, size_t rows_a, size_t rows_b, size_t w) {
    // joint = [embeds | ds0 | ds1 | ds2], each with rows_a + rows_b rows → per-item blocks
    std::vector<float> ea, eb;
    for (int part = 0; part < 4; ++part) {
      const float* p = joint.data() + part * (rows_a + rows_b) * w;
      ea.insert(ea.end(), p, p + rows_a * w);
      eb.insert(eb.end(), p + rows_a * w, p + (rows_a + rows_b) * w);
    }
    return std::make_pair(ea, eb);
  };
  const size_t w = vm->out_hidden();
  std::vector<float> ab = a;
  ab.insert(ab.end(), b.begin(), b.end());
  auto [ea, eb] = split(run(ab, {ga, gb}), ga.patches() / 4, gb.patches() / 4, w);
  EXPECT_TRUE(test::AllClose(ea, run(a, {ga}), 1e-5)) << "first image";
  EXPECT_TRUE(test::AllClose(eb, run(b, {gb}), 1e-5)) << "second image";
  // Video item (2, 16, 20): slice 0 = image a, slice 1 = a with the patch rows reversed.
  std::vector<float> a2(a.rbegin(), a.rend()), v = a;
  v.insert(v.end(), a2.begin(), a2.end());
  auto [s0, s1] = split(run(v, {{2, ga.h, ga.w}}), ga.patches() / 4, ga.patches() / 4, w);
  EXPECT_TRUE(test::AllClose(s0, run(a, {ga}), 1e-5)) << "video slice 0";
  EXPECT_TRUE(test::AllClose(s1, run(a2, {ga}), 1e-5)) << "video slice 1";
}

// The traced graphs are recognised from their folded constants and refuse other grids.
TEST(VisionModel, TracedGraphsKnowTheirGrid) {
  ModelFiles mf = find_model_files(test::golden_dir() + "/onnx-torch");
  ASSERT_EQ(mf.vision.size(), 2u);
  auto vm = VisionModel::load(mf, read_model_config(mf.config_dir));
  auto tg = vm->traced_grids();
  ASSERT_EQ(tg.size(), 2u);
  EXPECT_EQ(tg[0], case_grids("02_image"));
  EXPECT_EQ(tg[1], case_grids("03_resize"));
  std::vector<float> pixels(16 * 16 * vm->patch_dim(), 0.f), embeds;
  try {
    vm->encode(pixels.data(), {{1, 16, 16}}, &embeds, nullptr, nullptr);
    FAIL() << "expected qvl::Error";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("(1, 16, 16)"), std::string::npos) << m;
    EXPECT_NE(m.find("vision_02_image.onnx for (1, 16, 20)"), std::string::npos) << m;
  }
}

// Host grid tensors: corner indices equal the ones the torch trace folded in, and the
// merge-block order / segments follow the spec.
TEST(VisionInputs, CornersMatchTraceAndMergeOrder) {
  auto f = OnnxFile::open(test::golden_dir() + "/onnx-torch/vision_03_resize.onnx");
  const TensorView* idx = nullptr;
  for (const Node* g : f->consumers("visual.pos_embed.weight")) idx = f->find(g->inputs[1]);
  ASSERT_TRUE(idx);
  auto want = pos_corners_row_major(20, 14, 48);
  ASSERT_EQ(idx->numel(), (int64_t)want.size());
  for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(idx->as<int64_t>()[i], want[i]) << i;

  VisionGridInputs in = make_vision_inputs({{1, 4, 6}, {2, 2, 2}}, 48, 2);
  ASSERT_EQ(in.N, 24 + 8);
  EXPECT_EQ(in.cu_seqlens, (std::vector<int64_t>{0, 24, 28, 32}));
  // Rows 0..3 = first merge block (0,0) (0,1) (1,0) (1,1); row 4 starts block (0, 1).
  EXPECT_EQ(in.rows[0], 0); EXPECT_EQ(in.cols[1], 1); EXPECT_EQ(in.rows[2], 1); EXPECT_EQ(in.cols[4], 2);
  // h = 4: ys = {0, 15.667, 31.333, 47} → row 1 uses table rows 15/16 with fy = 2/3.
  EXPECT_EQ(in.pos_idx[2], 15 * 48 + 0);
  EXPECT_EQ(in.pos_idx[2 * in.N + 2], 16 * 48 + 0);
  EXPECT_NEAR(in.pos_weight[2 * in.N + 2], 2.0 / 3.0, 1e-5);
  // Second temporal slice of the 2×2 video item repeats the first one's tables.
  for (int c = 0; c < 4; ++c) EXPECT_EQ(in.pos_idx[c * in.N + 24 + 1], in.pos_idx[c * in.N + 28 + 1]);
  EXPECT_THROW(make_vision_inputs({{1, 3, 4}}, 48, 2), Error);
}

}  // namespace
}  // namespace qvl
