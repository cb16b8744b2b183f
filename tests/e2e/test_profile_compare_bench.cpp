// End-to-end tests of the measurement commands on the tiny golden model
// (converted by the qvl_models fixture into build/models):
//   qvl profile  — tables with the expected rows, valid Chrome trace / JSON;
//   qvl compare  — passes against the HF golden tensors (fp32, fp16, INT4) and
//                  against ONNX Runtime, and FAILS on a model whose weight file
//                  was perturbed (first failing tensor = the perturbed layer);
//                  --kernels passes and fails on a perturbed kernel case;
//   qvl bench    — --json has every documented key (Release builds), and a
//                  non-Release build refuses.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "loader/onnx_file.h"
#include "test_util.h"

namespace qvl {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string qvl_bin() { return test::binary_dir() + "/qvl"; }
std::string model(const std::string& v) { return test::models_dir() + "/qwen3vl-a-" + v; }
std::string case_dir(const std::string& c) { return test::golden_dir() + "/cases/" + c; }

// Runs qvl with QVL_TOOLS_DIR pointing at the source tree's tools/.
int qvl(const std::string& args, std::string* out) {
  std::string cmd = "QVL_TOOLS_DIR='" + test::source_dir() + "/tools' '" + qvl_bin() + "' " + args;
  return test::run_command(cmd, out);
}

// Everything after the first '{' (the JSON document a command printed).
json parse_json_output(const std::string& out) {
  size_t at = out.find('{');
  EXPECT_NE(at, std::string::npos) << out;
  return json::parse(out.substr(at == std::string::npos ? 0 : at));
}

TEST(Profile, TablesHaveEveryZoneAndTheTraceIsValid) {
  std::string dir = test::scratch_dir("e2e_profile");
  std::string trace = dir + "/trace.json", out;
  int rc = qvl("profile -m '" + model("fp32") + "' --image '" + case_dir("02_image") +
                   "/image_0.png' -p 'What is shown?' -n 4 -t 2 --bandwidth-mb 64 --trace '" + trace + "'",
               &out);
  ASSERT_EQ(rc, 0) << out;
  for (const char* s : {"== vision", "== prefill", "== decode", "vision.patch_embed", "vision.block.attn",
                        "vision.block.mlp", "vision.merger", "vision.deepstack", "embed", "text.norm", "text.qkv",
                        "text.rope", "text.attn", "text.o_proj", "text.mlp", "lm_head", "sampling", "tokenizer",
                        "preprocess", "GFLOP/s", "GB/s", "read bandwidth"})
    EXPECT_NE(out.find(s), std::string::npos) << "missing '" << s << "' in\n" << out;

  std::ifstream f(trace);
  ASSERT_TRUE(f.good()) << trace;
  json t = json::parse(f);
  ASSERT_TRUE(t["traceEvents"].is_array());
  std::set<std::string> names, phases;
  for (const auto& e : t["traceEvents"]) {
    if (e["ph"] != "X") continue;
    EXPECT_TRUE(e["ts"].is_number() && e["dur"].is_number() && e["pid"].is_number() && e["tid"].is_number());
    EXPECT_GE(e["dur"].get<double>(), 0.0);
    EXPECT_TRUE(e["args"].contains("flops") && e["args"].contains("bytes"));
    names.insert(e["name"]);
    phases.insert(e["cat"]);
  }
  EXPECT_TRUE(names.count("text.attn[0]") && names.count("text.mlp[3]") && names.count("lm_head"));
  EXPECT_TRUE(phases.count("vision") && phases.count("prefill") && phases.count("decode"));

  rc = qvl("profile -m '" + model("int4-b32") + "' -p 'Hello there' -n 3 -t 2 --bandwidth-mb 64 --json", &out);
  ASSERT_EQ(rc, 0) << out;
  json j = parse_json_output(out);
  EXPECT_GT(j["peaks"]["bandwidth_gb_s"].get<double>(), 0.0);
  EXPECT_GT(j["phases"]["prefill"]["total_ms"].get<double>(), 0.0);
  EXPECT_FALSE(j["phases"]["decode"]["rows"].empty());
}

TEST(CompareGolden, EveryCaseAndPrecisionIsWithinTolerance) {
  for (const char* v : {"fp32", "fp16", "int4-b32", "int4-b128-zp", "int8-b32"})
    for (const char* c : {"01_text", "02_image", "03_resize"}) {
      std::string out;
      int rc = qvl("compare -m '" + model(v) + "' -t 2 --against golden '" + case_dir(c) + "'", &out);
      EXPECT_EQ(rc, 0) << v << " " << c << "\n" << out;
      EXPECT_NE(out.find("past tolerance: PASS"), std::string::npos) << out;
      EXPECT_NE(out.find("text.layer.3"), std::string::npos) << out;
      if (std::string(c) != "01_text") {
        EXPECT_NE(out.find("vision.deepstack.2"), std::string::npos) << out;
      }
    }
}

// The precision flags of qvl run reach compare: the report names them, the
// tolerances stay the format's own (so the reduced-precision paths show up as
// differences), and only the parts they touch move.
TEST(CompareGolden, PrecisionFlagsAreAppliedAndNamed) {
  std::string out;
  int rc = qvl("compare -m '" + model("fp32") + "' -t 2 --kv-type f16 --against golden '" + case_dir("02_image") + "'", &out);
  EXPECT_NE(out.find("[qvl --kv-type f16;"), std::string::npos) << out;
  EXPECT_NE(rc, 0) << "fp16 K/V rounding stays inside the fp32 tolerance?\n" << out;
  size_t v = out.find("\nvision.merger ");
  ASSERT_NE(v, std::string::npos) << out;
  std::string line = out.substr(v + 1, out.find('\n', v + 1) - v - 1);
  EXPECT_NE(line.find(" ok"), std::string::npos) << "the KV cache type must not touch vision: " << line;
  size_t k = out.find("\ntext.layer.0.key ");
  ASSERT_NE(k, std::string::npos) << out;
  EXPECT_NE(out.substr(k, out.find('\n', k + 1) - k).find("FAIL"), std::string::npos) << out;

  rc = qvl("compare -m '" + model("fp32") + "' -t 2 --vision-bf16 --against golden '" + case_dir("02_image") + "'", &out);
  EXPECT_NE(out.find("[qvl --vision-bf16;"), std::string::npos) << out;
  EXPECT_NE(rc, 0) << out;

  rc = qvl("compare -m '" + model("fp32") + "' --kv-type f8 --against golden '" + case_dir("01_text") + "'", &out);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("--kv-type must be f32 or f16"), std::string::npos) << out;
}

