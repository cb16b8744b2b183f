// model/model_files: which graph of a model folder plays which role, and the
// one-line errors for folders qvl cannot use. Folders are built from empty files
// (discovery looks at names only).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "kernels/base.h"
#include "model/model_files.h"
#include "test_util.h"

namespace qvl {
namespace {

namespace fs = std::filesystem;

std::string folder(const std::string& name, const std::vector<std::string>& files) {
  std::string dir = test::scratch_dir("model_files_" + name);
  for (const auto& f : files) {
    fs::create_directories(fs::path(dir + "/" + f).parent_path());
    std::ofstream(dir + "/" + f) << "";
  }
  return dir;
}

std::string base(const std::string& p) { return fs::path(p).filename().string(); }

void expect_error(const std::string& dir, const std::string& phrase) {
  try {
    find_model_files(dir);
    ADD_FAILURE() << dir << ": expected qvl::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(phrase), std::string::npos) << e.what();
  }
}

TEST(ModelFiles, ConverterFolder) {
  auto mf = find_model_files(folder("conv", {"config.json", "text.onnx", "embedding.onnx", "vision.onnx",
                                             "vision_extra.onnx"}));
  EXPECT_EQ(base(mf.text), "text.onnx");
  EXPECT_EQ(base(mf.embedding), "embedding.onnx");
  ASSERT_EQ(mf.vision.size(), 1u);  // vision.onnx wins over traced vision_* files
  EXPECT_EQ(base(mf.vision[0]), "vision.onnx");
  EXPECT_EQ(mf.config_dir, mf.dir);
}

TEST(ModelFiles, TorchExportFolderWithConfigInParent) {
  auto mf = find_model_files(test::golden_dir() + "/onnx-torch/");
  EXPECT_EQ(base(mf.text), "decoder_with_past.onnx");
  EXPECT_EQ(mf.embedding, "");
  ASSERT_EQ(mf.vision.size(), 2u);
  EXPECT_EQ(base(mf.vision[0]), "vision_02_image.onnx");
  EXPECT_EQ(base(mf.config_dir), "qwen3vl-a");
}

TEST(ModelFiles, TransformersJsFolder) {
  auto mf = find_model_files(folder("tjs", {"config.json", "onnx/decoder_model_merged_q4.onnx",
                                            "onnx/embed_tokens_q4.onnx", "onnx/vision_encoder_q4.onnx"}));
  EXPECT_EQ(base(mf.text), "decoder_model_merged_q4.onnx");
  EXPECT_EQ(base(mf.embedding), "embed_tokens_q4.onnx");
  ASSERT_EQ(mf.vision.size(), 1u);
}

TEST(ModelFiles, BadFolders) {
  expect_error(test::scratch_dir("model_files_none") + "/absent", "does not exist");
  expect_error(folder("noconf", {"text.onnx"}), "no config.json");
  expect_error(folder("nodec", {"config.json", "vision.onnx"}), "no text decoder graph");
  expect_error(folder("ambig", {"config.json", "decoder_model_merged_q4.onnx", "decoder_model_merged_fp16.onnx"}),
               "several text decoder graphs");
}

}  // namespace
}  // namespace qvl
