// Config reading: the golden Qwen3-VL checkpoint's JSON files (values from
// tests/data/qwen3vl-a/README.md), a Qwen2.5-VL-style flat config written
// here, optional files, and one-line errors for missing/mistyped keys.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <fstream>
#include <nlohmann/json.hpp>

#include "kernels/base.h"
#include "loader/config.h"
#include "test_util.h"

namespace qvl {
namespace {

using nlohmann::json;

void write(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
}

json golden_config() {
  std::ifstream f(test::golden_dir() + "/config.json");
  return json::parse(f);
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(LoaderConfig, GoldenQwen3VL) {
  ModelConfig c = read_model_config(test::golden_dir());
  EXPECT_EQ(c.model_type, "qwen3_vl");
  EXPECT_EQ(c.architecture, "Qwen3VLForConditionalGeneration");
  const TextConfig& t = c.text;
  EXPECT_EQ(t.hidden, 32);
  EXPECT_EQ(t.layers, 4);
  EXPECT_EQ(t.heads, 2);
  EXPECT_EQ(t.kv_heads, 1);
  EXPECT_EQ(t.head_dim, 32);  // explicit in the file (hidden/heads would be 16)
  EXPECT_EQ(t.intermediate, 96);
  EXPECT_EQ(t.vocab, 151936);
  EXPECT_EQ(t.rope_theta, 5e6);
  EXPECT_EQ(t.rms_eps, 1e-6f);
  EXPECT_EQ(t.mrope_section, (std::vector<int>{6, 5, 5}));
  EXPECT_TRUE(t.mrope_interleaved);
  EXPECT_TRUE(t.tie_word_embeddings);
  EXPECT_TRUE(t.qk_norm);
  EXPECT_FALSE(t.attention_bias);
  EXPECT_EQ(t.max_position_embeddings, 262144);
  const VisionConfig& v = c.vision;
  EXPECT_TRUE(v.present);
  EXPECT_EQ(v.depth, 4);
  EXPECT_EQ(v.hidden, 32);
  EXPECT_EQ(v.heads, 2);
  EXPECT_EQ(v.intermediate, 64);
  EXPECT_EQ(v.patch, 16);
  EXPECT_EQ(v.temporal_patch, 2);
  EXPECT_EQ(v.merge, 2);
  EXPECT_EQ(v.in_channels, 3);
  EXPECT_EQ(v.out_hidden, 32);
  EXPECT_EQ(v.num_position_embeddings, 2304);
  EXPECT_EQ(v.deepstack_indexes, (std::vector<int>{0, 2, 3}));
  EXPECT_EQ(v.hidden_act, "gelu_pytorch_tanh");
  EXPECT_EQ(c.image_token_id, 151655);
  EXPECT_EQ(c.video_token_id, 151656);
  EXPECT_EQ(c.vision_start_token_id, 151652);
  EXPECT_EQ(c.vision_end_token_id, 151653);
  // generation_config.json's list wins over text_config.eos_token_id (151645).
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{151645, 151643}));
}

TEST(LoaderConfig, GoldenPreprocessorAndGeneration) {
  PreprocessorConfig p;
  p.min_pixels = p.max_pixels = 1;  // must be overwritten from `size`
  ASSERT_TRUE(read_preprocessor_config(test::golden_dir(), &p));
  EXPECT_EQ(p.min_pixels, 65536);
  EXPECT_EQ(p.max_pixels, 16777216);
  EXPECT_EQ(p.patch, 16);
  EXPECT_EQ(p.merge, 2);
  EXPECT_EQ(p.temporal_patch, 2);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(p.mean[i], 0.5f);
    EXPECT_EQ(p.std[i], 0.5f);
  }
  EXPECT_EQ(p.rescale, 1.0f / 255.0f);