// Copies the fp32 model and flips bytes of one initializer in its .data file.
std::string perturbed_model(const std::string& graph, const std::string& tensor) {
  std::string dir = test::scratch_dir("e2e_perturbed_" + graph);
  fs::remove_all(dir);
  fs::copy(model("fp32"), dir, fs::copy_options::recursive);
  auto f = OnnxFile::open(dir + "/" + graph + ".onnx");
  const TensorView& t = f->get(tensor);
  EXPECT_FALSE(t.location.empty()) << tensor << " is not external";
  std::string data = dir + "/" + t.location;
  int64_t offset = t.offset;
  f.reset();
  std::fstream io(data, std::ios::in | std::ios::out | std::ios::binary);
  for (int i = 0; i < 64; ++i) {  // the high byte of 64 floats: sign/exponent bits
    io.seekg(offset + 4 * i * 7 + 3);
    char b = 0;
    io.read(&b, 1);
    b ^= 0x3c;
    io.seekp(offset + 4 * i * 7 + 3);
    io.write(&b, 1);
  }
  EXPECT_TRUE(io.good());
  return dir;
}

TEST(CompareGolden, FailsOnAPerturbedWeightAndNamesTheFirstBadTensor) {
  std::string dir = perturbed_model("text", "model.layers.1.mlp.down_proj.MatMul.weight");
  std::string out;
  int rc = qvl("compare -m '" + dir + "' -t 2 --against golden '" + case_dir("01_text") + "'", &out);
  EXPECT_NE(rc, 0) << out;
  size_t mark = out.find("<-- first past tolerance");
  ASSERT_NE(mark, std::string::npos) << out;
  std::string line = out.substr(out.rfind('\n', mark) + 1, mark - out.rfind('\n', mark));
  EXPECT_EQ(line.rfind("text.layer.1 ", 0), 0u) << line;  // layer 0 still passes
  EXPECT_NE(out.find("text.layer.0 "), std::string::npos);

  std::string vdir = perturbed_model("vision", "model.visual.blocks.2.mlp.linear_fc2.weight");
  rc = qvl("compare -m '" + vdir + "' -t 2 --against golden '" + case_dir("02_image") + "' --json", &out);
  EXPECT_NE(rc, 0) << out;
  json j = parse_json_output(out);
  EXPECT_FALSE(j["ok"].get<bool>());
  EXPECT_EQ(j["first_failure"], "vision.block.2");
}

