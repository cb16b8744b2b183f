// `qvl inspect` end to end: the golden torch.onnx.export files and the
// generated external-data models, as text and as --json (parsed back and
// compared with OnnxFile), plus its error paths (exit codes, one-line stderr).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "loader/onnx_file.h"
#include "test_util.h"

namespace qvl {
namespace {

using nlohmann::json;

std::string qvl_bin() { return test::binary_dir() + "/qvl"; }

int inspect(const std::string& args, std::string* out) {
  return test::run_command(qvl_bin() + " inspect " + args, out);
}

TEST(LoaderInspect, TorchFilesText) {
  const std::string path = test::golden_dir() + "/onnx-torch/decoder_with_past.onnx";
  std::string out;
  ASSERT_EQ(inspect(path, &out), 0) << out;
  EXPECT_NE(out.find("producer: pytorch 1.13.0"), std::string::npos) << out;
  EXPECT_NE(out.find("IR: 8"), std::string::npos);
  EXPECT_NE(out.find("ai.onnx 17"), std::string::npos);
  EXPECT_NE(out.find("inputs_embeds"), std::string::npos);
  EXPECT_NE(out.find("MatMul "), std::string::npos);
  // Every initializer is listed with its dtype, shape and place.
  auto f = OnnxFile::open(path);
  for (const auto& t : f->tensors()) {
    if (t.from_constant_node) continue;
    size_t at = out.find("  " + t.name + " ");
    ASSERT_NE(at, std::string::npos) << t.name;
    std::string line = out.substr(at, out.find('\n', at) - at);
    EXPECT_NE(line.find(t.shape_str()), std::string::npos) << line;
    EXPECT_NE(line.find(std::to_string(t.nbytes) + "  inline"), std::string::npos) << line;
  }
  EXPECT_NE(out.find("onnx::MatMul_1486"), std::string::npos);
}

TEST(LoaderInspect, FolderJsonMatchesLoader) {
  const std::string dir = test::golden_dir() + "/onnx-torch";
  std::string out;
  ASSERT_EQ(inspect(dir + " --json", &out), 0) << out;
  json j = json::parse(out);  // throws (fails the test) if not one JSON object
  ASSERT_EQ(j["files"].size(), 3u);
  for (const auto& fj : j["files"]) {
    auto f = OnnxFile::open(fj["path"].get<std::string>());
    SCOPED_TRACE(f->path());
    size_t n_init = 0;
    for (const auto& t : f->tensors()) n_init += !t.from_constant_node;
    ASSERT_EQ(fj["initializers"].size(), n_init);
    EXPECT_EQ(fj["totals"]["tensors"].get<size_t>(), f->tensors().size());
    EXPECT_EQ(fj["totals"]["inline_bytes"].get<size_t>(), f->inline_bytes());
    EXPECT_EQ(fj["nodes"].get<size_t>(), f->nodes().size());
    int64_t ops = 0;
    for (auto& [op, n] : fj["ops"].items()) ops += n.get<int64_t>();
    EXPECT_EQ(ops, (int64_t)f->nodes().size());
    EXPECT_EQ(fj["inputs"].size(), f->inputs().size());
  }
  // decoder_with_past: the q_proj weight is an anonymous onnx::MatMul_* initializer.
  bool found = false;
  for (const auto& t : j["files"][0]["initializers"])
    if (t["name"] == "onnx::MatMul_1486") {
      found = true;
      EXPECT_EQ(t["shape"], json::parse("[32, 64]"));
      EXPECT_EQ(t["dtype"], "float32");
      EXPECT_EQ(t["location"], "inline");
    }
  EXPECT_TRUE(found);
}

TEST(LoaderInspect, GoldenFolderConfig) {
  std::string out;
  ASSERT_EQ(inspect(test::golden_dir() + " --json", &out), 0) << out;
  json j = json::parse(out);
  EXPECT_TRUE(j["config_files"]["config.json"].get<bool>());
  EXPECT_FALSE(j["config_files"]["genai_config.json"].get<bool>());
  EXPECT_EQ(j["config"]["model_type"], "qwen3_vl");
  EXPECT_EQ(j["config"]["text"]["hidden"], 32);
  EXPECT_EQ(j["config"]["vision"]["deepstack_indexes"], json::parse("[0, 2, 3]"));
  EXPECT_EQ(j["config"]["preprocessor"]["min_pixels"], 65536);
  EXPECT_EQ(j["config"]["generation"]["top_k"], 20);
  EXPECT_EQ(j["files"].size(), 0u);
}

TEST(LoaderInspect, ExternalDataFolder) {
  // The loader test's generator writes good/ with external data files.
  std::string dir = test::scratch_dir("inspect_models");
  std::string log;
  ASSERT_EQ(test::run_command("PYENV_VERSION=system python3 " + test::source_dir() +
                                  "/tests/unit/gen_loader_models.py " + dir, &log), 0)
      << "generator failed (needs system python3 with onnx + numpy):\n" << log;
  std::string out;
  ASSERT_EQ(inspect(dir + "/good --json", &out), 0) << out;
  json j = json::parse(out);
  ASSERT_EQ(j["files"].size(), 3u);
  for (const auto& fj : j["files"]) {
    auto f = OnnxFile::open(fj["path"].get<std::string>());
    EXPECT_EQ(fj["totals"]["external_bytes"].get<size_t>(), f->external_bytes());
    for (const auto& t : fj["initializers"]) {
      const TensorView& v = f->get(t["name"].get<std::string>());
      if (v.location.empty()) continue;
      EXPECT_EQ(t["location"], v.location);
      EXPECT_EQ(t["offset"].get<int64_t>(), v.offset);
    }
  }
  ASSERT_EQ(inspect(dir + "/good/external_multi.onnx", &out), 0) << out;
  EXPECT_NE(out.find("sub/multi_b.bin+"), std::string::npos) << out;
}

TEST(LoaderInspect, Errors) {
  std::string dir = test::scratch_dir("inspect_errors");
  std::string bad = dir + "/bad.onnx";
  FILE* f = std::fopen(bad.c_str(), "wb");
  ASSERT_TRUE(f);
  std::fputs("not an onnx file\xff\xff", f);
  std::fclose(f);
  std::string out;
  EXPECT_EQ(inspect(bad, &out), 1);
  EXPECT_EQ(out.rfind("qvl: error: " + bad + ": not a valid ONNX model", 0), 0u) << out;
  EXPECT_EQ(out.find('\n'), out.size() - 1) << "expected exactly one line: " << out;

  EXPECT_EQ(inspect(dir + "/missing.onnx", &out), 1);
  EXPECT_EQ(out.rfind("qvl: error: ", 0), 0u) << out;
  EXPECT_EQ(out.find('\n'), out.size() - 1) << out;

  EXPECT_EQ(inspect(bad + " --frobnicate", &out), 2);
  EXPECT_EQ(out.rfind("qvl: error: unknown flag '--frobnicate'", 0), 0u) << out;
  EXPECT_EQ(out.find('\n'), out.size() - 1) << out;

  EXPECT_EQ(inspect("", &out), 2) << out;       // no PATH
  EXPECT_EQ(inspect(dir, &out), 1) << out;      // empty folder: nothing to inspect
  EXPECT_EQ(out.rfind("qvl: error: ", 0), 0u) << out;
}

}  // namespace
}  // namespace qvl
