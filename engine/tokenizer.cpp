// Byte-level BPE tokenizer (Hugging Face tokenizer.json, Qwen2/Qwen3 family).
// encode: added tokens (leftmost-longest) → NFC → Qwen2 pre-tokenizer →
// bytes → BPE by merge rank (heap over a linked list of symbols, word cache).
// decode: token bytes → lossy UTF-8. See tokenizer.h for the contract.
#include "engine/tokenizer.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <queue>
#include <unordered_map>

#include "engine/unicode.h"
#include "kernels/base.h"

namespace qvl {
namespace {

using unicode::CharClass;

// The only pre-tokenizer regex this matcher implements (Qwen2 / Qwen3).
constexpr std::string_view kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <typename V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

// GPT-2 byte → code point table: printable Latin-1 bytes map to themselves,
// the other 68 bytes to U+0100.. in byte order.
struct ByteMap {
  uint32_t to_cp[256];
  int16_t to_byte[512];
  ByteMap() {
    std::fill(std::begin(to_byte), std::end(to_byte), int16_t(-1));
    uint32_t extra = 256;
    for (int b = 0; b < 256; ++b) {
      bool keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      to_cp[b] = keep ? uint32_t(b) : extra++;
      to_byte[to_cp[b]] = int16_t(b);
    }
  }
};
const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

// Bytes a token string stands for (HF ByteLevel decoder): each character
// mapped back to its byte, or the string's own UTF-8 if any character is
// outside the byte alphabet.
std::string token_string_to_bytes(const std::string& tok) {
  const ByteMap& m = byte_map();
  std::string out;
  for (size_t i = 0; i < tok.size();) {
    size_t len;
    int32_t cp = unicode::decode_utf8(tok.data() + i, tok.size() - i, &len);
    if (cp < 0 || cp >= 512 || m.to_byte[cp] < 0) return tok;
    out += char(m.to_byte[cp]);
    i += len;
  }
  return out;
}

struct Added {
  std::string content;
  int32_t id;
  bool special, normalized;
};

// Finds added tokens in text: at the leftmost position where any matches,
// the longest one wins (HF's aho-corasick LeftmostLongest).
struct AddedMatcher {
  std::vector<const Added*> by_first[256];  // longest first