// ORT's MatMulNBits here runs fp32 activations, so qvl runs exact fp32
// activations too (--act-bits 32): the test checks the same math, layer by
// layer. (The default 15-bit activations stay within ~2e-5 of each block's max
// per matmul, but this random tiny model amplifies any change ~100x per layer.)
TEST(CompareOrt, SameGraphsAgreeForFp32AndInt4) {
  for (const char* v : {"fp32", "int4-b32", "int4-b128-zp", "int8-b32", "int8-b128-zp"}) {
    std::string out;
    int rc = qvl("compare -m '" + model(v) + "' -t 2 --act-bits 32 --against ort --messages '" + case_dir("02_image") +
                     "/messages.json'",
                 &out);
    EXPECT_EQ(rc, 0) << v << "\n" << out;
    for (const char* s : {"vision.block.3", "vision.merger", "text.inputs_embeds", "text.layer.0.key",
                          "text.layer.2.plus_deepstack", "text.final_norm", "logits"})
      EXPECT_NE(out.find(s), std::string::npos) << s << " missing in\n" << out;
  }
  std::string out;
  EXPECT_EQ(qvl("compare -m '" + model("fp32") + "' -t 2 -p 'Count to three.'", &out), 0) << out;
}

TEST(CompareKernels, EveryFamilyPassesAndAPerturbedCaseFails) {
  std::string dir = test::scratch_dir("e2e_kernels"), out;
  int rc = qvl("compare --kernels -t 2 --keep '" + dir + "'", &out);
  ASSERT_EQ(rc, 0) << out;
  for (const char* s : {"matmul_nbits_bs16", "matmul_nbits_bs32_zp", "matmul_nbits_bs128", "matmul_f32",
                        "attention_gqa_past", "rope_mrope", "simplified_layer_norm", "layer_norm", "gelu_tanh",
                        "gelu_erf", "softmax", "gather_block_quantized_bs16_zp"})
    EXPECT_NE(out.find(s), std::string::npos) << s;
  // Scale one RMSNorm weight by 1.01 on qvl's side only: must fail.
  std::string w = dir + "/simplified_layer_norm/w/w.npy";
  NpyArray a = npy_load(w);
  std::vector<float> v = a.to_f32();
  v[5] *= 1.01f;
  npy_save(w, DType::F32, a.shape, v.data());
  rc = qvl("compare --kernels --cases '" + dir + "' --json", &out);
  EXPECT_NE(rc, 0) << out;
  EXPECT_EQ(parse_json_output(out)["first_failure"], "simplified_layer_norm");
}

TEST(Bench, JsonHasEveryKey) {
  std::string out;
  int rc = qvl("bench -m '" + model("int4-b32") + "' -t 2 -r 1 --prompt-lengths 16,32 --gen 4 --images 64 "
               "--bandwidth-mb 64 --json",
               &out);
  if (std::string(QVL_BUILD_TYPE) != "Release") {
    EXPECT_NE(rc, 0);
    EXPECT_NE(out.find("Release"), std::string::npos) << out;
    return;
  }
  ASSERT_EQ(rc, 0) << out;
  json j = parse_json_output(out);
  for (const char* k : {"prefill_tok_s", "decode_tok_s", "vision_ms", "load_s", "peak_rss_mb", "bandwidth_gb_s",
                        "decode_bytes_per_token", "decode_roofline_pct", "threads", "build"})
    EXPECT_TRUE(j.contains(k)) << k << " missing in " << out;
  EXPECT_GT(j["prefill_tok_s"]["16"].get<double>(), 0);
  EXPECT_GT(j["prefill_tok_s"]["32"].get<double>(), 0);
  EXPECT_GT(j["decode_tok_s"].get<double>(), 0);
  EXPECT_GT(j["vision_ms"]["64"].get<double>(), 0);
  EXPECT_GT(j["peak_rss_mb"].get<double>(), 1);
  EXPECT_GT(j["decode_bytes_per_token"].get<double>(), 1e6);  // tied 151936 x 32 lm_head alone is 19 MB fp32/2.4 MB int4
  EXPECT_EQ(j["threads"], 2);
  for (const char* k : {"compiler", "flags", "isa"}) EXPECT_TRUE(j["build"].contains(k)) << k;
  rc = qvl("bench -m '" + model("int4-b32") + "' -r 0", &out);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("-r"), std::string::npos) << out;
  rc = qvl("bench -m '" + model("int4-b32") + "' --prompt-lengths ''", &out);  // an error, not a crash
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("--prompt-lengths"), std::string::npos) << out;
}

}  // namespace
}  // namespace qvl
