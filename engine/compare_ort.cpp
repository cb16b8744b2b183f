// `qvl compare --against ort`: feeds the inputs qvl used to the model folder's
// own ONNX graphs through tools/ort-run and compares every tensor qvl's
// observer recorded with the matching graph value:
//   vision.onnx    pixel_values + host grid tensors → patch embed, position
//                  embeds, each block, merger (image_embeds), DeepStack mergers
//   embedding.onnx input_ids (+ ORT's image rows) → text.inputs_embeds
//   text.onnx      qvl's inputs_embeds, position_ids, attention_mask, empty
//                  past, DeepStack rows → each layer (before / after the
//                  DeepStack add), present K/V, final norm, logits
// Graph values are found by the node names tools/qvl-convert writes; a tensor
// with no counterpart in the graphs is listed as n/a.
#include <cmath>
#include <filesystem>
#include <map>

#include "engine/compare_model.h"
#include "engine/ort_bridge.h"
#include "kernels/base.h"
#include "kernels/rope.h"
#include "loader/config.h"
#include "loader/npy.h"
#include "loader/onnx_file.h"
#include "model/model_files.h"
#include "model/vision_inputs.h"

namespace qvl {

namespace {

namespace fsx {
void mkdirs(const std::string& d) {
  std::error_code ec;
  std::filesystem::create_directories(d, ec);
  QVL_CHECK(!ec, "%s: cannot create folder (%s)", d.c_str(), ec.message().c_str());
}
}  // namespace fsx

void save_f32(const std::string& path, const std::vector<int64_t>& shape, const float* data) {
  npy_save(path, DType::F32, shape, data);
}
void save_i64(const std::string& path, const std::vector<int64_t>& shape, const int64_t* data) {
  npy_save(path, DType::I64, shape, data);
}

// Output value of the node named `node` (output index k), "" if absent.
std::string node_output(const OnnxFile& g, const std::string& node, size_t k = 0) {
  for (const auto& n : g.nodes())
    if (n.name == node && n.outputs.size() > k) return n.outputs[k];
  return "";
}
std::string node_input(const OnnxFile& g, const std::string& node, size_t k) {
  for (const auto& n : g.nodes())
    if (n.name == node && n.inputs.size() > k) return n.inputs[k];
  return "";
}

// qvl tensor name → graph value name, for the values present in `g`.
using ValueMap = std::map<std::string, std::string>;

ValueMap vision_values(const OnnxFile& g, int depth, int n_ds) {
  ValueMap m;
  const std::string pe = "/model/visual/pos_embed/Add";
  m["vision.patch_embed"] = node_input(g, pe, 0);
  m["vision.pos_embeds"] = node_input(g, pe, 1);
  m["vision.patch_embed_pos"] = node_output(g, pe);
  for (int i = 0; i < depth; ++i)
    m[strfmt("vision.block.%d", i)] = node_output(g, strfmt("/model/visual/blocks.%d/Add_mlp", i));
  m["vision.merger"] = "image_embeds";
  for (int k = 0; k < n_ds; ++k) m[strfmt("vision.deepstack.%d", k)] = strfmt("deepstack_%d", k);
  for (auto it = m.begin(); it != m.end();) it = it->second.empty() ? m.erase(it) : std::next(it);
  return m;
}

ValueMap text_values(const OnnxFile& g, int layers) {
  ValueMap m;
  for (int i = 0; i < layers; ++i) {
    m[strfmt("text.layer.%d", i)] = node_output(g, strfmt("/model/layers.%d/Add_mlp", i));
    m[strfmt("text.layer.%d.plus_deepstack", i)] = node_output(g, strfmt("/model/layers.%d/deepstack/Add", i));
    m[strfmt("text.layer.%d.key", i)] = strfmt("present.%d.key", i);
    m[strfmt("text.layer.%d.value", i)] = strfmt("present.%d.value", i);
  }
  for (const auto& n : g.nodes())
    if (n.name.rfind("/lm_head/", 0) == 0 && !n.inputs.empty()) {
      m["text.final_norm"] = n.inputs[0];
      break;
    }
  m["logits"] = "logits";
  for (auto it = m.begin(); it != m.end();) it = it->second.empty() ? m.erase(it) : std::next(it);
  return m;
}

std::vector<std::string> extra_outputs(const OnnxFile& g, const ValueMap& m) {
  std::vector<std::string> out;
  std::map<std::string, bool> graph_out;
  for (const auto& v : g.outputs()) graph_out[v.name] = true;
  for (const auto& [q, v] : m)
    if (!graph_out.count(v)) out.push_back(v);
  return out;
}

// Loads the graph value of every recorded tensor of `prefix` into `out` (by
// qvl name; logits as their last row); unmatched tensors become n/a rows.
void collect_values(const ValueMap& m, const std::string& out_dir, const RecordingObserver& rec,
                    const std::string& prefix, OrtTensors* out, std::vector<TensorDiff>* missing) {
  for (const auto& [name, t] : rec.tensors()) {
    bool mine = name.rfind(prefix, 0) == 0 || (prefix == "text." && name == "logits");
    if (!mine || name == "text.inputs_embeds") continue;
    auto it = m.find(name);
    if (it == m.end()) {
      missing->push_back(missing_tensor(name, "", "no matching value in the ONNX graph", false));
      continue;
    }
    NpyArray want = npy_load(out_dir + "/" + npy_stem(it->second) + ".npy");
    OrtTensor v{want.to_f32(), want.shape, "ort:" + it->second};
    if (name == "logits") {
      int64_t V = v.shape.back();
      v.data.erase(v.data.begin(), v.data.end() - V);
      v.shape = {1, V};
    }
    (*out)[name] = std::move(v);
  }
}

}  // namespace

OrtTensors run_ort_reference(const ModelCompareOptions& o, const PromptInputs& in, const RecordingObserver& rec,
                             std::vector<TensorDiff>* missing) {
  OrtTensors ort;
  std::string tools = tools_dir(o.tools);
  std::string dir = o.keep.empty() ? make_scratch_dir("compare") : o.keep;
  ModelFiles files = find_model_files(o.model_dir);
  ModelConfig cfg = read_model_config(files.config_dir);
  QVL_CHECK(!files.embedding.empty(), "%s: --against ort needs embedding.onnx", o.model_dir.c_str());
  const int64_t S = (int64_t)in.ids.size(), H = cfg.text.hidden;
  const int n_ds = (int)cfg.vision.deepstack_indexes.size();

  // Vision tower on qvl's pixels and host grid tensors.
  std::vector<float> ort_image_rows;
  if (!in.grids.empty()) {
    QVL_CHECK(files.vision.size() == 1, "%s: --against ort needs one vision graph", o.model_dir.c_str());
    auto g = OnnxFile::open(files.vision[0]);
    std::vector<Grid3> grids;
    for (const auto& gr : in.grids) grids.push_back(Grid3{gr.t, gr.h, gr.w});
    int side = (int)std::lround(std::sqrt((double)cfg.vision.num_position_embeddings));
    VisionGridInputs vi = make_vision_inputs(grids, side, cfg.vision.merge);
    const int64_t N = vi.N;
    const int Dv = cfg.vision.hidden / cfg.vision.heads;
    std::vector<float> cos(N * Dv / 2), sin(N * Dv / 2);
    vision_rope_tables(vi.rows.data(), vi.cols.data(), N, Dv, cos.data(), sin.data());
    std::vector<int64_t> seg(N);
    for (size_t s = 0; s + 1 < vi.cu_seqlens.size(); ++s)
      for (int64_t i = vi.cu_seqlens[s]; i < vi.cu_seqlens[s + 1]; ++i) seg[i] = (int64_t)s;
    std::string vin = dir + "/vision/in", vout = dir + "/vision/out";
    fsx::mkdirs(vin);
    save_f32(vin + "/pixel_values.npy", {N, in.row_len}, in.pixels.data());
    save_i64(vin + "/pos_idx.npy", {4, N}, vi.pos_idx.data());
    save_f32(vin + "/pos_weight.npy", {4, N}, vi.pos_weight.data());
    save_f32(vin + "/rope_cos.npy", {N, Dv / 2}, cos.data());
    save_f32(vin + "/rope_sin.npy", {N, Dv / 2}, sin.data());
    save_i64(vin + "/segment_ids.npy", {N}, seg.data());
    ValueMap vm = vision_values(*g, cfg.vision.depth, n_ds);
    ort_run(tools, files.vision[0], vin, vout, extra_outputs(*g, vm), o.threads);
    collect_values(vm, vout, rec, "vision.", &ort, missing);
    ort_image_rows = npy_load(vout + "/image_embeds.npy").to_f32();
  }

  // Embedding lookup (+ ORT's image rows) vs qvl's decoder input.
  {
    std::string ein = dir + "/embedding/in", eout = dir + "/embedding/out";
    fsx::mkdirs(ein);
    save_i64(ein + "/input_ids.npy", {1, S}, in.ids.data());
    ort_run(tools, files.embedding, ein, eout, {}, o.threads);
    auto eg = OnnxFile::open(files.embedding);
    std::vector<float> emb = npy_load(eout + "/" + npy_stem(eg->outputs().at(0).name) + ".npy").to_f32();
    int64_t j = 0;
    for (int64_t i = 0; i < S && !ort_image_rows.empty(); ++i)
      if (in.ids[i] == in.image_token_id && (j + 1) * H <= (int64_t)ort_image_rows.size())
        std::copy_n(ort_image_rows.data() + (j++) * H, H, emb.data() + i * H);
    ort["text.inputs_embeds"] = OrtTensor{emb, {1, S, H}, "ort:embedding.onnx (+ image_embeds rows)"};
  }

  // Decoder prefill on qvl's inputs.
  const RecordingObserver::Tensor* embeds = rec.find("text.inputs_embeds");
  QVL_CHECK(embeds, "compare: qvl recorded no text.inputs_embeds (observer not wired?)");
  auto tg = OnnxFile::open(files.text);
  std::string tin = dir + "/text/in", tout = dir + "/text/out";
  fsx::mkdirs(tin);
  save_f32(tin + "/inputs_embeds.npy", {1, S, H}, embeds->data.data());
  std::vector<int64_t> mask(S, 1);
  save_i64(tin + "/attention_mask.npy", {1, S}, mask.data());
  save_i64(tin + "/position_ids.npy", {3, 1, S}, in.pos.data());
  const int L = cfg.text.layers;
  static const float kEmpty = 0.f;
  for (int i = 0; i < L; ++i)
    for (const char* kind : {"key", "value"})
      save_f32(tin + strfmt("/past_key_values.%d.%s.npy", i, kind), {1, cfg.text.kv_heads, 0, cfg.text.head_dim},
               &kEmpty);
  bool has_ds = false;
  for (const auto& v : tg->inputs()) has_ds |= v.name == "deepstack_embeds";
  if (has_ds) {
    std::vector<float> ds((size_t)n_ds * S * H, 0.f);
    for (int k = 0; k < n_ds; ++k) {
      const RecordingObserver::Tensor* f = rec.find(strfmt("vision.deepstack.%d", k));
      if (!f) continue;
      int64_t j = 0;
      for (int64_t i = 0; i < S; ++i)
        if (in.ids[i] == in.image_token_id && (j + 1) * H <= (int64_t)f->data.size())
          std::copy_n(f->data.data() + (j++) * H, H, ds.data() + ((size_t)k * S + i) * H);
    }
    save_f32(tin + "/deepstack_embeds.npy", {n_ds, 1, S, H}, ds.data());
  }
  ValueMap tm = text_values(*tg, L);
  ort_run(tools, files.text, tin, tout, extra_outputs(*tg, tm), o.threads);
  collect_values(tm, tout, rec, "text.", &ort, missing);
  if (o.keep.empty()) remove_tree(dir);
  return ort;
}

std::vector<TensorDiff> compare_with_ort(const ModelCompareOptions& o, const PromptInputs& in,
                                         const RecordingObserver& rec, const Tolerance& tol) {
  std::vector<TensorDiff> rows;
  OrtTensors ort = run_ort_reference(o, in, rec, &rows);
  for (const auto& [name, want] : ort) {
    const RecordingObserver::Tensor* got = rec.find(name);
    if (!got) continue;
    const float* g = got->data.data();
    std::vector<int64_t> gs = got->shape;
    if (name == "logits") {
      int64_t V = gs.back();
      g += got->data.size() - V;
      gs = {1, V};
    }
    TensorDiff d = diff_tensors(name, g, gs, want.data.data(), want.shape, tol);
    d.ref = want.ref;
    rows.push_back(d);
  }
  return rows;
}

}  // namespace qvl
