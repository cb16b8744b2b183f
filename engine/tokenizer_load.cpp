// Reads a Hugging Face tokenizer.json into Tokenizer::Impl. A small scanner
// walks the top level and reads model.vocab / model.merges (~300k strings)
// straight into flat hash tables; every other (small) value is handed to
// nlohmann::json. Checks that the file describes the tokenizer this engine
// implements (BPE, NFC or no normalizer, Qwen2 Split regex + ByteLevel).
#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "engine/tokenizer_impl.h"
#include "engine/unicode.h"
#include "kernels/base.h"

namespace qvl {
namespace tok_detail {

ByteMap::ByteMap() {
  std::fill(std::begin(to_byte), std::end(to_byte), int16_t(-1));
  uint32_t extra = 256;
  for (int b = 0; b < 256; ++b) {
    bool keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    to_cp[b] = keep ? uint32_t(b) : extra++;
    to_byte[to_cp[b]] = int16_t(b);
  }
}

const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

void AddedMatcher::add(const Added* a) {
  auto& v = by_first[uint8_t(a->content[0])];
  v.push_back(a);
  std::stable_sort(v.begin(), v.end(),
                   [](const Added* x, const Added* y) { return x->content.size() > y->content.size(); });
}

bool AddedMatcher::empty() const {
  for (const auto& v : by_first)
    if (!v.empty()) return false;
  return true;
}

namespace {
uint64_t fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (char c : s) h = (h ^ uint8_t(c)) * 1099511628211ull;
  return h ^ (h >> 29);
}
}  // namespace

void TokenIndex::reserve(size_t n) {
  size_t cap = 16;
  while (cap < n + n / 2) cap <<= 1;
  if (cap <= slots_.size()) return;
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(cap, Slot{});
  for (const Slot& s : old) {
    if (s.id < 0) continue;
    size_t i = s.hash & (cap - 1);
    while (slots_[i].id >= 0) i = (i + 1) & (cap - 1);
    slots_[i] = s;
  }
}

void TokenIndex::grow() { reserve(slots_.empty() ? 16 : slots_.size()); }

bool TokenIndex::insert(std::string_view key, int32_t id) {
  if ((count_ + 1) * 3 > slots_.size() * 2) grow();
  uint64_t h = fnv1a(key);
  size_t mask = slots_.size() - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    Slot& s = slots_[i];
    if (s.id < 0) {
      s = {h, uint32_t(arena_.size()), uint32_t(key.size()), id};
      arena_.append(key);
      ++count_;
      return true;
    }
    if (s.hash == h && std::string_view(arena_).substr(s.off, s.len) == key) return false;
  }
}

int32_t TokenIndex::find(std::string_view key) const {
  if (slots_.empty()) return -1;
  uint64_t h = fnv1a(key);
  size_t mask = slots_.size() - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    const Slot& s = slots_[i];
    if (s.id < 0) return -1;
    if (s.hash == h && std::string_view(arena_).substr(s.off, s.len) == key) return s.id;
  }
}

void MergeTable::reserve(size_t n) {
  size_t cap = 16;
  while (cap < 2 * n) cap <<= 1;
  slots_.assign(cap, Slot{});
  mask_ = cap - 1;
}

void MergeTable::insert(int32_t a, int32_t b, int32_t rank, int32_t merged) {
  uint64_t key = uint64_t(uint32_t(a)) << 32 | uint32_t(b);
  for (size_t i = mix(key) & mask_;; i = (i + 1) & mask_) {
    Slot& s = slots_[i];
    if (s.rank < 0) {
      s = {key, rank, merged};
      return;
    }
    if (s.key == key) return;  // a repeated merge keeps its first (lowest) rank
  }
}

}  // namespace tok_detail

namespace {

using namespace tok_detail;
using Json = nlohmann::json;

// The only pre-tokenizer regex this engine implements (Qwen2 / Qwen3).
constexpr std::string_view kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// Minimal JSON reader over the file text: strings, integers, structure, and
// skipping (the skipped text is then parsed by nlohmann::json, which checks it).
struct Scanner {
  const char *begin, *p, *end;
  const std::string& file;

