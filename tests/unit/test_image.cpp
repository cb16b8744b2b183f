// Image decode + Qwen-VL preprocessing against PIL / Hugging Face references:
// golden cases (HF slow processor pixel_values, PNG and JPEG), PIL bicubic
// resize fixtures, PIL colour-conversion fixtures (16-bit, alpha, palette,
// GIF, EXIF, JPEG progressive / 4:2:2 / gray / CMYK), and
// stb_image_write round trips for every supported container.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif
#include <stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#include "engine/image.h"
#include "engine/jpeg_decode.h"
#include "test_util.h"

namespace qvl {
namespace {

std::string images_dir() { return test::data_dir() + "/images"; }
std::string case_dir(const std::string& c) { return test::golden_dir() + "/cases/" + c; }

// [H, W, 3] uint8 .npy → Image.
Image load_rgb_npy(const std::string& path) {
  NpyArray a = npy_load(path);
  EXPECT_EQ(a.dtype, DType::U8) << path;
  EXPECT_EQ(a.shape.size(), 3u) << path;
  Image img;
  img.height = int(a.shape[0]);
  img.width = int(a.shape[1]);
  img.rgb = a.bytes;
  return img;
}

struct ByteDiff {
  int max = 0;
  double mean = 0;
  int64_t count = 0;  // elements that differ
};

ByteDiff byte_diff(const Image& a, const Image& b) {
  ByteDiff d;
  EXPECT_EQ(a.width, b.width);
  EXPECT_EQ(a.height, b.height);
  if (a.rgb.size() != b.rgb.size()) {
    d.max = 999;
    return d;
  }
  double sum = 0;
  for (size_t i = 0; i < a.rgb.size(); ++i) {
    int e = std::abs(int(a.rgb[i]) - int(b.rgb[i]));
    d.max = std::max(d.max, e);
    d.count += e != 0;
    sum += e;
  }
  d.mean = a.rgb.empty() ? 0 : sum / double(a.rgb.size());
  return d;
}

PreprocessorConfig golden_config() {
  // tests/data/qwen3vl-a/preprocessor_config.json (size.shortest_edge / longest_edge).
  PreprocessorConfig cfg;
  cfg.min_pixels = 65536;
  cfg.max_pixels = 16777216;
  cfg.patch = 16;
  cfg.merge = 2;
  cfg.temporal_patch = 2;
  return cfg;
}

// ---------------------------------------------------------------- smart_resize

TEST(SmartResize, SpecExamples) {
  auto sr = [](int h, int w) { return smart_resize(h, w, 32, 65536, 16777216); };
  EXPECT_EQ(sr(480, 640), std::make_pair(480, 640));
  EXPECT_EQ(sr(1080, 1920), std::make_pair(1088, 1920));
  EXPECT_EQ(sr(720, 1280), std::make_pair(704, 1280));  // 22.5 → 22 (half to even)
  EXPECT_EQ(sr(100, 100), std::make_pair(256, 256));    // min-pixels clamp
  EXPECT_EQ(sr(336, 500), std::make_pair(320, 512));
  EXPECT_EQ(sr(4000, 6000), std::make_pair(3328, 4992));
  EXPECT_EQ(sr(240, 336), std::make_pair(256, 320));    // case 02: 7.5 → 8, 10.5 → 10
  EXPECT_EQ(sr(233, 150), std::make_pair(320, 224));    // case 03: upscaled
  // Qwen2.5-VL factor 28
  EXPECT_EQ(smart_resize(480, 640, 28, 3136, 12845056), std::make_pair(476, 644));
}

TEST(SmartResize, AspectAndBadInput) {
  EXPECT_NO_THROW(smart_resize(10, 2000, 32, 65536, 16777216));  // exactly 200
  EXPECT_THROW(smart_resize(10, 2001, 32, 65536, 16777216), Error);
  EXPECT_THROW(smart_resize(0, 100, 32, 65536, 16777216), Error);
}

// ---------------------------------------------------------------- bicubic vs PIL

TEST(ResizeBicubic, MatchesPilFixtures) {
  Image src = load_rgb_npy(images_dir() + "/resize_src.npy");  // 53x41
  const int sizes[][2] = {{32, 32}, {96, 64}, {53, 20}, {20, 41},
                          {128, 17}, {7, 5}, {160, 123}, {53, 41}};
  for (auto& s : sizes) {
    std::string name = "resize_" + std::to_string(s[0]) + "x" + std::to_string(s[1]) + ".npy";
    Image want = load_rgb_npy(images_dir() + "/" + name);
    Image got = resize_bicubic(src, s[0], s[1]);
    ByteDiff d = byte_diff(got, want);
    EXPECT_EQ(d.max, 0) << name << ": " << d.count << " bytes differ, mean " << d.mean;
  }
}

TEST(ResizeBicubic, ReferenceTwinWithinOneLsb) {
  Image src = load_rgb_npy(images_dir() + "/resize_src.npy");
  for (auto [w, h] : {std::pair{32, 32}, {96, 64}, {7, 5}, {160, 123}, {53, 20}}) {
    ByteDiff d = byte_diff(resize_bicubic(src, w, h), resize_bicubic_ref(src, w, h));
    EXPECT_LE(d.max, 1) << w << "x" << h;
    EXPECT_LT(d.count, int64_t(w) * h * 3 / 20) << w << "x" << h;  // rare rounding-edge cases
  }
}

TEST(ResizeBicubic, GoldenResizedImages) {
  for (const char* c : {"02_image", "03_resize"}) {
    Image src = load_rgb_npy(case_dir(c) + "/image_0_rgb.npy");
    Image want = load_rgb_npy(case_dir(c) + "/image_0_resized_rgb.npy");
    Image got = resize_bicubic(src, want.width, want.height);
    ByteDiff d = byte_diff(got, want);
    EXPECT_EQ(d.max, 0) << c << ": " << d.count << " bytes differ";
    std::printf("[ resize %s ] %dx%d -> %dx%d: max diff %d vs PIL\n", c, src.width, src.height,
                want.width, want.height, d.max);
  }
}

// ---------------------------------------------------------------- pixel_values

void check_pixel_values(const std::string& c, const Image& img, float tol) {
  NpyArray want = npy_load(case_dir(c) + "/pixel_values.npy");
  std::vector<int64_t> grid = npy_load(case_dir(c) + "/image_grid_thw.npy").to_i64();
  PreprocessedImage p = preprocess_image(img, golden_config());
  EXPECT_EQ(p.grid.t, grid[0]);
  EXPECT_EQ(p.grid.h, grid[1]);
  EXPECT_EQ(p.grid.w, grid[2]);
  ASSERT_EQ(want.shape, (std::vector<int64_t>{p.rows(), p.row_len}));
  test::Diff d = test::compare(p.pixels.data(), want.to_f32().data(), int64_t(p.pixels.size()));
  EXPECT_TRUE(test::AllClose(p.pixels, want.to_f32(), tol)) << c;
  std::printf("[ pixel_values %s ] max abs diff %.3g (tol %.3g)\n", c.c_str(), d.max_abs, tol);
}

TEST(Preprocess, PixelValuesFromReferenceRgb) {
  for (const char* c : {"02_image", "03_resize"})
    check_pixel_values(c, load_rgb_npy(case_dir(c) + "/image_0_rgb.npy"), 0.0f);
}

TEST(Preprocess, PixelValuesFromPngFile) {
  Image img = decode_image(case_dir("02_image") + "/image_0.png");
  ByteDiff d = byte_diff(img, load_rgb_npy(case_dir("02_image") + "/image_0_rgb.npy"));
  EXPECT_EQ(d.max, 0);
  check_pixel_values("02_image", img, 0.0f);
}

TEST(Preprocess, PixelValuesFromJpegFile) {
  // libjpeg-turbo with PIL's settings: the decode and everything after it are
  // exact (stb_image differed by up to 3 LSB in 7,015 of 104,850 bytes).
  Image img = decode_image(case_dir("03_resize") + "/image_0.jpg");
  Image pil = load_rgb_npy(case_dir("03_resize") + "/image_0_rgb.npy");
  ByteDiff d = byte_diff(img, pil);
  std::printf("[ jpeg decode ] vs PIL: max %d, %lld of %zu bytes differ\n", d.max,
              (long long)d.count, pil.rgb.size());
  EXPECT_EQ(d.max, 0);
  check_pixel_values("03_resize", img, 0.0f);
}

TEST(Preprocess, SingleFrameIsFirstTemporalCopy) {
  Image img = load_rgb_npy(case_dir("02_image") + "/image_0_rgb.npy");
  PreprocessedImage full = preprocess_image(img, golden_config());
  PreprocessedImage one = preprocess_image(img, golden_config(), /*single_frame=*/true);
  ASSERT_EQ(one.rows(), full.rows());
  ASSERT_EQ(one.row_len, 3 * 16 * 16);
  for (int64_t r = 0; r < full.rows(); ++r)
    for (int c = 0; c < 3; ++c)
      for (int t = 0; t < 2; ++t)  // both temporal copies equal the single frame
        ASSERT_EQ(0, std::memcmp(&full.pixels[size_t(r) * 1536 + (c * 2 + t) * 256],
                                 &one.pixels[size_t(r) * 768 + c * 256], 256 * sizeof(float)))
            << "row " << r << " channel " << c << " t " << t;
}

TEST(Preprocess, PatchLayoutByHand) {
  // 64x64 image whose pixel value encodes its coordinates; check a few rows
  // against the merge-block formula written out independently.
  Image img;
  img.width = 64;
  img.height = 64;
  img.rgb.resize(64 * 64 * 3);
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 64; ++x)
      for (int c = 0; c < 3; ++c) img.rgb[(y * 64 + x) * 3 + c] = uint8_t((x + 2 * y + 50 * c) % 256);
  PreprocessorConfig cfg = golden_config();
  cfg.min_pixels = 64 * 64;
  PreprocessedImage p = patchify_image(img, cfg);
  ASSERT_EQ(p.rows(), 16);  // 4x4 patches
  // Row 6 = block (bh 0, bw 1), ih 1, iw 0 → patch row 1, patch col 2.
  const float* row = p.pixels.data() + 6 * 1536;
  for (int c = 0; c < 3; ++c)
    for (int t = 0; t < 2; ++t)
      for (int y : {0, 7, 15})
        for (int x : {0, 9, 15}) {
          int iy = 16 + y, ix = 32 + x;
          float x01 = float(double((ix + 2 * iy + 50 * c) % 256) * (1.0 / 255.0));  // HF rescale
          float want = (x01 - 0.5f) / 0.5f;
          EXPECT_EQ(row[((c * 2 + t) * 16 + y) * 16 + x], want) << c << t << y << x;
        }
}

// ---------------------------------------------------------------- decode: PIL fixtures

TEST(Decode, ColourRulesMatchPil) {
  for (const char* n : {"gray16", "graya16", "rgb16", "rgba16", "rgba8", "graya8", "palette_trns"}) {
    Image got = decode_image(images_dir() + "/" + n + ".png");
    ByteDiff d = byte_diff(got, load_rgb_npy(images_dir() + "/" + n + "_rgb.npy"));
    EXPECT_EQ(d.max, 0) << n << ".png: " << d.count << " bytes differ";
  }
}

TEST(Decode, GifFirstFrameAndTransparency) {
  Image got = decode_image(images_dir() + "/anim.gif");
  EXPECT_EQ(byte_diff(got, load_rgb_npy(images_dir() + "/anim_rgb.npy")).max, 0);
  // Transparent index shows its palette colour (PIL's palette-mode convert).
  got = decode_image(images_dir() + "/transparent.gif");
  EXPECT_EQ(byte_diff(got, load_rgb_npy(images_dir() + "/transparent_rgb.npy")).max, 0);
}

TEST(Decode, JpegModesMatchPil) {
  // Progressive 4:2:0 (block smoothing), odd-sized 4:2:2 (fancy upsampling at
  // the edges), grayscale and Adobe CMYK, each against PIL's convert("RGB").
  for (const char* n : {"progressive", "odd_422", "gray", "cmyk"}) {
    Image got = decode_image(images_dir() + "/" + n + ".jpg");
    ByteDiff d = byte_diff(got, load_rgb_npy(images_dir() + "/" + n + "_rgb.npy"));
    EXPECT_EQ(d.max, 0) << n << ".jpg: " << d.count << " bytes differ";
  }
}

TEST(Decode, CmykConversionIsPilRounding) {
  // PIL: pixel = 255 − libjpeg sample, then R = nk − round(C·nk / 255),
  // nk = 255 − K; reference in double with round-half-up (never a tie).
  for (int s = 0; s < 256; ++s)
    for (int k = 0; k < 256; ++k) {
      const uint8_t cmyk[4] = {uint8_t(s), uint8_t(255 - s), uint8_t(s / 2), uint8_t(k)};
      uint8_t rgb[3];
      pil_inverted_cmyk_to_rgb(cmyk, rgb);
      const int nk = k;  // 255 − (255 − k)
      for (int i = 0; i < 3; ++i) {
        const int c = 255 - cmyk[i];
        const int want = nk - int(std::floor(double(c) * nk / 255.0 + 0.5));
        ASSERT_EQ(rgb[i], want) << "sample " << int(cmyk[i]) << " K " << k;
      }
    }
}

TEST(Decode, ExifOrientationMatchesPilExifTranspose) {
  for (int o = 1; o <= 8; ++o) {
    std::string base = images_dir() + "/exif_orient_" + std::to_string(o);
    ByteDiff d = byte_diff(decode_image(base + ".png"), load_rgb_npy(base + "_rgb.npy"));
    EXPECT_EQ(d.max, 0) << "orientation " << o;
  }
}

// ---------------------------------------------------------------- decode: stb_image_write round trips

Image pattern(int w, int h) {
  Image img;
  img.width = w;
  img.height = h;
  img.rgb.resize(size_t(w) * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &img.rgb[(size_t(y) * w + x) * 3];
      p[0] = uint8_t(x * 255 / std::max(1, w - 1));
      p[1] = uint8_t(y * 255 / std::max(1, h - 1));
      p[2] = uint8_t((x * 7 + y * 13) % 256);
    }
  return img;
}

TEST(Decode, LosslessFormatsRoundTrip) {
  std::string dir = test::scratch_dir("image_roundtrip");
  Image img = pattern(37, 23);
  const int W = img.width, H = img.height;
  ASSERT_TRUE(stbi_write_png((dir + "/a.png").c_str(), W, H, 3, img.rgb.data(), W * 3));
  ASSERT_TRUE(stbi_write_bmp((dir + "/a.bmp").c_str(), W, H, 3, img.rgb.data()));
  ASSERT_TRUE(stbi_write_tga((dir + "/a.tga").c_str(), W, H, 3, img.rgb.data()));
  stbi_write_tga_with_rle = 0;
  ASSERT_TRUE(stbi_write_tga((dir + "/raw.tga").c_str(), W, H, 3, img.rgb.data()));
  stbi_write_tga_with_rle = 1;
  for (const char* f : {"a.png", "a.bmp", "a.tga", "raw.tga"})
    EXPECT_EQ(byte_diff(decode_image(dir + "/" + f), img).max, 0) << f;

  // RGBA: alpha dropped (not composited); gray / gray+alpha: replicated.
  std::vector<uint8_t> rgba(size_t(W) * H * 4), gray(size_t(W) * H), ga(size_t(W) * H * 2);
  for (int i = 0; i < W * H; ++i) {
    std::memcpy(&rgba[4 * i], &img.rgb[3 * i], 3);
    rgba[4 * i + 3] = uint8_t(i * 11);
    gray[i] = img.rgb[3 * i + 2];
    ga[2 * i] = gray[i];
    ga[2 * i + 1] = uint8_t(255 - i);
  }
  ASSERT_TRUE(stbi_write_png((dir + "/rgba.png").c_str(), W, H, 4, rgba.data(), W * 4));
  ASSERT_TRUE(stbi_write_tga((dir + "/rgba.tga").c_str(), W, H, 4, rgba.data()));
  ASSERT_TRUE(stbi_write_png((dir + "/gray.png").c_str(), W, H, 1, gray.data(), W));
  ASSERT_TRUE(stbi_write_png((dir + "/ga.png").c_str(), W, H, 2, ga.data(), W * 2));
  for (const char* f : {"rgba.png", "rgba.tga"})
    EXPECT_EQ(byte_diff(decode_image(dir + "/" + f), img).max, 0) << f;
  Image gray_rgb = img;
  for (int i = 0; i < W * H; ++i) gray_rgb.rgb[3 * i] = gray_rgb.rgb[3 * i + 1] = gray[i],
                                  gray_rgb.rgb[3 * i + 2] = gray[i];
  for (const char* f : {"gray.png", "ga.png"})
    EXPECT_EQ(byte_diff(decode_image(dir + "/" + f), gray_rgb).max, 0) << f;
}

TEST(Decode, BaselineJpegRoundTrip) {
  std::string dir = test::scratch_dir("image_jpeg");
  Image img = pattern(64, 48);
  ASSERT_TRUE(stbi_write_jpg((dir + "/a.jpg").c_str(), img.width, img.height, 3, img.rgb.data(), 95));
  ByteDiff d = byte_diff(decode_image(dir + "/a.jpg"), img);
  EXPECT_LE(d.max, 40);    // lossy: bounded error on a smooth pattern
  EXPECT_LT(d.mean, 4.0);
}

// Inserts an APP1 EXIF segment (little-endian TIFF, IFD0 with Orientation)
// right after SOI of a JPEG.
std::vector<uint8_t> with_exif_orientation(std::vector<uint8_t> jpg, int orientation) {
  const uint8_t tiff[] = {'I', 'I', 42, 0, 8, 0, 0, 0,            // header, IFD0 at 8
                          1, 0,                                   // one entry
                          0x12, 0x01, 3, 0, 1, 0, 0, 0,           // tag 0x0112 SHORT x1
                          uint8_t(orientation), 0, 0, 0,          // value
                          0, 0, 0, 0};                            // no next IFD
  std::vector<uint8_t> seg = {0xFF, 0xE1, 0, 0, 'E', 'x', 'i', 'f', 0, 0};
  seg.insert(seg.end(), tiff, tiff + sizeof(tiff));
  size_t len = seg.size() - 2;
  seg[2] = uint8_t(len >> 8);
  seg[3] = uint8_t(len & 0xFF);
  jpg.insert(jpg.begin() + 2, seg.begin(), seg.end());
  return jpg;
}

TEST(Decode, JpegExifOrientation) {
  std::string dir = test::scratch_dir("image_exif");
  Image img = pattern(40, 24);
  ASSERT_TRUE(stbi_write_jpg((dir + "/a.jpg").c_str(), img.width, img.height, 3, img.rgb.data(), 95));
  std::ifstream in(dir + "/a.jpg", std::ios::binary);
  std::vector<uint8_t> jpg((std::istreambuf_iterator<char>(in)), {});
  Image plain = decode_image_memory(jpg.data(), jpg.size(), "a.jpg");
  std::vector<uint8_t> rot = with_exif_orientation(jpg, 6);  // rotate 90° clockwise
  Image r = decode_image_memory(rot.data(), rot.size(), "rot.jpg");
  ASSERT_EQ(r.width, plain.height);
  ASSERT_EQ(r.height, plain.width);
  for (int y = 0; y < r.height; ++y)
    for (int x = 0; x < r.width; ++x)
      for (int c = 0; c < 3; ++c)  // output top-left = source bottom-left
        ASSERT_EQ(r.rgb[(y * r.width + x) * 3 + c],
                  plain.rgb[((plain.height - 1 - x) * plain.width + y) * 3 + c]);
}

}  // namespace
}  // namespace qvl
