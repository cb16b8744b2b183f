// Internals shared by tokenizer.cpp (encode/decode) and tokenizer_load.cpp
// (reading tokenizer.json): the byte↔unicode alphabet, added-token matcher,
// flat hash tables for the vocabulary and the merge ranks, Tokenizer::Impl.
// Not part of the engine's interface.
#pragma once
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/tokenizer.h"

namespace qvl::tok_detail {

// GPT-2 byte → code point alphabet: printable Latin-1 bytes map to
// themselves, the other 68 bytes to U+0100.. in byte order.
struct ByteMap {
  uint32_t to_cp[256];
  int16_t to_byte[512];  // code point → byte, -1 outside the alphabet
  ByteMap();
};
const ByteMap& byte_map();

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using WordCache = std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>>;

struct Added {
  std::string content;
  int32_t id;
  bool special, normalized;
};

// Finds added tokens in text: at the leftmost position where any matches,
// the longest one wins (HF's aho-corasick LeftmostLongest).
struct AddedMatcher {
  std::vector<const Added*> by_first[256];  // by first byte, longest first

  void add(const Added* a);
  bool empty() const;
  // fn(piece, id) for each piece in order: id = -1 for plain text between matches.
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

// String → id, open addressing; keys live in one arena.
class TokenIndex {
 public:
  void reserve(size_t n);
  bool insert(std::string_view key, int32_t id);  // false when already present
  int32_t find(std::string_view key) const;       // -1 when absent
  size_t size() const { return count_; }

 private:
  struct Slot {
    uint64_t hash = 0;
    uint32_t off = 0, len = 0;
    int32_t id = -1;  // -1: empty
  };
  void grow();
  std::string arena_;
  std::vector<Slot> slots_;
  size_t count_ = 0;
};

// (left id, right id) → (merge rank, merged id), open addressing.
class MergeTable {
 public:
  void reserve(size_t n);
  void insert(int32_t a, int32_t b, int32_t rank, int32_t merged);  // keeps the lowest rank
  // Returns false when (a, b) is not a merge.
  bool find(int32_t a, int32_t b, int32_t* rank, int32_t* merged) const {
    if (slots_.empty()) return false;
    uint64_t key = uint64_t(uint32_t(a)) << 32 | uint32_t(b);
    for (size_t i = mix(key) & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.rank < 0) return false;
      if (s.key == key) {
        *rank = s.rank, *merged = s.merged;
        return true;
      }
    }
  }

 private:
  struct Slot {
    uint64_t key = 0;
    int32_t rank = -1, merged = -1;  // rank -1: empty
  };
  static uint64_t mix(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return k;
  }
  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

}  // namespace qvl::tok_detail

namespace qvl {

struct Tokenizer::Impl {
  std::string path;
  tok_detail::TokenIndex vocab;     // token string (byte alphabet) → id
  tok_detail::TokenIndex added_by;  // added token content → id
  std::vector<std::string> id_string, id_bytes;
  std::vector<uint8_t> id_kind;  // 0 none, 1 vocab, 2 added, 3 special added
  std::vector<tok_detail::Added> added;
  tok_detail::AddedMatcher raw_matcher, norm_matcher;
  int32_t byte_id[256];
  tok_detail::MergeTable merges;
  bool nfc = false, ignore_merges = false;

  mutable std::mutex cache_mu;
  mutable tok_detail::WordCache cache;  // pre-token bytes → ids

  void load(const std::string& file);  // tokenizer_load.cpp
  void bpe(std::string_view word, std::vector<int32_t>& out) const;
  void encode_plain(std::string_view s, std::vector<int64_t>& ids) const;
};

}  // namespace qvl