  [[noreturn]] void fail(const char* what) const {
    throw Error(strfmt("%s: not valid JSON at byte %zu (%s)", file.c_str(), size_t(p - begin), what));
  }
  void ws() {
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) ++p;
  }
  bool next_is(char c) {
    ws();
    return p < end && *p == c;
  }
  void expect(char c) {
    if (!next_is(c)) fail(strfmt("expected '%c'", c).c_str());
    ++p;
  }
  // After a member / element: true if another follows (',' consumed), false at `close`.
  bool more(char close) {
    ws();
    if (p < end && *p == ',') return ++p, true;
    if (p < end && *p == close) return ++p, false;
    fail("expected ',' or a closing bracket");
  }
  uint32_t hex4() {
    if (end - p < 4) fail("short \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i, ++p) {
      char c = *p;
      int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      if (d < 0) fail("bad \\u escape");
      v = v << 4 | uint32_t(d);
    }
    return v;
  }
  void string(std::string& out) {
    out.clear();
    expect('"');
    for (;;) {
      const char* q = p;
      while (q < end && *q != '"' && *q != '\\' && uint8_t(*q) >= 0x20) ++q;
      out.append(p, q);
      p = q;
      if (p >= end) fail("unterminated string");
      if (*p == '"') return void(++p);
      if (*p != '\\') fail("control character in string");
      if (++p >= end) fail("unterminated string");
      char e = *p++;
      switch (e) {
        case '"': case '\\': case '/': out += e; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00 && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
            p += 2;
            uint32_t lo = hex4();
            if (lo < 0xDC00 || lo > 0xDFFF) fail("bad surrogate pair");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xD800 && cp < 0xE000) {
            fail("lone surrogate");
          }
          unicode::append_utf8(out, cp);
          break;
        }
        default: fail("bad escape");
      }
    }
  }
  int64_t integer() {
    ws();
    const char* q = p;
    int64_t v = 0;
    while (q < end && *q >= '0' && *q <= '9' && q - p < 12) v = v * 10 + (*q++ - '0');
    if (q == p || (q < end && (*q == '.' || *q == 'e' || *q == 'E' || (*q >= '0' && *q <= '9'))))
      fail("expected a token id");
    p = q;
    return v;
  }
  // Skips one value and returns it parsed by nlohmann::json.
  Json value() {
    ws();
    const char* start = p;
    int depth = 0;
    std::string tmp;
    for (;;) {
      if (p >= end) fail("unexpected end");
      char c = *p;
      if (depth == 0 && (c == ',' || c == '}' || c == ']')) break;  // end of a scalar
      if (c == '"') {
        string(tmp);
        if (depth == 0) break;
        continue;
      }
      ++p;
      if (c == '{' || c == '[') ++depth;
      if (c == '}' || c == ']') {
        if (--depth == 0) break;
      }
    }
    try {
      return Json::parse(start, p);
    } catch (const Json::exception& e) {
      std::string msg = e.what();
      std::replace(msg.begin(), msg.end(), '\n', ' ');
      fail(msg.c_str());
    }
  }
};

// j[key] as a string when j is an object holding a string there, else "".
std::string str_at(const Json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_string()) return "";
  return j[key].get<std::string>();
}

void check_pipeline(const Json& top, const Json& model, const char* f, bool* nfc) {
  QVL_CHECK(!model.contains("type") || str_at(model, "type") == "BPE", "%s: model type is not BPE", f);
  QVL_CHECK(str_at(model, "continuing_subword_prefix").empty() && str_at(model, "end_of_word_suffix").empty(),
            "%s: BPE subword prefix/suffix is not supported", f);
  const Json null;
  const Json& norm = top.contains("normalizer") ? top["normalizer"] : null;
  QVL_CHECK(norm.is_null() || str_at(norm, "type") == "NFC", "%s: normalizer %s is not supported (only NFC)",
            f, norm.dump().c_str());
  *nfc = !norm.is_null();
  const Json& pre = top.contains("pre_tokenizer") ? top["pre_tokenizer"] : null;
  const Json& seq = pre.is_object() && pre.contains("pretokenizers") ? pre["pretokenizers"] : null;
  bool pre_ok = str_at(pre, "type") == "Sequence" && seq.is_array() && seq.size() == 2 &&
                str_at(seq[0], "type") == "Split" && seq[0].contains("pattern") &&
                str_at(seq[0]["pattern"], "Regex") == kQwen2Regex && str_at(seq[1], "type") == "ByteLevel" &&
                !(seq[1].contains("add_prefix_space") && seq[1]["add_prefix_space"] == true);
  QVL_CHECK(pre_ok, "%s: pre_tokenizer is not the Qwen2 Split regex + ByteLevel", f);
}

// Bytes a token string stands for (HF ByteLevel decoder): each character
// mapped back to its byte, or the string's own UTF-8 if any character is
// outside the byte alphabet.
std::string token_string_to_bytes(std::string_view tok) {
  const ByteMap& m = byte_map();
  std::string out;
  for (size_t i = 0; i < tok.size();) {
    size_t len;
    int32_t cp = unicode::decode_utf8(tok.data() + i, tok.size() - i, &len);
    if (cp < 0 || cp >= 512 || m.to_byte[cp] < 0) return std::string(tok);
    out += char(m.to_byte[cp]);
    i += len;
  }
  return out;
}

}  // namespace

