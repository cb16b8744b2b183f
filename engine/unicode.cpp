// Unicode tables and algorithms for the tokenizer: character classes, UTF-8
// coding (strict and lossy), and NFC (decompose → canonical order → compose,
// UAX #15) run only over the stretches of text that are not already stable.
#include "engine/unicode.h"

#include <algorithm>
#include <map>
#include <memory>
#include <unordered_map>
#include <vector>

namespace qvl::unicode {
namespace {

#include "engine/unicode_tables.inc"

// Hangul syllable arithmetic (Unicode §3.12).
constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr uint32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount;
constexpr uint32_t kSCount = kLCount * kNCount;

constexpr uint32_t kMaxCp = 0x110000;
constexpr uint32_t kBlock = 256;

// Per code point property word: bits 0-1 CharClass, bit 2 "not an NFC
// boundary", bits 8-15 canonical combining class.
constexpr uint16_t kNotBoundary = 4;

struct Tables {
  std::vector<uint16_t> index;   // [kMaxCp / kBlock] → block number
  std::vector<uint16_t> blocks;  // [n_blocks * kBlock] property words
  std::unordered_map<uint32_t, const uint32_t*> decomp;  // cp → row of kDecompositions
  std::unordered_map<uint64_t, uint32_t> compose;        // (first << 32 | second) → composite

  uint16_t props(uint32_t cp) const {
    if (cp >= kMaxCp) return 0;
    return blocks[size_t(index[cp / kBlock]) * kBlock + cp % kBlock];
  }
};

// White_Space (PropList.txt), unchanged since Unicode 6.3.
constexpr uint32_t kWhiteSpace[][2] = {{0x09, 0x0D}, {0x20, 0x20},     {0x85, 0x85},
                                       {0xA0, 0xA0}, {0x1680, 0x1680}, {0x2000, 0x200A},
                                       {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F},
                                       {0x3000, 0x3000}};

// Expands the range tables into a flat array once, then folds it into a
// two-stage table (identical 256-entry blocks shared).
std::unique_ptr<Tables> build_tables() {
  auto t = std::make_unique<Tables>();
  std::vector<uint16_t> flat(kMaxCp, 0);
  for (const auto& r : kLetterRanges)
    for (uint32_t c = r[0]; c <= r[1]; ++c) flat[c] = uint16_t(CharClass::Letter);
  for (const auto& r : kNumberRanges)
    for (uint32_t c = r[0]; c <= r[1]; ++c) flat[c] = uint16_t(CharClass::Number);
  for (const auto& r : kWhiteSpace)
    for (uint32_t c = r[0]; c <= r[1]; ++c) flat[c] = uint16_t(CharClass::Space);
  for (const auto& r : kNfcNotBoundaryRanges)
    for (uint32_t c = r[0]; c <= r[1]; ++c) flat[c] |= kNotBoundary;
  for (const auto& r : kCccRanges)
    for (uint32_t c = r[0]; c <= r[1]; ++c) flat[c] |= uint16_t(r[2] << 8);

  std::map<std::vector<uint16_t>, uint16_t> seen;
  t->index.resize(kMaxCp / kBlock);
  for (uint32_t b = 0; b < kMaxCp / kBlock; ++b) {
    std::vector<uint16_t> blk(flat.begin() + b * kBlock, flat.begin() + (b + 1) * kBlock);
    auto [it, inserted] = seen.emplace(std::move(blk), uint16_t(seen.size()));
    if (inserted) t->blocks.insert(t->blocks.end(), it->first.begin(), it->first.end());
    t->index[b] = it->second;
  }
  for (const auto& row : kDecompositions) t->decomp.emplace(row[0], row);
  for (const auto& row : kCompositions) t->compose.emplace(uint64_t(row[0]) << 32 | row[1], row[2]);
  return t;
}

const Tables& tables() {
  static const std::unique_ptr<Tables> t = build_tables();
  return *t;
}

// Full canonical decomposition of cp appended to out (Hangul algorithmically).
void decompose(const Tables& t, uint32_t cp, std::vector<uint32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    uint32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount) out.push_back(kTBase + s % kTCount);
    return;
  }
  auto it = t.decomp.find(cp);
  if (it == t.decomp.end()) {
    out.push_back(cp);
    return;
  }
  const uint32_t* row = it->second;
  for (uint32_t k = 0; k < row[1]; ++k) out.push_back(row[2 + k]);
}

