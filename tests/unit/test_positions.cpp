// get_rope_index against Hugging Face (each golden case's position_ids and
// rope_deltas), the spec §5 worked example, hand-derived multi-image / video /
// multi-turn cases, and placeholder-count errors.
#include "model/positions.h"
#include "test_util.h"

namespace qvl {
namespace {

constexpr int64_t kImage = 151655, kVideo = 151656, kStart = 151652, kEnd = 151653;

RopeIndex qwen3(const std::vector<int64_t>& ids, const std::vector<Grid3>& images,
                const std::vector<Grid3>& videos = {}, int64_t start = 0) {
  return rope_index(ids.data(), int64_t(ids.size()), images, videos, 2, kImage, kVideo, kStart,
                    start);
}

std::vector<int64_t> row(const RopeIndex& r, int axis) {
  return std::vector<int64_t>(r.row(axis), r.row(axis) + r.S);
}

TEST(RopeIndex, GoldenCases) {
  for (const char* c : {"01_text", "02_image", "03_resize"}) {
    std::string dir = test::golden_dir() + "/cases/" + c;
    std::vector<int64_t> ids = npy_load(dir + "/input_ids.npy").to_i64();
    NpyArray pos = npy_load(dir + "/position_ids.npy");  // [3, 1, S]
    std::vector<int64_t> want = pos.to_i64();
    int64_t delta = npy_load(dir + "/rope_deltas.npy").to_i64()[0];
    std::vector<Grid3> grids;
    std::string gpath = dir + "/image_grid_thw.npy";
    if (FILE* f = std::fopen(gpath.c_str(), "rb")) {
      std::fclose(f);
      std::vector<int64_t> g = npy_load(gpath).to_i64();
      for (size_t i = 0; i + 2 < g.size(); i += 3) grids.push_back({g[i], g[i + 1], g[i + 2]});
    }
    RopeIndex r = qwen3(ids, grids);
    ASSERT_EQ(r.S, int64_t(ids.size())) << c;
    EXPECT_EQ(r.pos, want) << c;
    EXPECT_EQ(r.rope_delta, delta) << c;
    EXPECT_EQ(r.next, r.S + delta) << c;
  }
}

TEST(RopeIndex, SpecWorkedExample) {
  // <|im_start|> user \n <|vision_start|> [6 pads, merged 2x3] <|vision_end|> + 7 text = 18.
  std::vector<int64_t> ids = {151644, 872, 198, kStart};
  for (int i = 0; i < 6; ++i) ids.push_back(kImage);
  ids.push_back(kEnd);
  for (int i = 0; i < 7; ++i) ids.push_back(100 + i);
  ASSERT_EQ(ids.size(), 18u);
  RopeIndex r = qwen3(ids, {{1, 4, 6}});
  std::vector<int64_t> T = {0, 1, 2, 3, 4, 4, 4, 4, 4, 4, 7, 8, 9, 10, 11, 12, 13, 14};
  std::vector<int64_t> H = {0, 1, 2, 3, 4, 4, 4, 5, 5, 5, 7, 8, 9, 10, 11, 12, 13, 14};
  std::vector<int64_t> W = {0, 1, 2, 3, 4, 5, 6, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
  EXPECT_EQ(row(r, 0), T);
  EXPECT_EQ(row(r, 1), H);
  EXPECT_EQ(row(r, 2), W);
  EXPECT_EQ(r.rope_delta, -3);
  EXPECT_EQ(r.next, 15);
}

TEST(RopeIndex, TextOnly) {
  std::vector<int64_t> ids = {1, 2, 3, 4, 5};
  RopeIndex r = qwen3(ids, {});
  for (int a = 0; a < 3; ++a) EXPECT_EQ(row(r, a), (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(r.rope_delta, 0);
  EXPECT_EQ(r.next, 5);
  RopeIndex empty = qwen3({}, {});
  EXPECT_EQ(empty.S, 0);
  EXPECT_EQ(empty.next, 0);
}

TEST(RopeIndex, TwoImagesByHand) {
  // t0 <vs> [img A: grid 1x2x6 → merged 1x3: 3 pads] <ve> t1 <vs> [img B: grid
  // 1x6x2 → merged 3x1: 3 pads] <ve> t2
  std::vector<int64_t> ids = {10, kStart, kImage, kImage, kImage, kEnd, 11,
                              kStart, kImage, kImage, kImage, kEnd, 12};
  RopeIndex r = qwen3(ids, {{1, 2, 6}, {1, 6, 2}});
  // 10:0  vs:1  A: s=2 → T 2,2,2 H 2,2,2 W 2,3,4; next = 2 + max(1,3) = 5
  // ve:5 11:6 vs:7  B: s=8 → T 8,8,8 H 8,9,10 W 8,8,8; next = 8 + 3 = 11; ve:11 12:12
  EXPECT_EQ(row(r, 0), (std::vector<int64_t>{0, 1, 2, 2, 2, 5, 6, 7, 8, 8, 8, 11, 12}));
  EXPECT_EQ(row(r, 1), (std::vector<int64_t>{0, 1, 2, 2, 2, 5, 6, 7, 8, 9, 10, 11, 12}));
  EXPECT_EQ(row(r, 2), (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 8, 8, 11, 12}));
  EXPECT_EQ(r.next, 13);
  EXPECT_EQ(r.rope_delta, 0);
}

TEST(RopeIndex, ImageAtSequenceEndAndStartPos) {
  // Second turn of a chat continuing at position 40: <vs> [2x2 merged] (no trailing text).
  std::vector<int64_t> ids = {kStart, kImage, kImage, kImage, kImage};
  RopeIndex r = qwen3(ids, {{1, 4, 4}}, {}, 40);
  EXPECT_EQ(row(r, 0), (std::vector<int64_t>{40, 41, 41, 41, 41}));
  EXPECT_EQ(row(r, 1), (std::vector<int64_t>{40, 41, 41, 42, 42}));
  EXPECT_EQ(row(r, 2), (std::vector<int64_t>{40, 41, 42, 41, 42}));
  EXPECT_EQ(r.next, 43);
  EXPECT_EQ(r.rope_delta, 43 - 40 - 5);
}

TEST(RopeIndex, VideoSplitPerTemporalPatch) {
  // Video grid (2, 2, 4) → two blocks of merged 1x2 (2 pads each), separated
  // by "<t> seconds" text as the processor writes it.
  std::vector<int64_t> ids = {kStart, kVideo, kVideo, kEnd, 77, kStart, kVideo, kVideo, kEnd};
  RopeIndex r = qwen3(ids, {}, {{2, 2, 4}});
  // vs:0 block0 s=1: T 1,1 H 1,1 W 1,2 → next 3; ve:3 77:4 vs:5 block1 s=6: T 6,6 H 6,6 W 6,7 → 8; ve:8
  EXPECT_EQ(row(r, 0), (std::vector<int64_t>{0, 1, 1, 3, 4, 5, 6, 6, 8}));
  EXPECT_EQ(row(r, 1), (std::vector<int64_t>{0, 1, 1, 3, 4, 5, 6, 6, 8}));
  EXPECT_EQ(row(r, 2), (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8}));
}

TEST(RopeIndex, Qwen25VideoTimeScaling) {
  // One video block, grid (3, 2, 2) → merged 3 x (1x1); second_per_grid 1.0,
  // tokens_per_second 2 → T = s + 2k.
  std::vector<int64_t> ids = {kStart, kVideo, kVideo, kVideo, kEnd};
  RopeIndex r = rope_index_qwen25(ids.data(), 5, {}, {{3, 2, 2}}, {1.0}, 2, 2, kImage, kVideo,
                                  kStart);
  EXPECT_EQ(row(r, 0), (std::vector<int64_t>{0, 1, 3, 5, 6}));
  EXPECT_EQ(row(r, 1), (std::vector<int64_t>{0, 1, 1, 1, 6}));
  EXPECT_EQ(row(r, 2), (std::vector<int64_t>{0, 1, 1, 1, 6}));
  // HF casts second_per_grid_t to int64 before multiplying: 0.5 → 0.
  RopeIndex h = rope_index_qwen25(ids.data(), 5, {}, {{3, 2, 2}}, {0.5}, 2, 2, kImage, kVideo,
                                  kStart);
  EXPECT_EQ(row(h, 0), (std::vector<int64_t>{0, 1, 1, 1, 2}));
}

void expect_error(const std::vector<int64_t>& ids, const std::vector<Grid3>& images,
                  const std::string& needle) {
  try {
    qwen3(ids, images);
    ADD_FAILURE() << "no error for " << needle;
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST(RopeIndex, PlaceholderMismatchErrors) {
  std::vector<int64_t> one = {1, kStart, kImage, kImage, kImage, kImage, kEnd};
  expect_error(one, {}, "prompt has 1 image placeholders (4 pad tokens) but 0 images");
  expect_error(one, {{1, 4, 4}, {1, 4, 4}}, "but 2 images");
  expect_error(one, {{1, 4, 8}}, "prompt has 1 image placeholders (4 pad tokens) but 1 images "
                                 "(1 blocks, 8 pad tokens)");
  expect_error({1, 2, 3}, {{1, 4, 4}}, "prompt has 0 image placeholders");
  expect_error({1, kImage, kImage, kImage, kImage}, {{1, 4, 4}}, "<|vision_start|>");
  expect_error(one, {{1, 3, 4}}, "multiple of merge size");
}

}  // namespace
}  // namespace qvl
