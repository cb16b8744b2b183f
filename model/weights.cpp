// Weight binding: resolves a table slot to an ONNX initializer through its
// consuming node, validates the shape and builds the kernel's view.
#include "model/weights.h"

#include <filesystem>

#include "kernels/base.h"
#include "kernels/dtype.h"

namespace qvl {

std::string expand_index(const std::string& pattern, int index) {
  if (index < 0) return pattern;
  std::string out = pattern;
  const std::string key = "{i}";
  for (size_t p = out.find(key); p != std::string::npos; p = out.find(key, p))
    out.replace(p, key.size(), std::to_string(index));
  return out;
}

const WeightSlot& WeightTable::at(const std::string& slot) const {
  for (const auto& s : slots)
    if (s.slot == slot) return s;
  throw Error(strfmt("internal: %s weight table has no slot '%s'", what.c_str(), slot.c_str()));
}

namespace {

std::string shape_of(std::initializer_list<int64_t> dims) {
  std::string s = "[";
  for (auto d : dims) s += (s.size() > 1 ? ", " : "") + std::to_string(d);
  return s + "]";
}

bool is_float(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }

WeightKind float_kind(DType t) {
  return t == DType::F32 ? WeightKind::F32 : t == DType::F16 ? WeightKind::F16 : WeightKind::BF16;
}

int input_index(const Node& n, const std::string& value) {
  for (size_t i = 0; i < n.inputs.size(); ++i)
    if (n.inputs[i] == value) return (int)i;
  return -1;
}

bool has_input(const Node& n, size_t i) { return n.inputs.size() > i && !n.inputs[i].empty(); }

}  // namespace

WeightBinder::WeightBinder(const OnnxFile& file, WeightStore* store) : file_(file), store_(store) {
  for (const auto& n : file_.nodes())
    if (!n.name.empty()) nodes_by_name_.emplace(n.name, &n);
}

std::string WeightBinder::file_name() const {
  return std::filesystem::path(file_.path()).filename().string();
}

const Node* WeightBinder::node(const std::string& name) const {
  auto it = nodes_by_name_.find(name);
  return it == nodes_by_name_.end() ? nullptr : it->second;
}

const TensorView& WeightBinder::input_tensor(const Node& n, size_t i, const char* role) const {
  QVL_CHECK(has_input(n, i), "%s: node '%s' (%s) has no %s input", file_name().c_str(), n.name.c_str(),
            n.op_type.c_str(), role);
  const TensorView* t = file_.find(n.inputs[i]);
  QVL_CHECK(t, "%s: %s '%s' of node '%s' (%s) is computed in the graph, not stored; qvl cannot read it",
            file_name().c_str(), role, n.inputs[i].c_str(), n.name.c_str(), n.op_type.c_str());
  return *t;
}

const float* WeightBinder::to_f32(const TensorView& t, int64_t n, const std::string& what) const {
  QVL_CHECK(is_float(t.dtype), "%s: %s (tensor '%s') has dtype %s; expected float32/float16/bfloat16",
            file_name().c_str(), what.c_str(), t.name.c_str(), dtype_name(t.dtype));
  QVL_CHECK(t.numel() == n, "%s: %s (tensor '%s') has shape %s; expected [%lld]", file_name().c_str(),
            what.c_str(), t.name.c_str(), t.shape_str().c_str(), (long long)n);
  std::vector<float> v((size_t)n);
  for (int64_t i = 0; i < n; ++i) {
    if (t.dtype == DType::F32) v[i] = t.as<float>()[i];
    else if (t.dtype == DType::F16) v[i] = f16_to_f32(t.as<uint16_t>()[i]);
    else v[i] = bf16_to_f32(t.as<uint16_t>()[i]);
  }
  return store_->keep(std::move(v));
}

// A bias is taken from the producing node (Gemm C, Conv B, MatMulNBits input 5)
// or from the one Add after a MatMul whose other input is a stored [N] tensor.
void WeightBinder::find_bias(const WeightSlot& s, const Node& prod, int bias_input,
                             LinearWeight* out) const {
  const std::string what = s.slot + " bias";
  if (bias_input >= 0 && has_input(prod, bias_input)) {
    out->bias = to_f32(input_tensor(prod, bias_input, "bias"), out->N, what);
  } else if (!prod.outputs.empty()) {
    auto cons = file_.consumers(prod.outputs[0]);
    if (cons.size() == 1 && cons[0]->op_type == "Add" && cons[0]->inputs.size() == 2) {
      const Node& add = *cons[0];
      const std::string& other = add.inputs[0] == prod.outputs[0] ? add.inputs[1] : add.inputs[0];
      const TensorView* b = file_.find(other);
      if (b && b->numel() == out->N) out->bias = to_f32(*b, out->N, what);
    }
  }
  QVL_CHECK(out->bias || !s.bias_required, "%s: %s has no bias (node '%s'); the model needs one",
            file_name().c_str(), s.slot.c_str(), prod.name.c_str());
}

// Float weight `t`: its consumer decides the layout.
bool WeightBinder::bind_float(const WeightSlot& s, const TensorView& t, LinearWeight* out) const {
  const std::string fn = file_name();
  QVL_CHECK(is_float(t.dtype), "%s: %s (tensor '%s') has dtype %s, not a float or MatMulNBits weight",
            fn.c_str(), s.slot.c_str(), t.name.c_str(), dtype_name(t.dtype));
  // Follow a Cast (fp16 weight widened in-graph) to the real consumer.
  std::string value = t.name;
  std::vector<const Node*> cons = file_.consumers(value);
  QVL_CHECK(!cons.empty(), "%s: %s (tensor '%s') is not used by any node", fn.c_str(), s.slot.c_str(),
            t.name.c_str());
  const Node* c = cons[0];
  for (const Node* other : cons)  // a tied table may also feed a Gather
    if (other->op_type != "Gather") c = other;
  if (c->op_type == "Cast") {
    value = c->outputs[0];
    auto next = file_.consumers(value);
    QVL_CHECK(next.size() == 1, "%s: %s (tensor '%s') goes through Cast '%s' to %zu nodes; qvl expects one",
              fn.c_str(), s.slot.c_str(), t.name.c_str(), c->name.c_str(), next.size());
    c = next[0];
  }
  bool transposed = false;
  int bias_input = -1;
  int idx = input_index(*c, value);
  if (c->op_type == "MatMul" && idx == 1) {
    transposed = true;
  } else if (c->op_type == "Gemm" && idx == 1) {
    QVL_CHECK(c->attr_int("transA", 0) == 0 && c->attr_float("alpha", 1.f) == 1.f &&
                  c->attr_float("beta", 1.f) == 1.f,
              "%s: Gemm '%s' (%s) has transA/alpha/beta qvl does not support", fn.c_str(), c->name.c_str(),
              s.slot.c_str());
    transposed = c->attr_int("transB", 0) == 0;
    bias_input = 2;
  } else if (c->op_type == "Conv" && idx == 1) {
    QVL_CHECK(c->attr_int("group", 1) == 1, "%s: Conv '%s' is grouped; qvl reads a patch-embedding Conv only",
              fn.c_str(), c->name.c_str());
    auto ks = c->has_attr("kernel_shape") ? c->attrs.at("kernel_shape").ints : std::vector<int64_t>{};
    auto st = c->has_attr("strides") ? c->attrs.at("strides").ints : std::vector<int64_t>{};
    QVL_CHECK(ks.empty() || st == ks, "%s: Conv '%s' has stride != kernel; not a patch embedding",
              fn.c_str(), c->name.c_str());
    bias_input = 2;
  } else if (c->op_type == "Transpose" && idx == 0) {
    auto perm = c->has_attr("perm") ? c->attrs.at("perm").ints : std::vector<int64_t>{1, 0};
    auto next = file_.consumers(c->outputs[0]);
    QVL_CHECK(perm == std::vector<int64_t>({1, 0}) && next.size() == 1 && next[0]->op_type == "MatMul" &&
                  input_index(*next[0], c->outputs[0]) == 1,
              "%s: %s (tensor '%s') feeds Transpose '%s' in a way qvl does not understand", fn.c_str(),
              s.slot.c_str(), t.name.c_str(), c->name.c_str());
    c = next[0];
  } else {
    throw Error(strfmt("%s: %s (tensor '%s') is consumed by %s node '%s' (input %d); qvl only reads linear "
                       "weights from MatMul, Gemm, Conv, MatMulNBits",
                       fn.c_str(), s.slot.c_str(), t.name.c_str(), c->op_type.c_str(), c->name.c_str(), idx));
  }
  // Logical [N, K]; stored [K, N] when transposed; Conv [N, C, kt, kh, kw].
  int64_t rows = t.shape.empty() ? 0 : t.shape[0];
  int64_t cols = rows ? t.numel() / rows : 0;
  bool ok = transposed ? (t.shape.size() == 2 && rows == s.K && cols == s.N)
                       : (t.shape.size() >= 2 && rows == s.N && cols == s.K);
  QVL_CHECK(ok, "%s: %s (tensor '%s', %s of %s '%s') has shape %s; expected %s (%s %s)", fn.c_str(),
            s.slot.c_str(), t.name.c_str(), transposed ? "[K, N]" : "[N, K]", c->op_type.c_str(),
            c->name.c_str(), t.shape_str().c_str(),
            (transposed ? shape_of({s.K, s.N}) : shape_of({s.N, s.K})).c_str(),
            transposed ? "[K, N] =" : "[N, K] =", s.dims.c_str());
  out->kind = float_kind(t.dtype);
  out->N = s.N;
  out->K = s.K;
  out->transposed = transposed;
  out->data = t.data;
  find_bias(s, *c, bias_input, out);
  return true;
}

bool WeightBinder::bind_nbits(const WeightSlot& s, const Node& n, LinearWeight* out) const {
  const std::string fn = file_name();
  const char* nn = n.name.c_str();
  QVL_CHECK(n.has_attr("K") && n.has_attr("N") && n.has_attr("block_size"),
            "%s: MatMulNBits '%s' lacks the K/N/block_size attributes", fn.c_str(), nn);
  int64_t K = n.attr_int("K", 0), N = n.attr_int("N", 0);
  int bits = (int)n.attr_int("bits", 4), bs = (int)n.attr_int("block_size", 0);
  QVL_CHECK(n.attr_int("weight_prepacked", 0) == 0,
            "%s: MatMulNBits '%s' (%s) has weight_prepacked=%lld (a GPU-specific layout); qvl reads the "
            "standard layout only",
            fn.c_str(), nn, s.slot.c_str(), (long long)n.attr_int("weight_prepacked", 0));
  QVL_CHECK(bits == 4 || bits == 8, "%s: MatMulNBits '%s' (%s) has bits=%d; qvl supports 4 and 8", fn.c_str(),
            nn, s.slot.c_str(), bits);
  QVL_CHECK(bs >= 16 && (bs & (bs - 1)) == 0, "%s: MatMulNBits '%s' has block_size %d (need a power of two >= 16)",
            fn.c_str(), nn, bs);
  QVL_CHECK(K == s.K && N == s.N, "%s: %s (MatMulNBits '%s') has K=%lld N=%lld; expected K=%lld N=%lld ([N, K] = %s)",
            fn.c_str(), s.slot.c_str(), nn, (long long)K, (long long)N, (long long)s.K, (long long)s.N,
            s.dims.c_str());
  QVL_CHECK(!has_input(n, 4), "%s: MatMulNBits '%s' has a g_idx input (act-order); qvl does not support it",
            fn.c_str(), nn);
  const int64_t kb = (K + bs - 1) / bs, blob = (int64_t)bs * bits / 8;
  const TensorView& B = input_tensor(n, 1, "B");
  QVL_CHECK(B.dtype == DType::U8 && B.numel() == N * kb * blob,
            "%s: %s (tensor '%s') has dtype %s shape %s; expected uint8 [%lld, %lld, %lld] ([N, kb, blob])",
            fn.c_str(), s.slot.c_str(), B.name.c_str(), dtype_name(B.dtype), B.shape_str().c_str(), (long long)N,
            (long long)kb, (long long)blob);
  const TensorView& sc = input_tensor(n, 2, "scales");
  QVL_CHECK(is_float(sc.dtype) && sc.numel() == N * kb,
            "%s: %s scales (tensor '%s') has dtype %s shape %s; expected float [%lld, %lld]", fn.c_str(),
            s.slot.c_str(), sc.name.c_str(), dtype_name(sc.dtype), sc.shape_str().c_str(), (long long)N,
            (long long)kb);
  out->kind = bits == 4 ? WeightKind::Q4 : WeightKind::Q8;
  out->N = N;
  out->K = K;
  out->transposed = false;
  out->data = B.data;
  out->bits = bits;
  out->block_size = bs;
  out->scales = sc.data;
  out->scale_dtype = sc.dtype;
  out->zero_points = nullptr;
  if (has_input(n, 3)) {
    const TensorView& zp = input_tensor(n, 3, "zero_points");
    int64_t zbytes = (kb * bits + 7) / 8;
    QVL_CHECK(zp.dtype == DType::U8,
              "%s: %s zero points (tensor '%s') are %s; qvl supports packed uint8 zero points only", fn.c_str(),
              s.slot.c_str(), zp.name.c_str(), dtype_name(zp.dtype));
    QVL_CHECK(zp.numel() == N * zbytes, "%s: %s zero points (tensor '%s') have shape %s; expected [%lld, %lld]",
              fn.c_str(), s.slot.c_str(), zp.name.c_str(), zp.shape_str().c_str(), (long long)N,
              (long long)zbytes);
    out->zero_points = zp.as<uint8_t>();
  }
  find_bias(s, n, 5, out);
  return true;
}

bool WeightBinder::present(const WeightSlot& s, int index) const {
  for (const auto& pat : s.names) {
    std::string nm = expand_index(pat, index);
    if (file_.find(nm) || file_.find(nm + "_Q4") || file_.find(nm + "_Q8")) return true;
  }
  for (const auto& pat : s.nodes) {
    std::string nm = expand_index(pat, index);
    if (node(nm) || node(nm + "_Q4") || node(nm + "_Q8")) return true;
  }
  return false;
}

bool WeightBinder::linear(const WeightSlot& s, int index, LinearWeight* out) const {
  *out = LinearWeight{};
  WeightSlot e = s;
  e.slot = expand_index(s.slot, index);
  for (const auto& pat : s.names) {
    std::string nm = expand_index(pat, index);
    if (const TensorView* t = file_.find(nm)) return bind_float(e, *t, out);
    for (const char* sfx : {"_Q4", "_Q8"}) {
      if (!file_.find(nm + sfx)) continue;
      for (const Node* c : file_.consumers(nm + sfx))
        if (c->op_type == "MatMulNBits" && input_index(*c, nm + sfx) == 1) return bind_nbits(e, *c, out);
      throw Error(strfmt("%s: %s (tensor '%s%s') is not consumed as B of a MatMulNBits node",
                         file_name().c_str(), e.slot.c_str(), nm.c_str(), sfx));
    }
  }
  for (const auto& pat : s.nodes) {
    std::string nm = expand_index(pat, index);
    for (const char* sfx : {"", "_Q4", "_Q8"}) {
      const Node* n = node(nm + sfx);
      if (!n) continue;
      if (n->op_type == "MatMulNBits") return bind_nbits(e, *n, out);
      QVL_CHECK(n->op_type == "MatMul" || n->op_type == "Gemm",
                "%s: node '%s' for %s is a %s; qvl expects MatMul, Gemm or MatMulNBits", file_name().c_str(),
                n->name.c_str(), e.slot.c_str(), n->op_type.c_str());
      return bind_float(e, input_tensor(*n, 1, "weight"), out);
    }
  }
  QVL_CHECK(!s.required, "%s: required weight %s missing (looked for %s%s%s)", file_name().c_str(),
            e.slot.c_str(), s.names.empty() ? "" : expand_index(s.names[0], index).c_str(),
            s.nodes.empty() ? "" : " / node ", s.nodes.empty() ? "" : expand_index(s.nodes[0], index).c_str());
  return false;
}

bool WeightBinder::vector(const WeightSlot& s, int index, const float** out) const {
  *out = nullptr;
  std::string slot = expand_index(s.slot, index);
  for (const auto& pat : s.names) {
    std::string nm = expand_index(pat, index);
    if (const TensorView* t = file_.find(nm)) {
      *out = to_f32(*t, s.N, slot + " (" + s.dims + ")");
      return true;
    }
  }
  QVL_CHECK(!s.required, "%s: required weight %s missing (looked for '%s')", file_name().c_str(), slot.c_str(),
            s.names.empty() ? "" : expand_index(s.names[0], index).c_str());
  return false;
}

LinearWeight WeightBinder::linear(const WeightTable& t, const std::string& slot, int index) const {
  LinearWeight w;
  linear(t.at(slot), index, &w);
  return w;
}

const float* WeightBinder::vector(const WeightTable& t, const std::string& slot, int index) const {
  const float* p = nullptr;
  vector(t.at(slot), index, &p);
  return p;
}

// Token / position table: a Gather on a float [N, K] tensor, or a
// com.microsoft GatherBlockQuantized on `<name>_Q4` (block-quantized along K).
bool WeightBinder::table(const WeightSlot& s, int index, EmbeddingTable* out) const {
  *out = EmbeddingTable{};
  const std::string fn = file_name(), slot = expand_index(s.slot, index);
  std::vector<std::pair<const TensorView*, const Node*>> found;  // (tensor, its Gather)
  for (const auto& pat : s.names) {
    std::string nm = expand_index(pat, index);
    for (const char* sfx : {"", "_Q4", "_Q8"})
      if (const TensorView* t = file_.find(nm + sfx)) {
        const Node* g = nullptr;
        for (const Node* c : file_.consumers(t->name))
          if ((c->op_type == "Gather" || c->op_type == "GatherBlockQuantized") && input_index(*c, t->name) == 0)
            g = c;
        found.push_back({t, g});
      }
    if (!found.empty()) break;
  }
  for (size_t i = 0; found.empty() && i < s.nodes.size(); ++i)
    if (const Node* g = node(expand_index(s.nodes[i], index)))
      found.push_back({&input_tensor(*g, 0, "table"), g});
  if (found.empty()) {
    QVL_CHECK(!s.required, "%s: required weight %s missing (looked for '%s')", fn.c_str(), slot.c_str(),
              s.names.empty() ? "" : expand_index(s.names[0], index).c_str());
    return false;
  }
  const TensorView& t = *found[0].first;
  const Node* g = found[0].second;
  out->V = s.N;
  out->H = s.K;
  out->data = t.data;
  if (!g || g->op_type == "Gather") {
    QVL_CHECK(is_float(t.dtype) && t.shape.size() == 2 && t.shape[0] == s.N && t.shape[1] == s.K,
              "%s: %s (tensor '%s') has dtype %s shape %s; expected a float table [%lld, %lld] (%s)", fn.c_str(),
              slot.c_str(), t.name.c_str(), dtype_name(t.dtype), t.shape_str().c_str(), (long long)s.N,
              (long long)s.K, s.dims.c_str());
    QVL_CHECK(!g || g->attr_int("axis", 0) == 0, "%s: Gather '%s' on %s is not along axis 0", fn.c_str(),
              g->name.c_str(), slot.c_str());
    out->dtype = t.dtype;
    return true;
  }
  // GatherBlockQuantized: data uint8 [V, H·bits/8] (or typed INT4/UINT4 [V, H]), scales [V, H/block].
  int bits = (int)g->attr_int("bits", 4), bs = (int)g->attr_int("block_size", 128);
  int64_t qaxis = g->attr_int("quantize_axis", 1);
  QVL_CHECK(g->attr_int("gather_axis", 0) == 0 && (qaxis == 1 || qaxis == -1),
            "%s: GatherBlockQuantized '%s' must gather axis 0 and quantize axis 1", fn.c_str(), g->name.c_str());
  QVL_CHECK(bs >= 16 && (bs & (bs - 1)) == 0 && s.K % bs == 0,
            "%s: GatherBlockQuantized '%s' has block_size %d; need a power of two >= 16 dividing %lld",
            fn.c_str(), g->name.c_str(), bs, (long long)s.K);
  if (t.dtype == DType::U8) {
    QVL_CHECK(bits == 4 || bits == 8, "%s: GatherBlockQuantized '%s' has bits=%d; qvl supports 4 and 8",
              fn.c_str(), g->name.c_str(), bits);
    QVL_CHECK(t.numel() == s.N * s.K * bits / 8, "%s: %s (tensor '%s') has shape %s; expected uint8 [%lld, %lld]",
              fn.c_str(), slot.c_str(), t.name.c_str(), t.shape_str().c_str(), (long long)s.N,
              (long long)(s.K * bits / 8));
    out->default_zero_point = 1 << (bits - 1);
  } else {
    QVL_CHECK((t.dtype == DType::I4 || t.dtype == DType::U4) && t.numel() == s.N * s.K,
              "%s: %s (tensor '%s') has dtype %s shape %s; expected uint8-packed or int4/uint4 [%lld, %lld]",
              fn.c_str(), slot.c_str(), t.name.c_str(), dtype_name(t.dtype), t.shape_str().c_str(),
              (long long)s.N, (long long)s.K);
    bits = 4;
    out->default_zero_point = 0;
  }
  out->dtype = t.dtype;
  out->bits = bits;
  out->block_size = bs;
  const TensorView& sc = input_tensor(*g, 2, "scales");
  QVL_CHECK(is_float(sc.dtype) && sc.numel() == s.N * (s.K / bs),
            "%s: %s scales (tensor '%s') have dtype %s shape %s; expected float [%lld, %lld]", fn.c_str(),
            slot.c_str(), sc.name.c_str(), dtype_name(sc.dtype), sc.shape_str().c_str(), (long long)s.N,
            (long long)(s.K / bs));
  out->scales = sc.data;
  out->scale_dtype = sc.dtype;
  if (has_input(*g, 3)) {
    const TensorView& zp = input_tensor(*g, 3, "zero_points");
    int64_t want = s.N * (((s.K / bs) * bits + 7) / 8);
    QVL_CHECK((zp.dtype == t.dtype) && (int64_t)zp.nbytes >= (t.dtype == DType::U8 ? want : (s.N * (s.K / bs) + 1) / 2),
              "%s: %s zero points (tensor '%s') have dtype %s shape %s, not matching the data", fn.c_str(),
              slot.c_str(), zp.name.c_str(), dtype_name(zp.dtype), zp.shape_str().c_str());
    out->zero_points = zp.as<uint8_t>();
  }
  return true;
}

LinearWeight linear_from_table(const EmbeddingTable& t, const std::string& what) {
  LinearWeight w;
  w.N = t.V;
  w.K = t.H;
  w.data = t.data;
  if (is_float(t.dtype)) {
    w.kind = float_kind(t.dtype);
    return w;
  }
  QVL_CHECK(t.dtype == DType::U8 && (t.bits == 4 || t.bits == 8) && t.H % t.block_size == 0,
            "%s: the token table (%s, block %d) cannot serve as the tied output matrix; qvl needs a float or "
            "uint8-packed 4/8-bit table",
            what.c_str(), dtype_name(t.dtype), t.block_size);
  QVL_CHECK(!t.zero_points || ((t.H / t.block_size) * t.bits) % 8 == 0,
            "%s: the token table's zero points are not byte-aligned per row; cannot reuse it as the output matrix",
            what.c_str());
  w.kind = t.bits == 4 ? WeightKind::Q4 : WeightKind::Q8;
  w.bits = t.bits;
  w.block_size = t.block_size;
  w.scales = t.scales;
  w.scale_dtype = t.scale_dtype;
  w.zero_points = t.zero_points;
  return w;
}

}  // namespace qvl
