// Tensor comparison for `qvl compare`: element-wise error statistics of one
// tensor against a reference (ONNX Runtime or the Hugging Face golden files),
// tolerances by model precision, the result table (text / JSON), and the
// mapping between qvl's observer names and the golden case file names.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace qvl {

// A tensor passes when max_abs <= atol + rtol * max|want| and cosine >= min_cos.
struct Tolerance {
  double atol = 1e-3;
  double rtol = 1e-5;
  double min_cos = 0.99999;
  bool exact = false;  // integer tensors (ids, positions): must be equal
};

// What the tolerances depend on: the weights' storage precision and what we
// compare against ("ort": same weights in ONNX Runtime; "golden": HF fp32 on
// the original bf16 weights; "kernel": one op on random inputs).
Tolerance tolerance_for(const std::string& precision, const std::string& against);
std::string describe(const Tolerance& t);

struct TensorDiff {
  std::string name;     // qvl name, e.g. "text.layer.3"
  std::string ref;      // reference name (golden file / ORT value)
  std::vector<int64_t> shape;
  int64_t numel = 0;
  double max_abs = 0;   // max |got − want|
  double max_rel = 0;   // max |got − want| / max(|want|, 1e-3·max|want|)
  double cosine = 1;
  double max_ref = 0;   // max |want|
  int64_t worst = -1;   // flat index of the largest abs error
  Tolerance tol;
  bool ok = true;
  std::string note;     // shape mismatch, missing, NaN ...
};

// Compares got against want (same number of elements; shapes are compared
// after dropping leading 1-dims, a mismatch fails with a note).
TensorDiff diff_tensors(const std::string& name, const float* got, const std::vector<int64_t>& got_shape,
                        const float* want, const std::vector<int64_t>& want_shape, const Tolerance& tol);

// A row that could not be compared (tensor not produced by one side).
TensorDiff missing_tensor(const std::string& name, const std::string& ref, const std::string& why,
                          bool fails);

struct CompareReport {
  std::string against, precision;
  std::vector<TensorDiff> rows;  // in pipeline order
  bool ok() const;               // every row within tolerance and at least one compared
  int first_failure() const;     // index of the first failing row, −1 if none
};

// Table: name, shape, max abs, max rel, cosine, tolerance, status; the first
// failing row is marked "<-- first past tolerance".
std::string format_compare_text(const CompareReport& r);
nlohmann::json compare_to_json(const CompareReport& r);

// Golden case file stem → qvl observer name ("vision_block_2" → "vision.block.2",
// "decoder_layer_1_plus_deepstack" → "text.layer.1.plus_deepstack",
// "prefill_key_0" → "text.layer.0.key", "image_embeds" → "vision.merger",
// "logits_last" → "logits" ...). Empty when the file is not a compared tensor.
std::string golden_to_qvl_name(const std::string& stem);

// Sort key putting tensors in pipeline order: vision (patch embed, blocks,
// merger, deepstack), text (inputs, layers with their K/V, final norm), logits.
std::string pipeline_key(const std::string& qvl_name);

// Storage precision of a model folder's decoder weights: "fp32", "fp16",
// "bf16", "int4" or "int8" (from text.onnx's initializers).
std::string model_precision(const std::string& model_dir);

}  // namespace qvl
