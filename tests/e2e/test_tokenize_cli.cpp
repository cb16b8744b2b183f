// `qvl tokenize` / `qvl detokenize` end to end on tests/data/qwen3vl-a: ids and
// texts must equal Hugging Face's (golden.jsonl, the cases' tokenization.json),
// and bad input must give one `qvl: error:` line and exit status 1.
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "test_util.h"

namespace {

std::string qvl_bin() { return qvl::test::binary_dir() + "/qvl"; }
std::string model() { return qvl::test::golden_dir(); }

std::string quote(const std::string& s) {  // single-quoted for /bin/sh
  std::string q = "'";
  for (char c : s) {
    if (c == '\'')
      q += "'\\''";
    else
      q += c;
  }
  q += '\'';
  return q;
}

int run(const std::string& args, std::string* out) { return qvl::test::run_command(qvl_bin() + " " + args, out); }

std::vector<int64_t> parse_ids(const std::string& s) {
  std::vector<int64_t> ids;
  std::istringstream in(s);
  for (int64_t v; in >> v;) ids.push_back(v);
  return ids;
}

// Every 23rd golden row (spread over the categories; each CLI run reloads the
// tokenizer, so the full set stays with the unit tests).
std::vector<nlohmann::json> golden_rows() {
  std::ifstream in(qvl::test::data_dir() + "/tokenizer/golden.jsonl");
  std::vector<nlohmann::json> rows;
  int k = 0;
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && k++ % 23 == 5) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

TEST(TokenizeCli, TextArgumentAndFile) {
  std::string dir = qvl::test::scratch_dir("tokenize_cli");
  int checked = 0;
  for (const auto& r : golden_rows()) {
    std::string text = r["text"];
    if (text.empty() || text.find('\0') != std::string::npos || checked >= 6) continue;
    std::string out;
    std::string path = dir + "/text.txt";
    std::ofstream(path, std::ios::binary) << text;
    ASSERT_EQ(run("tokenize -m " + model() + " --file " + path, &out), 0) << out;
    EXPECT_EQ(parse_ids(out), r["ids"].get<std::vector<int64_t>>()) << r["id"];
    if (text[0] != '-') {
      ASSERT_EQ(run("tokenize -m " + model() + " " + quote(text), &out), 0) << out;
      EXPECT_EQ(parse_ids(out), r["ids"].get<std::vector<int64_t>>()) << r["id"];
    }
    ++checked;
  }
  EXPECT_EQ(checked, 6);
}

TEST(TokenizeCli, JsonOutputAndParentTokenizer) {
  std::string out;
  ASSERT_EQ(run("tokenize -m " + model() + "/onnx-torch --json " + quote("Hello world<|im_end|>"), &out), 0) << out;
  EXPECT_EQ(nlohmann::json::parse(out).get<std::vector<int64_t>>(), (std::vector<int64_t>{9707, 1879, 151645}));
}

TEST(TokenizeCli, MessagesMatchGoldenTemplateIds) {
  for (const char* c : {"01_text", "02_image"}) {
    std::string dir = model() + "/cases/" + c;
    std::ifstream in(dir + "/tokenization.json");
    auto want = nlohmann::json::parse(in)["template_ids"].get<std::vector<int64_t>>();
    std::string out;
    ASSERT_EQ(run("tokenize -m " + model() + " --messages " + dir + "/messages.json", &out), 0) << out;
    EXPECT_EQ(parse_ids(out), want) << c;
  }
}

TEST(TokenizeCli, Detokenize) {
  int checked = 0;
  for (const auto& r : golden_rows()) {
    auto ids = r["ids"].get<std::vector<int64_t>>();
    if (ids.empty() || checked >= 6) continue;
    std::string list;
    for (int64_t id : ids) {
      list += ' ';
      list += std::to_string(id);
    }
    std::string out;
    ASSERT_EQ(run("detokenize -m " + model() + list, &out), 0) << out;
    EXPECT_EQ(out, r["decoded"].get<std::string>() + "\n") << r["id"];
    ASSERT_EQ(run("detokenize --skip-special -m " + model() + " " + quote(list), &out), 0) << out;
    EXPECT_EQ(out, r["decoded_skip_special"].get<std::string>() + "\n") << r["id"];
    ++checked;
  }
  EXPECT_EQ(checked, 6);
}

TEST(TokenizeCli, Errors) {
  std::string dir = qvl::test::scratch_dir("tokenize_cli_errors");
  std::string out;
  EXPECT_EQ(run("tokenize -m " + dir + " hello", &out), 1);
  EXPECT_EQ(out, "qvl: error: " + dir + ": no tokenizer.json\n");
  EXPECT_EQ(run("detokenize -m " + model() + " 12 x3", &out), 1);
  EXPECT_EQ(out.rfind("qvl: error: 'x3' is not a token id", 0), 0u) << out;
  EXPECT_EQ(run("detokenize -m " + model() + " 151669", &out), 1);
  EXPECT_EQ(out.rfind("qvl: error: token id 151669 out of range", 0), 0u) << out;
  EXPECT_EQ(run("detokenize -m " + model() + " -- -5", &out), 1);
  EXPECT_EQ(run("tokenize " + quote("no model"), &out), 1);
  EXPECT_EQ(out, "qvl: error: -m MODEL_DIR is required\n");
  std::ofstream(dir + "/tokenizer.json") << "{ broken";
  EXPECT_EQ(run("tokenize -m " + dir + " hello", &out), 1);
  EXPECT_EQ(out.rfind("qvl: error: " + dir + "/tokenizer.json: not valid JSON", 0), 0u) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
}

}  // namespace