  GenerationConfig g;
  ASSERT_TRUE(read_generation_config(test::golden_dir(), &g));
  EXPECT_EQ(g.eos_token_ids, (std::vector<int64_t>{151645, 151643}));
  EXPECT_TRUE(g.do_sample);
  EXPECT_EQ(g.top_k, 20);
  EXPECT_EQ(g.top_p, 0.8f);
  EXPECT_EQ(g.temperature, 0.7f);
  EXPECT_EQ(g.min_p, 0.0f);                // absent → neutral
  EXPECT_EQ(g.repetition_penalty, 1.0f);
  EXPECT_EQ(g.presence_penalty, 0.0f);
}

// A Qwen2.5-VL-7B style config.json (flat text keys, no head_dim, no
// mrope_interleaved, vision window attention), no generation_config.json.
const char* kQwen25Config = R"({
  "architectures": ["Qwen2_5_VLForConditionalGeneration"],
  "model_type": "qwen2_5_vl",
  "hidden_size": 3584, "intermediate_size": 18944, "num_attention_heads": 28,
  "num_hidden_layers": 28, "num_key_value_heads": 4, "max_position_embeddings": 128000,
  "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "vocab_size": 152064,
  "tie_word_embeddings": false, "eos_token_id": 151645,
  "image_token_id": 151655, "video_token_id": 151656,
  "vision_start_token_id": 151652, "vision_end_token_id": 151653,
  "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
  "vision_config": {"depth": 32, "hidden_act": "silu", "hidden_size": 1280, "intermediate_size": 3420,
    "num_heads": 16, "in_chans": 3, "out_hidden_size": 3584, "patch_size": 14,
    "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 112,
    "fullatt_block_indexes": [7, 15, 23, 31], "tokens_per_second": 2}
})";

TEST(LoaderConfig, Qwen25FlatLayout) {
  std::string dir = test::scratch_dir("config_qwen25");
  write(dir + "/config.json", kQwen25Config);
  write(dir + "/preprocessor_config.json",
        R"({"min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14, "merge_size": 2,
            "temporal_patch_size": 2, "rescale_factor": 0.00392156862745098,
            "image_mean": [0.48145466, 0.4578275, 0.40821073],
            "image_std": [0.26862954, 0.26130258, 0.27577711]})");
  ModelConfig c = read_model_config(dir);
  EXPECT_EQ(c.model_type, "qwen2_5_vl");
  EXPECT_EQ(c.text.hidden, 3584);
  EXPECT_EQ(c.text.layers, 28);
  EXPECT_EQ(c.text.heads, 28);
  EXPECT_EQ(c.text.kv_heads, 4);
  EXPECT_EQ(c.text.head_dim, 128);  // default hidden / heads
  EXPECT_EQ(c.text.intermediate, 18944);
  EXPECT_EQ(c.text.vocab, 152064);
  EXPECT_EQ(c.text.rope_theta, 1e6);
  EXPECT_EQ(c.text.mrope_section, (std::vector<int>{16, 24, 24}));
  EXPECT_FALSE(c.text.mrope_interleaved);
  EXPECT_FALSE(c.text.qk_norm);
  EXPECT_TRUE(c.text.attention_bias);
  EXPECT_FALSE(c.text.tie_word_embeddings);
  EXPECT_EQ(c.vision.depth, 32);
  EXPECT_EQ(c.vision.patch, 14);
  EXPECT_EQ(c.vision.in_channels, 3);
  EXPECT_EQ(c.vision.out_hidden, 3584);
  EXPECT_EQ(c.vision.window_size, 112);
  EXPECT_EQ(c.vision.fullatt_block_indexes, (std::vector<int>{7, 15, 23, 31}));
  EXPECT_TRUE(c.vision.deepstack_indexes.empty());
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{151645}));  // no generation_config.json

  PreprocessorConfig p;
  ASSERT_TRUE(read_preprocessor_config(dir, &p));
  EXPECT_EQ(p.min_pixels, 3136);
  EXPECT_EQ(p.max_pixels, 12845056);
  EXPECT_EQ(p.patch, 14);
  EXPECT_EQ(p.mean[0], 0.48145466f);
  EXPECT_EQ(p.std[2], 0.27577711f);
  EXPECT_EQ(p.rescale, (float)0.00392156862745098);

  GenerationConfig g;
  g.top_k = 7;
  EXPECT_FALSE(read_generation_config(dir, &g));
  EXPECT_EQ(g.top_k, 7);  // untouched
  GenaiConfig gc;
  EXPECT_FALSE(read_genai_config(dir, &gc));
}

