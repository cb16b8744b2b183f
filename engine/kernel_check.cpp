// Runs one qvl kernel on a tools/kernel_models.py case (see kernel_check.h).
#include "engine/kernel_check.h"

#include <fstream>

#include <nlohmann/json.hpp>

#include "kernels/activations.h"
#include "kernels/attention.h"
#include "kernels/base.h"
#include "kernels/embedding.h"
#include "kernels/linear.h"
#include "kernels/norms.h"
#include "kernels/rope.h"
#include "loader/npy.h"

namespace qvl {

namespace {

using json = nlohmann::json;

// One case folder: its meta.json and lazy access to in/ and w/ arrays.
struct CaseData {
  std::string dir;
  json meta;

  explicit CaseData(const std::string& d) : dir(d) {
    std::ifstream f(d + "/meta.json");
    QVL_CHECK(f.good(), "%s/meta.json: cannot open (not a kernel case folder)", d.c_str());
    try {
      meta = json::parse(f);
    } catch (const std::exception& e) {
      throw Error(strfmt("%s/meta.json: invalid JSON", d.c_str()));
    }
  }
  NpyArray in(const std::string& n) const { return npy_load(dir + "/in/" + n + ".npy"); }
  NpyArray w(const std::string& n) const { return npy_load(dir + "/w/" + n + ".npy"); }
  int64_t i(const char* k) const {
    QVL_CHECK(meta.contains(k), "%s/meta.json: missing '%s'", dir.c_str(), k);
    return meta[k].get<int64_t>();
  }
  double f(const char* k) const {
    QVL_CHECK(meta.contains(k), "%s/meta.json: missing '%s'", dir.c_str(), k);
    return meta[k].get<double>();
  }
};

KernelOutput run_matmul_nbits(const CaseData& c, bool ref) {
  int64_t M = c.i("M"), K = c.i("K"), N = c.i("N");
  NpyArray B = c.w("B"), S = c.w("scales");
  NpyArray Z;
  bool zp = c.meta.value("zero_points", false);
  if (zp) Z = c.w("zero_points");
  LinearWeight W;
  W.kind = WeightKind::Q4;
  W.N = N, W.K = K, W.bits = 4, W.block_size = static_cast<int>(c.i("block_size"));
  W.data = B.bytes.data();
  W.scales = S.bytes.data();
  W.scale_dtype = DType::F32;
  W.zero_points = zp ? Z.bytes.data() : nullptr;
  std::vector<float> a = c.in("a").to_f32();
  KernelOutput o{std::vector<float>(M * N), {M, N}};
  (ref ? linear_ref : linear)(a.data(), M, W, o.data.data());
  return o;
}

KernelOutput run_matmul(const CaseData& c, bool ref) {
  int64_t M = c.i("M"), K = c.i("K"), N = c.i("N");
  NpyArray B = c.w("B");
  LinearWeight W;
  W.kind = B.dtype == DType::F16 ? WeightKind::F16 : WeightKind::F32;
  W.N = N, W.K = K, W.transposed = true;  // ONNX MatMul B is [K, N]
  W.data = B.bytes.data();
  std::vector<float> a = c.in("a").to_f32();
  KernelOutput o{std::vector<float>(M * N), {M, N}};
  (ref ? linear_ref : linear)(a.data(), M, W, o.data.data());
  return o;
}

KernelOutput run_attention_causal(const CaseData& c, bool ref) {
  int64_t S = c.i("S"), P = c.i("past"), ctx = c.i("ctx");
  int Hq = (int)c.i("Hq"), Hkv = (int)c.i("Hkv"), D = (int)c.i("D");
  std::vector<float> q = c.in("q").to_f32(), k = c.in("kcache").to_f32(), v = c.in("vcache").to_f32();
  KernelOutput o{std::vector<float>(S * Hq * D), {S, Hq, D}};
  if (ref)
    attention_causal_ref(q.data(), (int64_t)Hq * D, S, Hq, Hkv, D, k.data(), v.data(), ctx, P, (float)c.f("scale"),
                         o.data.data(), (int64_t)Hq * D);
  else
    attention_causal(q.data(), (int64_t)Hq * D, S, Hq, Hkv, D, k.data(), v.data(), ctx, P, (float)c.f("scale"),
                     o.data.data(), (int64_t)Hq * D);
  return o;
}

KernelOutput run_attention_segments(const CaseData& c, bool ref) {
  int64_t N = c.i("N");
  int H = (int)c.i("H"), D = (int)c.i("D");
  std::vector<int64_t> cu = c.meta["cu_seqlens"].get<std::vector<int64_t>>();
  std::vector<float> qkv = c.in("qkv").to_f32();
  const float* q = qkv.data();
  int64_t HD = (int64_t)H * D;
  KernelOutput o{std::vector<float>(N * HD), {N, HD}};
  (ref ? attention_segments_ref : attention_segments)(q, q + HD, q + 2 * HD, 3 * HD, N, H, D, cu.data(),
                                                       (int)cu.size() - 1, (float)c.f("scale"), o.data.data());
  return o;
}

KernelOutput run_rope(const CaseData& c, bool ref, bool vision) {
  int64_t S = vision ? c.i("N") : c.i("S");
  int H = (int)c.i("H"), D = (int)c.i("D");
  std::vector<int64_t> pos = c.in("pos").to_i64();
  std::vector<float> cos(S * D / 2), sin(S * D / 2);
  if (vision) {
    std::vector<int32_t> rows(pos.begin(), pos.begin() + S), cols(pos.begin() + S, pos.end());
    vision_rope_tables(rows.data(), cols.data(), S, D, cos.data(), sin.data());
  } else {
    std::vector<int> section = c.meta["section"].get<std::vector<int>>();
    mrope_tables(pos.data(), S, D, c.f("theta"), section.data(), c.meta.value("interleaved", true), cos.data(),
                 sin.data());
  }
  KernelOutput o{c.in("x").to_f32(), {S, H, D}};
  (ref ? rope_apply_ref : rope_apply)(o.data.data(), S, H, D, (int64_t)H * D, cos.data(), sin.data());
  return o;
}

KernelOutput run_norm(const CaseData& c, bool ref, bool layer) {
  int64_t rows = c.i("rows"), dim = c.i("dim");
  float eps = (float)c.f("eps");
  std::vector<float> x = c.in("x").to_f32(), w = c.w("w").to_f32();
  KernelOutput o{std::vector<float>(rows * dim), {rows, dim}};
  if (layer) {
    std::vector<float> b = c.w("b").to_f32();
    (ref ? layer_norm_ref : layer_norm)(x.data(), w.data(), b.data(), o.data.data(), rows, dim, eps);
  } else {
    (ref ? rms_norm_ref : rms_norm)(x.data(), w.data(), o.data.data(), rows, dim, eps);
  }
  return o;
}

KernelOutput run_elementwise(const CaseData& c, bool ref, const std::string& k) {
  KernelOutput o{c.in("x").to_f32(), {}};
  int64_t n = (int64_t)o.data.size();
  o.shape = {n};
  if (k == "gelu_tanh") (ref ? gelu_tanh_ref : gelu_tanh)(o.data.data(), n);
  if (k == "gelu_erf") (ref ? gelu_erf_ref : gelu_erf)(o.data.data(), n);
  if (k == "swiglu") {
    std::vector<float> up = c.in("up").to_f32(), gate = o.data;
    (ref ? swiglu_ref : swiglu)(gate.data(), up.data(), o.data.data(), n);
  }
  if (k == "softmax") {
    int64_t rows = c.i("rows"), cols = c.i("n");
    o.shape = {rows, cols};
    (ref ? softmax_ref : softmax)(o.data.data(), rows, cols);
  }
  return o;
}

KernelOutput run_gather(const CaseData& c, bool ref) {
  NpyArray data = c.w("data"), scales = c.w("scales");
  NpyArray Z;
  bool zp = c.meta.value("zero_points", false);
  if (zp) Z = c.w("zero_points");
  EmbeddingTable t;
  t.V = c.i("V"), t.H = c.i("H");
  t.dtype = DType::U8, t.bits = 4, t.block_size = (int)c.i("block_size");
  t.data = data.bytes.data();
  t.scales = scales.bytes.data();
  t.scale_dtype = DType::F32;
  t.zero_points = zp ? Z.bytes.data() : nullptr;
  t.default_zero_point = 8;
  std::vector<int64_t> ids = c.in("ids").to_i64();
  int64_t n = (int64_t)ids.size();
  KernelOutput o{std::vector<float>(n * t.H), {n, t.H}};
  (ref ? embedding_gather_ref : embedding_gather)(t, ids.data(), n, o.data.data());
  return o;
}

}  // namespace

std::string kernel_family(const std::string& case_dir) {
  return CaseData(case_dir).meta.value("kernel", "");
}

KernelOutput run_kernel_case(const std::string& case_dir, bool ref) {
  CaseData c(case_dir);
  std::string k = c.meta.value("kernel", "");
  if (k == "matmul_nbits") return run_matmul_nbits(c, ref);
  if (k == "matmul") return run_matmul(c, ref);
  if (k == "attention_causal") return run_attention_causal(c, ref);
  if (k == "attention_segments") return run_attention_segments(c, ref);
  if (k == "rope_mrope") return run_rope(c, ref, false);
  if (k == "rope_vision") return run_rope(c, ref, true);
  if (k == "rms_norm") return run_norm(c, ref, false);
  if (k == "layer_norm") return run_norm(c, ref, true);
  if (k == "gelu_tanh" || k == "gelu_erf" || k == "swiglu" || k == "softmax") return run_elementwise(c, ref, k);
  if (k == "gather_block_quantized") return run_gather(c, ref);
  throw Error(strfmt("%s/meta.json: unknown kernel '%s'", case_dir.c_str(), k.c_str()));
}

Tolerance kernel_tolerance(const std::string& kernel) {
  Tolerance t = tolerance_for("fp32", "kernel");
  // Rotary angles pos·inv_freq are rounded to fp32 on both sides, possibly in a
  // different order (|pos| < 300 → angle error ≲ 3e-5 rad).
  if (kernel == "rope_mrope" || kernel == "rope_vision") t.atol = 3e-4, t.rtol = 1e-4;
  // Quantized dot products over K ≤ 384 with |y| ≈ 10: summation order only.
  if (kernel == "matmul_nbits" || kernel == "matmul") t.atol = 1e-4, t.rtol = 2e-5;
  return t;
}

}  // namespace qvl
