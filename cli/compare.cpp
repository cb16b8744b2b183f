// qvl compare — runs the same inputs through qvl and a reference and prints,
// per tensor, the max abs / rel error and cosine similarity; exit 0 only when
// every tensor is within tolerance.
//   --kernels           one-op ONNX models (tools/kernel_models.py) through ONNX
//                       Runtime vs qvl's kernels and their scalar twins
//   --against golden D  a golden case folder (manifest.json) from HF transformers
//   --against ort       the model folder's ONNX graphs run by tools/ort-run
#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/run_flags.h"
#include "engine/compare.h"
#include "engine/compare_model.h"
#include "engine/kernel_check.h"
#include "engine/ort_bridge.h"
#include "kernels/base.h"
#include "loader/npy.h"

namespace qvl::cli {

namespace {

struct CompareArgs {
  std::string model, prompt, messages, against = "ort", tools, keep, cases;
  std::vector<std::string> images;
  bool kernels = false, json = false, file_images = false;
  int threads = 0;
  PrecisionFlags precision;
  std::string case_dir;
};

// Generates the kernel cases, runs ORT and qvl on each, compares.
CompareReport compare_kernels(const CompareArgs& a) {
  std::string tools = tools_dir(a.tools);
  std::string dir = !a.cases.empty() ? a.cases : a.keep.empty() ? make_scratch_dir("kernels") : a.keep;
  if (a.cases.empty()) run_python_tool(tools + "/kernel_models.py", {dir});
  std::ifstream f(dir + "/cases.json");
  QVL_CHECK(f.good(), "%s/cases.json: not written by kernel_models.py", dir.c_str());
  std::vector<std::string> cases = nlohmann::json::parse(f).get<std::vector<std::string>>();
  CompareReport rep;
  rep.against = "ort (one-op models)";
  rep.precision = "fp32 activations";
  for (const auto& name : cases) {
    std::string cdir = dir + "/" + name;
    ort_run(tools, cdir + "/model.onnx", cdir + "/in", cdir + "/out", {}, a.threads);
    NpyArray want = npy_load(cdir + "/out/y.npy");
    std::vector<float> w = want.to_f32();
    Tolerance tol = kernel_tolerance(kernel_family(cdir));
    for (bool ref : {false, true}) {
      KernelOutput got = run_kernel_case(cdir, ref);
      TensorDiff d = diff_tensors(ref ? name + " [_ref]" : name, got.data.data(), got.shape, w.data(),
                                  want.shape, tol);
      d.ref = "ort:" + name;
      rep.rows.push_back(d);
    }
  }
  if (a.keep.empty() && a.cases.empty()) remove_tree(dir);
  return rep;
}

}  // namespace

int cmd_compare(int argc, char** argv) {
  CompareArgs a;
  Flags fl(
      "qvl compare -m MODEL_DIR (-p TEXT [--image PATH]... | --messages FILE) "
      "[--against ort | --against golden CASE_DIR] [--json]\n"
      "       qvl compare --kernels [--json]");
  fl.add("-m", &a.model, "model folder (from tools/qvl-convert)");
  fl.alias("--model");
  fl.add("-p", &a.prompt, "user prompt text");
  fl.alias("--prompt");
  fl.add("--image", &a.images, "image file for the prompt (repeatable)");
  fl.add("--messages", &a.messages, "chat messages JSON file");
  fl.add("--against", &a.against, "reference: ort (default) or golden CASE_DIR");
  fl.add("--kernels", &a.kernels, "compare each kernel family with ONNX Runtime on one-op models");
  fl.add("--decode-images", &a.file_images,
         "golden: decode the case's image files with qvl's decoder (default: its reference RGB arrays)");
  fl.add("--json", &a.json, "print the result table as JSON");
  declare_precision_flags(fl, a.precision);  // as qvl run; tolerances stay those of the model's format
  fl.add("-t", &a.threads, "threads for qvl and ONNX Runtime (0 = default)");
  fl.alias("--threads");
  fl.add("--cases", &a.cases, "--kernels: use these cases (kernel_models.py output) instead of new ones");
  fl.add("--tools", &a.tools, "the repository's tools/ folder (default: found from the executable)");
  fl.add("--keep", &a.keep, "write the scratch files (models, .npy) to this folder and keep them");
  if (!fl.parse(argc, argv, /*allow_positional=*/true)) return 0;
  if (a.against == "golden") {
    QVL_CHECK(fl.positional().size() == 1, "--against golden needs exactly one CASE_DIR");
    a.case_dir = fl.positional()[0];
  } else {
    QVL_CHECK(fl.positional().empty(), "unexpected argument '%s'", fl.positional()[0].c_str());
    QVL_CHECK(a.against == "ort", "--against %s: expected 'ort' or 'golden CASE_DIR'", a.against.c_str());
  }

  CompareReport rep;
  if (a.kernels) {
    rep = compare_kernels(a);
  } else {
    QVL_CHECK(!a.model.empty(), "-m MODEL_DIR is required (or --kernels)");
    ModelCompareOptions o;
    o.model_dir = a.model, o.against = a.against, o.case_dir = a.case_dir;
    o.prompt = a.prompt, o.images = a.images, o.messages_file = a.messages;
    o.threads = a.threads, o.tools = a.tools, o.keep = a.keep;
    SessionOptions so;
    apply_precision_flags(a.precision, &so);
    o.act_bits = so.act_bits;
    o.vision_bf16 = so.vision_bf16;
    o.kv_dtype = so.kv_dtype;
    o.file_images = a.file_images;
    rep = compare_model(o);
  }
  if (a.json)
    std::printf("%s\n", compare_to_json(rep).dump(1).c_str());
  else
    std::fputs(format_compare_text(rep).c_str(), stdout);
  return rep.ok() ? 0 : 1;
}

}  // namespace qvl::cli