TEST(LoaderConfig, ExplicitInterleaveAndGenai) {
  std::string dir = test::scratch_dir("config_explicit");
  json j = json::parse(kQwen25Config);
  j["rope_scaling"]["mrope_interleaved"] = true;  // an explicit key beats the model_type default
  write(dir + "/config.json", j.dump());
  EXPECT_TRUE(read_model_config(dir).text.mrope_interleaved);
  write(dir + "/genai_config.json",
        R"({"model": {"type": "qwen3_vl", "context_length": 4096,
            "decoder": {"filename": "text.onnx"}, "vision": {"filename": "vision.onnx"},
            "embedding": {"filename": "embedding.onnx"}}, "search": {"max_length": 4096}})");
  GenaiConfig gc;
  ASSERT_TRUE(read_genai_config(dir, &gc));
  EXPECT_EQ(gc.model_type, "qwen3_vl");
  EXPECT_EQ(gc.context_length, 4096);
  EXPECT_EQ(gc.decoder_filename, "text.onnx");
  EXPECT_EQ(gc.vision_filename, "vision.onnx");
  EXPECT_EQ(gc.embedding_filename, "embedding.onnx");
}

TEST(LoaderConfig, EosFromTextConfigList) {
  std::string dir = test::scratch_dir("config_eos");
  json j = golden_config();
  j["text_config"]["eos_token_id"] = json::array({7, 8});
  write(dir + "/config.json", j.dump());
  EXPECT_EQ(read_model_config(dir).eos_token_ids, (std::vector<int64_t>{7, 8}));
  PreprocessorConfig p;
  EXPECT_FALSE(read_preprocessor_config(dir, &p));  // absent → released defaults kept
  EXPECT_EQ(p.min_pixels, 65536);
  EXPECT_EQ(p.max_pixels, 16777216);
}

TEST(LoaderConfig, Errors) {
  std::string dir = test::scratch_dir("config_errors");
  const std::string file = dir + "/config.json";
  EXPECT_EQ(error_of([&] { read_model_config(dir); }), file + ": no such file");

  json j = golden_config();
  j["text_config"].erase("hidden_size");
  write(file, j.dump());
  EXPECT_EQ(error_of([&] { read_model_config(dir); }), file + ": missing key 'text_config.hidden_size'");

  j = golden_config();
  j["text_config"]["rope_scaling"].erase("mrope_section");
  write(file, j.dump());
  EXPECT_EQ(error_of([&] { read_model_config(dir); }),
            file + ": missing key 'text_config.rope_scaling.mrope_section'");

  j = golden_config();
  j["vision_config"]["depth"] = "four";
  write(file, j.dump());
  EXPECT_EQ(error_of([&] { read_model_config(dir); }),
            file + ": key 'vision_config.depth' must be an integer");

  j = json::parse(kQwen25Config);
  j.erase("num_hidden_layers");
  write(file, j.dump());
  EXPECT_EQ(error_of([&] { read_model_config(dir); }), file + ": missing key 'num_hidden_layers'");

  write(file, "{\"model_type\": \"qwen3_vl\",\n \"text_config\": {");
  std::string msg = error_of([&] { read_model_config(dir); });
  EXPECT_EQ(msg.rfind(file + ": invalid JSON", 0), 0u) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;

  write(dir + "/generation_config.json", R"({"eos_token_id": "x"})");
  GenerationConfig g;
  EXPECT_EQ(error_of([&] { read_generation_config(dir, &g); }),
            dir + "/generation_config.json: key 'eos_token_id' must be an integer or a list of integers");

  write(dir + "/preprocessor_config.json", R"({"image_mean": [0.5, 0.5]})");
  PreprocessorConfig p;
  EXPECT_EQ(error_of([&] { read_preprocessor_config(dir, &p); }),
            dir + "/preprocessor_config.json: key 'image_mean' must be a list of 3 numbers");
}

}  // namespace
}  // namespace qvl