  void add(const Added* a) {
    auto& v = by_first[uint8_t(a->content[0])];
    v.push_back(a);
    std::stable_sort(v.begin(), v.end(), [](const Added* x, const Added* y) {
      return x->content.size() > y->content.size();
    });
  }
  bool empty() const {
    for (const auto& v : by_first)
      if (!v.empty()) return false;
    return true;
  }
  // fn(piece, id): id = -1 for the plain text between matches.
  template <typename F>
  void split(std::string_view s, F&& fn) const {
    size_t plain = 0;
    for (size_t i = 0; i < s.size();) {
      const Added* hit = nullptr;
      for (const Added* a : by_first[uint8_t(s[i])])
        if (s.compare(i, a->content.size(), a->content) == 0) {
          hit = a;
          break;
        }
      if (!hit) {
        ++i;
        continue;
      }
      if (i > plain) fn(s.substr(plain, i - plain), -1);
      fn(s.substr(i, hit->content.size()), hit->id);
      i += hit->content.size();
      plain = i;
    }
    if (plain < s.size()) fn(s.substr(plain), -1);
  }
};

// Case-insensitive match of the letter after an apostrophe ((?i:...) uses
// Unicode simple case folding; U+017F LONG S folds to 's').
inline uint32_t fold_ascii(uint32_t cp) {
  if (cp >= 'A' && cp <= 'Z') return cp + 32;
  if (cp == 0x17F) return 's';
  return cp;
}

// Splits valid UTF-8 into pre-tokens exactly like the Qwen2 regex
//   (?i:'s|'t|'re|'ve|'m|'ll|'d) | [^\r\n\p{L}\p{N}]?\p{L}+ | \p{N}
//   | ?[^\s\p{L}\p{N}]+[\r\n]* | \s*[\r\n]+ | \s+(?!\S) | \s+
// with leftmost-first alternation. Every character belongs to some match.
void pretokenize(std::string_view s, std::vector<std::string_view>& out) {
  std::vector<uint32_t> cp;
  std::vector<CharClass> cls;
  std::vector<uint32_t> off;
  cp.reserve(s.size());
  cls.reserve(s.size());
  off.reserve(s.size() + 1);
  for (size_t i = 0; i < s.size();) {
    size_t len;
    int32_t c = unicode::decode_utf8(s.data() + i, s.size() - i, &len);
    uint32_t u = c < 0 ? 0xFFFD : uint32_t(c);
    cp.push_back(u);
    cls.push_back(unicode::char_class(u));
    off.push_back(uint32_t(i));
    i += len;
  }
  off.push_back(uint32_t(s.size()));
  const size_t n = cp.size();
  auto is_nl = [&](size_t k) { return cp[k] == '\r' || cp[k] == '\n'; };
  auto run = [&](size_t k, CharClass c) {
    while (k < n && cls[k] == c) ++k;
    return k;
  };

  for (size_t i = 0; i < n;) {
    size_t j = 0;
    const uint32_t c = cp[i];
    const CharClass k = cls[i];
    if (c == '\'' && i + 1 < n) {  // contractions
      uint32_t a = fold_ascii(cp[i + 1]);
      uint32_t b = i + 2 < n ? fold_ascii(cp[i + 2]) : 0;
      if (a == 's' || a == 't' || a == 'm' || a == 'd')
        j = i + 2;
      else if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
        j = i + 3;
    }
    if (!j && k == CharClass::Letter) {
      j = run(i, CharClass::Letter);
    } else if (!j && k != CharClass::Number && !is_nl(i) && i + 1 < n &&
               cls[i + 1] == CharClass::Letter) {
      j = run(i + 1, CharClass::Letter);  // one leading non-letter/digit/newline
    } else if (!j && k == CharClass::Number) {
      j = i + 1;
    }
    if (!j) {
      size_t t = (c == ' ' && i + 1 < n && cls[i + 1] == CharClass::Other) ? i + 1 : i;
      if (cls[t] == CharClass::Other) {
        j = run(t, CharClass::Other);
        while (j < n && is_nl(j)) ++j;
      }
    }
    if (!j) {  // whitespace run [i, e)
      size_t e = run(i, CharClass::Space);
      size_t last_nl = n;
      for (size_t q = e; q > i; --q)
        if (is_nl(q - 1)) {
          last_nl = q - 1;
          break;
        }
      if (last_nl < n)
        j = last_nl + 1;  // \s*[\r\n]+
      else if (e == n || e - 1 == i)
        j = e;  // \s+(?!\S) at the end, or a lone \s+
      else
        j = e - 1;  // \s+(?!\S): leave the last space to the next word
    }
    out.push_back(s.substr(off[i], off[j] - off[i]));
    i = j;
  }
}

}  // namespace

struct Tokenizer::Impl {
  std::string path;
  StringMap<int32_t> vocab;     // token string → id (model vocab)
  StringMap<int32_t> added_by;  // added token content → id
  std::vector<std::string> id_string, id_bytes;
  std::vector<uint8_t> id_kind;  // 0 none, 1 vocab, 2 added, 3 special added
  std::vector<Added> added;
  AddedMatcher raw_matcher, norm_matcher;
  int32_t byte_id[256];
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges;  // (a,b) → (rank, merged)
  bool nfc = false, ignore_merges = false;

  mutable std::mutex cache_mu;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache;

  void load(const nlohmann::json& j);
  void bpe(std::string_view word, std::vector<int32_t>& out) const;
  void encode_plain(std::string_view s, std::vector<int64_t>& ids) const;
};

// j[key] as a string when j is an object holding a string there, else "".
std::string str_at(const nlohmann::json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_string()) return "";
  return j[key].get<std::string>();
}

