// Messages JSON parser: the golden cases' messages.json rendered and
// tokenized must equal their prompt.txt and tokenization.json template_ids
// (Hugging Face transformers + tokenizers); paths resolve next to the file;
// malformed files give one-line errors naming the file; python_json_dumps
// matches Python's json.dumps(ensure_ascii=False).
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/chat_template.h"
#include "engine/messages.h"
#include "engine/tokenizer.h"
#include "kernels/base.h"
#include "test_util.h"

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(Messages, GoldenCasesRenderAndTokenize) {
  qvl::Tokenizer tok(qvl::test::golden_dir() + "/tokenizer.json");
  int n = 0;
  for (const char* c : {"01_text", "02_image", "03_resize"}) {
    std::string dir = qvl::test::golden_dir() + "/cases/" + c;
    qvl::ChatRequest req = qvl::load_messages(dir + "/messages.json");
    std::string text = qvl::render_chat(req.messages, req.add_generation_prompt, req.options);
    EXPECT_EQ(text, slurp(dir + "/prompt.txt")) << c;
    auto want = nlohmann::json::parse(slurp(dir + "/tokenization.json"));
    EXPECT_EQ(text, want["prompt_text"].get<std::string>()) << c;
    EXPECT_EQ(tok.encode(text), want["template_ids"].get<std::vector<int64_t>>()) << c;
    for (const auto* m : qvl::rendered_media(req.messages)) {
      EXPECT_TRUE(std::filesystem::exists(m->path)) << m->path;  // resolved next to messages.json
      ++n;
    }
  }
  EXPECT_EQ(n, 2);  // one image each in 02_image and 03_resize
}

TEST(Messages, ListFormDefaultsAndPartKinds) {
  auto req = qvl::parse_messages(
      R"([{"role":"user","content":[{"type":"text","text":"a"},{"image":"x.png"},
          {"type":"image_url","image_url":{"url":"file:///abs/y.png"}},{"type":"image","path":"../z.png"},
          {"type":"video","video":"https://h/v.mp4"}]}])",
      "/data/chats", "inline");
  EXPECT_TRUE(req.add_generation_prompt);
  EXPECT_FALSE(req.options.add_vision_id);
  ASSERT_EQ(req.messages.size(), 1u);
  const auto& p = req.messages[0].parts;
  ASSERT_EQ(p.size(), 5u);
  EXPECT_FALSE(req.messages[0].string_content);
  EXPECT_EQ(p[0].kind, qvl::ContentPart::Text);
  EXPECT_EQ(p[0].text, "a");
  EXPECT_EQ(p[1].path, "/data/chats/x.png");
  EXPECT_EQ(p[2].path, "/abs/y.png");
  EXPECT_EQ(p[3].path, "/data/z.png");
  EXPECT_EQ(p[4].kind, qvl::ContentPart::Video);
  EXPECT_EQ(p[4].path, "https://h/v.mp4");

  auto obj = qvl::parse_messages(R"({"messages":[{"role":"user","content":"hi"}],
      "add_generation_prompt":false,"add_vision_id":true})", "", "inline");
  EXPECT_FALSE(obj.add_generation_prompt);
  EXPECT_TRUE(obj.options.add_vision_id);
  EXPECT_TRUE(obj.messages[0].string_content);
}

TEST(Messages, ErrorsAreOneLineAndNameTheFile) {
  std::string dir = qvl::test::scratch_dir("messages_errors");
  struct Case {
    const char *json, *needle;
  } cases[] = {
      {"[{\"role\": \"user\", \"content\": ", "not valid JSON"},
      {R"([{"role":"bot","content":"x"}])", "unknown role 'bot'"},
      {R"([{"content":"x"}])", "missing \"role\""},
      {R"([{"role":"user"}])", "missing \"content\""},
      {R"([{"role":"user","content":[{"type":"text"}]}])", "neither text, image nor video"},
      {R"([{"role":"user","content":[{"type":"image"}]}])", "no path"},
      {R"([{"role":"user","content":[{"type":"text","text":5}]}])", "must be a string"},
      {R"([{"role":"user","content":7}])", "string or a list"},
      {R"({"messages":[{"role":"user","content":"x"}],"add_generation_prompt":"yes"})", "true or false"},
      {R"({"msgs":[]})", "no \"messages\""},
      {R"([])", "empty"},
      {R"([{"role":"user","content":"x","tool_calls":[{"name":"f","arguments":{}}]}])", "assistant"},
      {R"([{"role":"assistant","content":"","tool_calls":[{"function":{"name":"f"}}]}])", "arguments"},
  };
  int i = 0;
  for (const auto& c : cases) {
    std::string path = dir + "/bad" + std::to_string(i++) + ".json";
    std::ofstream(path) << c.json;
    try {
      qvl::load_messages(path);
      ADD_FAILURE() << "no error for " << c.json;
    } catch (const qvl::Error& e) {
      std::string msg = e.what();
      EXPECT_EQ(msg.rfind(path, 0), 0u) << msg;  // starts with the file name
      EXPECT_NE(msg.find(c.needle), std::string::npos) << msg << "  (want: " << c.needle << ")";
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
  }
  EXPECT_THROW(qvl::load_messages(dir + "/missing.json"), qvl::Error);
}

// Expected strings printed by Python 3.11 json.dumps(x, ensure_ascii=False).
TEST(Messages, PythonJsonDumps) {
  auto x = nlohmann::ordered_json::parse(
      R"({"a": 1.0, "b": [1e-7, 1e16, 123456789.125, -0.0, 0.1, 1e15, 0.0001, 0.00001, 2.5e-300,
          1.7976931348623157e308], "c": "\u00e9\u0001\"\\\t", "d": null, "e": true, "f": {}, "g": [], "h": -42})");
  EXPECT_EQ(qvl::python_json_dumps(x),
            "{\"a\": 1.0, \"b\": [1e-07, 1e+16, 123456789.125, -0.0, 0.1, 1000000000000000.0, 0.0001, "
            "1e-05, 2.5e-300, 1.7976931348623157e+308], \"c\": \"\u00e9\\u0001\\\"\\\\\\t\", \"d\": null, "
            "\"e\": true, \"f\": {}, \"g\": [], \"h\": -42}");
}

}  // namespace
