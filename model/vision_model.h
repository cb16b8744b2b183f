// Qwen3-VL vision encoder on qvl kernels.
//
//   x = patches [N, C·T·P·P] · W_patchᵀ + b                  (Conv3d as a matmul)
//   x += bilinear(pos_table 48×48 → h×w), merge-block order  (vision_inputs.h)
//   per block:  x += proj(attn_seg(rope2d(q), rope2d(k), v)),  q|k|v = LN1(x)·Wqkvᵀ + b
//               x += fc2(gelu_tanh(fc1(LN2(x))))
//               block ∈ deepstack_visual_indexes → DeepStack merger k:
//                   concat 4 patches → LayerNorm(4H) → fc1 → gelu_erf → fc2
//   merger:     LayerNorm(H) per patch → concat 4 → fc1 → gelu_erf → fc2 → [N/4, out]
// Attention is bidirectional inside one segment (one image / temporal slice).
//
// Grid-independent graphs (qvl-convert vision.onnx) serve every image size.
// torch.onnx.export traces (vision_<case>.onnx) were exported for one grid; each
// is recognised from its folded position constants and used only for that grid.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/base.h"
#include "loader/config.h"
#include "model/model_files.h"
#include "model/observer.h"
#include "model/vision_inputs.h"

namespace qvl {

class VisionModel {
 public:
  // Loads every vision graph of the folder (files.vision non-empty, else Error).
  static std::unique_ptr<VisionModel> load(const ModelFiles& files, const ModelConfig& cfg);
  ~VisionModel();

  int64_t out_hidden() const { return cfg_.out_hidden; }
  int64_t patch_dim() const { return (int64_t)cfg_.in_channels * cfg_.temporal_patch * cfg_.patch * cfg_.patch; }
  // DeepStack levels produced (0 when the graph has no DeepStack mergers).
  int deepstack_levels() const;
  // The grids a traced graph accepts; empty list = a graph that accepts any grid.
  std::vector<std::vector<Grid3>> traced_grids() const;
  std::string describe() const;

  // pixels [N, patch_dim] (all items, merge-block order) → embeds [N/4, out],
  // deepstack[k] [N/4, out] for k < deepstack_levels(). Throws qvl::Error when no
  // loaded graph accepts these grids.
  void encode(const float* pixels, const std::vector<Grid3>& grids, std::vector<float>* embeds,
              std::vector<std::vector<float>>* deepstack, TensorObserver* obs);

 private:
  struct Graph;
  VisionModel() = default;
  const Graph& pick(const std::vector<Grid3>& grids) const;

  VisionConfig cfg_;
  int grid_side_ = 48;
  std::vector<std::unique_ptr<Graph>> graphs_;
};

}  // namespace qvl
