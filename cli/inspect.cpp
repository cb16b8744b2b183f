// qvl inspect PATH [--json] — what an .onnx file (or every *.onnx in a model
// folder) holds: producer, IR and opsets, graph inputs/outputs, an op-type
// histogram, every initializer with dtype/shape/bytes and where its bytes live
// (inline or data file + offset), totals; for a folder also which config files
// are present and the key config values.
//
// --json prints one object: {"path", "files": [ per-file objects ], and for a
// folder "config_files" and "config"}; per file: {"path", "producer",
// "ir_version", "opsets", "inputs", "outputs", "nodes", "ops", "initializers",
// "constants", "totals"}.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/flags.h"
#include "kernels/base.h"
#include "loader/config.h"
#include "loader/onnx_file.h"

namespace qvl::cli {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ordered_json = nlohmann::ordered_json;

const char* kConfigFiles[] = {"config.json",          "generation_config.json", "preprocessor_config.json",
                              "genai_config.json",    "tokenizer.json",         "tokenizer_config.json",
                              "chat_template.json"};

std::string human_bytes(size_t n) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  double v = (double)n;
  int u = 0;
  while (v >= 1000.0 && u < 4) {
    v /= 1000.0;
    ++u;
  }
  return u == 0 ? strfmt("%zu B", n) : strfmt("%.1f %s", v, units[u]);
}

// A float as the shortest double that prints back to it (0.7f → 0.7, not 0.699999988).
double shortest(float x) {
  for (int prec = 6; prec < 9; ++prec) {
    double d = std::strtod(strfmt("%.*g", prec, x).c_str(), nullptr);
    if ((float)d == x) return d;
  }
  return x;
}

ordered_json value_infos(const std::vector<ValueInfo>& vs) {
  ordered_json a = ordered_json::array();
  for (const auto& v : vs)
    a.push_back({{"name", v.name}, {"dtype", dtype_name(v.dtype)}, {"shape", v.dims}});
  return a;
}

