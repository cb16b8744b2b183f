// Tensor error statistics, tolerances, result table and golden-name mapping
// for `qvl compare` (see compare.h).
#include "engine/compare.h"

#include <algorithm>
#include <cmath>
#include <regex>

#include "kernels/base.h"
#include "loader/onnx_file.h"

namespace qvl {

Tolerance tolerance_for(const std::string& precision, const std::string& against) {
  Tolerance t;
  if (against == "kernel") {  // one op, fp32 math on both sides
    t.atol = 1e-4, t.rtol = 1e-4, t.min_cos = 0.99999;
    return t;
  }
  bool quant = precision == "int4" || precision == "int8";
  bool half = precision == "fp16" || precision == "bf16";
  if (against == "golden" && quant) {
    // HF ran the unquantized weights: INT4 rounding error (≤ half a step per
    // weight) accumulates over the layers; direction must still agree.
    t.atol = 0.05, t.rtol = 0.15, t.min_cos = 0.99;
  } else if (quant) {  // ORT on the same blocks; differs by summation order only
    t.atol = 2e-3, t.rtol = 1e-3, t.min_cos = 0.9999;
  } else if (half) {  // fp16 storage of bf16 values is exact; allow fp16-level noise
    t.atol = 2e-3, t.rtol = 1e-3, t.min_cos = 0.9999;
  } else {  // fp32: summation order only
    t.atol = 1e-3, t.rtol = 1e-5, t.min_cos = 0.99999;
  }
  return t;
}

std::string describe(const Tolerance& t) {
  if (t.exact) return "exact";
  return strfmt("abs<=%.0e+%.0e*max|ref|, cos>=%g", t.atol, t.rtol, t.min_cos);
}

namespace {

std::vector<int64_t> squeeze_leading(const std::vector<int64_t>& s) {
  size_t i = 0;
  while (i + 1 < s.size() && s[i] == 1) ++i;
  return std::vector<int64_t>(s.begin() + i, s.end());
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(s[i]);
  }
  out += ']';
  return out;
}

int64_t numel_of(const std::vector<int64_t>& s) {
  int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

}  // namespace

TensorDiff diff_tensors(const std::string& name, const float* got, const std::vector<int64_t>& got_shape,
                        const float* want, const std::vector<int64_t>& want_shape, const Tolerance& tol) {
  TensorDiff d;
  d.name = name;
  d.shape = got_shape;
  d.tol = tol;
  d.numel = numel_of(got_shape);
  if (squeeze_leading(got_shape) != squeeze_leading(want_shape)) {
    d.ok = false;
    d.note = "shape " + shape_str(got_shape) + " vs reference " + shape_str(want_shape);
    return d;
  }
  double max_ref = 0;
  for (int64_t i = 0; i < d.numel; ++i) max_ref = std::max(max_ref, (double)std::fabs(want[i]));
  double floor = std::max(1e-3 * max_ref, 1e-12);
  double dot = 0, ng = 0, nw = 0;
  bool nan = false;
  for (int64_t i = 0; i < d.numel; ++i) {
    double g = got[i], w = want[i];
    if (!std::isfinite(g) || !std::isfinite(w)) {
      nan = true;
      if (d.worst < 0) d.worst = i;
      continue;
    }
    double e = std::fabs(g - w);
    if (e > d.max_abs) d.max_abs = e, d.worst = i;
    d.max_rel = std::max(d.max_rel, e / std::max(std::fabs(w), floor));
    dot += g * w, ng += g * g, nw += w * w;
  }
  d.max_ref = max_ref;
  d.cosine = (ng > 0 && nw > 0) ? dot / std::sqrt(ng * nw) : (ng == nw ? 1.0 : 0.0);
  if (nan) {
    d.ok = false;
    d.note = strfmt("non-finite value at flat index %lld", (long long)d.worst);
    return d;
  }
  if (tol.exact) {
    d.ok = d.max_abs == 0;
  } else {
    d.ok = d.max_abs <= tol.atol + tol.rtol * max_ref && d.cosine >= tol.min_cos;
  }
  if (!d.ok && d.worst >= 0)
    d.note = strfmt("worst at %lld: got %.6g want %.6g", (long long)d.worst, (double)got[d.worst],
                    (double)want[d.worst]);
  return d;
}

TensorDiff missing_tensor(const std::string& name, const std::string& ref, const std::string& why,
                          bool fails) {
  TensorDiff d;
  d.name = name;
  d.ref = ref;
  d.ok = !fails;
  d.numel = 0;
  d.note = why;
  return d;
}

bool CompareReport::ok() const {
  int compared = 0;
  for (const auto& r : rows) {
    if (!r.ok) return false;
    if (r.numel > 0) ++compared;
  }
  return compared > 0;
}

int CompareReport::first_failure() const {
  for (size_t i = 0; i < rows.size(); ++i)
    if (!rows[i].ok) return static_cast<int>(i);
  return -1;
}

std::string format_compare_text(const CompareReport& r) {
  std::string tol = r.rows.empty() ? "-" : describe(r.rows[0].tol);
  for (const auto& d : r.rows)
    if (describe(d.tol) != tol) tol = "per tensor (limit column = atol + rtol*max|ref|)";
  std::string out = strfmt("against %s, weights %s; tolerance %s\n", r.against.c_str(), r.precision.c_str(),
                           tol.c_str());
  out += strfmt("%-38s %-16s %10s %10s %10s %9s %9s  %s\n", "tensor", "shape", "max_abs", "max_rel",
                "cosine", "max|ref|", "limit", "status");
  int first = r.first_failure();
  for (size_t i = 0; i < r.rows.size(); ++i) {
    const TensorDiff& d = r.rows[i];
    std::string status = d.ok ? (d.numel ? "ok" : "n/a") : "FAIL";
    if ((int)i == first) status += "  <-- first past tolerance";
    if (!d.note.empty()) status += "  (" + d.note + ")";
    if (d.numel == 0) {
      out += strfmt("%-38s %-16s %10s %10s %10s %9s %9s  %s\n", d.name.c_str(), "-", "-", "-", "-", "-", "-",
                    status.c_str());
      continue;
    }
    double limit = d.tol.exact ? 0.0 : d.tol.atol + d.tol.rtol * d.max_ref;
    out += strfmt("%-38s %-16s %10.3e %10.3e %10.7f %9.3g %9.2e  %s\n", d.name.c_str(),
                  shape_str(d.shape).c_str(), d.max_abs, d.max_rel, d.cosine, d.max_ref, limit, status.c_str());
  }
  int compared = 0, failed = 0;
  for (const auto& d : r.rows) compared += d.numel > 0, failed += !d.ok;
  out += strfmt("%d tensors compared, %d past tolerance: %s\n", compared, failed, r.ok() ? "PASS" : "FAIL");
  return out;
}

nlohmann::json compare_to_json(const CompareReport& r) {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& d : r.rows) {
    rows.push_back({{"name", d.name},
                    {"ref", d.ref},
                    {"shape", d.shape},
                    {"max_abs", d.max_abs},
                    {"max_rel", d.max_rel},
                    {"cosine", d.cosine},
                    {"max_ref", d.max_ref},
                    {"compared", d.numel > 0},
                    {"ok", d.ok},
                    {"tolerance", describe(d.tol)},
                    {"note", d.note}});
  }
  int first = r.first_failure();
  return {{"against", r.against},
          {"precision", r.precision},
          {"ok", r.ok()},
          {"first_failure", first >= 0 ? nlohmann::json(r.rows[first].name) : nlohmann::json(nullptr)},
          {"tensors", rows}};
}

