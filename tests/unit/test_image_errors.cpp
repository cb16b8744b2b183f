// Bad image input must give one qvl::Error line naming the file, never a
// crash or a silently garbage image: missing, empty, truncated, corrupt,
// random bytes, text, unsupported containers, absurd headers.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>

#include <jpeglib.h>  // after <cstdio>: encodes the unusual JPEGs below

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#include "engine/image.h"
#include "engine/jpeg_decode.h"
#include "test_util.h"

namespace qvl {
namespace {

std::string write_bytes(const std::string& dir, const std::string& name,
                        const std::vector<uint8_t>& bytes) {
  std::string path = dir + "/" + name;
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                              std::streamsize(bytes.size()));
  return path;
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), {});
}

// Decoding `path` throws qvl::Error whose message is one line, names the
// file and contains `needle`.
::testing::AssertionResult FailsWith(const std::string& path, const std::string& needle) {
  try {
    Image img = decode_image(path);
    return ::testing::AssertionFailure()
           << path << " decoded to " << img.width << "x" << img.height << " instead of failing";
  } catch (const Error& e) {
    std::string msg = e.what();
    std::printf("  %s\n", msg.c_str());
    if (msg.find('\n') != std::string::npos)
      return ::testing::AssertionFailure() << "multi-line message: " << msg;
    if (msg.find(path) == std::string::npos)
      return ::testing::AssertionFailure() << "message does not name the file: " << msg;
    if (msg.find(needle) == std::string::npos)
      return ::testing::AssertionFailure() << "message lacks '" << needle << "': " << msg;
    return ::testing::AssertionSuccess();
  }
}

