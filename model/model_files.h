// Finds the files of a model folder (`qvl -m DIR`): config.json and the ONNX
// graphs of the text decoder, the token embedding and the vision encoder.
// Accepted layouts (see ARCHITECTURE.md / MODEL.md):
//   qvl-convert / onnxruntime-genai:  text.onnx | model.onnx, embedding.onnx, vision.onnx
//   transformers.js / optimum:        decoder_model_merged*.onnx, embed_tokens*.onnx,
//                                     vision_encoder*.onnx (also under DIR/onnx/)
//   torch.onnx.export test graphs:    decoder_with_past.onnx, vision_*.onnx (several
//                                     single-grid traces), config.json in DIR or its parent
#pragma once
#include <string>
#include <vector>

namespace qvl {

struct ModelFiles {
  std::string dir;         // the folder given
  std::string config_dir;  // folder holding config.json (dir or its parent)
  std::string text;        // text decoder graph (required)
  std::string embedding;   // token embedding graph; "" = none (tied lm_head is used)
  std::vector<std::string> vision;  // vision graphs; empty = text-only model
};

// Throws qvl::Error naming the folder when config.json or a decoder is missing,
// or when several candidates make the choice ambiguous.
ModelFiles find_model_files(const std::string& dir);

}  // namespace qvl