std::string golden_to_qvl_name(const std::string& stem) {
  static const std::vector<std::pair<std::regex, std::string>> rules = {
      {std::regex("vision_patch_embed"), "vision.patch_embed"},
      {std::regex("vision_pos_embeds"), "vision.pos_embeds"},
      {std::regex("vision_patch_embed_pos"), "vision.patch_embed_pos"},
      {std::regex("vision_block_(\\d+)"), "vision.block.$1"},
      {std::regex("image_embeds"), "vision.merger"},
      {std::regex("deepstack_(\\d+)"), "vision.deepstack.$1"},
      {std::regex("inputs_embeds"), "text.inputs_embeds"},
      {std::regex("decoder_layer_(\\d+)"), "text.layer.$1"},
      {std::regex("decoder_layer_(\\d+)_plus_deepstack"), "text.layer.$1.plus_deepstack"},
      {std::regex("prefill_key_(\\d+)"), "text.layer.$1.key"},
      {std::regex("prefill_value_(\\d+)"), "text.layer.$1.value"},
      {std::regex("final_norm"), "text.final_norm"},
      {std::regex("logits_last"), "logits"},
      {std::regex("pixel_values"), "vision.pixel_values"},
      {std::regex("position_ids"), "text.position_ids"},
      {std::regex("input_ids"), "text.input_ids"},
  };
  for (const auto& [re, fmt] : rules)
    if (std::regex_match(stem, re)) return std::regex_replace(stem, re, fmt);
  return "";
}