// Primary composite of (a, b), or 0 when they do not compose.
uint32_t compose_pair(const Tables& t, uint32_t a, uint32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase &&
      b < kTBase + kTCount)
    return a + (b - kTBase);
  auto it = t.compose.find(uint64_t(a) << 32 | b);
  return it == t.compose.end() ? 0 : it->second;
}

inline uint8_t ccc_of(const Tables& t, uint32_t cp) { return uint8_t(t.props(cp) >> 8); }

// NFC of one stretch of valid UTF-8, appended to out.
void nfc_segment(const Tables& t, std::string_view s, std::string& out) {
  std::vector<uint32_t> d;
  for (size_t i = 0; i < s.size();) {
    size_t len;
    int32_t cp = decode_utf8(s.data() + i, s.size() - i, &len);
    decompose(t, uint32_t(cp < 0 ? 0xFFFD : cp), d);
    i += len;
  }
  // Canonical ordering: stable insertion sort of each run of non-starters.
  for (size_t i = 1; i < d.size(); ++i) {
    uint8_t c = ccc_of(t, d[i]);
    if (c == 0) continue;
    for (size_t j = i; j > 0; --j) {
      uint8_t p = ccc_of(t, d[j - 1]);
      if (p == 0 || p <= c) break;
      std::swap(d[j - 1], d[j]);
    }
  }
  // Canonical composition: a character composes with the last starter unless
  // something between them is a starter or has a combining class >= its own.
  std::vector<uint32_t> r;
  r.reserve(d.size());
  ptrdiff_t starter = -1;
  uint8_t last_cc = 0;
  for (uint32_t cp : d) {
    uint8_t cc = ccc_of(t, cp);
    if (starter >= 0) {
      bool adjacent = r.size() == size_t(starter) + 1;
      bool blocked = !adjacent && (last_cc == 0 || last_cc >= cc);
      if (!blocked) {
        if (uint32_t c = compose_pair(t, r[starter], cp)) {
          r[starter] = c;
          continue;
        }
      }
    }
    if (cc == 0) starter = ptrdiff_t(r.size());
    r.push_back(cp);
    last_cc = cc;
  }
  for (uint32_t cp : r) append_utf8(out, cp);
}

// Length of the well-formed sequence expected after lead byte b (0: invalid
// lead) and the allowed range of the first continuation byte.
inline int utf8_need(uint8_t b, uint8_t* lo, uint8_t* hi) {
  *lo = 0x80, *hi = 0xBF;
  if (b < 0x80) return 0;
  if (b >= 0xC2 && b <= 0xDF) return 1;
  if (b >= 0xE0 && b <= 0xEF) {
    if (b == 0xE0) *lo = 0xA0;
    if (b == 0xED) *hi = 0x9F;
    return 2;
  }
  if (b >= 0xF0 && b <= 0xF4) {
    if (b == 0xF0) *lo = 0x90;
    if (b == 0xF4) *hi = 0x8F;
    return 3;
  }
  return -1;
}

// Decodes from s[0..n): returns bytes of the valid sequence (>0), or -k for
// an invalid maximal subpart of k bytes, or 0 when s is a truncated but so
// far valid sequence that more bytes could complete.
int utf8_step(const uint8_t* s, size_t n) {
  uint8_t lo, hi;
  int need = utf8_need(s[0], &lo, &hi);
  if (need == 0) return 1;
  if (need < 0) return -1;
  int k = 0;
  while (k < need) {
    if (size_t(1 + k) >= n) return 0;
    uint8_t c = s[1 + k];
    bool ok = k == 0 ? (c >= lo && c <= hi) : (c >= 0x80 && c <= 0xBF);
    if (!ok) return -(1 + k);
    ++k;
  }
  return 1 + need;
}

constexpr char kReplacement[] = "\xEF\xBF\xBD";

}  // namespace