std::vector<uint8_t> encoded(const char* kind) {
  std::vector<uint8_t> out;
  auto sink = [](void* ctx, void* data, int size) {
    auto* v = static_cast<std::vector<uint8_t>*>(ctx);
    v->insert(v->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
  };
  std::vector<uint8_t> px(64 * 48 * 3);
  std::mt19937 rng(7);
  for (auto& p : px) p = uint8_t(rng());
  if (!std::strcmp(kind, "png")) stbi_write_png_to_func(sink, &out, 64, 48, 3, px.data(), 64 * 3);
  if (!std::strcmp(kind, "jpg")) stbi_write_jpg_to_func(sink, &out, 64, 48, 3, px.data(), 90);
  if (!std::strcmp(kind, "bmp")) stbi_write_bmp_to_func(sink, &out, 64, 48, 3, px.data());
  return out;
}

class ImageErrors : public ::testing::Test {
 protected:
  std::string dir = test::scratch_dir("image_errors");
};

TEST_F(ImageErrors, MissingFileAndDirectory) {
  EXPECT_TRUE(FailsWith(dir + "/no_such_file.png", "not found"));
  EXPECT_TRUE(FailsWith(dir, "directory"));
}

TEST_F(ImageErrors, EmptyFile) {
  EXPECT_TRUE(FailsWith(write_bytes(dir, "empty.png", {}), "empty"));
}

TEST_F(ImageErrors, TruncatedPng) {
  std::vector<uint8_t> png = encoded("png");
  ASSERT_GT(png.size(), 200u);
  for (size_t keep : {size_t(8), size_t(30), png.size() / 2, png.size() - 13}) {
    std::vector<uint8_t> cut(png.begin(), png.begin() + keep);
    EXPECT_TRUE(FailsWith(write_bytes(dir, "cut" + std::to_string(keep) + ".png", cut), "PNG"))
        << keep << " of " << png.size() << " bytes";
  }
}

TEST_F(ImageErrors, TruncatedJpeg) {
  std::vector<uint8_t> jpg = encoded("jpg");
  for (size_t keep : {size_t(3), size_t(100), jpg.size() / 2, jpg.size() - 2}) {
    std::vector<uint8_t> cut(jpg.begin(), jpg.begin() + keep);
    EXPECT_TRUE(FailsWith(write_bytes(dir, "cut" + std::to_string(keep) + ".jpg", cut), "JPEG"))
        << keep << " of " << jpg.size() << " bytes";
  }
  // The progressive fixture, cut in its last scan.
  std::vector<uint8_t> prog = read_bytes(test::data_dir() + "/images/progressive.jpg");
  prog.resize(prog.size() - 40);
  EXPECT_TRUE(FailsWith(write_bytes(dir, "prog_cut.jpg", prog), "truncated"));
}

// Offset of the first byte after the SOS segment (start of entropy data).
size_t scan_data_start(const std::vector<uint8_t>& jpg) {
  for (size_t i = 2; i + 3 < jpg.size(); ++i)
    if (jpg[i] == 0xFF && jpg[i + 1] == 0xDA) return i + 2 + ((size_t(jpg[i + 2]) << 8) | jpg[i + 3]);
  return 0;
}

TEST_F(ImageErrors, CorruptJpegData) {
  // libjpeg errors and data-damage warnings: one line, never a partial image.
  std::vector<uint8_t> jpg = encoded("jpg");
  const size_t scan = scan_data_start(jpg);
  ASSERT_GT(scan, 0u);
  ASSERT_GT(jpg.size(), scan + 200);
  // Scan cut short but the file still ends with EOI (libjpeg: premature end
  // of data segment; PIL would return a partly grey image).
  std::vector<uint8_t> cut(jpg.begin(), jpg.begin() + scan + 100);
  cut.push_back(0xFF);
  cut.push_back(0xD9);
  EXPECT_TRUE(FailsWith(write_bytes(dir, "cut_eoi.jpg", cut), "corrupt JPEG"));
  // A restart marker in a file without restart interval.
  std::vector<uint8_t> rst = jpg;
  const uint8_t marker[] = {0xFF, 0xD3};
  rst.insert(rst.begin() + scan + 60, marker, marker + 2);
  EXPECT_TRUE(FailsWith(write_bytes(dir, "stray_rst.jpg", rst), "corrupt JPEG"));
  // 12-bit precision in the frame header (PIL: "cannot handle 12-bit layers").
  std::vector<uint8_t> p12 = jpg;
  size_t sof = 0;
  for (size_t i = 2; i + 1 < p12.size() && !sof; ++i)
    if (p12[i] == 0xFF && p12[i + 1] == 0xC0) sof = i;
  ASSERT_GT(sof, 0u);
  p12[sof + 4] = 12;
  EXPECT_TRUE(FailsWith(write_bytes(dir, "p12.jpg", p12), "JPEG"));
  // Frame header whose length disagrees with its component count.
  std::vector<uint8_t> two = jpg;
  two[sof + 9] = 2;
  EXPECT_TRUE(FailsWith(write_bytes(dir, "sof_len.jpg", two), "corrupt JPEG"));
}

// Encodes `px` ([h, w, comps]) with libjpeg: colour space `cs` (JCS_UNKNOWN
// keeps `comps` components as they are), optional progressive scan script.
std::vector<uint8_t> libjpeg_encode(int w, int h, int comps, J_COLOR_SPACE cs,
                                    const std::vector<uint8_t>& px,
                                    const std::vector<jpeg_scan_info>& scans = {}) {
  jpeg_compress_struct c;
  jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  unsigned char* buf = nullptr;
  unsigned long len = 0;
  jpeg_mem_dest(&c, &buf, &len);
  c.image_width = JDIMENSION(w);
  c.image_height = JDIMENSION(h);
  c.input_components = comps;
  c.in_color_space = cs;
  jpeg_set_defaults(&c);
  jpeg_set_colorspace(&c, cs);
  if (!scans.empty()) {
    c.scan_info = scans.data();
    c.num_scans = int(scans.size());
  }
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(px.data()) + size_t(c.next_scanline) * w * comps;
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  std::vector<uint8_t> out(buf, buf + len);
  std::free(buf);
  return out;
}

// A valid progressive script for 3 components: one DC scan, then every AC
// coefficient of every component sent alone at point transform `al` and
// refined bit by bit: 1 + 3·63·(al + 1) scans.
std::vector<jpeg_scan_info> many_scans(int al) {
  std::vector<jpeg_scan_info> s;
  s.push_back({3, {0, 1, 2, 0}, 0, 0, 0, 0});
  for (int comp = 0; comp < 3; ++comp)
    for (int k = 1; k < 64; ++k) {
      s.push_back({1, {comp, 0, 0, 0}, k, k, 0, al});
      for (int bit = al; bit > 0; --bit) s.push_back({1, {comp, 0, 0, 0}, k, k, bit, bit - 1});
    }
  return s;
}

TEST_F(ImageErrors, UnusualJpegStructures) {
  const int W = 16, H = 16;
  std::vector<uint8_t> px(W * H * 3);
  for (int i = 0; i < W * H * 3; ++i) px[i] = uint8_t(i * 37 % 251);
  // 946 scans: under the limit, decodes close to the source.
  std::vector<uint8_t> ok = libjpeg_encode(W, H, 3, JCS_RGB, px, many_scans(4));
  Image img = decode_image_memory(ok.data(), ok.size(), "scans946.jpg");
  ASSERT_EQ(img.rgb.size(), px.size());
  double err = 0;
  for (size_t i = 0; i < px.size(); ++i) err += std::abs(int(img.rgb[i]) - int(px[i]));
  EXPECT_LT(err / double(px.size()), 40.0);
  // 1,324 scans: refused before the decoder spends time on them.
  static_assert(1 + 3 * 63 * 7 > kMaxJpegScans && 1 + 3 * 63 * 5 <= kMaxJpegScans);
  std::vector<uint8_t> many = libjpeg_encode(W, H, 3, JCS_RGB, px, many_scans(6));
  EXPECT_TRUE(FailsWith(write_bytes(dir, "scans1324.jpg", many), "progressive scans"));
  // Two components (PIL: "cannot handle 2-layer images").
  std::vector<uint8_t> two = libjpeg_encode(W, H, 2, JCS_UNKNOWN, px);
  EXPECT_TRUE(FailsWith(write_bytes(dir, "two.jpg", two), "2 colour components"));
}

TEST_F(ImageErrors, TruncatedBmp) {
  std::vector<uint8_t> bmp = encoded("bmp");
  bmp.resize(bmp.size() - 100);
  EXPECT_TRUE(FailsWith(write_bytes(dir, "cut.bmp", bmp), "truncated BMP"));
}

TEST_F(ImageErrors, CorruptPngData) {
  std::vector<uint8_t> png = encoded("png");
  for (size_t i = 60; i < png.size() - 20; i += 7) png[i] ^= 0x5A;  // scramble IDAT
  EXPECT_TRUE(FailsWith(write_bytes(dir, "scrambled.png", png), "corrupt"));
}

TEST_F(ImageErrors, RandomGarbageAndText) {
  std::mt19937 rng(42);
  for (int k = 0; k < 20; ++k) {
    std::vector<uint8_t> junk(1000 + k * 37);
    for (auto& b : junk) b = uint8_t(rng());
    EXPECT_TRUE(FailsWith(write_bytes(dir, "junk" + std::to_string(k) + ".png", junk), "image"));
  }
  std::string text = "This is not an image, just some text.\n";
  EXPECT_TRUE(FailsWith(write_bytes(dir, "notes.txt", {text.begin(), text.end()}), "unrecognized"));
  // Random bytes named .tga reach stb's TGA reader (no signature): must not crash.
  std::vector<uint8_t> junk(4000);
  for (auto& b : junk) b = uint8_t(rng());
  junk[1] = 0;
  junk[2] = 2;  // plausible uncompressed true-colour header
  try {
    decode_image(write_bytes(dir, "junk.tga", junk));
  } catch (const Error&) {
  }
}

TEST_F(ImageErrors, UnsupportedContainers) {
  std::string webp("RIFF\x24\0\0\0WEBPVP8 ", 16);
  webp.resize(64, '\0');
  EXPECT_TRUE(FailsWith(write_bytes(dir, "a.webp", {webp.begin(), webp.end()}), "WebP"));
  std::vector<uint8_t> tiff = {'I', 'I', 42, 0, 8, 0, 0, 0, 0, 0};
  EXPECT_TRUE(FailsWith(write_bytes(dir, "a.tif", tiff), "TIFF"));
  std::string pbm = "P1\n2 2\n0 1 1 0\n";
  EXPECT_TRUE(FailsWith(write_bytes(dir, "a.pbm", {pbm.begin(), pbm.end()}), "not supported"));
}

TEST_F(ImageErrors, ZeroAndAbsurdHeaders) {
  // PNG IHDR claiming width 0.
  std::vector<uint8_t> png = encoded("png");
  std::vector<uint8_t> zero = png;
  zero[16] = zero[17] = zero[18] = zero[19] = 0;
  EXPECT_TRUE(FailsWith(write_bytes(dir, "zero_w.png", zero), "zero-size"));
  // PNM with 0 width, and one 40000 pixels wide (over the side limit).
  std::string p0 = "P6\n0 10\n255\n";
  EXPECT_TRUE(FailsWith(write_bytes(dir, "zero.ppm", {p0.begin(), p0.end()}), "image"));
  std::string big = "P6\n40000 2\n255\n";
  EXPECT_TRUE(FailsWith(write_bytes(dir, "wide.ppm", {big.begin(), big.end()}), "too large"));
  // BMP header claiming 30000x20000 (pixel cap) with no pixel data.
  std::vector<uint8_t> bmp = encoded("bmp");
  bmp.resize(54);
  auto put32 = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) bmp[at + i] = uint8_t(v >> (8 * i));
  };
  put32(18, 30000);
  put32(22, 20000);
  EXPECT_TRUE(FailsWith(write_bytes(dir, "huge.bmp", bmp), "pixels"));
  // Aspect ratio above 200: a valid 402x2 PNG.
  std::vector<uint8_t> px(402 * 2 * 3, 128);
  ASSERT_TRUE(stbi_write_png((dir + "/thin.png").c_str(), 402, 2, 3, px.data(), 402 * 3));
  EXPECT_TRUE(FailsWith(dir + "/thin.png", "aspect ratio"));
}

