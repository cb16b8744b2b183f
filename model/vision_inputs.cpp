// Grid tensors for the vision encoder (see vision_inputs.h).
#include "model/vision_inputs.h"

#include "kernels/base.h"

namespace qvl {

std::string Grid3::str() const {
  return strfmt("(%lld, %lld, %lld)", (long long)t, (long long)h, (long long)w);
}

namespace {

// PyTorch-style float32 linspace(0, end, n): first half from the start, second
// half from the end (ulp differences only move the blend point negligibly).
std::vector<float> linspace(float end, int64_t n) {
  std::vector<float> v((size_t)n);
  if (n == 1) {
    v[0] = 0.f;
    return v;
  }
  float step = end / (float)(n - 1);
  for (int64_t i = 0; i < n; ++i) v[i] = i < n / 2 ? step * (float)i : end - step * (float)(n - 1 - i);
  return v;
}

struct Axis {
  std::vector<int64_t> lo, hi;
  std::vector<float> frac;
};

Axis axis(int64_t n, int grid_side) {
  Axis a;
  std::vector<float> s = linspace((float)(grid_side - 1), n);
  for (float x : s) {
    int64_t lo = (int64_t)x;  // trunc, x >= 0
    a.lo.push_back(lo);
    a.hi.push_back(std::min<int64_t>(lo + 1, grid_side - 1));
    a.frac.push_back(x - (float)lo);
  }
  return a;
}

}  // namespace

std::vector<int64_t> pos_corners_row_major(int64_t h, int64_t w, int grid_side) {
  Axis ay = axis(h, grid_side), ax = axis(w, grid_side);
  const int64_t n = h * w;
  std::vector<int64_t> idx(4 * n);
  for (int64_t r = 0; r < h; ++r)
    for (int64_t c = 0; c < w; ++c) {
      int64_t p = r * w + c;
      idx[0 * n + p] = ay.lo[r] * grid_side + ax.lo[c];
      idx[1 * n + p] = ay.lo[r] * grid_side + ax.hi[c];
      idx[2 * n + p] = ay.hi[r] * grid_side + ax.lo[c];
      idx[3 * n + p] = ay.hi[r] * grid_side + ax.hi[c];
    }
  return idx;
}

VisionGridInputs make_vision_inputs(const std::vector<Grid3>& grids, int grid_side, int merge) {
  VisionGridInputs in;
  for (const auto& g : grids) {
    QVL_CHECK(g.t > 0 && g.h > 0 && g.w > 0, "image grid %s is empty", g.str().c_str());
    QVL_CHECK(g.h % merge == 0 && g.w % merge == 0, "image grid %s: h and w must be multiples of %d",
              g.str().c_str(), merge);
    in.N += g.patches();
  }
  const int64_t N = in.N;
  in.pos_idx.resize(4 * N);
  in.pos_weight.resize(4 * N);
  in.rows.resize(N);
  in.cols.resize(N);
  in.cu_seqlens.assign(1, 0);
  int64_t base = 0;
  for (const auto& g : grids) {
    Axis ay = axis(g.h, grid_side), ax = axis(g.w, grid_side);
    const int64_t mh = g.h / merge, mw = g.w / merge;
    for (int64_t tt = 0; tt < g.t; ++tt) {
      int64_t n = base + tt * g.h * g.w;
      for (int64_t bh = 0; bh < mh; ++bh)
        for (int64_t bw = 0; bw < mw; ++bw)
          for (int ih = 0; ih < merge; ++ih)
            for (int iw = 0; iw < merge; ++iw, ++n) {
              const int64_t r = bh * merge + ih, c = bw * merge + iw;
              const float fy = ay.frac[r], fx = ax.frac[c];
              in.pos_idx[0 * N + n] = ay.lo[r] * grid_side + ax.lo[c];
              in.pos_idx[1 * N + n] = ay.lo[r] * grid_side + ax.hi[c];
              in.pos_idx[2 * N + n] = ay.hi[r] * grid_side + ax.lo[c];
              in.pos_idx[3 * N + n] = ay.hi[r] * grid_side + ax.hi[c];
              in.pos_weight[0 * N + n] = (1.f - fy) * (1.f - fx);
              in.pos_weight[1 * N + n] = (1.f - fy) * fx;
              in.pos_weight[2 * N + n] = fy * (1.f - fx);
              in.pos_weight[3 * N + n] = fy * fx;
              in.rows[n] = (int32_t)r;
              in.cols[n] = (int32_t)c;
            }
      in.cu_seqlens.push_back(base + (tt + 1) * g.h * g.w);
    }
    base += g.patches();
  }
  return in;
}

void blend_pos_corner(const float* rows, const float* weight, int64_t N, int64_t H, bool first, float* out) {
  for (int64_t n = 0; n < N; ++n) {
    float* o = out + n * H;
    const float* r = rows + n * H;
    const float w = weight[n];
    if (first) {
      for (int64_t j = 0; j < H; ++j) o[j] = r[j] * w;
    } else {
      for (int64_t j = 0; j < H; ++j) o[j] += r[j] * w;
    }
  }
}

}  // namespace qvl
