// Model configuration from the JSON files beside a model (nlohmann::json).
// config.json comes in two layouts:
//   Qwen3-VL   : {"model_type": "qwen3_vl", "text_config": {...}, "vision_config": {...}}
//   Qwen2.5-VL : {"model_type": "qwen2_5_vl", <text keys at top level>,
//                 "rope_scaling": {"mrope_section": [...]}, "vision_config": {...}}
// Required keys fail with "<file>: missing key 'text_config.hidden_size'";
// a key of the wrong JSON type fails the same way. Optional keys that are
// absent (or null) keep the documented defaults.
#include "loader/config.h"

#include <filesystem>
#include <type_traits>
#include <fstream>
#include <nlohmann/json.hpp>

#include "kernels/base.h"

namespace qvl {

namespace {

using nlohmann::json;

// One JSON object plus where it came from, for messages: file + key prefix.
struct Obj {
  const json* j;
  std::string file, prefix;  // prefix "text_config." or ""

  std::string key(const std::string& k) const { return prefix + k; }
  bool has(const std::string& k) const {
    auto it = j->find(k);
    return it != j->end() && !it->is_null();
  }
  const json& at(const std::string& k) const {
    if (!has(k)) throw Error(file + ": missing key '" + key(k) + "'");
    return (*j)[k];
  }
  [[noreturn]] void bad(const std::string& k, const char* what) const {
    throw Error(file + ": key '" + key(k) + "' must be " + what);
  }
  int64_t i64(const std::string& k) const {
    const json& v = at(k);
    if (v.is_number_integer()) return v.get<int64_t>();
    if (v.is_number_float() && v.get<double>() == (double)(int64_t)v.get<double>())
      return (int64_t)v.get<double>();
    bad(k, "an integer");
  }
  int i32(const std::string& k) const { return (int)i64(k); }
  double num(const std::string& k) const {
    const json& v = at(k);
    if (!v.is_number()) bad(k, "a number");
    return v.get<double>();
  }
  bool boolean(const std::string& k) const {
    const json& v = at(k);
    if (!v.is_boolean()) bad(k, "true or false");
    return v.get<bool>();
  }
  std::string str(const std::string& k) const {
    const json& v = at(k);
    if (!v.is_string()) bad(k, "a string");
    return v.get<std::string>();
  }
  // An int or a list of ints (eos_token_id).
  std::vector<int64_t> ids(const std::string& k) const {
    const json& v = at(k);
    std::vector<int64_t> out;
    if (v.is_number_integer()) return {v.get<int64_t>()};
    if (!v.is_array()) bad(k, "an integer or a list of integers");
    for (const auto& x : v) {
      if (!x.is_number_integer()) bad(k, "an integer or a list of integers");
      out.push_back(x.get<int64_t>());
    }
    return out;
  }
  std::vector<int> ints(const std::string& k) const {
    const json& v = at(k);
    if (!v.is_array()) bad(k, "a list of integers");
    std::vector<int> out;
    for (const auto& x : v) {
      if (!x.is_number_integer()) bad(k, "a list of integers");
      out.push_back(x.get<int>());
    }
    return out;
  }
  std::vector<double> nums(const std::string& k) const {
    const json& v = at(k);
    if (!v.is_array()) bad(k, "a list of numbers");
    std::vector<double> out;
    for (const auto& x : v) {
      if (!x.is_number()) bad(k, "a list of numbers");
      out.push_back(x.get<double>());
    }
    return out;
  }
  Obj sub(const std::string& k) const {
    const json& v = at(k);
    if (!v.is_object()) bad(k, "an object");
    return Obj{&v, file, prefix + k + "."};
  }
  // Optional variants: keep *out when absent.
  template <typename T>
  void opt(const std::string& k, T* out) const {
    if (!has(k)) return;
    if constexpr (std::is_same_v<T, bool>) *out = boolean(k);
    else if constexpr (std::is_same_v<T, std::string>) *out = str(k);
    else if constexpr (std::is_integral_v<T>) *out = (T)i64(k);
    else *out = (T)num(k);
  }
};

bool file_exists(const std::string& path) { return std::filesystem::is_regular_file(path); }

// Parses a whole JSON file; errors name the file.
json load_json(const std::string& path) {
  std::ifstream f(path);
  if (!f.good()) throw Error(path + ": no such file");
  try {
    json j = json::parse(f);
    if (!j.is_object()) throw Error(path + ": not a JSON object");
    return j;
  } catch (const json::exception& e) {
    std::string what = e.what();
    for (char& c : what)
      if (c == '\n') c = ' ';
    throw Error(path + ": invalid JSON (" + what + ")");
  }
}

void read_text(const Obj& root, const Obj& t, const std::string& model_type, TextConfig* c) {
  c->hidden = t.i32("hidden_size");
  c->layers = t.i32("num_hidden_layers");
  c->heads = t.i32("num_attention_heads");
  c->kv_heads = c->heads;
  t.opt("num_key_value_heads", &c->kv_heads);
  c->intermediate = t.i32("intermediate_size");
  c->vocab = t.i64("vocab_size");
  t.opt("rms_norm_eps", &c->rms_eps);
  t.opt("max_position_embeddings", &c->max_position_embeddings);
  QVL_CHECK(c->hidden > 0 && c->layers > 0 && c->heads > 0 && c->kv_heads > 0 && c->heads % c->kv_heads == 0,
            "%s: text config has invalid sizes (hidden %d, layers %d, heads %d, kv_heads %d)",
            t.file.c_str(), c->hidden, c->layers, c->heads, c->kv_heads);
  c->head_dim = c->hidden / c->heads;
  t.opt("head_dim", &c->head_dim);
  // tie_word_embeddings may sit at the top level, in text_config, or both.
  root.opt("tie_word_embeddings", &c->tie_word_embeddings);
  t.opt("tie_word_embeddings", &c->tie_word_embeddings);

  const bool qwen2 = model_type.rfind("qwen2", 0) == 0;  // qwen2_vl, qwen2_5_vl
  // Rope parameters: `rope_scaling` (transformers 4.x) or `rope_parameters`
  // (5.x, which also moves rope_theta inside), in the text config or at top level.
  const char* rk = t.has("rope_scaling") || root.has("rope_scaling") ? "rope_scaling"
                   : t.has("rope_parameters") || root.has("rope_parameters") ? "rope_parameters"
                                                                             : "rope_scaling";
  Obj rs = t.has(rk) ? t.sub(rk) : root.has(rk) ? root.sub(rk) : t.sub(rk);
  c->rope_theta = t.has("rope_theta") || !rs.has("rope_theta") ? t.num("rope_theta") : rs.num("rope_theta");
  c->mrope_section = rs.ints("mrope_section");
  c->mrope_interleaved = !qwen2;
  rs.opt("mrope_interleaved", &c->mrope_interleaved);
  c->qk_norm = !qwen2;
  c->attention_bias = qwen2;  // Qwen2.x: q/k/v biases always present
  if (!qwen2) t.opt("attention_bias", &c->attention_bias);
}

void read_vision(const Obj& v, VisionConfig* c) {
  c->present = true;
  c->depth = v.i32("depth");
  c->hidden = v.i32("hidden_size");
  c->heads = v.i32("num_heads");
  c->intermediate = v.i32("intermediate_size");
  c->out_hidden = v.i32("out_hidden_size");
  v.opt("patch_size", &c->patch);
  v.opt("temporal_patch_size", &c->temporal_patch);
  v.opt("spatial_merge_size", &c->merge);
  v.opt("in_chans", &c->in_channels);
  v.opt("in_channels", &c->in_channels);
  v.opt("num_position_embeddings", &c->num_position_embeddings);
  if (v.has("deepstack_visual_indexes")) c->deepstack_indexes = v.ints("deepstack_visual_indexes");
  v.opt("hidden_act", &c->hidden_act);
  v.opt("window_size", &c->window_size);
  if (v.has("fullatt_block_indexes")) c->fullatt_block_indexes = v.ints("fullatt_block_indexes");
  v.opt("tokens_per_second", &c->tokens_per_second);
  QVL_CHECK(c->depth > 0 && c->hidden > 0 && c->heads > 0 && c->hidden % c->heads == 0,
            "%s: vision config has invalid sizes (depth %d, hidden %d, heads %d)", v.file.c_str(),
            c->depth, c->hidden, c->heads);
}

}  // namespace

ModelConfig read_model_config(const std::string& dir) {
  const std::string path = dir + "/config.json";
  const json j = load_json(path);
  Obj root{&j, path, ""};
  ModelConfig c;
  c.model_type = root.str("model_type");
  if (root.has("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
      j["architectures"][0].is_string())
    c.architecture = j["architectures"][0].get<std::string>();
  const Obj text = root.has("text_config") ? root.sub("text_config") : root;
  read_text(root, text, c.model_type, &c.text);
  if (root.has("vision_config")) read_vision(root.sub("vision_config"), &c.vision);
  root.opt("image_token_id", &c.image_token_id);
  root.opt("video_token_id", &c.video_token_id);
  root.opt("vision_start_token_id", &c.vision_start_token_id);
  root.opt("vision_end_token_id", &c.vision_end_token_id);

  GenerationConfig g;
  if (read_generation_config(dir, &g) && !g.eos_token_ids.empty()) c.eos_token_ids = g.eos_token_ids;
  else if (text.has("eos_token_id")) c.eos_token_ids = text.ids("eos_token_id");
  else if (root.has("eos_token_id")) c.eos_token_ids = root.ids("eos_token_id");
  return c;
}

bool read_preprocessor_config(const std::string& dir, PreprocessorConfig* out) {
  const std::string path = dir + "/preprocessor_config.json";
  if (!file_exists(path)) return false;
  const json j = load_json(path);
  Obj p{&j, path, ""};
  if (p.has("size")) {
    Obj s = p.sub("size");
    s.opt("shortest_edge", &out->min_pixels);
    s.opt("longest_edge", &out->max_pixels);
  }
  p.opt("min_pixels", &out->min_pixels);  // explicit keys override `size` (as HF does)
  p.opt("max_pixels", &out->max_pixels);
  p.opt("patch_size", &out->patch);
  p.opt("merge_size", &out->merge);
  p.opt("temporal_patch_size", &out->temporal_patch);
  p.opt("rescale_factor", &out->rescale);
  for (const char* k : {"image_mean", "image_std"}) {
    if (!p.has(k)) continue;
    std::vector<double> v = p.nums(k);
    if (v.size() != 3) p.bad(k, "a list of 3 numbers");
    float* dst = std::string(k) == "image_mean" ? out->mean : out->std;
    for (int i = 0; i < 3; ++i) dst[i] = (float)v[i];
  }
  QVL_CHECK(out->min_pixels > 0 && out->max_pixels >= out->min_pixels && out->patch > 0 && out->merge > 0 &&
                out->temporal_patch > 0,
            "%s: invalid values (min_pixels %lld, max_pixels %lld, patch_size %d, merge_size %d)",
            path.c_str(), (long long)out->min_pixels, (long long)out->max_pixels, out->patch, out->merge);
  for (int i = 0; i < 3; ++i)
    QVL_CHECK(out->std[i] != 0.f, "%s: image_std[%d] is zero", path.c_str(), i);
  return true;
}

bool read_generation_config(const std::string& dir, GenerationConfig* out) {
  const std::string path = dir + "/generation_config.json";
  if (!file_exists(path)) return false;
  const json j = load_json(path);
  Obj g{&j, path, ""};
  if (g.has("eos_token_id")) out->eos_token_ids = g.ids("eos_token_id");
  g.opt("do_sample", &out->do_sample);
  g.opt("temperature", &out->temperature);
  g.opt("top_k", &out->top_k);
  g.opt("top_p", &out->top_p);
  g.opt("min_p", &out->min_p);
  g.opt("repetition_penalty", &out->repetition_penalty);
  g.opt("presence_penalty", &out->presence_penalty);
  return true;
}

bool read_genai_config(const std::string& dir, GenaiConfig* out) {
  const std::string path = dir + "/genai_config.json";
  if (!file_exists(path)) return false;
  const json j = load_json(path);
  Obj root{&j, path, ""};
  if (!root.has("model")) return true;
  Obj m = root.sub("model");
  m.opt("type", &out->model_type);
  m.opt("context_length", &out->context_length);
  for (auto [key, dst] : {std::pair{"decoder", &out->decoder_filename},
                          std::pair{"vision", &out->vision_filename},
                          std::pair{"embedding", &out->embedding_filename}})
    if (m.has(key) && m.at(key).is_object()) m.sub(key).opt("filename", dst);
  return true;
}

}  // namespace qvl
