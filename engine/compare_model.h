// `qvl compare` on a whole model: runs one prompt through qvl with a tensor
// observer recording the named intermediates (vision blocks, merger, DeepStack,
// decoder layers, K/V, final norm, logits) and compares them with a reference:
//   golden — the .npy files of a golden case folder (HF transformers, fp32);
//   ort    — the model folder's vision/embedding/text ONNX graphs run by
//            tools/ort-run on the inputs qvl used, intermediates exposed with
//            --outputs.
#pragma once
#include <string>
#include <vector>

#include "engine/compare.h"

namespace qvl {

struct ModelCompareOptions {
  std::string model_dir;
  std::string against = "ort";  // "ort" or "golden"
  std::string case_dir;         // golden: the case folder
  std::string prompt;           // -p
  std::vector<std::string> images;
  std::string messages_file;    // --messages
  int threads = 0;
  std::string tools;            // tools/ folder override
  std::string keep;             // keep scratch files here ("" = temp, removed)
};

CompareReport compare_model(const ModelCompareOptions& o);

}  // namespace qvl
