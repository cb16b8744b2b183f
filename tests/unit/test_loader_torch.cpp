// OnnxFile on the torch.onnx.export graphs of the golden set: structure
// (counts as read with the Python onnx package), Constant-node tensors, graph
// I/O, and an anonymous onnx::MatMul_* weight found through its consumer node.
// Exact values are checked in test_loader.cpp on generated models.
#include <gtest/gtest.h>

#include "kernels/base.h"
#include "loader/onnx_file.h"
#include "test_util.h"

namespace qvl {
namespace {

std::string decoder_path() { return test::golden_dir() + "/onnx-torch/decoder_with_past.onnx"; }

TEST(LoaderTorch, DecoderStructure) {
  auto f = OnnxFile::open(decoder_path());
  EXPECT_EQ(f->ir_version(), 8);
  EXPECT_EQ(f->opsets().at(""), 17);
  EXPECT_EQ(f->producer().rfind("pytorch", 0), 0u);
  // 46 initializers + one tensor per Constant node (461 in this export).
  size_t n_init = 0, n_const = 0;
  for (const auto& t : f->tensors()) (t.from_constant_node ? n_const : n_init)++;
  EXPECT_EQ(n_init, 46u);
  EXPECT_EQ(n_const, 461u);
  EXPECT_EQ(f->nodes().size(), 1314u);
  EXPECT_EQ(f->external_bytes(), 0u);

  ASSERT_EQ(f->inputs().size(), 11u);
  EXPECT_EQ(f->inputs()[0].name, "inputs_embeds");
  EXPECT_EQ(f->inputs()[0].dtype, DType::F32);
  ASSERT_EQ(f->inputs()[0].dims.size(), 3u);
  EXPECT_EQ(f->inputs()[0].dims[2], "32");
  EXPECT_EQ(f->outputs()[0].name, "logits");
}

TEST(LoaderTorch, ConsumerFindsAnonymousWeight) {
  auto f = OnnxFile::open(decoder_path());
  const Node* q = nullptr;
  for (const auto& n : f->nodes())
    if (n.name == "/model/layers.0/self_attn/q_proj/MatMul") q = &n;
  ASSERT_NE(q, nullptr);
  ASSERT_EQ(q->inputs.size(), 2u);
  const TensorView& w = f->get(q->inputs[1]);
  EXPECT_EQ(w.name.rfind("onnx::MatMul_", 0), 0u);
  EXPECT_EQ(w.dtype, DType::F32);
  EXPECT_EQ(w.shape_str(), "[32, 64]");  // [K, N] as a MatMul B: hidden 32 -> 2 heads x 32
  EXPECT_EQ(w.nbytes, 32u * 64u * 4u);
  EXPECT_TRUE(w.location.empty());
  auto cons = f->consumers(w.name);
  ASSERT_EQ(cons.size(), 1u);
  EXPECT_EQ(cons[0], q);
  EXPECT_EQ(f->producer_of(q->outputs[0]), q);
  EXPECT_EQ(f->producer_of(w.name), nullptr);
  EXPECT_EQ(f->find("no.such.tensor"), nullptr);
  EXPECT_THROW(f->get("no.such.tensor"), Error);
}

}  // namespace
}  // namespace qvl
