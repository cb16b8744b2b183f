// Tokenizer against Hugging Face's own Rust tokenizers: every string of
// tests/data/tokenizer/golden.jsonl (ids, decode, decode skipping specials),
// edge_golden.jsonl (Unicode-version-sensitive characters), the lossy decodes
// of decode_golden.jsonl, the streaming decoder, NFC against Python's
// unicodedata, error handling, and encode throughput on ~1 MB.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/tokenizer.h"
#include "engine/unicode.h"
#include "kernels/base.h"
#include "test_util.h"

namespace {

using qvl::Tokenizer;
using Ids = std::vector<int64_t>;

const Tokenizer& tok() {
  static const Tokenizer t(qvl::test::golden_dir() + "/tokenizer.json");
  return t;
}

std::vector<nlohmann::json> read_jsonl(const std::string& name) {
  std::ifstream in(qvl::test::data_dir() + "/tokenizer/" + name);
  EXPECT_TRUE(in.good()) << name;
  std::vector<nlohmann::json> rows;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

std::string show(const Ids& ids) {
  std::string s = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(ids[i]);
  }
  s += ']';
  return s;
}

TEST(Tokenizer, BasicFacts) {
  EXPECT_EQ(tok().size(), 151669);
  EXPECT_EQ(tok().special_id("<|im_end|>"), 151645);
  EXPECT_EQ(tok().special_id("<|image_pad|>"), 151655);
  EXPECT_EQ(tok().token_to_id("<think>"), 151667);
  EXPECT_EQ(tok().token_to_id("\xC4\xA0the"), 279);  // "Ġthe"
  EXPECT_EQ(tok().id_to_token(279), "\xC4\xA0the");
  EXPECT_EQ(tok().token_bytes(279), " the");
  EXPECT_EQ(tok().token_to_id("no such token"), -1);
  EXPECT_TRUE(tok().is_special(151645));
  EXPECT_FALSE(tok().is_special(151667));  // <think> is an added, non-special token
  EXPECT_THROW(tok().special_id("<|nope|>"), qvl::Error);
  // Vocabulary padding rows (model vocab 151936) and negative ids decode to nothing.
  EXPECT_EQ(tok().decode({151669, 151935, -1, 279}), " the");
  EXPECT_EQ(tok().id_to_token(151700), "");
}

TEST(Tokenizer, GoldenEncodeAndDecode) {
  auto rows = read_jsonl("golden.jsonl");
  ASSERT_EQ(rows.size(), 300u);
  int bad = 0;
  for (const auto& r : rows) {
    std::string text = r["text"];
    Ids want = r["ids"].get<Ids>();
    Ids got = tok().encode(text);
    if (got != want && ++bad <= 10)
      ADD_FAILURE() << r["id"] << " (" << r["cat"] << ") text " << nlohmann::json(text).dump()
                    << "\n  got  " << show(got) << "\n  want " << show(want);
    EXPECT_EQ(tok().decode(want, false), r["decoded"].get<std::string>()) << r["id"];
    EXPECT_EQ(tok().decode(want, true), r["decoded_skip_special"].get<std::string>()) << r["id"];
  }
  EXPECT_EQ(bad, 0) << "golden strings with wrong ids";
}

// Letters/numbers new in Unicode 15-16 and marks whose combining class is
// newer than Unicode 9.0: HF's regex knows the former, its NFC not the latter.
TEST(Tokenizer, GoldenUnicodeVersionEdges) {
  auto rows = read_jsonl("edge_golden.jsonl");
  ASSERT_GE(rows.size(), 200u);
  for (const auto& r : rows)
    EXPECT_EQ(tok().encode(r["text"].get<std::string>()), r["ids"].get<Ids>())
        << r["cat"] << " " << nlohmann::json(r["text"]).dump();
}

TEST(Tokenizer, GoldenLossyDecode) {
  auto rows = read_jsonl("decode_golden.jsonl");
  ASSERT_EQ(rows.size(), 54u);
  for (const auto& r : rows) {
    Ids ids = r["ids"].get<Ids>();
    EXPECT_EQ(tok().decode(ids, false), r["text"].get<std::string>()) << show(ids);
    EXPECT_EQ(tok().decode(ids, true), r["skip_special_text"].get<std::string>()) << show(ids);
  }
}

// Streams every golden id sequence token by token: each piece must be valid
// UTF-8 and all pieces together must equal the one-shot decode.
TEST(Tokenizer, StreamDecoderMatchesDecode) {
  std::vector<Ids> seqs;
  for (const auto& r : read_jsonl("golden.jsonl")) seqs.push_back(r["ids"].get<Ids>());
  for (const auto& r : read_jsonl("decode_golden.jsonl")) seqs.push_back(r["ids"].get<Ids>());
  for (bool skip : {false, true}) {
    for (const Ids& ids : seqs) {
      qvl::StreamDecoder sd(tok(), skip);
      std::string all;
      for (int64_t id : ids) {
        std::string piece = sd.push(id);
        EXPECT_TRUE(qvl::unicode::is_valid_utf8(piece)) << show(ids);
        all += piece;
      }
      all += sd.flush();
      EXPECT_EQ(all, tok().decode(ids, skip)) << show(ids) << " skip=" << skip;
    }
  }
}

TEST(Tokenizer, StreamDecoderHoldsSplitCharacter) {
  // "😀" is F0 9F 98 80; byte tokens arrive one at a time.
  Ids ids;
  for (char b : std::string("\xF0\x9F\x98\x80"))  // single-byte tokens are ids 0..255
    for (int64_t id = 0; id < 256; ++id)
      if (tok().token_bytes(id) == std::string(1, b)) ids.push_back(id);
  ASSERT_EQ(ids.size(), 4u);
  qvl::StreamDecoder sd(tok());
  EXPECT_EQ(sd.push(ids[0]), "");
  EXPECT_EQ(sd.push(ids[1]), "");
  EXPECT_EQ(sd.push(ids[2]), "");
  EXPECT_EQ(sd.push(ids[3]), "\xF0\x9F\x98\x80");
  // A lead byte followed by ASCII: invalid as soon as the ASCII arrives.
  EXPECT_EQ(sd.push(ids[0]), "");
  EXPECT_EQ(sd.push(tok().encode("A")[0]), "\xEF\xBF\xBD" "A");
  // A dangling lead byte at the end becomes U+FFFD on flush.
  EXPECT_EQ(sd.push(ids[0]), "");
  EXPECT_EQ(sd.flush(), "\xEF\xBF\xBD");
  EXPECT_EQ(sd.flush(), "");
}

// Expected values from Python unicodedata.normalize("NFC", ...) (the same in
// Unicode 9.0 and 14.0), plus a mark whose class only Unicode >= 14 knows.
TEST(Unicode, NfcMatchesPython) {
  struct Case {
    const char *in, *want;
  } cases[] = {
      {"e\u0301", "\u00e9"},
      {"\u1e0b\u0323", "\u1e0d\u0307"},
      {"\u1100\u1161\u11a8", "\uac01"},
      {"\u212b", "\u00c5"},
      {"a\u0301\u0323", "\u1ea1\u0301"},
      {"\u0958", "\u0915\u093c"},
      {"\uac00\u11a8", "\uac01"},
      {"\u0f73", "\u0f71\u0f72"},
      {"Q\u0323\u0307x\u0344", "Q\u0323\u0307\u1e8d\u0301"},
      {"\u00e9\u0323", "\u1eb9\u0301"},
      {"\u1e9b\u0323", "\u1e9b\u0323"},
      {"\u03d3", "\u03d3"},
      {"A\u030a\u0301 ok", "\u01fa ok"},
      {"plain ascii", "plain ascii"},
      {"a\u1ac1\u0334", "a\u1ac1\u0334"},  // U+1AC1 (Unicode 14.0) is a starter in 9.0: no reordering
  };
  for (const auto& c : cases) EXPECT_EQ(qvl::unicode::nfc(c.in), c.want) << c.in;
}

TEST(Unicode, Classes) {
  using qvl::unicode::CharClass;
  using qvl::unicode::char_class;
  EXPECT_EQ(char_class(0x85), CharClass::Space);    // NEL is White_Space
  EXPECT_EQ(char_class(0xFEFF), CharClass::Other);  // BOM is not
  EXPECT_EQ(char_class(0x3000), CharClass::Space);
  EXPECT_EQ(char_class(0x4E2D), CharClass::Letter);
  EXPECT_EQ(char_class(0x0663), CharClass::Number);  // ARABIC-INDIC DIGIT THREE
  EXPECT_EQ(char_class(0x2167), CharClass::Number);  // ROMAN NUMERAL EIGHT (Nl)
  EXPECT_EQ(char_class(0x0301), CharClass::Other);   // combining mark (Mn)
  EXPECT_EQ(char_class(0x1C89), CharClass::Letter);  // Unicode 16.0
  EXPECT_EQ(char_class(0x1D2C0), CharClass::Number); // Kaktovik numeral, Unicode 15.0
  std::printf("unicode tables: %s\n", qvl::unicode::version());
}

TEST(Tokenizer, ErrorsNameTheFile) {
  std::string dir = qvl::test::scratch_dir("tokenizer_errors");
  auto expect_error = [](const std::string& path, const std::string& needle) {
    try {
      Tokenizer t(path);
      ADD_FAILURE() << "no error for " << path;
    } catch (const qvl::Error& e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find(path), std::string::npos) << msg;
      EXPECT_NE(msg.find(needle), std::string::npos) << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
  };
  expect_error(dir + "/missing.json", "cannot open");
  std::ofstream(dir + "/corrupt.json") << "{\"model\": {\"vocab\": {";
  expect_error(dir + "/corrupt.json", "not valid JSON");
  std::ofstream(dir + "/nomodel.json") << "{\"added_tokens\": []}";
  expect_error(dir + "/nomodel.json", "model");
  std::ofstream(dir + "/badmerge.json")
      << R"({"normalizer":null,"pre_tokenizer":null,"model":{"type":"BPE","vocab":{"a":0},"merges":["a b"]}})";
  expect_error(dir + "/badmerge.json", "pre_tokenizer");
  std::ofstream(dir + "/floatid.json") << R"({"model":{"vocab":{"a":1.5},"merges":[]}})";
  expect_error(dir + "/floatid.json", "expected a token id");
  std::ofstream(dir + "/trailing.json") << R"({"model":{"vocab":{},"merges":[]}} x)";
  expect_error(dir + "/trailing.json", "after the top-level object");
  std::ofstream(dir + "/badvalue.json") << R"({"normalizer": nul, "model":{"vocab":{},"merges":[]}})";
  expect_error(dir + "/badvalue.json", "not valid JSON");
  EXPECT_THROW(Tokenizer::locate(dir), qvl::Error);
  EXPECT_EQ(Tokenizer::locate(qvl::test::golden_dir()), qvl::test::golden_dir() + "/tokenizer.json");
  // The onnx-torch export keeps its tokenizer one folder up.
  std::string up = Tokenizer::locate(qvl::test::golden_dir() + "/onnx-torch");
  EXPECT_EQ(std::ifstream(up).good(), true) << up;
  EXPECT_EQ(Tokenizer::locate(qvl::test::golden_dir() + "/config.json"), qvl::test::golden_dir() + "/config.json");
  EXPECT_EQ(Tokenizer::locate(qvl::test::golden_dir() + "/model.safetensors"),
            qvl::test::golden_dir() + "/tokenizer.json");
}

// Newer tokenizer.json files store merges as ["a", "b"] pairs: the same
// tokenizer rewritten that way must still give the golden ids.
TEST(Tokenizer, MergesAsPairs) {
  std::ifstream in(qvl::test::golden_dir() + "/tokenizer.json");
  auto j = nlohmann::json::parse(in);  // (ordered_json is quadratic on the 151k-key vocab)
  auto& merges = j["model"]["merges"];
  for (auto& m : merges) {
    std::string s = m[0].get<std::string>() + " " + m[1].get<std::string>();
    m = s;  // the file has pairs; write the "a b" form ...
  }
  std::string dir = qvl::test::scratch_dir("tokenizer_merges");
  std::ofstream(dir + "/strings.json") << j.dump();
  for (auto& m : merges) {
    std::string s = m.get<std::string>();
    size_t sp = s.find(' ');
    m = nlohmann::json::array({s.substr(0, sp), s.substr(sp + 1)});  // ... and back to pairs
  }
  std::ofstream(dir + "/pairs.json") << j.dump(1);
  Tokenizer a(dir + "/strings.json"), b(dir + "/pairs.json");
  for (const auto& r : read_jsonl("golden.jsonl")) {
    Ids want = r["ids"].get<Ids>();
    EXPECT_EQ(a.encode(r["text"].get<std::string>()), want) << r["id"];
    EXPECT_EQ(b.encode(r["text"].get<std::string>()), want) << r["id"];
  }
}

// ~1 MB of mixed text from the golden strings, joined by <|endoftext|> so the
// expected ids are the golden ids joined by 151643 (added tokens split first).
TEST(Tokenizer, ThroughputOneMegabyte) {
  auto rows = read_jsonl("golden.jsonl");
  std::string text;
  Ids want;
  while (text.size() < (1u << 20)) {
    for (const auto& r : rows) {
      text += r["text"].get<std::string>() + "<|endoftext|>";
      for (int64_t id : r["ids"].get<Ids>()) want.push_back(id);
      want.push_back(151643);
    }
  }
  Tokenizer fresh(qvl::test::golden_dir() + "/tokenizer.json");  // empty word cache
  auto t0 = std::chrono::steady_clock::now();
  Ids got = fresh.encode(text);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_TRUE(got == want) << "1 MB encode differs from the joined golden ids";
  std::printf("encode: %.2f MB in %.3f s = %.1f MB/s, %zu tokens (%.0f ktok/s)\n", text.size() / 1e6, s,
              text.size() / 1e6 / s, got.size(), got.size() / 1e3 / s);
#ifdef NDEBUG
  EXPECT_LT(s, 1.0);
#else
  EXPECT_LT(s, 20.0);  // unoptimized build: only a sanity bound
#endif
}

}  // namespace