std::string pipeline_key(const std::string& n) {
  // "group/index/sub" with zero-padded numbers so a string sort gives pipeline order.
  std::smatch m;
  auto pad = [](const std::string& s) { return strfmt("%05d", std::stoi(s)); };
  if (n == "vision.pixel_values") return "0/00000/0";
  if (n == "vision.patch_embed") return "0/00001/0";
  if (n == "vision.pos_embeds") return "0/00002/0";
  if (n == "vision.patch_embed_pos") return "0/00003/0";
  static const std::regex block("vision\\.block\\.(\\d+)"), ds("vision\\.deepstack\\.(\\d+)");
  static const std::regex layer("text\\.layer\\.(\\d+)(\\.(.*))?");
  if (std::regex_match(n, m, block)) return "1/" + pad(m[1]) + "/0";
  if (n == "vision.merger") return "2/00000/0";
  if (std::regex_match(n, m, ds)) return "3/" + pad(m[1]) + "/0";
  if (n == "text.input_ids") return "4/00000/0";
  if (n == "text.position_ids") return "4/00001/0";
  if (n == "text.inputs_embeds") return "4/00002/0";
  if (std::regex_match(n, m, layer)) {
    std::string sub = m[3];
    std::string s = sub == "key" ? "0" : sub == "value" ? "1" : sub.empty() ? "2" : "3";
    return "5/" + pad(m[1]) + "/" + s;
  }
  if (n == "text.final_norm") return "6/00000/0";
  if (n == "logits") return "7/00000/0";
  return "8/" + n;
}

std::string model_precision(const std::string& model_dir) {
  auto f = OnnxFile::open(model_dir + "/text.onnx");
  bool f16 = false, bf16 = false;
  for (const auto& t : f->tensors()) {
    const std::string& n = t.name;
    if (n.size() > 3 && n.compare(n.size() - 3, 3, "_Q4") == 0) return "int4";
    if (n.size() > 3 && n.compare(n.size() - 3, 3, "_Q8") == 0) return "int8";
    if (n.find("MatMul") != std::string::npos || n.find("proj") != std::string::npos) {
      if (t.dtype == DType::F16) f16 = true;
      if (t.dtype == DType::BF16) bf16 = true;
    }
  }
  for (const auto& nd : f->nodes())
    if (nd.op_type == "MatMulNBits") return nd.attr_int("bits", 4) == 8 ? "int8" : "int4";
  return f16 ? "fp16" : bf16 ? "bf16" : "fp32";
}

}  // namespace qvl
