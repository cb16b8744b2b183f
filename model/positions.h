// 3-D (T, H, W) M-RoPE position ids of a prompt, as Hugging Face's
// get_rope_index computes them (spec §5):
//   - a text run of length L takes next, next+1, … on all three axes;
//   - a visual block with merged grid (h', w') = (h/merge, w/merge) starting at
//     s = next gives pad (r, c) the positions (s, s + r, s + c); afterwards
//     next = s + max(h', w') (= max position of the block + 1);
//   - Qwen3-VL splits every video grid (T', h, w) into T' blocks (1, h, w),
//     each its own <|vision_start|> … <|vision_end|> (time is text).
//   - rope_delta = next − start_pos − S (HF's "max + 1 − S" when start_pos = 0):
//     the token at sequence index n ≥ S of this chunk continues at n + delta
//     (+ start_pos).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/base.h"  // qvl::Error

namespace qvl {

// One image / video in patches (before merging): t temporal patches, h × w.
struct Grid3 {
  int64_t t = 1, h = 0, w = 0;  // temporal slices, patch rows, patch columns
  int64_t patches() const { return t * h * w; }
  std::string str() const;  // "(1, 16, 20)"
  bool operator==(const Grid3& o) const { return t == o.t && h == o.h && w == o.w; }
};

struct RopeIndex {
  int64_t S = 0;                // tokens
  std::vector<int64_t> pos;     // [3, S], rows T, H, W
  int64_t rope_delta = 0;
  int64_t next = 0;             // first free position after this chunk
  const int64_t* row(int axis) const { return pos.data() + axis * S; }
};

// Qwen3-VL. `ids` [S]; image_grids / video_grids in prompt order; `merge` =
// spatial merge size (2). Every run of image (video) pad tokens must be
// exactly one grid's h·w/merge² tokens (video: per temporal patch), in order;
// a mismatch throws qvl::Error ("prompt has N image placeholders (K tokens)
// but M images (J tokens) were given"). `start_pos` continues a multi-turn
// conversation from an earlier RopeIndex::next.
RopeIndex rope_index(const int64_t* ids, int64_t S, const std::vector<Grid3>& image_grids,
                     const std::vector<Grid3>& video_grids, int merge, int64_t image_token_id,
                     int64_t video_token_id, int64_t vision_start_id, int64_t start_pos = 0);

// Qwen2.5-VL: videos are one block (T', h', w') with
//   pT = s + k · int64(second_per_grid[v]) · tokens_per_second
// for temporal index k (HF casts second_per_grid_t to the integer dtype of
// arange before multiplying, so fractional values truncate), pH = s + r,
// pW = s + c; next = block max + 1. Images as in Qwen3-VL.
// `video_second_per_grid` has one entry per video (empty → 1.0 each).
RopeIndex rope_index_qwen25(const int64_t* ids, int64_t S, const std::vector<Grid3>& image_grids,
                            const std::vector<Grid3>& video_grids,
                            const std::vector<double>& video_second_per_grid,
                            int64_t tokens_per_second, int merge, int64_t image_token_id,
                            int64_t video_token_id, int64_t vision_start_id,
                            int64_t start_pos = 0);

}  // namespace qvl