void Tokenizer::Impl::load(const nlohmann::json& j) {
  const char* f = path.c_str();
  QVL_CHECK(j.is_object() && j.contains("model") && j["model"].is_object(), "%s: no \"model\" object", f);
  const auto& m = j["model"];
  QVL_CHECK(!m.contains("type") || str_at(m, "type") == "BPE", "%s: model type is not BPE", f);
  QVL_CHECK(str_at(m, "continuing_subword_prefix").empty() && str_at(m, "end_of_word_suffix").empty(),
            "%s: BPE subword prefix/suffix is not supported", f);
  if (m.contains("ignore_merges") && m["ignore_merges"].is_boolean()) ignore_merges = m["ignore_merges"];

  const nlohmann::json null;
  const auto& norm = j.contains("normalizer") ? j["normalizer"] : null;
  QVL_CHECK(norm.is_null() || str_at(norm, "type") == "NFC", "%s: normalizer %s is not supported (only NFC)",
            f, norm.dump().c_str());
  nfc = !norm.is_null();
  const auto& pre = j.contains("pre_tokenizer") ? j["pre_tokenizer"] : null;
  const auto& seq = pre.is_object() && pre.contains("pretokenizers") ? pre["pretokenizers"] : null;
  bool pre_ok = str_at(pre, "type") == "Sequence" && seq.is_array() && seq.size() == 2 &&
                str_at(seq[0], "type") == "Split" && seq[0].contains("pattern") &&
                str_at(seq[0]["pattern"], "Regex") == kQwen2Regex && str_at(seq[1], "type") == "ByteLevel" &&
                !(seq[1].contains("add_prefix_space") && seq[1]["add_prefix_space"] == true);
  QVL_CHECK(pre_ok, "%s: pre_tokenizer is not the Qwen2 Split regex + ByteLevel", f);

  QVL_CHECK(m.contains("vocab") && m["vocab"].is_object(), "%s: model.vocab missing", f);
  int64_t max_id = -1;
  vocab.reserve(m["vocab"].size());
  for (const auto& [tok, id] : m["vocab"].items()) {
    QVL_CHECK(id.is_number_integer() && id.get<int64_t>() >= 0 && id.get<int64_t>() < (1 << 30),
              "%s: vocab entry '%s' has a bad id", f, tok.c_str());
    vocab.emplace(tok, id.get<int32_t>());
    max_id = std::max<int64_t>(max_id, id.get<int64_t>());
  }
  const auto& at = j.value("added_tokens", nlohmann::json::array());
  for (const auto& a : at) {
    QVL_CHECK(a.is_object() && a.contains("id") && a["id"].is_number_integer() && a.contains("content") &&
                  a["content"].is_string() && !a["content"].get<std::string>().empty(),
              "%s: malformed added_tokens entry", f);
    int64_t id = a["id"];
    QVL_CHECK(id >= 0 && id < (1 << 30), "%s: added token id %lld out of range", f, (long long)id);
    added.push_back({a["content"], int32_t(id), a.contains("special") && a["special"] == true,
                     a.contains("normalized") && a["normalized"] == true});
    max_id = std::max(max_id, id);
  }
  id_string.resize(size_t(max_id + 1));
  id_bytes.resize(size_t(max_id + 1));
  id_kind.assign(size_t(max_id + 1), 0);
  for (const auto& [tok, id] : vocab) {
    id_string[size_t(id)] = tok;
    id_bytes[size_t(id)] = token_string_to_bytes(tok);
    id_kind[size_t(id)] = 1;
  }
  for (const Added& a : added) {
    id_string[size_t(a.id)] = a.content;
    id_bytes[size_t(a.id)] = token_string_to_bytes(a.content);
    id_kind[size_t(a.id)] = a.special ? 3 : 2;
    added_by[a.content] = a.id;
    (a.normalized && nfc ? norm_matcher : raw_matcher).add(&a);
  }

  const ByteMap& bm = byte_map();
  for (int b = 0; b < 256; ++b) {
    std::string s;
    unicode::append_utf8(s, bm.to_cp[b]);
    auto it = vocab.find(s);
    QVL_CHECK(it != vocab.end(), "%s: vocab lacks the byte token for 0x%02X", f, b);
    byte_id[b] = it->second;
  }

  QVL_CHECK(m.contains("merges") && m["merges"].is_array(), "%s: model.merges missing", f);
  const auto& mg = m["merges"];
  merges.reserve(mg.size() * 2);
  for (size_t r = 0; r < mg.size(); ++r) {
    std::string a, b;
    if (mg[r].is_string()) {
      const std::string& s = mg[r].get_ref<const std::string&>();
      size_t sp = s.find(' ');
      QVL_CHECK(sp != std::string::npos && s.find(' ', sp + 1) == std::string::npos,
                "%s: merge %zu '%s' is not two tokens", f, r, s.c_str());
      a = s.substr(0, sp), b = s.substr(sp + 1);
    } else {
      QVL_CHECK(mg[r].is_array() && mg[r].size() == 2 && mg[r][0].is_string() && mg[r][1].is_string(),
                "%s: merge %zu is not a pair of strings", f, r);
      a = mg[r][0], b = mg[r][1];
    }
    auto ia = vocab.find(a), ib = vocab.find(b), ic = vocab.find(a + b);
    QVL_CHECK(ia != vocab.end() && ib != vocab.end() && ic != vocab.end(),
              "%s: merge %zu ('%s' '%s') uses a token missing from the vocab", f, r, a.c_str(), b.c_str());
    uint64_t key = uint64_t(uint32_t(ia->second)) << 32 | uint32_t(ib->second);
    merges.emplace(key, std::make_pair(int32_t(r), ic->second));  // first (lowest) rank wins
  }
}

