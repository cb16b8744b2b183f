// Native rendering of the Qwen3-VL Instruct chat template; each function below
// mirrors one block of qwen3vl_chat_template.jinja (see chat_template.h).
#include "engine/chat_template.h"

namespace qvl {
namespace {

constexpr const char* kImage = "<|vision_start|><|image_pad|><|vision_end|>";
constexpr const char* kVideo = "<|vision_start|><|video_pad|><|vision_end|>";

constexpr const char* kToolsHeader =
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>";
constexpr const char* kToolsFooter =
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments "
    "within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, "
    "\"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n";

struct Counters {
  int images = 0, videos = 0;
};

// System and assistant content: a string, or only the text parts of a list.
void append_text_content(std::string& out, const Message& m) {
  for (const ContentPart& p : m.parts)
    if (p.kind == ContentPart::Text) out += p.text;
}

// User and tool content: text parts verbatim, images and videos as vision
// markers (numbered when add_vision_id).
void append_media_content(std::string& out, const Message& m, Counters& n, const ChatOptions& opt) {
  if (m.string_content) {
    append_text_content(out, m);
    return;
  }
  for (const ContentPart& p : m.parts) {
    if (p.kind == ContentPart::Image) {
      ++n.images;
      if (opt.add_vision_id) out += "Picture " + std::to_string(n.images) + ": ";
      out += kImage;
    } else if (p.kind == ContentPart::Video) {
      ++n.videos;
      if (opt.add_vision_id) out += "Video " + std::to_string(n.videos) + ": ";
      out += kVideo;
    } else {
      out += p.text;
    }
  }
}

// Jinja truthiness of message.content: a non-empty string or a non-empty list.
bool content_truthy(const Message& m) {
  if (m.string_content) return !m.parts.empty() && !m.parts[0].text.empty();
  return !m.parts.empty();
}

void render_system(std::string& out, const std::vector<Message>& msgs, const ChatOptions& opt) {
  bool has_system = !msgs.empty() && msgs[0].role == "system";
  if (!opt.tools.empty()) {
    out += "<|im_start|>system\n";
    if (has_system) {
      append_text_content(out, msgs[0]);
      out += "\n\n";
    }
    out += kToolsHeader;
    for (const std::string& t : opt.tools) out += "\n" + t;
    out += kToolsFooter;
  } else if (has_system) {
    out += "<|im_start|>system\n";
    append_text_content(out, msgs[0]);
    out += "<|im_end|>\n";
  }
}

void render_assistant(std::string& out, const Message& m) {
  out += "<|im_start|>assistant\n";
  append_text_content(out, m);
  for (size_t i = 0; i < m.tool_calls.size(); ++i) {
    if (i > 0 || content_truthy(m)) out += "\n";
    out += "<tool_call>\n{\"name\": \"" + m.tool_calls[i].name + "\", \"arguments\": ";
    out += m.tool_calls[i].arguments + "}\n</tool_call>";
  }
  out += "<|im_end|>\n";
}

}  // namespace

std::string render_chat(const std::vector<Message>& msgs, bool add_generation_prompt, const ChatOptions& opt) {
  std::string out;
  render_system(out, msgs, opt);
  Counters n;
  for (size_t i = 0; i < msgs.size(); ++i) {
    const Message& m = msgs[i];
    if (m.role == "user") {
      out += "<|im_start|>user\n";
      append_media_content(out, m, n, opt);
      out += "<|im_end|>\n";
    } else if (m.role == "assistant") {
      render_assistant(out, m);
    } else if (m.role == "tool") {
      if (i == 0 || msgs[i - 1].role != "tool") out += "<|im_start|>user";
      out += "\n<tool_response>\n";
      append_media_content(out, m, n, opt);
      out += "\n</tool_response>";
      if (i + 1 == msgs.size() || msgs[i + 1].role != "tool") out += "<|im_end|>\n";
    }
    // "system" (rendered above when first) and other roles: nothing.
  }
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

std::vector<const ContentPart*> rendered_media(const std::vector<Message>& msgs) {
  std::vector<const ContentPart*> media;
  for (const Message& m : msgs) {
    if ((m.role != "user" && m.role != "tool") || m.string_content) continue;
    for (const ContentPart& p : m.parts)
      if (p.kind != ContentPart::Text) media.push_back(&p);
  }
  return media;
}

Message text_message(std::string role, std::string text) {
  Message m;
  m.role = std::move(role);
  m.string_content = true;
  m.parts.push_back({ContentPart::Text, std::move(text), ""});
  return m;
}

}  // namespace qvl