ordered_json tensor_json(const TensorView& t) {
  ordered_json o = {{"name", t.name}, {"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"bytes", t.nbytes}};
  if (t.location.empty()) {
    o["location"] = "inline";
  } else {
    o["location"] = t.location;
    o["offset"] = t.offset;
  }
  return o;
}

// Everything `inspect` reports about one .onnx file.
ordered_json describe_file(const std::string& path) {
  auto f = OnnxFile::open(path);
  ordered_json o;
  o["path"] = path;
  o["producer"] = f->producer();
  o["ir_version"] = f->ir_version();
  ordered_json opsets = ordered_json::object();
  for (const auto& [domain, v] : f->opsets()) opsets[domain.empty() ? "ai.onnx" : domain] = v;
  o["opsets"] = opsets;
  o["inputs"] = value_infos(f->inputs());
  o["outputs"] = value_infos(f->outputs());
  o["nodes"] = f->nodes().size();

  std::map<std::string, int64_t> hist;
  for (const auto& n : f->nodes()) {
    bool std_domain = n.domain.empty() || n.domain == "ai.onnx";
    hist[std_domain ? n.op_type : n.domain + "." + n.op_type]++;
  }
  std::vector<std::pair<std::string, int64_t>> ops(hist.begin(), hist.end());
  std::stable_sort(ops.begin(), ops.end(), [](auto& a, auto& b) { return a.second > b.second; });
  ordered_json ops_json = ordered_json::object();
  for (const auto& [op, n] : ops) ops_json[op] = n;
  o["ops"] = ops_json;

  ordered_json inits = ordered_json::array(), consts = ordered_json::array();
  size_t n_init = 0, n_const = 0, const_bytes = 0;
  for (const auto& t : f->tensors()) {
    if (t.from_constant_node) {
      consts.push_back(tensor_json(t));
      ++n_const;
      const_bytes += t.nbytes;
    } else {
      inits.push_back(tensor_json(t));
      ++n_init;
    }
  }
  o["initializers"] = inits;
  o["constants"] = consts;
  o["totals"] = {{"tensors", f->tensors().size()}, {"initializers", n_init},
                 {"constants", n_const},           {"constant_bytes", const_bytes},
                 {"inline_bytes", f->inline_bytes()}, {"external_bytes", f->external_bytes()}};
  return o;
}

// Key values of the folder's config files (those that are present).
ordered_json describe_config(const std::string& dir) {
  ordered_json o = ordered_json::object();
  if (fs::exists(dir + "/config.json")) {
    ModelConfig c = read_model_config(dir);
    const TextConfig& t = c.text;
    o["model_type"] = c.model_type;
    o["architecture"] = c.architecture;
    o["text"] = {{"hidden", t.hidden}, {"layers", t.layers}, {"heads", t.heads}, {"kv_heads", t.kv_heads},
                 {"head_dim", t.head_dim}, {"intermediate", t.intermediate}, {"vocab", t.vocab},
                 {"rope_theta", t.rope_theta}, {"rms_eps", shortest(t.rms_eps)}, {"mrope_section", t.mrope_section},
                 {"mrope_interleaved", t.mrope_interleaved}, {"tie_word_embeddings", t.tie_word_embeddings},
                 {"qk_norm", t.qk_norm}, {"attention_bias", t.attention_bias}};
    if (c.vision.present) {
      const VisionConfig& v = c.vision;
      o["vision"] = {{"depth", v.depth}, {"hidden", v.hidden}, {"heads", v.heads},
                     {"intermediate", v.intermediate}, {"patch", v.patch}, {"temporal_patch", v.temporal_patch},
                     {"merge", v.merge}, {"out_hidden", v.out_hidden},
                     {"num_position_embeddings", v.num_position_embeddings},
                     {"deepstack_indexes", v.deepstack_indexes}, {"hidden_act", v.hidden_act}};
    }
    o["eos_token_ids"] = c.eos_token_ids;
  }
  PreprocessorConfig p;
  if (read_preprocessor_config(dir, &p))
    o["preprocessor"] = {{"min_pixels", p.min_pixels}, {"max_pixels", p.max_pixels}, {"patch", p.patch},
                         {"merge", p.merge}, {"temporal_patch", p.temporal_patch},
                         {"mean", {shortest(p.mean[0]), shortest(p.mean[1]), shortest(p.mean[2])}}, {"std", {shortest(p.std[0]), shortest(p.std[1]), shortest(p.std[2])}},
                         {"rescale", shortest(p.rescale)}};
  GenerationConfig g;
  if (read_generation_config(dir, &g))
    o["generation"] = {{"eos_token_ids", g.eos_token_ids}, {"do_sample", g.do_sample},
                       {"temperature", shortest(g.temperature)}, {"top_k", g.top_k}, {"top_p", shortest(g.top_p)},
                       {"min_p", shortest(g.min_p)}, {"repetition_penalty", shortest(g.repetition_penalty)},
                       {"presence_penalty", shortest(g.presence_penalty)}};
  GenaiConfig ga;
  if (read_genai_config(dir, &ga))
    o["genai"] = {{"type", ga.model_type}, {"context_length", ga.context_length},
                  {"decoder", ga.decoder_filename}, {"vision", ga.vision_filename},
                  {"embedding", ga.embedding_filename}};
  return o;
}

std::string shape_of(const ordered_json& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i) s += ", ";
    s += dims[i].is_string() ? dims[i].get<std::string>() : std::to_string(dims[i].get<int64_t>());
  }
  return s + "]";
}

// Prints a JSON value compactly on one line (lists, small objects).
std::string compact(const ordered_json& v) { return v.dump(); }