// BPE of one pre-token's bytes: repeatedly merge the adjacent pair of lowest
// rank (leftmost first on ties), via a min-heap of candidate pairs over a
// doubly linked list of symbols; stale heap entries are skipped.
void Tokenizer::Impl::bpe(std::string_view word, std::vector<int32_t>& out) const {
  const size_t n = word.size();
  if (ignore_merges) {
    std::string s;
    for (char ch : word) unicode::append_utf8(s, byte_map().to_cp[uint8_t(ch)]);
    if (auto it = vocab.find(s); it != vocab.end()) {
      out.push_back(it->second);
      return;
    }
  }
  struct Sym {
    int32_t id, prev, next;
  };
  struct Cand {
    int32_t rank, pos, left, right, merged;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::vector<Sym> sym(n);
  for (size_t i = 0; i < n; ++i)
    sym[i] = {byte_id[uint8_t(word[i])], int32_t(i) - 1, i + 1 < n ? int32_t(i + 1) : -1};
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto consider = [&](int32_t l, int32_t r) {
    auto it = merges.find(uint64_t(uint32_t(sym[l].id)) << 32 | uint32_t(sym[r].id));
    if (it != merges.end()) heap.push({it->second.first, l, sym[l].id, sym[r].id, it->second.second});
  };
  for (size_t i = 0; i + 1 < n; ++i) consider(int32_t(i), int32_t(i + 1));
  while (!heap.empty()) {
    Cand c = heap.top();
    heap.pop();
    Sym& l = sym[c.pos];
    if (l.id != c.left || l.next < 0 || sym[l.next].id != c.right) continue;
    Sym& r = sym[l.next];
    l.id = c.merged;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = c.pos;
    r.id = -1;
    if (l.prev >= 0) consider(l.prev, c.pos);
    if (l.next >= 0) consider(c.pos, l.next);
  }
  for (int32_t i = 0; i >= 0; i = sym[i].next) out.push_back(sym[i].id);
}

void Tokenizer::Impl::encode_plain(std::string_view s, std::vector<int64_t>& ids) const {
  std::vector<std::string_view> words;
  pretokenize(s, words);
  std::vector<int32_t> tmp;
  for (std::string_view w : words) {
    auto it = cache.find(w);
    if (it == cache.end()) {
      tmp.clear();
      bpe(w, tmp);
      if (cache.size() >= 100000) cache.clear();
      it = cache.emplace(std::string(w), tmp).first;
    }
    ids.insert(ids.end(), it->second.begin(), it->second.end());
  }
}

Tokenizer::Tokenizer(const std::string& tokenizer_json) : p_(std::make_unique<Impl>()) {
  p_->path = tokenizer_json;
  std::ifstream in(tokenizer_json, std::ios::binary);
  QVL_CHECK(in.good(), "%s: cannot open tokenizer file", tokenizer_json.c_str());
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    std::string msg = e.what();
    std::replace(msg.begin(), msg.end(), '\n', ' ');
    throw Error(strfmt("%s: not valid JSON (%s)", tokenizer_json.c_str(), msg.c_str()));
  }
  try {
    p_->load(j);
  } catch (const nlohmann::json::exception& e) {
    throw Error(strfmt("%s: unexpected tokenizer.json layout (%s)", tokenizer_json.c_str(), e.what()));
  }
}

Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

