// Byte-level BPE tokenizer read from a Hugging Face tokenizer.json (Qwen2/3
// family): added tokens matched first (leftmost-longest), NFC, the Qwen2
// pre-tokenizer regex (hand-written matcher), GPT-2 byte↔unicode mapping, BPE
// by merge rank. encode() equals HF `encode(text, add_special_tokens=False)`;
// decode() equals HF `decode(ids, skip_special_tokens)` incl. lossy UTF-8.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace qvl {

class Tokenizer {
 public:
  // Loads tokenizer.json; throws qvl::Error naming the file when it is
  // missing or not a byte-level BPE tokenizer.json.
  explicit Tokenizer(const std::string& tokenizer_json);
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // The tokenizer.json of a model folder: DIR/tokenizer.json, else the one in
  // DIR's parent. DIR may also be a .json file (used as is) or a file inside
  // the folder (e.g. DIR/text.onnx). Throws "<dir>: no tokenizer.json".
  static std::string locate(const std::string& model_dir);
  static Tokenizer from_model_dir(const std::string& model_dir) { return Tokenizer(locate(model_dir)); }

  // Text → ids. Added tokens in the text (e.g. "<|im_start|>") become their
  // ids; nothing is prepended or appended. Invalid UTF-8 input is first
  // replaced as by utf8_lossy. Thread-safe.
  std::vector<int64_t> encode(std::string_view text) const;

  // Ids → text. Ids outside [0, size()) decode to nothing; with skip_special
  // the special added tokens (<|im_end|>, <|image_pad|>, ... ) are dropped.
  // Invalid UTF-8 byte runs become U+FFFD as HF does.
  std::string decode(const std::vector<int64_t>& ids, bool skip_special = false) const;

  // Number of ids (largest id + 1): 151669 for Qwen3.
  int64_t size() const;
  // Token string as stored in tokenizer.json ("Ġthe", "<|im_end|>") → id, or -1.
  int64_t token_to_id(std::string_view token) const;
  // id → token string as stored in tokenizer.json ("" when none).
  std::string id_to_token(int64_t id) const;
  // Id of an added token by its content, e.g. "<|im_end|>"; throws qvl::Error
  // when the tokenizer has no such added token.
  int64_t special_id(std::string_view content) const;
  // True for added tokens marked "special" (those skip_special drops).
  bool is_special(int64_t id) const;
  // The raw bytes an id decodes to (not necessarily valid UTF-8); "" for ids
  // outside [0, size()).
  const std::string& token_bytes(int64_t id) const;
  const std::string& path() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> p_;
};

// Incremental decode for streaming generation: push() returns the text that is
// final so far (only whole UTF-8 characters; a split multi-byte character is
// held back until it completes, U+FFFD as soon as a sequence is known to be
// invalid). push()... + flush() concatenated == Tokenizer::decode(all ids).
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, bool skip_special = true)
      : tok_(&tok), skip_special_(skip_special) {}
  std::string push(int64_t id);
  std::string flush();  // whatever is still held back (a truncated sequence → U+FFFD)

 private:
  const Tokenizer* tok_;
  bool skip_special_;
  std::string pending_;
};

}  // namespace qvl
