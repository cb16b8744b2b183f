// Qwen3-VL vision encoder forward and graph binding (see vision_model.h).
#include "model/vision_model.h"

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "kernels/activations.h"
#include "kernels/attention.h"
#include "kernels/embedding.h"
#include "kernels/linear.h"
#include "kernels/norms.h"
#include "kernels/profiler.h"
#include "kernels/rope.h"
#include "loader/onnx_file.h"
#include "model/weights.h"

namespace qvl {

namespace {

struct Block {
  const float *n1w = nullptr, *n1b = nullptr, *n2w = nullptr, *n2b = nullptr;
  LinearWeight qkv, proj, fc1, fc2;
};
struct Merger {
  const float *nw = nullptr, *nb = nullptr;
  LinearWeight fc1, fc2;
};

double lin_flops(int64_t M, const LinearWeight& W) { return 2.0 * M * W.N * W.K; }
double lin_bytes(int64_t M, const LinearWeight& W) { return (double)W.bytes() + 4.0 * M * (W.N + W.K); }

void notify(TensorObserver* obs, const std::string& name, const float* p, std::vector<int64_t> shape) {
  if (obs) obs->on_tensor(name, p, shape);
}

}  // namespace

struct VisionModel::Graph {
  std::string path;
  std::unique_ptr<OnnxFile> file;
  WeightStore store;
  LinearWeight patch;
  EmbeddingTable pos;
  std::vector<Block> blocks;
  Merger merger;
  std::vector<Merger> deepstack;
  std::vector<Grid3> traced;  // empty: any grid
};

namespace {

Merger bind_merger(const WeightBinder& b, const WeightTable& t, const std::string& pre, int i, bool required) {
  Merger m;
  auto req = [&](const std::string& slot) {
    WeightSlot s = t.at(pre + "." + slot);
    s.required = required;
    return s;
  };
  b.vector(req("norm.weight"), i, &m.nw);
  b.vector(req("norm.bias"), i, &m.nb);
  b.linear(req("fc1"), i, &m.fc1);
  b.linear(req("fc2"), i, &m.fc2);
  return m;
}

// A traced graph gathers the position table with stored indices [4, Σh·w]: find
// the grid(s) they were computed for (a stored [k,3] int64 grid_thw, else any
// single (h, w) whose corners reproduce the indices).
std::vector<Grid3> traced_grid(const OnnxFile& f, const WeightBinder& b, const WeightSlot& pos_slot,
                               int side, int merge) {
  const TensorView* idx = nullptr;
  for (const auto& nm : pos_slot.names)
    if (f.find(nm))
      for (const Node* g : f.consumers(nm))
        if (g->op_type == "Gather" && g->inputs.size() > 1 && g->inputs[0] == nm && f.find(g->inputs[1]))
          idx = f.find(g->inputs[1]);
  if (!idx) return {};  // indices are a graph input: any grid
  const std::string fn = b.file_name();
  QVL_CHECK(idx->dtype == DType::I64 && idx->shape.size() == 2 && idx->shape[0] == 4,
            "%s: the position-table Gather uses stored indices '%s' %s; qvl expects [4, patches] int64 corners",
            fn.c_str(), idx->name.c_str(), idx->shape_str().c_str());
  const int64_t n = idx->shape[1];
  const int64_t* got = idx->as<int64_t>();
  auto matches = [&](const std::vector<Grid3>& grids) {
    int64_t off = 0;
    for (const auto& g : grids) {
      if (g.h % merge || g.w % merge || off + g.h * g.w > n) return false;
      auto want = pos_corners_row_major(g.h, g.w, side);
      for (int c = 0; c < 4; ++c)
        for (int64_t p = 0; p < g.h * g.w; ++p)
          if (got[c * n + off + p] != want[c * g.h * g.w + p]) return false;
      off += g.h * g.w;
    }
    return off == n;
  };
  for (const auto& t : f.tensors()) {
    if (t.dtype != DType::I64 || t.shape.size() != 2 || t.shape[1] != 3 || t.shape[0] < 1) continue;
    std::vector<Grid3> grids;
    for (int64_t r = 0; r < t.shape[0]; ++r)
      grids.push_back({t.as<int64_t>()[3 * r], t.as<int64_t>()[3 * r + 1], t.as<int64_t>()[3 * r + 2]});
    if (matches(grids)) return grids;
  }
  for (int64_t h = merge; h <= n / merge; h += merge)
    if (n % h == 0 && matches({{1, h, n / h}})) return {{1, h, n / h}};
  throw Error(strfmt("%s: vision graph traced for a fixed image grid, but its position indices '%s' match no grid",
                     fn.c_str(), idx->name.c_str()));
}

}  // namespace

VisionModel::~VisionModel() = default;

std::unique_ptr<VisionModel> VisionModel::load(const ModelFiles& files, const ModelConfig& cfg) {
  const VisionConfig& c = cfg.vision;
  QVL_CHECK(!files.vision.empty(), "model folder %s has no vision graph (vision.onnx)", files.dir.c_str());
  QVL_CHECK(c.present && c.depth > 0 && c.hidden > 0 && c.heads > 0 && c.hidden % c.heads == 0,
            "%s/config.json: vision_config missing or incomplete", files.config_dir.c_str());
  QVL_CHECK((c.hidden / c.heads) % 4 == 0, "%s/config.json: vision head dim %d must be a multiple of 4",
            files.config_dir.c_str(), c.hidden / c.heads);
  QVL_CHECK(c.hidden_act == "gelu_pytorch_tanh" || c.hidden_act == "gelu_new" || c.hidden_act == "gelu",
            "%s/config.json: vision hidden_act '%s' not supported", files.config_dir.c_str(), c.hidden_act.c_str());
  std::unique_ptr<VisionModel> m(new VisionModel());
  m->cfg_ = c;
  m->grid_side_ = (int)std::lround(std::sqrt((double)c.num_position_embeddings));
  QVL_CHECK(m->grid_side_ * m->grid_side_ == c.num_position_embeddings,
            "%s/config.json: num_position_embeddings %d is not a square", files.config_dir.c_str(),
            c.num_position_embeddings);
  for (int64_t ix : c.deepstack_indexes)
    QVL_CHECK(ix >= 0 && ix < c.depth, "%s/config.json: deepstack index %lld outside %d vision blocks",
              files.config_dir.c_str(), (long long)ix, c.depth);
  const WeightTable t = vision_weight_table(c);
  for (const auto& path : files.vision) {
    auto g = std::make_unique<Graph>();
    g->path = path;
    g->file = OnnxFile::open(path);
    WeightBinder b(*g->file, &g->store);
    g->patch = b.linear(t, "patch_embed");
    b.table(t.at("pos_embed"), -1, &g->pos);
    g->blocks.resize(c.depth);
    for (int i = 0; i < c.depth; ++i) {
      Block& B = g->blocks[i];
      B.n1w = b.vector(t, "blocks.{i}.norm1.weight", i);
      B.n1b = b.vector(t, "blocks.{i}.norm1.bias", i);
      B.n2w = b.vector(t, "blocks.{i}.norm2.weight", i);
      B.n2b = b.vector(t, "blocks.{i}.norm2.bias", i);
      B.qkv = b.linear(t, "blocks.{i}.qkv", i);
      B.proj = b.linear(t, "blocks.{i}.proj", i);
      B.fc1 = b.linear(t, "blocks.{i}.fc1", i);
      B.fc2 = b.linear(t, "blocks.{i}.fc2", i);
    }
    g->merger = bind_merger(b, t, "merger", -1, true);
    // DeepStack mergers: all levels or none (older exports drop them; warn).
    const int levels = (int)c.deepstack_indexes.size();
    bool any = levels > 0 && b.present(t.at("deepstack.{i}.fc1"), 0);
    for (int k = 0; any && k < levels; ++k) g->deepstack.push_back(bind_merger(b, t, "deepstack.{i}", k, true));
    if (levels > 0 && !any)
      std::fprintf(stderr, "qvl: warning: %s has no DeepStack mergers; image answers may degrade\n",
                   b.file_name().c_str());
    g->traced = traced_grid(*g->file, b, t.at("pos_embed"), m->grid_side_, c.merge);
    m->graphs_.push_back(std::move(g));
  }
  return m;
}

int VisionModel::deepstack_levels() const { return graphs_.empty() ? 0 : (int)graphs_[0]->deepstack.size(); }

std::vector<std::vector<Grid3>> VisionModel::traced_grids() const {
  std::vector<std::vector<Grid3>> out;
  for (const auto& g : graphs_) out.push_back(g->traced);
  return out;
}

std::string VisionModel::describe() const {
  std::string s;
  for (const auto& g : graphs_) {
    s += s.empty() ? "" : "; ";
    s += std::filesystem::path(g->path).filename().string();
    if (!g->traced.empty()) {
      s += " (traced for grid";
      for (const auto& gr : g->traced) s += " " + gr.str();
      s += ")";
    }
  }
  return strfmt("vision: %d blocks, hidden %d, %d DeepStack levels; %s", cfg_.depth, cfg_.hidden,
                deepstack_levels(), s.c_str());
}

const VisionModel::Graph& VisionModel::pick(const std::vector<Grid3>& grids) const {
  for (const auto& g : graphs_)
    if (g->traced.empty() || g->traced == grids) return *g;
  std::string want, have;
  for (const auto& gr : grids) want += (want.empty() ? "" : " ") + gr.str();
  for (const auto& g : graphs_) {
    have += (have.empty() ? "" : ", ") + std::filesystem::path(g->path).filename().string() + " for";
    for (const auto& gr : g->traced) have += " " + gr.str();
  }
  throw Error(strfmt("this image needs vision grid %s, but the vision graphs were traced for fixed grids (%s); "
                     "convert the model with qvl-convert for any image size",
                     want.c_str(), have.c_str()));
}

namespace {

// Scratch of one encode: x [N,H] residual, a [N,H], qkv [N,3H], att [N,H],
// mlp [N,I] (also merger hidden [N/4,4H]), cos/sin [N,Dv/2].
struct VisionScratch {
  Buffer<float> x, a, qkv, att, mlp, cos, sin;
};

// x += proj(attn(rope(q), rope(k), v)) with q|k|v = LN1(x)·Wqkvᵀ + b.
void vision_attention(const Block& B, const VisionConfig& c, int layer, const VisionGridInputs& in,
                      VisionScratch& s) {
  const int64_t N = in.N, H = c.hidden;
  const int heads = c.heads, Dv = c.hidden / c.heads;
  QVL_ZONE("vision.block.attn", layer, lin_flops(N, B.qkv) + lin_flops(N, B.proj) + 4.0 * N * N * H,
           lin_bytes(N, B.qkv) + lin_bytes(N, B.proj));
  layer_norm(s.x.data(), B.n1w, B.n1b, s.a.data(), N, H, c.eps);
  linear(s.a.data(), N, B.qkv, s.qkv.data());
  rope_apply(s.qkv.data(), N, heads, Dv, 3 * H, s.cos.data(), s.sin.data());
  rope_apply(s.qkv.data() + H, N, heads, Dv, 3 * H, s.cos.data(), s.sin.data());
  attention_segments(s.qkv.data(), s.qkv.data() + H, s.qkv.data() + 2 * H, 3 * H, N, heads, Dv,
                     in.cu_seqlens.data(), (int)in.cu_seqlens.size() - 1, 1.0f / std::sqrt((float)Dv),
                     s.att.data());
  linear(s.att.data(), N, B.proj, s.a.data());
  add_inplace(s.x.data(), s.a.data(), N * H);
}

// x += fc2(act(fc1(LN2(x)))) with act = GELU (tanh approximation for Qwen3-VL).
void vision_mlp(const Block& B, const VisionConfig& c, int layer, int64_t N, VisionScratch& s) {
  const int64_t H = c.hidden, I = c.intermediate;
  QVL_ZONE("vision.block.mlp", layer, lin_flops(N, B.fc1) + lin_flops(N, B.fc2),
           lin_bytes(N, B.fc1) + lin_bytes(N, B.fc2));
  layer_norm(s.x.data(), B.n2w, B.n2b, s.a.data(), N, H, c.eps);
  linear(s.a.data(), N, B.fc1, s.mlp.data());
  if (c.hidden_act == "gelu") gelu_erf(s.mlp.data(), N * I);
  else gelu_tanh(s.mlp.data(), N * I);
  linear(s.mlp.data(), N, B.fc2, s.a.data());
  add_inplace(s.x.data(), s.a.data(), N * H);
}

// Patch merger over groups of `group` consecutive patches: LayerNorm before the
// grouping (dim H, final merger) or after it (dim group·H, DeepStack), then
// fc1 → exact GELU → fc2. out [N/group, out_hidden].
void patch_merger(const Merger& m, const VisionConfig& c, int64_t N, int group, bool norm_after, VisionScratch& s,
                  float* out) {
  const int64_t H = c.hidden, M = N / group, W = group * H;
  if (norm_after) layer_norm(s.x.data(), m.nw, m.nb, s.a.data(), M, W, c.eps);
  else layer_norm(s.x.data(), m.nw, m.nb, s.a.data(), N, H, c.eps);
  linear(s.a.data(), M, m.fc1, s.mlp.data());
  gelu_erf(s.mlp.data(), M * m.fc1.N);
  linear(s.mlp.data(), M, m.fc2, out);
}

}  // namespace

void VisionModel::encode(const float* pixels, const std::vector<Grid3>& grids, std::vector<float>* embeds,
                         std::vector<std::vector<float>>* deepstack, TensorObserver* obs) {
  QVL_CHECK(!grids.empty(), "vision: no images to encode");
  const Graph& g = pick(grids);
  const VisionConfig& c = cfg_;
  const int group = c.merge * c.merge;
  VisionGridInputs in = make_vision_inputs(grids, grid_side_, c.merge);
  const int64_t N = in.N, H = c.hidden, M = N / group, O = c.out_hidden, Dv = c.hidden / c.heads;
  VisionScratch s;
  s.x.resize(N * H);
  s.a.resize(N * H);
  s.qkv.resize(3 * N * H);
  s.att.resize(N * H);
  s.mlp.resize(std::max<int64_t>(N * c.intermediate, M * group * H));
  s.cos.resize(N * Dv / 2);
  s.sin.resize(N * Dv / 2);
  {
    QVL_ZONE("vision.patch_embed", -1, lin_flops(N, g.patch), lin_bytes(N, g.patch));
    linear(pixels, N, g.patch, s.x.data());
    notify(obs, "vision.patch_embed", s.x.data(), {N, H});
    for (int c = 0; c < 4; ++c) {  // gather one corner's table rows, blend into att
      embedding_gather(g.pos, in.pos_idx.data() + c * N, N, s.a.data());
      blend_pos_corner(s.a.data(), in.pos_weight.data() + c * N, N, H, c == 0, s.att.data());
    }
    notify(obs, "vision.pos_embeds", s.att.data(), {N, H});
    add_inplace(s.x.data(), s.att.data(), N * H);
    notify(obs, "vision.patch_embed_pos", s.x.data(), {N, H});
    vision_rope_tables(in.rows.data(), in.cols.data(), N, (int)Dv, s.cos.data(), s.sin.data());
  }
  const int levels = (int)g.deepstack.size();
  if (deepstack) deepstack->assign(levels, std::vector<float>());
  for (int i = 0; i < c.depth; ++i) {
    vision_attention(g.blocks[i], c, i, in, s);
    vision_mlp(g.blocks[i], c, i, N, s);
    notify(obs, strfmt("vision.block.%d", i), s.x.data(), {N, H});
    for (int k = 0; k < levels; ++k) {
      if (c.deepstack_indexes[k] != i) continue;
      QVL_ZONE("vision.deepstack", i, lin_flops(M, g.deepstack[k].fc1) + lin_flops(M, g.deepstack[k].fc2),
               lin_bytes(M, g.deepstack[k].fc1) + lin_bytes(M, g.deepstack[k].fc2));
      std::vector<float> f((size_t)(M * O));
      patch_merger(g.deepstack[k], c, N, group, true, s, f.data());
      notify(obs, strfmt("vision.deepstack.%d", k), f.data(), {M, O});
      if (deepstack) (*deepstack)[k] = std::move(f);
    }
  }
  QVL_ZONE("vision.merger", -1, lin_flops(M, g.merger.fc1) + lin_flops(M, g.merger.fc2),
           lin_bytes(M, g.merger.fc1) + lin_bytes(M, g.merger.fc2));
  embeds->resize((size_t)(M * O));
  patch_merger(g.merger, c, N, group, false, s, embeds->data());
  notify(obs, "vision.merger", embeds->data(), {M, O});
}

}  // namespace qvl