std::string Tokenizer::locate(const std::string& model_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path d(model_dir);
  if (fs::is_regular_file(d, ec)) return d.string();
  if (fs::is_regular_file(d / "tokenizer.json", ec)) return (d / "tokenizer.json").string();
  fs::path parent = fs::absolute(d, ec).lexically_normal();
  if (!parent.has_filename()) parent = parent.parent_path();  // "dir/" → "dir"
  parent = parent.parent_path();
  if (fs::is_directory(d, ec) && fs::is_regular_file(parent / "tokenizer.json", ec))
    return (parent / "tokenizer.json").string();
  throw Error(strfmt("%s: no tokenizer.json", model_dir.c_str()));
}

std::vector<int64_t> Tokenizer::encode(std::string_view text) const {
  std::string fixed;
  if (!unicode::is_valid_utf8(text)) {
    fixed = unicode::utf8_lossy(text);
    text = fixed;
  }
  std::vector<int64_t> ids;
  ids.reserve(text.size() / 3 + 4);
  std::lock_guard<std::mutex> lock(p_->cache_mu);
  p_->raw_matcher.split(text, [&](std::string_view piece, int32_t id) {
    if (id >= 0) {
      ids.push_back(id);
      return;
    }
    std::string normed = p_->nfc ? unicode::nfc(piece) : std::string(piece);
    if (p_->norm_matcher.empty()) {
      p_->encode_plain(normed, ids);
      return;
    }
    p_->norm_matcher.split(normed, [&](std::string_view sub, int32_t id2) {
      if (id2 >= 0)
        ids.push_back(id2);
      else
        p_->encode_plain(sub, ids);
    });
  });
  return ids;
}

std::string Tokenizer::decode(const std::vector<int64_t>& ids, bool skip_special) const {
  std::string bytes;
  for (int64_t id : ids) {
    if (id < 0 || id >= size()) continue;
    if (skip_special && p_->id_kind[size_t(id)] == 3) continue;
    bytes += p_->id_bytes[size_t(id)];
  }
  return unicode::utf8_lossy(bytes);
}

int64_t Tokenizer::size() const { return int64_t(p_->id_kind.size()); }

int64_t Tokenizer::token_to_id(std::string_view token) const {
  if (auto it = p_->added_by.find(token); it != p_->added_by.end()) return it->second;
  if (auto it = p_->vocab.find(token); it != p_->vocab.end()) return it->second;
  return -1;
}

std::string Tokenizer::id_to_token(int64_t id) const {
  if (id < 0 || id >= size()) return "";
  return p_->id_string[size_t(id)];
}

int64_t Tokenizer::special_id(std::string_view content) const {
  auto it = p_->added_by.find(content);
  QVL_CHECK(it != p_->added_by.end(), "%s: no added token '%.*s'", p_->path.c_str(), int(content.size()),
            content.data());
  return it->second;
}

bool Tokenizer::is_special(int64_t id) const { return id >= 0 && id < size() && p_->id_kind[size_t(id)] == 3; }

const std::string& Tokenizer::token_bytes(int64_t id) const {
  static const std::string kEmpty;
  if (id < 0 || id >= size()) return kEmpty;
  return p_->id_bytes[size_t(id)];
}

const std::string& Tokenizer::path() const { return p_->path; }

std::string StreamDecoder::push(int64_t id) {
  if (skip_special_ && tok_->is_special(id)) return "";
  pending_ += tok_->token_bytes(id);
  std::string out;
  size_t used = unicode::utf8_lossy_prefix(pending_, &out);
  pending_.erase(0, used);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out = unicode::utf8_lossy(pending_);
  pending_.clear();
  return out;
}

}  // namespace qvl