void print_file(const ordered_json& o) {
  std::printf("== %s\n", o["path"].get<std::string>().c_str());
  std::string opsets;
  for (auto& [d, v] : o["opsets"].items()) opsets += strfmt("%s%s %lld", opsets.empty() ? "" : ", ", d.c_str(), (long long)v.get<int64_t>());
  std::printf("producer: %s   IR: %lld   opsets: %s\n", o["producer"].get<std::string>().c_str(),
              (long long)o["ir_version"].get<int64_t>(), opsets.c_str());
  for (const char* io : {"inputs", "outputs"}) {
    std::printf("%s (%zu):\n", io, o[io].size());
    for (const auto& v : o[io])
      std::printf("  %-36s %-9s %s\n", v["name"].get<std::string>().c_str(), v["dtype"].get<std::string>().c_str(),
                  shape_of(v["shape"]).c_str());
  }
  std::printf("ops (%zu nodes):\n", o["nodes"].get<size_t>());
  for (auto& [op, n] : o["ops"].items()) std::printf("  %-36s %lld\n", op.c_str(), (long long)n.get<int64_t>());
  std::printf("initializers (%zu):\n", o["initializers"].size());
  for (const auto& t : o["initializers"]) {
    std::string loc = t["location"].get<std::string>();
    if (t.contains("offset")) loc += strfmt("+%lld", (long long)t["offset"].get<int64_t>());
    std::printf("  %-52s %-9s %-20s %12zu  %s\n", t["name"].get<std::string>().c_str(),
                t["dtype"].get<std::string>().c_str(), shape_of(t["shape"]).c_str(), t["bytes"].get<size_t>(),
                loc.c_str());
  }
  const auto& tot = o["totals"];
  std::printf("constants: %zu Constant-node tensors, %s (listed with --json)\n", tot["constants"].get<size_t>(),
              human_bytes(tot["constant_bytes"].get<size_t>()).c_str());
  std::printf("totals: %zu tensors, inline %s (%zu bytes), external %s (%zu bytes)\n\n",
              tot["tensors"].get<size_t>(), human_bytes(tot["inline_bytes"].get<size_t>()).c_str(),
              tot["inline_bytes"].get<size_t>(), human_bytes(tot["external_bytes"].get<size_t>()).c_str(),
              tot["external_bytes"].get<size_t>());
}

void print_config(const ordered_json& files, const ordered_json& cfg) {
  std::printf("config files:");
  for (auto& [name, present] : files.items()) std::printf(" %s%s", present.get<bool>() ? "+" : "-", name.c_str());
  std::printf("   (+ present, - absent)\n");
  for (auto& [section, v] : cfg.items()) {
    if (!v.is_object()) {
      std::printf("  %-14s %s\n", section.c_str(), v.is_string() ? v.get<std::string>().c_str() : compact(v).c_str());
      continue;
    }
    std::string line;
    for (auto& [k, x] : v.items()) line += (line.empty() ? "" : " ") + k + "=" + (x.is_string() ? x.get<std::string>() : compact(x));
    std::printf("  %-14s %s\n", section.c_str(), line.c_str());
  }
  std::printf("\n");
}

}  // namespace

int cmd_inspect(int argc, char** argv) {
  bool as_json = false;
  Flags flags("qvl inspect PATH [--json]   (PATH: an .onnx file or a model folder)");
  flags.add("--json", &as_json, "print one JSON object instead of text");
  try {
    if (!flags.parse(argc, argv, /*allow_positional=*/true)) return 0;
    QVL_CHECK(flags.positional().size() == 1, "inspect: expected one PATH (an .onnx file or a model folder), got %zu",
              flags.positional().size());
  } catch (const Error& e) {
    std::fprintf(stderr, "qvl: error: %s\n", e.what());
    return 2;
  }
  const std::string path = flags.positional()[0];
  QVL_CHECK(fs::exists(path), "%s: no such file or folder", path.c_str());

  ordered_json out;
  out["path"] = path;
  std::vector<std::string> onnx_files;
  const bool folder = fs::is_directory(path);
  if (folder) {
    for (const auto& e : fs::directory_iterator(path))
      if (e.is_regular_file() && e.path().extension() == ".onnx") onnx_files.push_back(e.path().string());
    std::sort(onnx_files.begin(), onnx_files.end());
    ordered_json present = ordered_json::object();
    bool any_config = false;
    for (const char* name : kConfigFiles) {
      present[name] = fs::exists(path + "/" + name);
      any_config |= present[name].get<bool>();
    }
    QVL_CHECK(!onnx_files.empty() || any_config, "%s: folder has no .onnx files and no config files", path.c_str());
    out["config_files"] = present;
    out["config"] = describe_config(path);
  } else {
    onnx_files.push_back(path);
  }
  out["files"] = ordered_json::array();
  for (const auto& f : onnx_files) out["files"].push_back(describe_file(f));

  if (as_json) {
    std::printf("%s\n", out.dump(1).c_str());
    return 0;
  }
  if (folder) {
    std::printf("folder: %s (%zu .onnx files)\n", path.c_str(), onnx_files.size());
    print_config(out["config_files"], out["config"]);
  }
  for (const auto& f : out["files"]) print_file(f);
  return 0;
}

}  // namespace qvl::cli
