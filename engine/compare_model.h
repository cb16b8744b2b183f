// `qvl compare` on a whole model: runs one prompt through qvl with a tensor
// observer recording the named intermediates (vision blocks, merger, DeepStack,
// decoder layers, K/V, final norm, logits) and compares them with a reference:
//   golden — the .npy files of a golden case folder (HF transformers, fp32);
//   ort    — the model folder's vision/embedding/text ONNX graphs run by
//            tools/ort-run on the inputs qvl used (pixel_values, host grid
//            tensors, inputs_embeds, position_ids, attention_mask, DeepStack
//            rows), intermediates exposed with --outputs.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/compare.h"
#include "kernels/dtype.h"
#include "model/observer.h"

namespace qvl {

struct ModelCompareOptions {
  std::string model_dir;
  std::string against = "ort";  // "ort" or "golden"
  std::string case_dir;         // golden: the case folder
  std::string prompt;           // -p
  std::vector<std::string> images;
  std::string messages_file;    // --messages
  int threads = 0;
  int act_bits = 0;  // SessionOptions::act_bits (quantized weights)
  bool vision_bf16 = false;      // SessionOptions::vision_bf16
  DType kv_dtype = DType::F32;   // SessionOptions::kv_dtype
  std::string tools;            // tools/ folder override
  std::string keep;             // keep scratch files here ("" = temp, removed)
  bool file_images = false;     // golden: decode the case's image files instead of
                                // its reference RGB arrays (image_k_rgb.npy)
};

CompareReport compare_model(const ModelCompareOptions& o);

// Keeps a copy of the first occurrence of every named tensor (the prefill).
class RecordingObserver : public TensorObserver {
 public:
  struct Tensor {
    std::vector<float> data;
    std::vector<int64_t> shape;
  };
  void on_tensor(const std::string& name, const float* data, const std::vector<int64_t>& shape) override;
  const Tensor* find(const std::string& name) const;
  const std::map<std::string, Tensor>& tensors() const { return t_; }

 private:
  std::map<std::string, Tensor> t_;
};

// The inputs qvl builds for a request, recomputed with the same engine code:
// expanded prompt ids, image grids, preprocessed pixels, 3-D positions.
struct PromptInputs {
  std::vector<int64_t> ids;  // [S], each <|image_pad|> expanded
  struct Grid {
    int64_t t, h, w;
  };
  std::vector<Grid> grids;
  std::vector<float> pixels;  // [N, row_len]
  int64_t row_len = 0;
  std::vector<int64_t> pos;   // [3, S]
  int64_t image_token_id = 0;
};

// ONNX Runtime's values of the recorded tensors, by qvl name (compare_ort.cpp).
struct OrtTensor {
  std::vector<float> data;
  std::vector<int64_t> shape;
  std::string ref;  // "ort:<graph value>"
};
using OrtTensors = std::map<std::string, OrtTensor>;
OrtTensors run_ort_reference(const ModelCompareOptions& o, const PromptInputs& in, const RecordingObserver& rec,
                             std::vector<TensorDiff>* missing);
std::vector<TensorDiff> compare_with_ort(const ModelCompareOptions& o, const PromptInputs& in,
                                         const RecordingObserver& rec, const Tolerance& tol);

}  // namespace qvl
