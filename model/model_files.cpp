// Model-folder discovery: which .onnx file plays which role.
#include "model/model_files.h"

#include <algorithm>
#include <filesystem>

#include "kernels/base.h"

namespace qvl {
namespace fs = std::filesystem;

namespace {

// .onnx files in `dir` whose name starts with `prefix` (sorted).
std::vector<std::string> onnx_with_prefix(const fs::path& dir, const std::string& prefix) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (!e.is_regular_file()) continue;
    std::string name = e.path().filename().string();
    if (name.size() > 5 && name.compare(name.size() - 5, 5, ".onnx") == 0 &&
        name.compare(0, prefix.size(), prefix) == 0)
      out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// First exact name that exists, else the single file with one of the prefixes.
// Several prefix matches → error naming them. Returns "" when nothing matches.
std::string pick_one(const fs::path& dir, const std::vector<std::string>& exact,
                     const std::vector<std::string>& prefixes, const char* role) {
  for (const auto& n : exact)
    if (fs::is_regular_file(dir / n)) return (dir / n).string();
  for (const auto& p : prefixes) {
    auto found = onnx_with_prefix(dir, p);
    if (found.size() == 1) return found[0];
    if (found.size() > 1) {
      std::string list;
      for (const auto& f : found) list += (list.empty() ? "" : ", ") + fs::path(f).filename().string();
      throw Error(strfmt("model folder %s: several %s graphs (%s); keep one variant per folder",
                         dir.string().c_str(), role, list.c_str()));
    }
  }
  return "";
}

void find_in(const fs::path& d, ModelFiles* mf) {
  mf->text = pick_one(d, {"text.onnx", "model.onnx", "decoder_model_merged.onnx", "decoder_with_past.onnx"},
                      {"decoder_model_merged", "decoder_with_past", "decoder_model"}, "text decoder");
  mf->embedding = pick_one(d, {"embedding.onnx", "embed_tokens.onnx"}, {"embed_tokens"}, "embedding");
  mf->vision.clear();
  if (fs::is_regular_file(d / "vision.onnx")) {
    mf->vision.push_back((d / "vision.onnx").string());
  } else if (fs::is_regular_file(d / "vision_encoder.onnx")) {
    mf->vision.push_back((d / "vision_encoder.onnx").string());
  } else {
    auto enc = onnx_with_prefix(d, "vision_encoder");
    if (enc.size() > 1)
      throw Error(strfmt("model folder %s: several vision_encoder*.onnx variants; keep one per folder",
                         d.string().c_str()));
    mf->vision = enc.empty() ? onnx_with_prefix(d, "vision_") : enc;
  }
}

}  // namespace

ModelFiles find_model_files(const std::string& dir) {
  QVL_CHECK(fs::is_directory(dir), "model folder %s does not exist or is not a folder", dir.c_str());
  fs::path d = fs::absolute(dir).lexically_normal();
  if (d.filename().empty()) d = d.parent_path();  // trailing slash
  ModelFiles mf;
  mf.dir = d.string();
  if (fs::is_regular_file(d / "config.json"))
    mf.config_dir = d.string();
  else if (fs::is_regular_file(d.parent_path() / "config.json"))
    mf.config_dir = d.parent_path().string();
  QVL_CHECK(!mf.config_dir.empty(), "model folder %s: no config.json here or in the parent folder",
            dir.c_str());

  find_in(d, &mf);
  if (mf.text.empty() && fs::is_directory(d / "onnx")) find_in(d / "onnx", &mf);
  QVL_CHECK(!mf.text.empty(),
            "model folder %s: no text decoder graph (looked for text.onnx, model.onnx, "
            "decoder_model_merged*.onnx, decoder_with_past*.onnx)",
            dir.c_str());
  return mf;
}

}  // namespace qvl
