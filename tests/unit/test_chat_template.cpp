// Native Qwen3-VL chat template against renderings of the real Jinja template:
// tests/data/tokenizer/templates.json (transformers' renderer, with HF token
// ids) and templates_extra.json (jinja2 with transformers' settings, written by
// tools/gen_chat_template_cases.py: tools, tool calls, tool turns, late system
// messages, add_vision_id with videos). Byte-for-byte text, and ids.
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/chat_template.h"
#include "engine/messages.h"
#include "engine/tokenizer.h"
#include "test_util.h"

namespace {

const qvl::Tokenizer& tok() {
  static const qvl::Tokenizer t(qvl::test::golden_dir() + "/tokenizer.json");
  return t;
}

nlohmann::ordered_json read_json(const std::string& name) {
  std::ifstream in(qvl::test::data_dir() + "/tokenizer/" + name);
  EXPECT_TRUE(in.good()) << name;
  return nlohmann::ordered_json::parse(in);
}

// Renders a request object ({"messages": ..., flags}) through the messages
// parser and the native template.
std::string render_request(const nlohmann::ordered_json& request, const std::string& name) {
  qvl::ChatRequest req = qvl::parse_messages(request.dump(), "", name);
  return qvl::render_chat(req.messages, req.add_generation_prompt, req.options);
}

TEST(ChatTemplate, GoldenConversations) {
  auto doc = read_json("templates.json");
  ASSERT_EQ(doc["cases"].size(), 8u);
  for (const auto& c : doc["cases"]) {
    nlohmann::ordered_json request = {{"messages", c["messages"]},
                              {"add_generation_prompt", c["add_generation_prompt"]},
                              {"add_vision_id", c.value("add_vision_id", false)}};
    std::string text = render_request(request, c["name"]);
    EXPECT_EQ(text, c["text"].get<std::string>()) << c["name"];
    ASSERT_TRUE(c.contains("ids")) << c["name"];
    EXPECT_EQ(tok().encode(text), c["ids"].get<std::vector<int64_t>>()) << c["name"];
  }
}

TEST(ChatTemplate, ExtraConversationsFromJinja2) {
  auto doc = read_json("templates_extra.json");
  ASSERT_GE(doc["cases"].size(), 8u);
  for (const auto& c : doc["cases"])
    EXPECT_EQ(render_request(c["request"], c["name"]), c["text"].get<std::string>()) << c["name"];
}

// The struct API without the JSON parser: golden case 1 (system + user).
TEST(ChatTemplate, BuiltFromStructs) {
  std::vector<qvl::Message> msgs = {qvl::text_message("system", "You are a helpful assistant."),
                                    qvl::text_message("user", "What is the capital of France?")};
  auto doc = read_json("templates.json");
  EXPECT_EQ(qvl::render_chat(msgs, true), doc["cases"][0]["text"].get<std::string>());

  qvl::Message user;
  user.role = "user";
  user.parts = {{qvl::ContentPart::Image, "", "demo.jpg"}, {qvl::ContentPart::Text, "Describe this image.", ""}};
  EXPECT_EQ(qvl::render_chat({user}, true), doc["cases"][1]["text"].get<std::string>());
  EXPECT_EQ(qvl::render_chat({user}, false), doc["cases"][4]["text"].get<std::string>());
}

// rendered_media lists exactly the parts that got a pad token, in prompt order.
TEST(ChatTemplate, RenderedMediaOrder) {
  auto doc = read_json("templates_extra.json");
  for (const auto& c : doc["cases"]) {
    qvl::ChatRequest req = qvl::parse_messages(c["request"].dump(), "base", c["name"]);
    std::string text = qvl::render_chat(req.messages, req.add_generation_prompt, req.options);
    auto media = qvl::rendered_media(req.messages);
    size_t pads = 0;
    for (size_t p = 0; (p = text.find("_pad|>", p)) != std::string::npos; ++p) ++pads;
    EXPECT_EQ(media.size(), pads) << c["name"];
    if (c["name"] == "vision_ids_images_videos_tool_image") {
      std::vector<std::string> paths;
      for (const auto* m : media) paths.push_back(m->path);
      std::vector<std::string> want = {"base/v.mp4", "http://h/a.jpg", "base/b.png",
                                       "base/c.png", "base/w.mp4", "base/d.png"};
      EXPECT_EQ(paths, want);
      EXPECT_EQ(media[0]->kind, qvl::ContentPart::Video);
      EXPECT_EQ(media[1]->kind, qvl::ContentPart::Image);
    }
  }
}

}  // namespace
