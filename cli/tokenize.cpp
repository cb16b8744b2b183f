// qvl tokenize -m MODEL_DIR [--json] TEXT   — ids of TEXT (no template, nothing
//   added; special tokens written in TEXT, e.g. "<|im_end|>", become their ids).
//   --file PATH reads the text from a file; --messages FILE renders a chat
//   request with the Qwen3-VL template first (one <|image_pad|> per image).
// qvl detokenize -m MODEL_DIR [--skip-special] ID...   — the decoded text. IDs
//   may be separate arguments or one list ("1 2 3", "1,2,3", "[1, 2, 3]").
// The tokenizer.json is looked up in MODEL_DIR, then in its parent.
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/flags.h"
#include "engine/chat_template.h"
#include "engine/messages.h"
#include "engine/tokenizer.h"
#include "kernels/base.h"

namespace qvl::cli {
namespace {

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  QVL_CHECK(in.good(), "--file %s: cannot open", path.c_str());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string join(const std::vector<std::string>& parts) {
  std::string s;
  for (size_t i = 0; i < parts.size(); ++i) s += (i ? " " : "") + parts[i];
  return s;
}

// Splits the ID arguments on whitespace, commas and brackets and checks each
// is an integer id the tokenizer knows.
std::vector<int64_t> parse_ids(const std::vector<std::string>& args, const Tokenizer& tok) {
  std::vector<int64_t> ids;
  for (const std::string& a : args) {
    std::string cur;
    auto take = [&] {
      if (cur.empty()) return;
      size_t used = 0;
      long long v = 0;
      try {
        v = std::stoll(cur, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      QVL_CHECK(used == cur.size(), "'%s' is not a token id", cur.c_str());
      QVL_CHECK(v >= 0 && v < tok.size(), "token id %lld out of range (the tokenizer has %lld tokens)", v,
                (long long)tok.size());
      ids.push_back(v);
      cur.clear();
    };
    for (char c : a) {
      if (c == ' ' || c == ',' || c == '[' || c == ']' || c == '\t' || c == '\n')
        take();
      else
        cur += c;
    }
    take();
  }
  return ids;
}

}  // namespace

int cmd_tokenize(int argc, char** argv) {
  std::string model, file, messages;
  bool as_json = false;
  Flags fl("qvl tokenize -m MODEL_DIR [--json] (TEXT | --file PATH | --messages FILE)");
  fl.add("-m", &model, "model folder (tokenizer.json in it or in its parent)");
  fl.alias("--model");
  fl.add("--json", &as_json, "print the ids as a JSON array");
  fl.add("--file", &file, "tokenize the contents of this file instead of TEXT");
  fl.add("--messages", &messages, "render this chat messages JSON with the chat template, then tokenize");
  if (!fl.parse(argc, argv, /*allow_positional=*/true)) return 0;
  QVL_CHECK(!model.empty(), "-m MODEL_DIR is required");
  int sources = int(!fl.positional().empty()) + int(!file.empty()) + int(!messages.empty());
  QVL_CHECK(sources == 1, "give exactly one of TEXT, --file PATH or --messages FILE (see qvl tokenize --help)");

  Tokenizer tok = Tokenizer::from_model_dir(model);
  std::string text;
  if (!file.empty()) {
    text = read_text_file(file);
  } else if (!messages.empty()) {
    ChatRequest req = load_messages(messages);
    text = render_chat(req.messages, req.add_generation_prompt, req.options);
  } else {
    text = join(fl.positional());
  }
  std::vector<int64_t> ids = tok.encode(text);
  std::string out = as_json ? "[" : "";
  for (size_t i = 0; i < ids.size(); ++i) out += (i ? (as_json ? ", " : " ") : "") + std::to_string(ids[i]);
  if (as_json) out += "]";
  std::printf("%s\n", out.c_str());
  return 0;
}

int cmd_detokenize(int argc, char** argv) {
  std::string model;
  bool skip_special = false;
  Flags fl("qvl detokenize -m MODEL_DIR [--skip-special] ID...");
  fl.add("-m", &model, "model folder (tokenizer.json in it or in its parent)");
  fl.alias("--model");
  fl.add("--skip-special", &skip_special, "drop special tokens (<|im_end|>, <|image_pad|>, ...)");
  if (!fl.parse(argc, argv, /*allow_positional=*/true)) return 0;
  QVL_CHECK(!model.empty(), "-m MODEL_DIR is required");
  QVL_CHECK(!fl.positional().empty(), "no token ids given (see qvl detokenize --help)");
  Tokenizer tok = Tokenizer::from_model_dir(model);
  std::vector<int64_t> ids = parse_ids(fl.positional(), tok);
  std::string text = tok.decode(ids, skip_special) + "\n";
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}

}  // namespace qvl::cli
