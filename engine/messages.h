// Chat request JSON (`qvl run --messages FILE`), the Hugging Face / OpenAI
// message shape:
//   [ {"role": "user", "content": "text" | [parts]} ... ]            or
//   {"messages": [...], "add_generation_prompt": true, "add_vision_id": false,
//    "tools": [ {...schema...} ]}
// parts: {"type":"text","text":S} | {"type":"image","image":PATH} (also
// "image_url": PATH or {"url": PATH}, or "path") | {"type":"video","video":PATH}.
// Roles: system, user, assistant (optional "tool_calls"), tool. Relative media
// paths are resolved against the JSON file's folder; URLs are kept as given.
// Parts are classified exactly as the template does: image if type=="image" or
// an "image"/"image_url" key, else video if type=="video" or a "video" key, else text.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "engine/chat_template.h"

namespace qvl {

struct ChatRequest {
  std::vector<Message> messages;
  bool add_generation_prompt = true;  // the file's "add_generation_prompt" when present
  ChatOptions options;                // "add_vision_id", "tools"
};

// Reads and parses a messages file; any problem throws qvl::Error with one
// line naming the file (and the message / part index).
ChatRequest load_messages(const std::string& path);

// Parses JSON text; `base_dir` resolves relative media paths, `name` labels errors.
ChatRequest parse_messages(std::string_view json_text, const std::string& base_dir, const std::string& name);

// Python json.dumps(x, ensure_ascii=False) — the text of the template's
// `tojson` filter in transformers (", " and ": " separators, key order kept).
std::string python_json_dumps(const nlohmann::ordered_json& value);

}  // namespace qvl
