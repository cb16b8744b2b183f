// Chat request JSON → Message list (see messages.h), plus Python-style JSON
// dumping for the template's `tojson` (tool schemas and tool-call arguments).
#include "engine/messages.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "kernels/base.h"

namespace qvl {
namespace {

using Json = nlohmann::ordered_json;

// Python repr() of a double: shortest round-trip digits, scientific notation
// when the decimal exponent is < -4 or >= 16, else fixed with at least ".0".
std::string python_float(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string s(buf, res.ptr);  // "-d.ddde+XX"
  std::string sign;
  if (s[0] == '-') sign = "-", s.erase(0, 1);
  size_t epos = s.find('e');
  int exp = std::atoi(s.c_str() + epos + 1);
  std::string digits = s.substr(0, epos);
  if (digits.size() > 1) digits.erase(1, 1);  // drop the '.'
  if (exp < -4 || exp >= 16) {
    std::string m = digits.substr(0, 1) + (digits.size() > 1 ? "." + digits.substr(1) : "");
    char e[16];
    std::snprintf(e, sizeof e, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    return sign + m + e;
  }
  if (exp < 0) return sign + "0." + std::string(size_t(-exp - 1), '0') + digits;
  if (digits.size() <= size_t(exp) + 1) return sign + digits + std::string(size_t(exp) + 1 - digits.size(), '0') + ".0";
  return sign + digits.substr(0, size_t(exp) + 1) + "." + digits.substr(size_t(exp) + 1);
}

void dump_string(std::string& out, const std::string& s) {
  out += '"';
  for (char ch : s) {
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (uint8_t(ch) < 0x20)
          out += strfmt("\\u%04x", unsigned(uint8_t(ch)));
        else
          out += ch;
    }
  }
  out += '"';
}

void dump(std::string& out, const Json& v) {
  switch (v.type()) {
    case Json::value_t::object: {
      out += '{';
      bool first = true;
      for (const auto& [k, x] : v.items()) {
        if (!first) out += ", ";
        first = false;
        dump_string(out, k);
        out += ": ";
        dump(out, x);
      }
      out += '}';
      break;
    }
    case Json::value_t::array: {
      out += '[';
      for (size_t i = 0; i < v.size(); ++i) {
        if (i) out += ", ";
        dump(out, v[i]);
      }
      out += ']';
      break;
    }
    case Json::value_t::string: dump_string(out, v.get_ref<const std::string&>()); break;
    case Json::value_t::boolean: out += v.get<bool>() ? "true" : "false"; break;
    case Json::value_t::number_float: out += python_float(v.get<double>()); break;
    case Json::value_t::null: out += "null"; break;
    default: out += v.dump(); break;  // integers
  }
}

// Context for error messages: "<file>: message 3 part 2: ...".
struct Where {
  const std::string& name;
  size_t msg, part;
  std::string at() const {
    std::string s = name + ": message " + std::to_string(msg + 1);
    if (part) s += " content part " + std::to_string(part);
    return s;
  }
};

// Media reference → usable path: file:// stripped, relative paths joined to
// the JSON file's folder, URLs (scheme://, data:) kept.
std::string resolve_path(const std::string& ref, const std::string& base_dir) {
  std::string p = ref;
  if (p.rfind("file://", 0) == 0) p = p.substr(7);
  if (p.find("://") != std::string::npos || p.rfind("data:", 0) == 0) return p;
  std::filesystem::path fp(p);
  if (fp.is_absolute() || base_dir.empty()) return p;
  return (std::filesystem::path(base_dir) / fp).lexically_normal().string();
}

std::string media_ref(const Json& part, const char* key, const Where& w) {
  for (const char* k : {key, "image_url", "path", "url"}) {
    if (!part.contains(k)) continue;
    const Json& v = part[k];
    if (v.is_string()) return v.get<std::string>();
    if (v.is_object() && v.contains("url") && v["url"].is_string()) return v["url"].get<std::string>();
    throw Error(strfmt("%s: \"%s\" must be a path string", w.at().c_str(), k));
  }
  throw Error(strfmt("%s: %s part has no path (\"%s\")", w.at().c_str(), key, key));
}

ContentPart parse_part(const Json& part, const std::string& base_dir, const Where& w) {
  QVL_CHECK(part.is_object(), "%s: content part must be an object", w.at().c_str());
  std::string type = part.contains("type") && part["type"].is_string() ? part["type"].get<std::string>() : "";
  ContentPart p;
  if (type == "image" || part.contains("image") || part.contains("image_url")) {
    p.kind = ContentPart::Image;
    p.path = resolve_path(media_ref(part, "image", w), base_dir);
  } else if (type == "video" || part.contains("video")) {
    p.kind = ContentPart::Video;
    p.path = resolve_path(media_ref(part, "video", w), base_dir);
  } else if (part.contains("text")) {
    QVL_CHECK(part["text"].is_string(), "%s: \"text\" must be a string", w.at().c_str());
    p.kind = ContentPart::Text;
    p.text = part["text"].get<std::string>();
  } else {
    throw Error(strfmt("%s: part is neither text, image nor video", w.at().c_str()));
  }
  return p;
}

ToolCall parse_tool_call(const Json& tc, const Where& w) {
  QVL_CHECK(tc.is_object(), "%s: tool_calls entries must be objects", w.at().c_str());
  const Json& f = tc.contains("function") && tc["function"].is_object() ? tc["function"] : tc;
  QVL_CHECK(f.contains("name") && f["name"].is_string(), "%s: tool call without a \"name\"", w.at().c_str());
  QVL_CHECK(f.contains("arguments"), "%s: tool call without \"arguments\"", w.at().c_str());
  ToolCall c;
  c.name = f["name"].get<std::string>();
  c.arguments = f["arguments"].is_string() ? f["arguments"].get<std::string>() : python_json_dumps(f["arguments"]);
  return c;
}

Message parse_message(const Json& j, const std::string& base_dir, Where w) {
  QVL_CHECK(j.is_object(), "%s: must be an object with \"role\" and \"content\"", w.at().c_str());
  QVL_CHECK(j.contains("role") && j["role"].is_string(), "%s: missing \"role\"", w.at().c_str());
  Message m;
  m.role = j["role"].get<std::string>();
  QVL_CHECK(m.role == "system" || m.role == "user" || m.role == "assistant" || m.role == "tool",
            "%s: unknown role '%s' (system, user, assistant or tool)", w.at().c_str(), m.role.c_str());
  if (j.contains("tool_calls") && !j["tool_calls"].is_null()) {
    QVL_CHECK(m.role == "assistant" && j["tool_calls"].is_array(),
              "%s: \"tool_calls\" must be a list on an assistant message", w.at().c_str());
    for (const Json& tc : j["tool_calls"]) m.tool_calls.push_back(parse_tool_call(tc, w));
  }
  const bool has_content = j.contains("content") && !j["content"].is_null();
  QVL_CHECK(has_content || !m.tool_calls.empty(), "%s: missing \"content\"", w.at().c_str());
  if (!has_content) return m;
  const Json& c = j["content"];
  if (c.is_string()) {
    m.string_content = true;
    m.parts.push_back({ContentPart::Text, c.get<std::string>(), ""});
  } else {
    QVL_CHECK(c.is_array(), "%s: \"content\" must be a string or a list of parts", w.at().c_str());
    for (size_t i = 0; i < c.size(); ++i) {
      w.part = i + 1;
      m.parts.push_back(parse_part(c[i], base_dir, w));
    }
  }
  return m;
}

bool flag(const Json& j, const char* key, bool def, const std::string& name) {
  if (!j.contains(key) || j[key].is_null()) return def;
  QVL_CHECK(j[key].is_boolean(), "%s: \"%s\" must be true or false", name.c_str(), key);
  return j[key].get<bool>();
}

}  // namespace

std::string python_json_dumps(const nlohmann::ordered_json& value) {
  std::string out;
  dump(out, value);
  return out;
}

ChatRequest parse_messages(std::string_view json_text, const std::string& base_dir, const std::string& name) {
  Json j;
  try {
    j = Json::parse(json_text);
  } catch (const nlohmann::json::exception& e) {
    std::string msg = e.what();
    for (char& ch : msg)
      if (ch == '\n') ch = ' ';
    throw Error(strfmt("%s: not valid JSON (%s)", name.c_str(), msg.c_str()));
  }
  ChatRequest req;
  const Json* list = &j;
  if (j.is_object()) {
    QVL_CHECK(j.contains("messages"), "%s: no \"messages\" list", name.c_str());
    list = &j["messages"];
    req.add_generation_prompt = flag(j, "add_generation_prompt", true, name);
    req.options.add_vision_id = flag(j, "add_vision_id", false, name);
    if (j.contains("tools") && !j["tools"].is_null()) {
      QVL_CHECK(j["tools"].is_array(), "%s: \"tools\" must be a list", name.c_str());
      for (const Json& t : j["tools"]) req.options.tools.push_back(python_json_dumps(t));
    }
  }
  QVL_CHECK(list->is_array(), "%s: expected a list of messages", name.c_str());
  QVL_CHECK(!list->empty(), "%s: the message list is empty", name.c_str());
  for (size_t i = 0; i < list->size(); ++i) req.messages.push_back(parse_message((*list)[i], base_dir, {name, i, 0}));
  return req;
}

ChatRequest load_messages(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  QVL_CHECK(in.good(), "%s: cannot open messages file", path.c_str());
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string dir = std::filesystem::path(path).parent_path().string();
  return parse_messages(text, dir, path);
}

}  // namespace qvl
