// Byte-level BPE tokenizer (Hugging Face tokenizer.json, Qwen2/Qwen3 family).
// encode: added tokens (leftmost-longest) → NFC → Qwen2 pre-tokenizer →
// bytes → BPE by merge rank (heap over a linked list of symbols, word cache).
// decode: token bytes → lossy UTF-8. See tokenizer.h for the contract.
#include "engine/tokenizer.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <queue>

#include "engine/tokenizer_impl.h"
#include "engine/unicode.h"
#include "kernels/base.h"

namespace qvl {
namespace {

using unicode::CharClass;
using tok_detail::byte_map;

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

// BPE of one pre-token's bytes: repeatedly merge the adjacent pair of lowest
// rank (leftmost first on ties), via a min-heap of candidate pairs over a
// doubly linked list of symbols; stale heap entries are skipped.
void Tokenizer::Impl::bpe(std::string_view word, std::vector<int32_t>& out) const {
  const size_t n = word.size();
  if (ignore_merges) {
    std::string s;
    for (char ch : word) unicode::append_utf8(s, byte_map().to_cp[uint8_t(ch)]);
    if (int32_t id = vocab.find(s); id >= 0) {
      out.push_back(id);
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
    int32_t rank, merged;
    if (merges.find(sym[l].id, sym[r].id, &rank, &merged)) heap.push({rank, l, sym[l].id, sym[r].id, merged});
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
  constexpr size_t kMaxCachedWord = 256, kMaxCacheEntries = 100000;
  std::vector<int32_t> tmp;
  for (std::string_view w : words) {
    auto it = cache.find(w);
    if (it != cache.end()) {
      ids.insert(ids.end(), it->second.begin(), it->second.end());
      continue;
    }
    tmp.clear();
    bpe(w, tmp);
    ids.insert(ids.end(), tmp.begin(), tmp.end());
    if (w.size() > kMaxCachedWord) continue;  // long runs are rarely repeated
    if (cache.size() >= kMaxCacheEntries) cache.clear();
    cache.emplace(std::string(w), tmp);
  }
}

Tokenizer::Tokenizer(const std::string& tokenizer_json) : p_(std::make_unique<Impl>()) {
  p_->path = tokenizer_json;
  std::ifstream in(tokenizer_json, std::ios::binary);
  QVL_CHECK(in.good(), "%s: cannot open tokenizer file", tokenizer_json.c_str());
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  try {
    p_->load(text);
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
  if (fs::is_regular_file(d, ec)) {
    if (d.extension() == ".json") return d.string();  // the tokenizer.json itself
    d = d.parent_path().empty() ? fs::path(".") : d.parent_path();  // e.g. DIR/text.onnx → DIR
  }
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
  if (int32_t id = p_->added_by.find(token); id >= 0) return id;
  return p_->vocab.find(token);
}

std::string Tokenizer::id_to_token(int64_t id) const {
  if (id < 0 || id >= size()) return "";
  return p_->id_string[size_t(id)];
}

int64_t Tokenizer::special_id(std::string_view content) const {
  int32_t id = p_->added_by.find(content);
  QVL_CHECK(id >= 0, "%s: no added token '%.*s'", p_->path.c_str(), int(content.size()), content.data());
  return id;
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