const char* version() { return QVL_UNICODE_VERSION; }

CharClass char_class(uint32_t cp) {
  if (cp < 0x80) {
    if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return CharClass::Letter;
    if (cp >= '0' && cp <= '9') return CharClass::Number;
    if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D)) return CharClass::Space;
    return CharClass::Other;
  }
  return CharClass(tables().props(cp) & 3);
}

uint8_t combining_class(uint32_t cp) { return ccc_of(tables(), cp); }

int32_t decode_utf8(const char* s, size_t n, size_t* len) {
  int r = utf8_step(reinterpret_cast<const uint8_t*>(s), n);
  if (r <= 0) {
    *len = 1;
    return -1;
  }
  *len = size_t(r);
  const auto* u = reinterpret_cast<const uint8_t*>(s);
  switch (r) {
    case 1: return u[0];
    case 2: return int32_t((u[0] & 0x1F) << 6 | (u[1] & 0x3F));
    case 3: return int32_t((u[0] & 0x0F) << 12 | (u[1] & 0x3F) << 6 | (u[2] & 0x3F));
    default:
      return int32_t((u[0] & 0x07) << 18 | (u[1] & 0x3F) << 12 | (u[2] & 0x3F) << 6 | (u[3] & 0x3F));
  }
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | cp >> 6);
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | cp >> 12);
    out += char(0x80 | (cp >> 6 & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | cp >> 18);
    out += char(0x80 | (cp >> 12 & 0x3F));
    out += char(0x80 | (cp >> 6 & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

bool is_valid_utf8(std::string_view s) {
  const auto* u = reinterpret_cast<const uint8_t*>(s.data());
  for (size_t i = 0; i < s.size();) {
    if (u[i] < 0x80) {
      ++i;
      continue;
    }
    int r = utf8_step(u + i, s.size() - i);
    if (r <= 0) return false;
    i += size_t(r);
  }
  return true;
}

size_t utf8_lossy_prefix(std::string_view bytes, std::string* out) {
  const auto* u = reinterpret_cast<const uint8_t*>(bytes.data());
  size_t i = 0, n = bytes.size();
  while (i < n) {
    int r = utf8_step(u + i, n - i);
    if (r == 0) break;  // truncated tail: wait for more bytes
    if (r > 0) {
      out->append(bytes.data() + i, size_t(r));
      i += size_t(r);
    } else {
      out->append(kReplacement);
      i += size_t(-r);
    }
  }
  return i;
}

std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t used = utf8_lossy_prefix(bytes, &out);
  if (used < bytes.size()) out.append(kReplacement);  // a truncated sequence is one subpart
  return out;
}

std::string nfc(std::string_view text) {
  const Tables& t = tables();
  std::string out;
  size_t copied = 0;    // bytes of text already in out
  size_t boundary = 0;  // offset of the last NFC boundary character
  bool dirty = false;   // a character after `boundary` may change
  const auto* u = reinterpret_cast<const uint8_t*>(text.data());
  for (size_t i = 0; i < text.size();) {
    if (u[i] < 0x80) {  // ASCII: always a boundary
      if (dirty) {
        out.append(text.substr(copied, boundary - copied));
        nfc_segment(t, text.substr(boundary, i - boundary), out);
        copied = i;
        dirty = false;
      }
      boundary = i++;
      continue;
    }
    size_t len;
    int32_t cp = decode_utf8(text.data() + i, text.size() - i, &len);
    bool is_boundary = cp >= 0 && !(t.props(uint32_t(cp)) & kNotBoundary);
    if (is_boundary) {
      if (dirty) {
        out.append(text.substr(copied, boundary - copied));
        nfc_segment(t, text.substr(boundary, i - boundary), out);
        copied = i;
        dirty = false;
      }
      boundary = i;
    } else {
      dirty = true;
    }
    i += len;
  }
  if (copied == 0 && !dirty) return std::string(text);
  if (dirty) {
    out.append(text.substr(copied, boundary - copied));
    nfc_segment(t, text.substr(boundary), out);
  } else {
    out.append(text.substr(copied));
  }
  return out;
}

}  // namespace qvl::unicode
