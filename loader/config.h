// Model configuration read from the JSON files beside a model: Hugging Face
// config.json / preprocessor_config.json / generation_config.json and
// onnxruntime-genai's genai_config.json. Required keys fail loudly.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace qvl {

struct TextConfig {
  int hidden = 0, layers = 0, heads = 0, kv_heads = 0, head_dim = 0, intermediate = 0;
  int64_t vocab = 0;
  double rope_theta = 0;
  float rms_eps = 1e-6f;
  std::vector<int> mrope_section;  // e.g. {24, 20, 20}
  bool mrope_interleaved = true;   // Qwen3-VL: true; Qwen2.5-VL: false
  bool tie_word_embeddings = false;
  bool attention_bias = false;     // Qwen2.5-VL q/k/v biases
  bool qk_norm = true;             // Qwen3: per-head q/k RMSNorm
  int64_t max_position_embeddings = 0;
};

struct VisionConfig {
  bool present = false;
  int depth = 0, hidden = 0, heads = 0, intermediate = 0;
  int patch = 16, temporal_patch = 2, merge = 2, in_channels = 3;
  int out_hidden = 0;
  int num_position_embeddings = 0;  // 2304 = 48²
  std::vector<int> deepstack_indexes;
  std::string hidden_act;           // "gelu_pytorch_tanh"
  float eps = 1e-6f;
  // Qwen2.5-VL only: window attention except at fullatt_block_indexes.
  int window_size = 0;
  std::vector<int> fullatt_block_indexes;
  int tokens_per_second = 0;
};

struct ModelConfig {
  std::string model_type;  // "qwen3_vl" | "qwen2_5_vl"
  std::string architecture;
  TextConfig text;
  VisionConfig vision;
  int64_t image_token_id = 151655, video_token_id = 151656;
  int64_t vision_start_token_id = 151652, vision_end_token_id = 151653;
  std::vector<int64_t> eos_token_ids;  // from text_config / generation_config
};

struct PreprocessorConfig {
  int64_t min_pixels = 65536, max_pixels = 16777216;
  int patch = 16, merge = 2, temporal_patch = 2;
  float mean[3] = {0.5f, 0.5f, 0.5f};
  float std[3] = {0.5f, 0.5f, 0.5f};
  float rescale = 1.0f / 255.0f;
};

struct GenerationConfig {
  std::vector<int64_t> eos_token_ids;
  bool do_sample = false;
  float temperature = 1.0f, top_p = 1.0f, min_p = 0.0f;
  int top_k = 0;
  float repetition_penalty = 1.0f, presence_penalty = 0.0f;
};

// onnxruntime-genai's genai_config.json (informational: which file is which).
struct GenaiConfig {
  std::string model_type;          // model.type
  int64_t context_length = 0;      // model.context_length
  std::string decoder_filename;    // model.decoder.filename
  std::string vision_filename;     // model.vision.filename
  std::string embedding_filename;  // model.embedding.filename
};

// Reads <dir>/config.json (required). Accepts the nested Qwen3-VL layout
// (text_config / vision_config) and the flat Qwen2.5-VL layout (text keys at
// top level, rope_scaling.mrope_section). eos ids come from
// generation_config.json when present, else from the text config.
ModelConfig read_model_config(const std::string& dir);
// Reads <dir>/preprocessor_config.json; falls back to the Qwen3-VL released
// values only when the file is absent (returns false then).
bool read_preprocessor_config(const std::string& dir, PreprocessorConfig* out);
// Reads <dir>/generation_config.json if present (returns false otherwise).
bool read_generation_config(const std::string& dir, GenerationConfig* out);
// Reads <dir>/genai_config.json if present (returns false otherwise).
bool read_genai_config(const std::string& dir, GenaiConfig* out);

}  // namespace qvl
