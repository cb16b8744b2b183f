// get_rope_index: one walk over the prompt assigning (T, H, W) positions to
// text runs and visual blocks (see positions.h). The Qwen3-VL and Qwen2.5-VL
// variants differ only in how a video grid becomes blocks.
#include "model/positions.h"

#include <algorithm>

#include "kernels/base.h"

namespace qvl {
namespace {

// One placeholder block in merged units: t temporal steps of h2 × w2 tokens;
// temporal index k sits at T offset k * t_step.
struct Block {
  int64_t t = 1, h2 = 0, w2 = 0, t_step = 0;
  int64_t tokens() const { return t * h2 * w2; }
};

Block merged(const Grid3& g, int merge, const char* kind, size_t i) {
  QVL_CHECK(g.t > 0 && g.h > 0 && g.w > 0 && g.h % merge == 0 && g.w % merge == 0,
            "%s %zu: grid (t=%lld, h=%lld, w=%lld) is not a positive multiple of merge size %d",
            kind, i, (long long)g.t, (long long)g.h, (long long)g.w, merge);
  return {g.t, g.h / merge, g.w / merge, 0};
}

struct Count {
  int64_t runs = 0, tokens = 0;
};

Count count_placeholders(const int64_t* ids, int64_t S, int64_t token) {
  Count c;
  for (int64_t i = 0; i < S; ++i) {
    if (ids[i] != token) continue;
    ++c.tokens;
    if (i == 0 || ids[i - 1] != token) ++c.runs;
  }
  return c;
}

int64_t total_tokens(const std::vector<Block>& blocks) {
  int64_t n = 0;
  for (const Block& b : blocks) n += b.tokens();
  return n;
}

// Throws the one-line "N placeholders but M items" error when the prompt's
// pad tokens cannot be exactly the given blocks.
void check_counts(const int64_t* ids, int64_t S, int64_t token, const std::vector<Block>& blocks,
                  size_t items, const char* kind) {
  Count c = count_placeholders(ids, S, token);
  int64_t want = total_tokens(blocks);
  QVL_CHECK(c.runs == int64_t(blocks.size()) && c.tokens == want,
            "prompt has %lld %s placeholders (%lld pad tokens) but %zu %ss (%zu blocks, %lld pad "
            "tokens) were given",
            (long long)c.runs, kind, (long long)c.tokens, items, kind, blocks.size(),
            (long long)want);
}

RopeIndex walk(const int64_t* ids, int64_t S, const std::vector<Block>& images,
               const std::vector<Block>& videos, int64_t image_token_id, int64_t video_token_id,
               int64_t vision_start_id, int64_t start_pos) {
  RopeIndex out;
  out.S = S;
  out.pos.resize(size_t(3 * S));
  int64_t* pT = out.pos.data();
  int64_t* pH = pT + S;
  int64_t* pW = pH + S;
  size_t next_image = 0, next_video = 0;
  int64_t next = start_pos;
  int64_t i = 0;
  while (i < S) {
    const int64_t id = ids[i];
    if (id != image_token_id && id != video_token_id) {
      pT[i] = pH[i] = pW[i] = next++;
      ++i;
      continue;
    }
    const bool video = id == video_token_id;
    const char* kind = video ? "video" : "image";
    QVL_CHECK(vision_start_id < 0 || (i > 0 && ids[i - 1] == vision_start_id),
              "prompt: %s placeholder at token %lld does not follow <|vision_start|>", kind,
              (long long)i);
    const std::vector<Block>& list = video ? videos : images;
    size_t& k = video ? next_video : next_image;
    QVL_ASSERT(k < list.size());  // check_counts guarantees it
    const Block b = list[k++];
    const int64_t n = b.tokens();
    for (int64_t j = 0; j < n; ++j)
      QVL_CHECK(i + j < S && ids[i + j] == id,
                "prompt: %s block %zu at token %lld needs %lld pad tokens but its run is shorter",
                kind, k - 1, (long long)i, (long long)n);
    const int64_t s = next;
    int64_t j = i;
    for (int64_t tk = 0; tk < b.t; ++tk)
      for (int64_t r = 0; r < b.h2; ++r)
        for (int64_t c = 0; c < b.w2; ++c, ++j) {
          pT[j] = s + tk * b.t_step;
          pH[j] = s + r;
          pW[j] = s + c;
        }
    next = std::max({s + (b.t - 1) * b.t_step, s + b.h2 - 1, s + b.w2 - 1}) + 1;
    i += n;
  }
  out.next = next;
  out.rope_delta = next - start_pos - S;
  return out;
}

}  // namespace

RopeIndex rope_index(const int64_t* ids, int64_t S, const std::vector<Grid3>& image_grids,
                     const std::vector<Grid3>& video_grids, int merge, int64_t image_token_id,
                     int64_t video_token_id, int64_t vision_start_id, int64_t start_pos) {
  QVL_CHECK(merge > 0 && S >= 0, "rope_index: bad merge size %d or length %lld", merge,
            (long long)S);
  std::vector<Block> images, videos;
  for (size_t i = 0; i < image_grids.size(); ++i)
    images.push_back(merged(image_grids[i], merge, "image", i));
  // Qwen3-VL: one block per temporal patch, each positioned like an image.
  for (size_t v = 0; v < video_grids.size(); ++v) {
    Block b = merged(video_grids[v], merge, "video", v);
    for (int64_t k = 0; k < b.t; ++k) videos.push_back({1, b.h2, b.w2, 0});
  }
  check_counts(ids, S, image_token_id, images, image_grids.size(), "image");
  check_counts(ids, S, video_token_id, videos, video_grids.size(), "video");
  return walk(ids, S, images, videos, image_token_id, video_token_id, vision_start_id, start_pos);
}

RopeIndex rope_index_qwen25(const int64_t* ids, int64_t S, const std::vector<Grid3>& image_grids,
                            const std::vector<Grid3>& video_grids,
                            const std::vector<double>& video_second_per_grid,
                            int64_t tokens_per_second, int merge, int64_t image_token_id,
                            int64_t video_token_id, int64_t vision_start_id, int64_t start_pos) {
  QVL_CHECK(merge > 0 && S >= 0, "rope_index: bad merge size %d or length %lld", merge,
            (long long)S);
  QVL_CHECK(video_second_per_grid.empty() || video_second_per_grid.size() == video_grids.size(),
            "rope_index: %zu second_per_grid values for %zu videos", video_second_per_grid.size(),
            video_grids.size());
  std::vector<Block> images, videos;
  for (size_t i = 0; i < image_grids.size(); ++i)
    images.push_back(merged(image_grids[i], merge, "image", i));
  for (size_t v = 0; v < video_grids.size(); ++v) {
    Block b = merged(video_grids[v], merge, "video", v);
    double spg = video_second_per_grid.empty() ? 1.0 : video_second_per_grid[v];
    b.t_step = int64_t(spg) * tokens_per_second;  // HF truncates spg to int64 first
    videos.push_back(b);
  }
  check_counts(ids, S, image_token_id, images, image_grids.size(), "image");
  check_counts(ids, S, video_token_id, videos, video_grids.size(), "video");
  return walk(ids, S, images, videos, image_token_id, video_token_id, vision_start_id, start_pos);
}

}  // namespace qvl
