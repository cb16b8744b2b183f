// The Qwen3-VL Instruct chat template (chat_template.jinja of the
// Qwen/Qwen3-VL-*-Instruct repos) re-implemented natively, byte for byte:
//   [<|im_start|>system\n{system text | tools block}<|im_end|>\n]
//   per user turn:      <|im_start|>user\n{parts}<|im_end|>\n
//   per assistant turn: <|im_start|>assistant\n{text}{\n<tool_call>...}<|im_end|>\n
//   per run of tool turns: <|im_start|>user(\n<tool_response>\n{parts}\n</tool_response>)+<|im_end|>\n
//   [<|im_start|>assistant\n]            (add_generation_prompt)
// An image part renders <|vision_start|><|image_pad|><|vision_end|>, a video
// part <|vision_start|><|video_pad|><|vision_end|>, each optionally prefixed by
// "Picture k: " / "Video k: " (add_vision_id). No default system prompt; a
// system message that is not the first message is dropped (as the template does);
// only text parts of system/assistant messages are rendered. No <think> handling
// (the Instruct template has none).
#pragma once
#include <string>
#include <vector>

namespace qvl {

struct ContentPart {
  enum Kind { Text, Image, Video } kind = Text;
  std::string text;  // Text
  std::string path;  // Image / Video: file path (resolved by the messages parser) or URL
};

struct ToolCall {
  std::string name;
  std::string arguments;  // emitted verbatim (JSON text)
};

struct Message {
  std::string role;                  // "system" | "user" | "assistant" | "tool"
  std::vector<ContentPart> parts;    // string content: exactly one Text part
  bool string_content = false;       // content was a string, not a list of parts
  std::vector<ToolCall> tool_calls;  // assistant turns only
};

struct ChatOptions {
  bool add_vision_id = false;      // "Picture k: " / "Video k: " before each image / video
  std::vector<std::string> tools;  // tool schemas, each already as JSON text (HF `tojson`)
};

// The prompt string the Qwen3-VL Instruct template renders (one <|image_pad|>
// per image; the session expands it to the image's token count).
std::string render_chat(const std::vector<Message>& messages, bool add_generation_prompt,
                        const ChatOptions& options = {});

// The image and video parts that render_chat turns into pad tokens, in prompt
// order (user and tool turns only; media in system/assistant turns is not rendered).
std::vector<const ContentPart*> rendered_media(const std::vector<Message>& messages);

// A message whose content is a plain string.
Message text_message(std::string role, std::string text);

}  // namespace qvl
