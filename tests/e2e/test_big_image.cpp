// A 4000×3000 photo-sized image goes through `qvl run`: resized under the
// pixel cap (smart_resize), encoded, and answered without running out of
// memory. Token counts are checked against smart_resize done by hand.
#include <gtest/gtest.h>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "test_util.h"

using namespace qvl::test;

namespace {

std::string make_image(int w, int h) {
  std::string path = scratch_dir("big_image") + "/photo.jpg";
  std::vector<unsigned char> px(static_cast<size_t>(w) * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      unsigned char* p = &px[(static_cast<size_t>(y) * w + x) * 3];
      p[0] = static_cast<unsigned char>(x / 16);
      p[1] = static_cast<unsigned char>(y / 16);
      p[2] = static_cast<unsigned char>((x + y) / 32);
    }
  EXPECT_TRUE(stbi_write_jpg(path.c_str(), w, h, 3, px.data(), 90));
  return path;
}

nlohmann::json run_json(const std::string& args) {
  std::string out;
  std::string cmd = binary_dir() + "/qvl run -m " + models_dir() + "/qwen3vl-a-fp32 " + args +
                    " -n 2 --temp 0 --json 2>/dev/null";
  int code = run_command(cmd, &out);
  EXPECT_EQ(code, 0) << out;
  return nlohmann::json::parse(out);
}

}  // namespace

// 4000×3000 with --max-pixels 1003520: β = sqrt(12e6 / 1003520) = 3.458 →
// 864 × 1152 pixels → 27 × 36 merged tokens = 972.
TEST(BigImage, CappedByMaxPixels) {
  std::string img = make_image(4000, 3000);
  auto j = run_json("--image " + img + " -p Describe. --max-pixels 1003520");
  EXPECT_EQ(j.at("image_tokens").get<int64_t>(), 972);
}

// Default cap (16,777,216 px): 3008 × 4000 → 94 × 125 = 11,750 tokens, which
// needs a context above the default 4096 — first the clear error, then the run.
TEST(BigImage, DefaultCapNeedsContext) {
  std::string img = make_image(4000, 3000);
  std::string out;
  int code = run_command(binary_dir() + "/qvl run -m " + models_dir() +
                             "/qwen3vl-a-fp32 --image " + img + " -p Describe. -n 2",
                         &out);
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("exceeds the context"), std::string::npos) << out;
  auto j = run_json("--image " + img + " -p Describe. -c 12288");
  EXPECT_EQ(j.at("image_tokens").get<int64_t>(), 11750);
}
