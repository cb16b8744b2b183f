// End to end through the `qvl` binary: greedy generation on the converted
// golden model equals Hugging Face's 24 ids for every case; INT4/fp16 equal
// ONNX Runtime's greedy ids on the same files; chat reuses the KV cache;
// every bad input gives one error line and a non-zero exit.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "loader/npy.h"
#include "test_util.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace qvl::test;

namespace {

struct Proc {
  int code = -1;
  std::string out, err;
};

// Runs a shell command with stdout and stderr captured separately.
Proc run(const std::string& cmd, const std::string& stdin_text = "") {
  static int counter = 0;
  std::string dir = binary_dir() + "/test-scratch/run_cli";
  fs::create_directories(dir);
  std::string base = dir + "/" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
  std::string full = cmd + " >" + base + ".out 2>" + base + ".err";
  if (!stdin_text.empty()) {
    std::ofstream(base + ".in") << stdin_text;
    full += " <" + base + ".in";
  } else {
    full += " </dev/null";
  }
  Proc r;
  int st = std::system(full.c_str());
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  auto slurp = [](const std::string& p) {
    std::ifstream f(p);
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  r.out = slurp(base + ".out");
  r.err = slurp(base + ".err");
  return r;
}

std::string qvl_bin() { return binary_dir() + "/qvl"; }
std::string model(const std::string& v) { return models_dir() + "/qwen3vl-a-" + v; }
std::string case_dir(const std::string& c) { return golden_dir() + "/cases/" + c; }

std::vector<int64_t> golden_ids(const std::string& c) {
  return qvl::npy_load(case_dir(c) + "/generated_ids.npy").to_i64();
}

std::vector<int64_t> ids_of(const Proc& r) {
  json j = json::parse(r.out);
  return j.at("ids").get<std::vector<int64_t>>();
}

void expect_one_line_error(const Proc& r, const std::string& needle) {
  EXPECT_NE(r.code, 0) << r.out;
  EXPECT_EQ(r.err.rfind("qvl: error: ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "stderr: " << r.err;
}

// 03_resize is a JPEG: it matches because JPEG decoding is bit-exact with PIL (libjpeg-turbo).
const char* kCases[] = {"01_text", "02_image", "03_resize"};

}  // namespace

// fp32 conversion: the 24 greedy ids of Hugging Face, case by case.
TEST(RunCli, GreedyMatchesHuggingFaceOnEveryCase) {
  for (const char* c : kCases) {
    Proc r = run(qvl_bin() + " run -m " + model("fp32") + " --messages " + case_dir(c) +
                "/messages.json -n 24 --temp 0 --json");
    ASSERT_EQ(r.code, 0) << c << ": " << r.err;
    EXPECT_EQ(ids_of(r), golden_ids(c)) << c;
  }
}

// An fp16 KV cache (--kv-type f16, rounding ≤ 2^-11 relative per element)
// keeps Hugging Face's 24 greedy ids on every case.
TEST(RunCli, F16KvCacheKeepsGreedyIds) {
  for (const char* c : kCases) {
    Proc r = run(qvl_bin() + " run -m " + model("fp32") + " --messages " + case_dir(c) +
                "/messages.json -n 24 --temp 0 --json --kv-type f16");
    ASSERT_EQ(r.code, 0) << c << ": " << r.err;
    EXPECT_EQ(ids_of(r), golden_ids(c)) << c;
  }
}

// The torch.onnx.export layout (anonymous weights, traced vision graphs).
TEST(RunCli, TorchExportLayoutMatchesHuggingFace) {
  for (const char* c : kCases) {
    Proc r = run(qvl_bin() + " run -m " + golden_dir() + "/onnx-torch --messages " + case_dir(c) +
                "/messages.json -n 24 --temp 0 --json");
    ASSERT_EQ(r.code, 0) << c << ": " << r.err;
    EXPECT_EQ(ids_of(r), golden_ids(c)) << c;
  }
}

// Quantized and half-precision files: same greedy ids as ONNX Runtime on the
// same files (tools/ort-generate).
TEST(RunCli, QuantizedAndFp16MatchOnnxRuntime) {
  for (const char* v : {"int4-b32", "int4-b128-zp", "fp16"}) {
    for (const char* c : {"01_text", "02_image"}) {
      std::string args = " --messages " + case_dir(c) + "/messages.json -n 24";
      Proc ort = run("PYENV_VERSION=system " + source_dir() + "/tools/ort-generate " + model(v) +
                    args + " --json");
      ASSERT_EQ(ort.code, 0) << v << " " << c << ": " << ort.err;
      Proc q = run(qvl_bin() + " run -m " + model(v) + args + " --temp 0 --json");
      ASSERT_EQ(q.code, 0) << v << " " << c << ": " << q.err;
      EXPECT_EQ(ids_of(q), ids_of(ort)) << v << " " << c;
    }
  }
}

// INT8 weights (MatMulNBits bits 8): with exact fp32 activations (--act-bits 32)
// the same greedy ids as ONNX Runtime on the same files.
TEST(RunCli, Int8MatchesOnnxRuntime) {
  for (const char* v : {"int8-b32", "int8-b128-zp"}) {
    for (const char* c : {"01_text", "02_image"}) {
      std::string args = " --messages " + case_dir(c) + "/messages.json -n 24";
      Proc ort = run("PYENV_VERSION=system " + source_dir() + "/tools/ort-generate " + model(v) +
                    args + " --json");
      ASSERT_EQ(ort.code, 0) << v << " " << c << ": " << ort.err;
      Proc q = run(qvl_bin() + " run -m " + model(v) + args + " --temp 0 --act-bits 32 --json");
      ASSERT_EQ(q.code, 0) << v << " " << c << ": " << q.err;
      EXPECT_EQ(ids_of(q), ids_of(ort)) << v << " " << c;
    }
  }
}

// Two --image flags in one prompt (PNG + JPEG, different grids): the same
// greedy ids as ONNX Runtime's end-to-end driver on the same files and flags.
TEST(RunCli, TwoImagesMatchOnnxRuntime) {
  std::string args = " --image " + case_dir("02_image") + "/image_0.png --image " +
                     case_dir("03_resize") + "/image_0.jpg -p 'Compare these pictures.' -n 16";
  Proc ort = run("PYENV_VERSION=system " + source_dir() + "/tools/ort-generate " + model("fp32") +
                 args + " --json");
  ASSERT_EQ(ort.code, 0) << ort.err;
  Proc q = run(qvl_bin() + " run -m " + model("fp32") + args + " --temp 0 --json");
  ASSERT_EQ(q.code, 0) << q.err;
  EXPECT_EQ(ids_of(q), ids_of(ort));
  json j = json::parse(q.out);
  EXPECT_EQ(j.at("image_tokens").get<int64_t>(), 80 + 70);  // grids 16x20 and 20x14, /4
}

// -p/--image builds the same conversation as the golden messages.json.
TEST(RunCli, PromptFlagsEqualMessagesFile) {
  Proc a = run(qvl_bin() + " run -m " + model("fp32") + " --image " + case_dir("02_image") +
              "/image_0.png -p 'What is shown in this picture? Answer briefly.' -n 24 --temp 0 --json");
  ASSERT_EQ(a.code, 0) << a.err;
  EXPECT_EQ(ids_of(a), golden_ids("02_image"));
  json j = json::parse(a.out);
  EXPECT_EQ(j.at("prompt_tokens").get<int64_t>(), 100);  // the case's S
  EXPECT_EQ(j.at("image_tokens").get<int64_t>(), 80);
  for (const char* key : {"text", "load_s", "prefill_tok_s", "decode_tok_s"})
    EXPECT_TRUE(j.contains(key)) << key;
}

// Streaming prints exactly the text the JSON result holds.
TEST(RunCli, StreamedTextEqualsJsonText) {
  std::string args = " run -m " + model("fp32") + " --messages " + case_dir("01_text") +
                     "/messages.json -n 24 --temp 0";
  Proc s = run(qvl_bin() + args);
  Proc j = run(qvl_bin() + args + " --json");
  ASSERT_EQ(s.code, 0) << s.err;
  ASSERT_EQ(j.code, 0) << j.err;
  std::string text = json::parse(j.out).at("text");
  EXPECT_EQ(s.out, text + "\n");
}

// Sampling is reproducible with a seed and differs across seeds.
TEST(RunCli, SeededSamplingIsReproducible) {
  std::string args = " run -m " + model("fp32") + " -p hello -n 16 --temp 1.5 --top-k 50 --json";
  Proc a = run(qvl_bin() + args + " --seed 7");
  Proc b = run(qvl_bin() + args + " --seed 7");
  Proc c = run(qvl_bin() + args + " --seed 8");
  ASSERT_EQ(a.code, 0) << a.err;
  EXPECT_EQ(ids_of(a), ids_of(b));
  EXPECT_NE(ids_of(a), ids_of(c));
}

TEST(RunCli, StopStringEndsGeneration) {
  std::string args = " run -m " + model("fp32") + " --messages " + case_dir("01_text") +
                     "/messages.json -n 24 --temp 0 --json";
  Proc full = run(qvl_bin() + args);
  ASSERT_EQ(full.code, 0) << full.err;
  std::string text = json::parse(full.out).at("text");
  ASSERT_GT(text.size(), 12u);
  std::string stop = text.substr(8, 4);
  ASSERT_EQ(stop.find('\''), std::string::npos);
  Proc cut = run(qvl_bin() + args + " --stop '" + stop + "'");
  ASSERT_EQ(cut.code, 0) << cut.err;
  json j = json::parse(cut.out);
  EXPECT_EQ(j.at("stop_reason"), "stop");
  EXPECT_EQ(j.at("text").get<std::string>(), text.substr(0, text.find(stop)));
}

// Chat through a pipe: the second turn prefills only its own tokens (the
// history stays in the KV cache); /reset starts over and reproduces turn 1.
TEST(ChatCli, ReusesCacheAcrossTurnsAndResets) {
  Proc r = run(qvl_bin() + " chat -m " + model("fp32") + " -n 8 --temp 0 --json",
              "Hello there\nTell me more\n/reset\nHello there\n/quit\n");
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<json> turns;
  size_t p = 0;
  while (p < r.out.size()) {
    size_t e = r.out.find('\n', p);
    if (e == std::string::npos) e = r.out.size();
    std::string line = r.out.substr(p, e - p);
    if (!line.empty() && line[0] == '{') turns.push_back(json::parse(line));
    p = e + 1;
  }
  ASSERT_EQ(turns.size(), 3u) << r.out;
  int64_t t1 = turns[0].at("prompt_tokens"), t2 = turns[1].at("prompt_tokens");
  // Turn 2 feeds only: <|im_end|> \n <|im_start|> user \n Tell me more <|im_end|> \n
  // <|im_start|> assistant \n = 2 + 3 + 3 + 2 + 3 tokens.
  EXPECT_EQ(t2, 13);
  EXPECT_EQ(turns[2].at("ids"), turns[0].at("ids"));
  EXPECT_EQ(turns[2].at("prompt_tokens").get<int64_t>(), t1);
}

TEST(ChatCli, ImageCommandAttachesImage) {
  Proc r = run(qvl_bin() + " chat -m " + model("fp32") + " -n 4 --temp 0 --json",
              "/image " + case_dir("02_image") +
                  "/image_0.png\nWhat is shown in this picture? Answer briefly.\n");
  ASSERT_EQ(r.code, 0) << r.err;
  size_t brace = r.out.find('{');
  ASSERT_NE(brace, std::string::npos) << r.out;
  json j = json::parse(r.out.substr(brace, r.out.find('\n', brace) - brace));
  EXPECT_EQ(j.at("image_tokens").get<int64_t>(), 80);
  auto want = golden_ids("02_image");
  want.resize(4);
  EXPECT_EQ(j.at("ids").get<std::vector<int64_t>>(), want);
}

TEST(RunCliErrors, BadInputsGiveOneLine) {
  std::string m = " -m " + model("fp32");
  expect_one_line_error(run(qvl_bin() + " run" + m + " -p ''"), "empty prompt");
  expect_one_line_error(run(qvl_bin() + " run" + m + " -p hi --bogus"), "unknown flag '--bogus'");
  expect_one_line_error(run(qvl_bin() + " run" + m), "missing input");
  expect_one_line_error(run(qvl_bin() + " run" + m + " -p hi --temp -1"), "--temp");
  expect_one_line_error(run(qvl_bin() + " run" + m + " -p hi --top-p 2"), "--top-p");
  expect_one_line_error(run(qvl_bin() + " run" + m + " -p hi --top-k x"), "--top-k");
  expect_one_line_error(run(qvl_bin() + " run" + m + " -p hi -n"), "needs a value");
  expect_one_line_error(
      run(qvl_bin() + " run" + m + " -c 8 --messages " + case_dir("01_text") + "/messages.json"),
      "exceeds the context");
  expect_one_line_error(run(qvl_bin() + " run" + m + " -p hi --image /nonexistent/x.png"),
                        "/nonexistent/x.png");
  expect_one_line_error(run(qvl_bin() + " run -m /nonexistent/model -p hi"), "/nonexistent/model");
  expect_one_line_error(run(qvl_bin() + " frobnicate"), "unknown command");
  expect_one_line_error(run(qvl_bin() + " run" + m + " -p hi --kv-type f8"), "--kv-type must be f32 or f16");
  expect_one_line_error(run(qvl_bin() + " run" + m + " -p hi --act-bits 12"), "--act-bits must be 8, 16 or 32");
  expect_one_line_error(run(qvl_bin() + " run" + m + " -p hi --int8-act --act-bits 16"), "--int8-act contradicts");

  // A model folder without its tokenizer.
  std::string dir = scratch_dir("run_cli_no_tokenizer");
  for (const auto& e : fs::directory_iterator(model("fp32")))
    if (e.path().filename() != "tokenizer.json")
      fs::create_symlink(e.path(), fs::path(dir) / e.path().filename());
  expect_one_line_error(run(qvl_bin() + " run -m " + dir + " -p hi"), "tokenizer.json");

  // More placeholders than images: a literal <|image_pad|> in the text.
  std::string msgs = scratch_dir("run_cli_pads") + "/m.json";
  std::ofstream(msgs) << R"({"messages":[{"role":"user","content":[{"type":"image","image":")"
                      << case_dir("02_image")
                      << R"(/image_0.png"},{"type":"text","text":"x <|vision_start|><|image_pad|><|vision_end|>"}]}]})";
  expect_one_line_error(run(qvl_bin() + " run" + m + " --messages " + msgs), "image placeholders");

  // An image in an assistant turn would be dropped by the template: refused.
  std::string msgs2 = scratch_dir("run_cli_assistant_image") + "/m.json";
  std::ofstream(msgs2) << R"({"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"image","image":")"
                       << case_dir("02_image")
                       << R"(/image_0.png"}]},{"role":"user","content":"and?"}]})";
  expect_one_line_error(run(qvl_bin() + " run" + m + " --messages " + msgs2), "only supported in user messages");
}
