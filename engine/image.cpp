// Image file → RGB uint8 (JPEG: libjpeg-turbo as PIL uses it, jpeg_decode.cpp;
// other formats: stb_image), with the checks and colour rules that make the
// result equal to what Hugging Face gets from PIL: format sniffing, truncation
// checks stb does not do, 16-bit handling, EXIF orientation.
// Resampling and patchify live in image_preprocess.cpp.
#include "engine/image.h"

#include <stb_image.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "engine/jpeg_decode.h"
#include "kernels/base.h"

namespace qvl {
namespace {

enum class Format { PNG, JPEG, GIF, BMP, TGA, PNM };

const char* format_name(Format f) {
  switch (f) {
    case Format::PNG: return "PNG";
    case Format::JPEG: return "JPEG";
    case Format::GIF: return "GIF";
    case Format::BMP: return "BMP";
    case Format::TGA: return "TGA";
    case Format::PNM: return "PNM";
  }
  return "?";
}

std::vector<uint8_t> read_file(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  QVL_CHECK(fs::exists(path, ec), "image '%s': file not found", path.c_str());
  QVL_CHECK(!fs::is_directory(path, ec), "image '%s': is a directory, not an image file",
            path.c_str());
  std::FILE* f = std::fopen(path.c_str(), "rb");
  QVL_CHECK(f, "image '%s': cannot open (%s)", path.c_str(), std::strerror(errno));
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> guard(f, &std::fclose);
  std::vector<uint8_t> data;
  uint8_t chunk[1 << 16];
  size_t n;
  while ((n = std::fread(chunk, 1, sizeof(chunk), f)) > 0) data.insert(data.end(), chunk, chunk + n);
  QVL_CHECK(!std::ferror(f), "image '%s': read error (%s)", path.c_str(), std::strerror(errno));
  return data;
}

bool starts_with(const uint8_t* d, size_t n, const char* magic, size_t len) {
  return n >= len && std::memcmp(d, magic, len) == 0;
}

std::string lower_extension(const std::string& name) {
  std::string ext = std::filesystem::path(name).extension().string();
  for (char& c : ext) c = char(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

// Decides the format from the signature bytes (TGA has none: by extension).
Format sniff_format(const uint8_t* d, size_t n, const std::string& name) {
  if (starts_with(d, n, "\x89PNG\r\n\x1a\n", 8)) return Format::PNG;
  if (n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF) return Format::JPEG;
  if (starts_with(d, n, "GIF87a", 6) || starts_with(d, n, "GIF89a", 6)) return Format::GIF;
  if (starts_with(d, n, "BM", 2)) return Format::BMP;
  if (n >= 2 && d[0] == 'P' && (d[1] == '5' || d[1] == '6')) return Format::PNM;
  const char* what = nullptr;
  if (n >= 12 && starts_with(d, n, "RIFF", 4) && std::memcmp(d + 8, "WEBP", 4) == 0) what = "WebP";
  else if (starts_with(d, n, "II*\0", 4) || starts_with(d, n, "MM\0*", 4)) what = "TIFF";
  else if (n >= 12 && std::memcmp(d + 4, "ftyp", 4) == 0) what = "HEIF/AVIF";
  else if (n >= 2 && d[0] == 'P' && d[1] >= '1' && d[1] <= '4') what = "ASCII/1-bit PNM";
  QVL_CHECK(!what, "image '%s': %s images are not supported (use PNG, JPEG, BMP, GIF, TGA or PNM)",
            name.c_str(), what);
  std::string ext = lower_extension(name);
  if (ext == ".tga" || ext == ".tpic") return Format::TGA;
  throw_error(strfmt("image '%s': unrecognized image format (not PNG, JPEG, BMP, GIF, TGA or PNM)",
                     name.c_str()));
}

// Walks a JPEG's marker segments (skipping entropy-coded data) and checks,
// before libjpeg sees the file, with clearer messages: (1) the file is
// complete — PIL reports "image file is truncated" when libjpeg runs out of
// data (libjpeg alone would pad with a fake end-of-image); (2) every Huffman
// table is well-formed (at most 256 codes, valid class and index).
void check_jpeg_structure(const uint8_t* d, size_t n, const std::string& name) {
  const char* file = name.c_str();
  bool sos = false, eoi = false;
  size_t i = 2;
  while (i + 1 < n && !eoi) {
    if (d[i] != 0xFF) { ++i; continue; }  // entropy-coded data
    const uint8_t m = d[i + 1];
    if (m == 0xFF) { ++i; continue; }     // fill byte
    if (m == 0x00 || m == 0x01 || (m >= 0xD0 && m <= 0xD8)) { i += 2; continue; }
    if (m == 0xD9) { eoi = true; break; }
    if (i + 4 > n) break;
    const size_t len = (size_t(d[i + 2]) << 8) | d[i + 3];
    QVL_CHECK(len >= 2 && i + 2 + len <= n, "image '%s': truncated JPEG (segment 0x%02X runs past "
              "the end of the file)", file, m);
    if (m == 0xC4) {  // DHT: one or more tables of 1 + 16 + Σcounts bytes
      const uint8_t* p = d + i + 4;
      size_t left = len - 2;
      while (left > 0) {
        QVL_CHECK(left >= 17, "image '%s': corrupt JPEG (short Huffman table)", file);
        size_t codes = 0;
        for (int k = 1; k <= 16; ++k) codes += p[k];
        QVL_CHECK(codes <= 256 && 17 + codes <= left && (p[0] & 0x0F) <= 3 && (p[0] >> 4) <= 1,
                  "image '%s': corrupt JPEG (bad Huffman table)", file);
        p += 17 + codes;
        left -= 17 + codes;
      }
    }
    sos |= m == 0xDA;
    i += 2 + len;
  }
  QVL_CHECK(sos && eoi, "image '%s': truncated JPEG (no end-of-image marker after the image data)",
            file);
}

uint32_t le32(const uint8_t* p) { return p[0] | (p[1] << 8) | (p[2] << 16) | (uint32_t(p[3]) << 24); }

// stb reads missing BMP pixel bytes as zeros; check the pixel array fits for
// uncompressed (BI_RGB / BI_BITFIELDS) files.
void check_bmp_complete(const uint8_t* d, size_t n, const std::string& name) {
  if (n < 30) return;  // stb reports the short header itself
  uint32_t offset = le32(d + 10), hsize = le32(d + 14);
  if (hsize < 40 || n < 34) return;  // OS/2 headers: leave to stb
  int64_t w = int32_t(le32(d + 18)), h = int32_t(le32(d + 22));
  int bpp = d[28] | (d[29] << 8);
  uint32_t comp = le32(d + 30);
  if ((comp != 0 && comp != 3) || w <= 0 || bpp <= 0) return;
  int64_t stride = (w * bpp + 31) / 32 * 4;
  int64_t need = int64_t(offset) + stride * std::llabs(h);
  QVL_CHECK(int64_t(n) >= need, "image '%s': truncated BMP (%zu bytes, pixel data needs %lld)",
            name.c_str(), n, (long long)need);
}

// PIL keeps a GIF's first frame in palette mode, so convert("RGB") shows a
// transparent pixel as its palette colour; stb returns it with alpha 0 and
// RGB 0. Returns that colour (from the frame's local or the global table),
// or false when the first frame declares no transparency.
bool gif_transparent_color(const uint8_t* d, size_t n, uint8_t rgb[3]) {
  if (n < 13) return false;
  size_t i = 13;
  size_t gct = (d[10] & 0x80) ? 3u << ((d[10] & 7) + 1) : 0;
  const uint8_t* global = d + 13;
  if (i + gct > n) return false;
  i += gct;
  int tindex = -1;
  while (i < n) {
    if (d[i] == 0x21) {  // extension: label, then sub-blocks
      if (i + 2 > n) return false;
      const uint8_t label = d[i + 1];
      if (label == 0xF9 && i + 7 <= n && d[i + 2] == 4) tindex = (d[i + 3] & 1) ? d[i + 6] : -1;
      i += 2;
      while (i < n && d[i] != 0) i += 1 + d[i];
      ++i;
    } else if (d[i] == 0x2C) {  // first image descriptor
      if (tindex < 0 || i + 10 > n) return false;
      const uint8_t flags = d[i + 9];
      const uint8_t* table = global;
      size_t size = gct;
      if (flags & 0x80) {
        table = d + i + 10;
        size = 3u << ((flags & 7) + 1);
        if (i + 10 + size > n) return false;
      }
      if (size_t(tindex) * 3 + 3 > size) return false;
      std::memcpy(rgb, table + tindex * 3, 3);
      return true;
    } else {
      return false;
    }
  }
  return false;
}

uint16_t rd16(const uint8_t* p, bool le) { return le ? p[0] | (p[1] << 8) : (p[0] << 8) | p[1]; }
uint32_t rd32(const uint8_t* p, bool le) {
  return le ? le32(p) : (uint32_t(p[0]) << 24) | (p[1] << 16) | (p[2] << 8) | p[3];
}

// Orientation tag (0x0112) of IFD0 in a TIFF-structured EXIF block, 1 if absent.
int tiff_orientation(const uint8_t* t, size_t n) {
  if (n < 8) return 1;
  bool le;
  if (t[0] == 'I' && t[1] == 'I') le = true;
  else if (t[0] == 'M' && t[1] == 'M') le = false;
  else return 1;
  uint32_t ifd = rd32(t + 4, le);
  if (ifd > n || n - ifd < 2) return 1;
  int count = rd16(t + ifd, le);
  for (int i = 0; i < count; ++i) {
    size_t e = size_t(ifd) + 2 + size_t(i) * 12;
    if (e + 12 > n) return 1;
    if (rd16(t + e, le) == 0x0112 && rd16(t + e + 2, le) == 3) {
      int v = rd16(t + e + 8, le);
      return (v >= 1 && v <= 8) ? v : 1;
    }
  }
  return 1;
}

// EXIF orientation from a JPEG APP1 "Exif" segment or a PNG eXIf chunk.
int exif_orientation(const uint8_t* d, size_t n, Format f) {
  if (f == Format::JPEG) {
    size_t i = 2;
    while (i + 4 <= n && d[i] == 0xFF) {
      uint8_t m = d[i + 1];
      if (m == 0xFF) { ++i; continue; }                 // fill byte
      if (m == 0xDA || m == 0xD9) break;                // scan data / end
      if (m == 0x01 || (m >= 0xD0 && m <= 0xD8)) { i += 2; continue; }
      size_t len = (size_t(d[i + 2]) << 8) | d[i + 3];
      if (len < 2 || i + 2 + len > n) break;
      if (m == 0xE1 && len >= 8 && std::memcmp(d + i + 4, "Exif\0\0", 6) == 0)
        return tiff_orientation(d + i + 10, len - 8);
      i += 2 + len;
    }
  } else if (f == Format::PNG) {
    size_t i = 8;
    while (i + 12 <= n) {
      size_t len = rd32(d + i, false);
      if (len > n - i - 12) break;
      if (std::memcmp(d + i + 4, "eXIf", 4) == 0) {
        const uint8_t* p = d + i + 8;
        if (len >= 6 && std::memcmp(p, "Exif\0\0", 6) == 0) return tiff_orientation(p + 6, len - 6);
        return tiff_orientation(p, len);
      }
      if (std::memcmp(d + i + 4, "IEND", 4) == 0) break;
      i += 12 + len;
    }
  }
  return 1;
}

// PIL.ImageOps.exif_transpose: 2 mirror, 3 rotate 180, 4 flip, 5 transpose,
// 6 rotate 90° clockwise, 7 transverse, 8 rotate 90° counter-clockwise.
Image apply_orientation(Image in, int o) {
  if (o <= 1) return in;
  const int W = in.width, H = in.height;
  const bool swap = o >= 5;
  Image out;
  out.width = swap ? H : W;
  out.height = swap ? W : H;
  out.rgb.resize(in.rgb.size());
  for (int y = 0; y < out.height; ++y) {
    for (int x = 0; x < out.width; ++x) {
      int sx = x, sy = y;
      switch (o) {
        case 2: sx = W - 1 - x; break;
        case 3: sx = W - 1 - x; sy = H - 1 - y; break;
        case 4: sy = H - 1 - y; break;
        case 5: sx = y; sy = x; break;
        case 6: sx = y; sy = H - 1 - x; break;
        case 7: sx = W - 1 - y; sy = H - 1 - x; break;
        case 8: sx = W - 1 - y; sy = x; break;
      }
      std::memcpy(&out.rgb[(size_t(y) * out.width + x) * 3], &in.rgb[(size_t(sy) * W + sx) * 3], 3);
    }
  }
  return out;
}

// stb's last failure text, made printable (stb embeds unknown PNG chunk
// type bytes in it); some stb paths fail without setting one.
std::string stb_reason_text() {
  const char* r = stbi_failure_reason();
  if (!r || !*r) return "truncated or invalid data";
  std::string s(r);
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7E) c = '?';
  return s;
}

void check_dimensions(int w, int h, const std::string& name) {
  QVL_CHECK(w > 0 && h > 0, "image '%s': zero-size image (%dx%d)", name.c_str(), w, h);
  QVL_CHECK(w <= kMaxImageSide && h <= kMaxImageSide,
            "image '%s': %dx%d is too large (at most %d pixels per side)", name.c_str(), w, h,
            kMaxImageSide);
  QVL_CHECK(int64_t(w) * h <= kMaxImagePixels, "image '%s': %dx%d has more than %lld pixels",
            name.c_str(), w, h, (long long)kMaxImagePixels);
  double aspect = double(std::max(w, h)) / double(std::min(w, h));
  QVL_CHECK(aspect <= kMaxAspectRatio,
            "image '%s': %dx%d has aspect ratio %.1f (Qwen-VL accepts at most %.0f)", name.c_str(),
            w, h, aspect, kMaxAspectRatio);
}

// Every format but JPEG: stb_image, then PIL's colour rules.
Image decode_with_stb(const uint8_t* data, size_t size, const std::string& name, Format fmt) {
  if (fmt == Format::PNG && size >= 24)  // IHDR width / height (stb only says "corrupt")
    check_dimensions(int(std::min<uint32_t>(rd32(data + 16, false), 1u << 30)),
                     int(std::min<uint32_t>(rd32(data + 20, false), 1u << 30)), name);
  const int len = int(size);
  int w = 0, h = 0, comp = 0;
  if (!stbi_info_from_memory(data, len, &w, &h, &comp))
    throw_error(strfmt("image '%s': corrupt or unreadable %s file (%s)", name.c_str(),
                       format_name(fmt), stb_reason_text().c_str()));
  check_dimensions(w, h, name);
  if (fmt == Format::BMP) check_bmp_complete(data, size, name);

  Image img;
  const bool gray16 = comp == 1 && stbi_is_16_bit_from_memory(data, len);
  if (gray16) {
    // PIL: 16-bit gray opens as mode "I"; convert("RGB") clips to 255.
    std::unique_ptr<stbi_us, void (*)(void*)> px(
        stbi_load_16_from_memory(data, len, &w, &h, &comp, 1), &stbi_image_free);
    if (!px)
      throw_error(strfmt("image '%s': corrupt %s file (%s)", name.c_str(), format_name(fmt),
                         stb_reason_text().c_str()));
    img.width = w;
    img.height = h;
    img.rgb.resize(size_t(w) * h * 3);
    for (size_t i = 0; i < size_t(w) * h; ++i) {
      uint8_t v = uint8_t(std::min<int>(px.get()[i], 255));
      img.rgb[3 * i] = img.rgb[3 * i + 1] = img.rgb[3 * i + 2] = v;
    }
  } else if (fmt == Format::GIF) {
    std::unique_ptr<stbi_uc, void (*)(void*)> px(stbi_load_from_memory(data, len, &w, &h, &comp, 4),
                                                 &stbi_image_free);
    if (!px)
      throw_error(strfmt("image '%s': corrupt GIF file (%s)", name.c_str(),
                         stb_reason_text().c_str()));
    uint8_t clear[3] = {0, 0, 0};
    gif_transparent_color(data, size, clear);
    img.width = w;
    img.height = h;
    img.rgb.resize(size_t(w) * h * 3);
    for (size_t i = 0; i < size_t(w) * h; ++i) {
      const uint8_t* p = px.get() + 4 * i;
      std::memcpy(&img.rgb[3 * i], p[3] ? p : clear, 3);
    }
  } else {
    // stb drops alpha and replicates gray for req_comp = 3; 16-bit → v >> 8.
    std::unique_ptr<stbi_uc, void (*)(void*)> px(stbi_load_from_memory(data, len, &w, &h, &comp, 3),
                                                 &stbi_image_free);
    if (!px)
      throw_error(strfmt("image '%s': corrupt %s file (%s)", name.c_str(), format_name(fmt),
                         stb_reason_text().c_str()));
    img.width = w;
    img.height = h;
    img.rgb.assign(px.get(), px.get() + size_t(w) * h * 3);
  }
  return img;
}

}  // namespace

Image decode_image_memory(const uint8_t* data, size_t size, const std::string& name) {
  QVL_CHECK(size > 0, "image '%s': file is empty (0 bytes)", name.c_str());
  QVL_CHECK(size < size_t(1) << 31, "image '%s': file is larger than 2 GiB", name.c_str());
  Format fmt = sniff_format(data, size, name);
  Image img;
  if (fmt == Format::JPEG) {
    check_jpeg_structure(data, size, name);
    img = decode_jpeg(data, size, name, [&](int w, int h) { check_dimensions(w, h, name); });
  } else {
    img = decode_with_stb(data, size, name, fmt);
  }
  check_dimensions(img.width, img.height, name);
  return apply_orientation(std::move(img), exif_orientation(data, size, fmt));
}

Image decode_image(const std::string& path) {
  std::vector<uint8_t> data = read_file(path);
  return decode_image_memory(data.data(), data.size(), path);
}

}  // namespace qvl