void Tokenizer::Impl::load(const std::string& text) {
  const char* f = path.c_str();
  Scanner sc{text.data(), text.data(), text.data() + text.size(), path};
  Json top = Json::object(), model = Json::object();
  std::vector<std::pair<std::string, std::string>> merge_pairs;
  bool have_vocab = false, have_merges = false, have_model = false;
  std::string key, a, b;
  int64_t max_id = -1;

  sc.expect('{');
  if (!sc.next_is('}')) do {
      sc.string(key);
      sc.expect(':');
      if (key != "model" || !sc.next_is('{')) {
        top[key] = sc.value();
        continue;
      }
      have_model = true;
      sc.expect('{');
      if (!sc.next_is('}')) do {
          sc.string(key);
          sc.expect(':');
          if (key == "vocab" && sc.next_is('{')) {
            have_vocab = true;
            sc.expect('{');
            if (!sc.next_is('}')) do {
                sc.string(a);
                sc.expect(':');
                int64_t id = sc.integer();
                QVL_CHECK(id < (1 << 30), "%s: vocab entry '%s' has a bad id", f, a.c_str());
                vocab.insert(a, int32_t(id));
                if (size_t(id) >= id_string.size()) id_string.resize(size_t(id) + 1);
                id_string[size_t(id)] = a;
                max_id = std::max(max_id, id);
              } while (sc.more('}'));
            else ++sc.p;
          } else if (key == "merges" && sc.next_is('[')) {
            have_merges = true;
            sc.expect('[');
            if (!sc.next_is(']')) do {
                if (sc.next_is('[')) {  // ["a", "b"]
                  sc.expect('[');
                  sc.string(a);
                  sc.expect(',');
                  sc.string(b);
                  sc.expect(']');
                } else {  // "a b"
                  sc.string(a);
                  size_t sp = a.find(' ');
                  QVL_CHECK(sp != std::string::npos && a.find(' ', sp + 1) == std::string::npos,
                            "%s: merge %zu '%s' is not two tokens", f, merge_pairs.size(), a.c_str());
                  b = a.substr(sp + 1);
                  a.resize(sp);
                }
                merge_pairs.emplace_back(a, b);
              } while (sc.more(']'));
            else ++sc.p;
          } else {
            model[key] = sc.value();
          }
        } while (sc.more('}'));
      else ++sc.p;
    } while (sc.more('}'));
  else ++sc.p;
  sc.ws();
  QVL_CHECK(sc.p == sc.end, "%s: not valid JSON at byte %zu (text after the top-level object)", f,
            size_t(sc.p - sc.begin));
  QVL_CHECK(have_model, "%s: no \"model\" object", f);
  QVL_CHECK(have_vocab, "%s: model.vocab missing", f);
  QVL_CHECK(have_merges, "%s: model.merges missing", f);

  check_pipeline(top, model, f, &nfc);
  if (model.contains("ignore_merges") && model["ignore_merges"].is_boolean()) ignore_merges = model["ignore_merges"];

  const Json& at = top.contains("added_tokens") ? top["added_tokens"] : Json::array();
  QVL_CHECK(at.is_array() || at.is_null(), "%s: added_tokens is not a list", f);
  if (at.is_array()) {
    for (const Json& t : at) {
      QVL_CHECK(t.is_object() && t.contains("id") && t["id"].is_number_integer() && t.contains("content") &&
                    t["content"].is_string() && !t["content"].get<std::string>().empty(),
                "%s: malformed added_tokens entry", f);
      int64_t id = t["id"];
      QVL_CHECK(id >= 0 && id < (1 << 30), "%s: added token id %lld out of range", f, (long long)id);
      added.push_back({t["content"], int32_t(id), t.contains("special") && t["special"] == true,
                       t.contains("normalized") && t["normalized"] == true});
      max_id = std::max(max_id, id);
    }
  }

  id_string.resize(size_t(max_id + 1));
  id_bytes.resize(size_t(max_id + 1));
  id_kind.assign(size_t(max_id + 1), 0);
  for (size_t id = 0; id < id_string.size(); ++id) {
    if (id_string[id].empty()) continue;  // a hole in the id range
    id_bytes[id] = token_string_to_bytes(id_string[id]);
    id_kind[id] = 1;
  }
  for (const Added& t : added) {
    id_string[size_t(t.id)] = t.content;
    id_bytes[size_t(t.id)] = token_string_to_bytes(t.content);
    id_kind[size_t(t.id)] = t.special ? 3 : 2;
    added_by.insert(t.content, t.id);
    (t.normalized && nfc ? norm_matcher : raw_matcher).add(&t);
  }

  const ByteMap& bm = byte_map();
  for (int c = 0; c < 256; ++c) {
    std::string s;
    unicode::append_utf8(s, bm.to_cp[c]);
    byte_id[c] = vocab.find(s);
    QVL_CHECK(byte_id[c] >= 0, "%s: vocab lacks the byte token for 0x%02X", f, c);
  }

  merges.reserve(merge_pairs.size());
  for (size_t r = 0; r < merge_pairs.size(); ++r) {
    const auto& [x, y] = merge_pairs[r];
    int32_t ia = vocab.find(x), ib = vocab.find(y), ic = vocab.find(x + y);
    QVL_CHECK(ia >= 0 && ib >= 0 && ic >= 0, "%s: merge %zu ('%s' '%s') uses a token missing from the vocab", f,
              r, x.c_str(), y.c_str());
    merges.insert(ia, ib, int32_t(r), ic);
  }
}

}  // namespace qvl
