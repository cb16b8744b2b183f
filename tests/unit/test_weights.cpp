// model/weights: slot binding on tiny graphs written by tests/unit/gen_weight_models.py.
// Good graphs: the bound view, decoded row by row with dequantize_row / embedding_gather,
// equals the logical [N, K] matrix numpy computed (float storage: exact; fp16: exact
// after widening; Q4: (q − zp)·scale computed in fp32 on both sides → 1e-6). Bad graphs:
// one qvl::Error naming the file, the slot/tensor and the problem.
#include <gtest/gtest.h>

#include <filesystem>

#include "kernels/base.h"
#include "kernels/embedding.h"
#include "kernels/linear.h"
#include "loader/npy.h"
#include "loader/onnx_file.h"
#include "model/weights.h"
#include "test_util.h"

namespace qvl {
namespace {

constexpr int64_t N = 6, K = 40;

const std::string& models() {
  static std::string dir;
  if (dir.empty()) {
    dir = test::scratch_dir("weights");
    std::string log;
    int rc = test::run_command("PYENV_VERSION=system python3 " + test::source_dir() +
                                   "/tests/unit/gen_weight_models.py " + dir,
                               &log);
    EXPECT_EQ(rc, 0) << log;
  }
  return dir;
}

// The slot every good linear graph provides, under all the names the tables use.
WeightSlot q_slot(bool bias = false) {
  WeightSlot s;
  s.slot = "layers.{i}.q_proj";
  s.kind = SlotKind::Linear;
  s.names = {"model.layers.{i}.attn.q_proj.MatMul.weight", "model.language_model.layers.{i}.self_attn.q_proj.weight",
             "visual.blocks.{i}.attn.qkv.weight", "visual.patch_embed.proj.weight"};
  s.nodes = {"/model/layers.{i}/self_attn/q_proj/MatMul"};
  s.N = N;
  s.K = K;
  s.dims = "[test N, test K]";
  s.bias_required = bias;
  return s;
}

struct Bound {
  std::unique_ptr<OnnxFile> file;
  WeightStore store;
  LinearWeight w;
};

std::unique_ptr<Bound> bind(const std::string& name, const WeightSlot& s) {
  auto b = std::make_unique<Bound>();
  b->file = OnnxFile::open(models() + "/" + name + ".onnx");
  WeightBinder binder(*b->file, &b->store);
  EXPECT_TRUE(binder.linear(s, 0, &b->w));
  return b;
}

void expect_matrix(const std::string& name, const LinearWeight& w, double tol) {
  std::vector<float> want = npy_load(models() + "/" + name + ".W.npy").to_f32(), row(K);
  ASSERT_EQ(w.N, N);
  ASSERT_EQ(w.K, K);
  for (int64_t n = 0; n < N; ++n) {
    dequantize_row(w, n, row.data());
    ASSERT_TRUE(test::AllClose(row.data(), &want[n * K], K, tol)) << name << " row " << n;
  }
  std::string bpath = models() + "/" + name + ".b.npy";
  if (std::filesystem::exists(bpath)) {
    ASSERT_NE(w.bias, nullptr) << name;
    EXPECT_TRUE(test::AllClose(w.bias, npy_load(bpath).to_f32().data(), N, 0.0)) << name << " bias";
  } else {
    EXPECT_EQ(w.bias, nullptr) << name;
  }
}

TEST(Weights, FloatLayouts) {
  for (const char* name : {"torch_matmul", "genai_fp16", "gemm", "conv", "transpose"}) {
    SCOPED_TRACE(name);
    auto b = bind(name, q_slot());
    expect_matrix(name, b->w, 0.0);
  }
  EXPECT_TRUE(bind("torch_matmul", q_slot())->w.transposed);
  EXPECT_FALSE(bind("gemm", q_slot())->w.transposed);
  EXPECT_EQ(bind("genai_fp16", q_slot())->w.kind, WeightKind::F16);
}

TEST(Weights, MatMulNBits) {
  for (const char* name : {"nbits_sym", "nbits_zp"}) {
    SCOPED_TRACE(name);
    auto b = bind(name, q_slot());
    EXPECT_EQ(b->w.kind, WeightKind::Q4);
    EXPECT_EQ(b->w.block_size, 16);
    EXPECT_EQ(b->w.zero_points != nullptr, std::string(name) == "nbits_zp");
    expect_matrix(name, b->w, 1e-6);
  }
}

TEST(Weights, QuantizedTableAndTiedHead) {
  auto f = OnnxFile::open(models() + "/gbq.onnx");
  WeightStore store;
  WeightBinder b(*f, &store);
  WeightSlot s;
  s.slot = "embed_tokens";
  s.kind = SlotKind::Table;
  s.names = {"model.embed_tokens.weight"};
  s.N = N;
  s.K = 32;
  EmbeddingTable t;
  ASSERT_TRUE(b.table(s, -1, &t));
  std::vector<float> want = npy_load(models() + "/gbq.W.npy").to_f32(), got(N * 32);
  std::vector<int64_t> ids = {0, 1, 2, 3, 4, 5};
  embedding_gather(t, ids.data(), N, got.data());
  EXPECT_TRUE(test::AllClose(got, want, 1e-6));
  // The same table as a tied output matrix (MatMulNBits layout).
  LinearWeight w = linear_from_table(t, "gbq.onnx");
  std::vector<float> row(32);
  for (int64_t n = 0; n < N; ++n) {
    dequantize_row(w, n, row.data());
    ASSERT_TRUE(test::AllClose(row.data(), &want[n * 32], 32, 1e-6)) << n;
  }
}

TEST(Weights, NormVector) {
  auto f = OnnxFile::open(models() + "/vector.onnx");
  WeightStore store;
  WeightBinder b(*f, &store);
  WeightSlot s;
  s.slot = "layers.{i}.input_norm";
  s.kind = SlotKind::Vector;
  s.names = {"model.layers.{i}.input_layernorm.weight"};
  s.N = K;
  const float* v = nullptr;
  ASSERT_TRUE(b.vector(s, 0, &v));
  EXPECT_TRUE(test::AllClose(v, npy_load(models() + "/vector.W.npy").to_f32().data(), K, 0.0));
  s.names = {"absent.weight"};
  s.required = false;
  EXPECT_FALSE(b.vector(s, 0, &v));
}

// Each bad graph: binding throws one line naming the file and what is wrong.
void expect_error(const std::string& name, WeightSlot s, SlotKind kind, const std::vector<std::string>& phrases) {
  auto f = OnnxFile::open(models() + "/" + name + ".onnx");
  WeightStore store;
  WeightBinder b(*f, &store);
  s.kind = kind;
  try {
    LinearWeight w;
    const float* v;
    if (kind == SlotKind::Vector) b.vector(s, 0, &v);
    else b.linear(s, 0, &w);
    ADD_FAILURE() << name << ": expected qvl::Error";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    EXPECT_NE(m.find(name + ".onnx"), std::string::npos) << m;
    for (const auto& p : phrases) EXPECT_NE(m.find(p), std::string::npos) << name << ": '" << p << "' not in: " << m;
  }
}

TEST(Weights, BadGraphsAreRejected) {
  expect_error("bad_shape", q_slot(), SlotKind::Linear,
               {"layers.0.q_proj", "onnx::MatMul_5", "shape [40, 7]", "expected [40, 6]"});
  expect_error("bad_consumer", q_slot(), SlotKind::Linear, {"consumed by Mul node '/weird/Mul'"});
  expect_error("bad_missing", q_slot(), SlotKind::Linear,
               {"required weight layers.0.q_proj missing", "model.layers.0.attn.q_proj.MatMul.weight"});
  expect_error("bad_prepacked", q_slot(), SlotKind::Linear, {"weight_prepacked=1"});
  expect_error("bad_bits", q_slot(), SlotKind::Linear, {"bits=2"});
  expect_error("bad_gidx", q_slot(), SlotKind::Linear, {"g_idx"});
  expect_error("bad_gemm_transA", q_slot(), SlotKind::Linear, {"transA"});
  expect_error("genai_fp16", q_slot(true), SlotKind::Linear, {"layers.0.q_proj has no bias"});
  WeightSlot v;
  v.slot = "layers.{i}.input_norm";
  v.names = {"model.layers.{i}.input_layernorm.weight"};
  v.N = K;
  expect_error("bad_vector", v, SlotKind::Vector, {"layers.0.input_norm", "shape [41]", "expected [40]"});
}

}  // namespace
}  // namespace qvl
