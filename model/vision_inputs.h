// Host-side grid tensors of the Qwen3-VL vision encoder, computed from the
// image grids alone (no pixels):
//   * bilinear position-embedding corners: the learned G×G table (G = 48) resized
//     to each h×w patch grid with align-corners sampling (ys = linspace(0, G−1, h)),
//     4 corners (y0,x0) (y0,x1) (y1,x0) (y1,x1) with weights
//     (1−fy)(1−fx), (1−fy)fx, fy(1−fx), fy·fx — listed per patch in merge-block order
//     and repeated for every temporal slice;
//   * 2-D rope coordinates: (row, col) of each patch within its frame, merge order;
//   * cu_seqlens: one attention segment of h·w patches per (item, temporal slice).
// Merge-block order: for tt, bh < h/2, bw < w/2, ih < 2, iw < 2 → patch
// (r, c) = (2bh+ih, 2bw+iw) sits at row tt·h·w + ((bh·(w/2) + bw)·2 + ih)·2 + iw.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/positions.h"  // Grid3

namespace qvl {

struct VisionGridInputs {
  int64_t N = 0;                    // Σ t·h·w patches
  std::vector<int64_t> pos_idx;     // [4, N] rows of the G×G table per corner
  std::vector<float> pos_weight;    // [4, N]
  std::vector<int32_t> rows, cols;  // [N] patch coordinates for the 2-D rope
  std::vector<int64_t> cu_seqlens;  // [segments + 1], starts at 0, ends at N
};

// `grid_side` = sqrt(num_position_embeddings) (48), `merge` = spatial merge (2).
// Throws qvl::Error when a grid is empty or not divisible by `merge`.
VisionGridInputs make_vision_inputs(const std::vector<Grid3>& grids, int grid_side, int merge);

// Row-major (not merge-ordered) corner indices of one h×w grid, [4, h·w]; used to
// recognise the grid a traced vision graph was exported for.
std::vector<int64_t> pos_corners_row_major(int64_t h, int64_t w, int grid_side);

// One corner of the bilinear blend: out[n, :] (=, or += when !first) weight[n] · rows[n, :],
// rows [N, H] = the table rows of that corner. Calling it for corners 0..3 in order
// sums ((c0 + c1) + c2) + c3 like the reference.
void blend_pos_corner(const float* rows, const float* weight, int64_t N, int64_t H, bool first, float* out);

}  // namespace qvl