TEST_F(ImageErrors, OversizedHuffmanTable) {
  // A DHT declaring more than 256 codes (stb 2.27 would overrun its tables).
  std::vector<uint8_t> jpg = encoded("jpg");
  size_t at = 0;
  for (size_t i = 2; i + 1 < jpg.size() && !at; ++i)
    if (jpg[i] == 0xFF && jpg[i + 1] == 0xC4) at = i;
  ASSERT_GT(at, 0u);
  for (int k = 0; k < 16; ++k) jpg[at + 5 + k] = 40;  // 16 × 40 = 640 codes
  EXPECT_TRUE(FailsWith(write_bytes(dir, "bad_dht.jpg", jpg), "bad Huffman table"));
}

TEST_F(ImageErrors, UnknownPngChunkMessageIsOneLine) {
  // Critical chunk "A\nBC" after IHDR: stb quotes the type bytes in its reason.
  std::vector<uint8_t> png = encoded("png");
  const uint8_t chunk[] = {0, 0, 0, 0, 'A', '\n', 'B', 'C', 0, 0, 0, 0};
  png.insert(png.begin() + 33, chunk, chunk + sizeof(chunk));
  EXPECT_TRUE(FailsWith(write_bytes(dir, "odd_chunk.png", png), "PNG"));
}

