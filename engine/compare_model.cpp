// Whole-model comparison for `qvl compare` (see compare_model.h): runs qvl
// with a recording observer, rebuilds the request's inputs, and compares with
// the golden case files; the ONNX Runtime side lives in compare_ort.cpp.
#include "engine/compare_model.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "engine/chat_template.h"
#include "engine/image.h"
#include "engine/messages.h"
#include "engine/ort_bridge.h"
#include "engine/session.h"
#include "engine/tokenizer.h"
#include "kernels/base.h"
#include "loader/config.h"
#include "loader/npy.h"
#include "model/model_files.h"
#include "model/positions.h"

namespace qvl {

void RecordingObserver::on_tensor(const std::string& name, const float* data, const std::vector<int64_t>& shape) {
  if (t_.count(name)) return;
  int64_t n = 1;
  for (auto d : shape) n *= d;
  t_[name] = Tensor{std::vector<float>(data, data + n), shape};
}

const RecordingObserver::Tensor* RecordingObserver::find(const std::string& name) const {
  auto it = t_.find(name);
  return it == t_.end() ? nullptr : &it->second;
}

namespace {

// The request: -p/--image, --messages, or the golden case's messages.json.
ChatRequest request_of(const ModelCompareOptions& o) {
  bool has_p = !o.prompt.empty(), has_m = !o.messages_file.empty();
  QVL_CHECK(!(has_p && has_m), "give either -p or --messages, not both");
  QVL_CHECK(!(has_m && !o.images.empty()), "--image goes with -p; put images into the --messages file");
  if (has_m) return load_messages(o.messages_file);
  if (!has_p) {
    QVL_CHECK(o.against == "golden", "missing input: give -p TEXT or --messages FILE");
    return load_messages(o.case_dir + "/messages.json");
  }
  ChatRequest req;
  Message user;
  user.role = "user";
  for (const auto& img : o.images) user.parts.push_back(ContentPart{ContentPart::Image, "", img});
  user.parts.push_back(ContentPart{ContentPart::Text, o.prompt, ""});
  req.messages.push_back(user);
  return req;
}

// Golden cases store the reference decoder's RGB (PIL / libjpeg-turbo) as
// image_k_rgb.npy; other JPEG decoders differ by a few LSB (see the golden
// README), which would swamp the model comparison. Each image part with such
// a file is replaced by a lossless PPM of those pixels. Returns the note.
std::string use_reference_decodes(ChatRequest* req, const std::string& case_dir, const std::string& scratch) {
  int n = 0;
  for (auto& m : req->messages)
    for (auto& part : m.parts) {
      if (part.kind != ContentPart::Image) continue;
      std::string file = std::filesystem::path(part.path).stem().string();
      std::string rgb = case_dir + "/" + file + "_rgb.npy";
      if (!std::filesystem::exists(rgb)) continue;
      NpyArray a = npy_load(rgb);
      QVL_CHECK(a.dtype == DType::U8 && a.shape.size() == 3 && a.shape[2] == 3, "%s: expected uint8 [H,W,3]",
                rgb.c_str());
      std::string ppm = scratch + "/" + file + ".ppm";
      std::ofstream f(ppm, std::ios::binary);
      f << "P6\n" << a.shape[1] << " " << a.shape[0] << "\n255\n";
      f.write(reinterpret_cast<const char*>(a.bytes.data()), (std::streamsize)a.bytes.size());
      QVL_CHECK(f.good(), "%s: cannot write", ppm.c_str());
      part.path = ppm;
      ++n;
    }
  return n ? strfmt("%d image(s) from the reference RGB decode (image_k_rgb.npy)", n) : "";
}

// Recomputes what the session feeds the model (same engine functions).
PromptInputs rebuild_inputs(const std::string& model_dir, const ChatRequest& req) {
  ModelFiles files = find_model_files(model_dir);
  ModelConfig cfg = read_model_config(files.config_dir);
  PreprocessorConfig pre;
  read_preprocessor_config(files.config_dir, &pre);
  Tokenizer tok = Tokenizer::from_model_dir(model_dir);
  std::vector<int64_t> ids = tok.encode(render_chat(req.messages, true, req.options));
  PromptInputs in;
  in.image_token_id = cfg.image_token_id;
  std::vector<PreprocessedImage> images;
  for (const ContentPart* part : rendered_media(req.messages)) {
    QVL_CHECK(part->kind == ContentPart::Image, "compare: video input is not supported (%s)", part->path.c_str());
    images.push_back(preprocess_image(decode_image(part->path), pre));
  }
  size_t img = 0;
  std::vector<Grid3> grids;
  for (int64_t id : ids) {
    if (id != cfg.image_token_id) {
      in.ids.push_back(id);
      continue;
    }
    QVL_CHECK(img < images.size(), "compare: more image placeholders than images");
    const PreprocessedImage& im = images[img++];
    in.ids.insert(in.ids.end(), (size_t)im.num_tokens(pre.merge), id);
    in.grids.push_back({im.grid.t, im.grid.h, im.grid.w});
    grids.push_back(Grid3{im.grid.t, im.grid.h, im.grid.w});
    in.pixels.insert(in.pixels.end(), im.pixels.begin(), im.pixels.end());
    in.row_len = im.row_len;
  }
  RopeIndex ri = rope_index(in.ids.data(), (int64_t)in.ids.size(), grids, {}, pre.merge, cfg.image_token_id,
                            cfg.video_token_id, cfg.vision_start_token_id, 0);
  in.pos = ri.pos;
  return in;
}

// Last row of a [..., V] tensor as [1, V].
RecordingObserver::Tensor last_row(const float* data, const std::vector<int64_t>& shape) {
  int64_t V = shape.back(), n = 1;
  for (auto d : shape) n *= d;
  return {std::vector<float>(data + n - V, data + n), {1, V}};
}

// Golden case: every manifest .npy that maps to a qvl tensor or input.
// Quantized weights vs HF's unquantized run: the expected distance is the
// quantization error itself, measured by ONNX Runtime on the same quantized
// weights. qvl may be at most 1.5x as far from HF as ORT is (+ fp32 noise).
Tolerance calibrated(const TensorDiff& ort_vs_golden) {
  Tolerance t;
  t.atol = 1e-3 + 1.5 * ort_vs_golden.max_abs;
  t.rtol = 1e-5;
  t.min_cos = 1.0 - 1.5 * (1.0 - ort_vs_golden.cosine) - 1e-5;
  return t;
}

std::vector<TensorDiff> compare_with_golden(const std::string& case_dir, const PromptInputs& in,
                                            const RecordingObserver& rec, const Tolerance& tol,
                                            const OrtTensors* calib) {
  std::ifstream f(case_dir + "/manifest.json");
  QVL_CHECK(f.good(), "%s/manifest.json: cannot open (not a golden case folder)", case_dir.c_str());
  nlohmann::json man;
  try {
    man = nlohmann::json::parse(f);
  } catch (const std::exception&) {
    throw Error(strfmt("%s/manifest.json: invalid JSON", case_dir.c_str()));
  }
  std::vector<TensorDiff> rows;
  for (const auto& e : man.at("files")) {
    std::string file = e.value("file", "");
    if (file.size() < 4 || file.substr(file.size() - 4) != ".npy") continue;
    std::string stem = file.substr(0, file.size() - 4);
    std::string name = golden_to_qvl_name(stem);
    if (name.empty()) continue;
    NpyArray want = npy_load(case_dir + "/" + file);
    if (name == "text.input_ids" || name == "text.position_ids") {
      const std::vector<int64_t>& got = name == "text.input_ids" ? in.ids : in.pos;
      std::vector<float> g(got.begin(), got.end());
      Tolerance exact;
      exact.exact = true;
      std::vector<int64_t> gs = name == "text.input_ids" ? std::vector<int64_t>{1, (int64_t)in.ids.size()}
                                                         : std::vector<int64_t>{3, 1, (int64_t)in.ids.size()};
      TensorDiff d = diff_tensors(name, g.data(), gs, want.to_f32().data(), want.shape, exact);
      d.ref = file;
      rows.push_back(d);
      continue;
    }
    if (name == "vision.pixel_values") {
      Tolerance pt;  // images decoded by another library may differ by a few LSB (README)
      pt.atol = 0.05, pt.rtol = 0, pt.min_cos = 0.9999;
      TensorDiff d = diff_tensors(name, in.pixels.data(), {(int64_t)(in.pixels.size() / std::max<int64_t>(in.row_len, 1)), in.row_len},
                                  want.to_f32().data(), want.shape, pt);
      d.ref = file;
      rows.push_back(d);
      continue;
    }
    const RecordingObserver::Tensor* got = rec.find(name);
    if (!got) {
      rows.push_back(missing_tensor(name, file, "not recorded by qvl", false));
      continue;
    }
    RecordingObserver::Tensor g = name == "logits" ? last_row(got->data.data(), got->shape) : *got;
    std::vector<float> w = want.to_f32();
    Tolerance t = tol;
    std::string note;
    auto it = calib ? calib->find(name) : OrtTensors::const_iterator();
    if (calib && it != calib->end()) {
      TensorDiff od = diff_tensors(name, it->second.data.data(), it->second.shape, w.data(), want.shape, tol);
      t = calibrated(od);
      note = strfmt("ORT on the same weights: max_abs %.3g cos %.6f", od.max_abs, od.cosine);
    }
    TensorDiff d = diff_tensors(name, g.data.data(), g.shape, w.data(), want.shape, t);
    d.ref = file;
    if (d.ok && !note.empty()) d.note = note;
    rows.push_back(d);
  }
  return rows;
}

}  // namespace

CompareReport compare_model(const ModelCompareOptions& o) {
  QVL_CHECK(o.against == "ort" || o.against == "golden", "--against %s: expected ort or golden", o.against.c_str());
  ChatRequest req = request_of(o);
  std::string note, scratch;
  if (o.against == "golden" && !o.file_images) {
    scratch = make_scratch_dir("golden");
    note = use_reference_decodes(&req, o.case_dir, scratch);
  }
  PromptInputs in = rebuild_inputs(o.model_dir, req);

  RecordingObserver rec;
  SessionOptions so;
  so.model_dir = o.model_dir;
  so.threads = o.threads;
  so.act_bits = o.act_bits;
  so.vision_bf16 = o.vision_bf16;
  so.kv_dtype = o.kv_dtype;
  so.context = std::max<int64_t>(256, (int64_t)in.ids.size() + 16);
  Session session(so);
  session.set_observer(&rec);
  GenerateOptions g;
  g.max_new_tokens = 1;  // the prefill is what is compared
  g.sampling.temperature = 0;
  session.generate(req.messages, g, nullptr, &req.options);
  session.set_observer(nullptr);

  CompareReport rep;
  rep.against = o.against == "golden" ? "golden " + o.case_dir : "ort (tools/ort-run on the model's graphs)";
  rep.precision = model_precision(o.model_dir);
  Tolerance tol = tolerance_for(rep.precision, o.against);
  if (o.against == "golden") {
    OrtTensors ort;
    bool quant = rep.precision == "int4" || rep.precision == "int8";
    if (quant) {
      std::vector<TensorDiff> unused;
      ort = run_ort_reference(o, in, rec, &unused);
      rep.against += " [tolerance calibrated by ONNX Runtime on the same quantized weights]";
    }
    rep.rows = compare_with_golden(o.case_dir, in, rec, tol, quant ? &ort : nullptr);
  } else {
    rep.rows = compare_with_ort(o, in, rec, tol);
  }
  if (!scratch.empty()) remove_tree(scratch);
  if (!note.empty()) rep.against += " [" + note + "]";
  std::string modes;  // qvl precision options that differ from the defaults
  if (o.act_bits) modes += " --act-bits " + std::to_string(o.act_bits);
  if (o.vision_bf16) modes += " --vision-bf16";
  if (o.kv_dtype == DType::F16) modes += " --kv-type f16";
  if (!modes.empty()) rep.against += " [qvl" + modes + "; tolerances are the format's own]";
  std::stable_sort(rep.rows.begin(), rep.rows.end(), [](const TensorDiff& a, const TensorDiff& b) {
    return pipeline_key(a.name) < pipeline_key(b.name);
  });
  return rep;
}

}  // namespace qvl