// Seeded byte mutations of valid files of every format: each decode either
// succeeds with a consistent image or throws qvl::Error (run under ASan to
// catch memory errors in the decoders).
TEST_F(ImageErrors, MutatedFilesNeverCrash) {
  std::vector<std::pair<std::string, std::vector<uint8_t>>> seeds = {
      {"m.png", encoded("png")}, {"m.jpg", encoded("jpg")}, {"m.bmp", encoded("bmp")}};
  for (const char* f : {"anim.gif", "progressive.jpg", "palette_trns.png", "rgb16.png"})
    seeds.push_back({f, read_bytes(test::data_dir() + "/images/" + f)});
  std::vector<uint8_t> tga;
  stbi_write_tga_to_func(
      [](void* ctx, void* data, int size) {
        auto* v = static_cast<std::vector<uint8_t>*>(ctx);
        v->insert(v->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
      },
      &tga, 16, 8, 3, seeds[0].second.data() + 64);  // any bytes as pixels
  seeds.push_back({"m.tga", tga});
  std::mt19937 rng(2024);
  int ok = 0, errors = 0;
  for (auto& [name, bytes] : seeds) {
    ASSERT_GT(bytes.size(), 16u) << name;
    for (int k = 0; k < 150; ++k) {
      std::vector<uint8_t> m = bytes;
      int edits = 1 + int(rng() % 8);
      for (int e = 0; e < edits; ++e) {
        size_t at = rng() % m.size();
        switch (rng() % 3) {
          case 0: m[at] = uint8_t(rng()); break;
          case 1: m[at] ^= uint8_t(1u << (rng() % 8)); break;
          case 2: m.resize(std::max<size_t>(at, 1)); break;
        }
      }
      try {
        Image img = decode_image_memory(m.data(), m.size(), name);
        ASSERT_EQ(img.rgb.size(), size_t(img.width) * img.height * 3) << name;
        ++ok;
      } catch (const Error& e) {
        ASSERT_EQ(std::string(e.what()).find('\n'), std::string::npos);
        ++errors;
      }
    }
  }
  std::printf("  mutants: %d decoded, %d rejected with qvl::Error\n", ok, errors);
  EXPECT_GT(errors, 0);
}

}  // namespace
}  // namespace qvl
