// JPEG decoding with libjpeg-turbo, bit-exact with Pillow 9.4 (see
// jpeg_decode.h for the settings and colour rules). libjpeg reports errors by
// calling error_exit, which must not return: it longjmps back to the one
// function that called setjmp (run_protected). All state the steps touch
// lives in a Decoder object outside that function, and the steps hold no C++
// objects with destructors, so the jump skips nothing that needs cleanup;
// Decoder's destructor releases libjpeg's memory on every path.
#include "engine/jpeg_decode.h"

#include <csetjmp>
#include <cstdio>  // jpeglib.h needs FILE
#include <cstring>
#include <vector>

// clang-format off
#include <jpeglib.h>  // first: jconfig.h decides which messages jerror.h declares
#include <jerror.h>
// clang-format on

#include "kernels/base.h"

namespace qvl {
namespace {

struct ErrorManager {
  jpeg_error_mgr pub;  // first member: libjpeg sees cinfo->err as this
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  bool truncated;      // the failure is missing data, not bad data
};

struct Decoder {
  jpeg_decompress_struct cinfo;
  ErrorManager err;
  jpeg_progress_mgr progress;
  const uint8_t* data = nullptr;  // the whole file
  size_t size = 0;
  int components = 0;          // output samples per pixel (1, 3 or 4)
  std::vector<uint8_t> raw;    // [height, width, components] as libjpeg outputs
  Decoder() {
    std::memset(&cinfo, 0, sizeof(cinfo));  // cinfo.mem == nullptr: destroy is a no-op
    std::memset(&err, 0, sizeof(err));
    std::memset(&progress, 0, sizeof(progress));
  }
  ~Decoder() { jpeg_destroy_decompress(&cinfo); }
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;
};

// error_exit: keep libjpeg's text, then jump back to run_protected.
void on_error(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  const int code = cinfo->err->msg_code;
  err->truncated = code == JWRN_JPEG_EOF || code == JERR_INPUT_EOF || code == JERR_INPUT_EMPTY;
  std::longjmp(err->jump, 1);
}

// Warnings after which the decoded pixels are not the file's image.
bool damages_pixels(int code) {
  switch (code) {
#if JPEG_LIB_VERSION >= 70 || defined(C_ARITH_CODING_SUPPORTED) || \
    defined(D_ARITH_CODING_SUPPORTED)
    case JWRN_ARITH_BAD_CODE:
#endif
    case JWRN_HUFF_BAD_CODE:
    case JWRN_HIT_MARKER:
    case JWRN_JPEG_EOF:
    case JWRN_MUST_RESYNC:
    case JWRN_NOT_SEQUENTIAL:
    case JWRN_BOGUS_PROGRESSION:
      return true;
    default:
      return false;
  }
}

// emit_message: level < 0 is a warning, level >= 0 trace output (ignored).
void on_message(j_common_ptr cinfo, int level) {
  if (level < 0 && damages_pixels(cinfo->err->msg_code)) on_error(cinfo);
}

// Called while jpeg_start_decompress absorbs a multi-scan file.
void on_progress(j_common_ptr cinfo) {
  auto* d = reinterpret_cast<j_decompress_ptr>(cinfo);
  if (d->input_scan_number <= kMaxJpegScans) return;
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  std::snprintf(err->message, sizeof(err->message), "more than %d progressive scans",
                kMaxJpegScans);
  err->truncated = false;
  std::longjmp(err->jump, 1);
}

// Runs one step with libjpeg's errors caught: false after a libjpeg error
// (text in d->err.message). The only function that calls setjmp.
bool run_protected(Decoder* d, void (*step)(Decoder*)) {
  if (setjmp(d->err.jump)) return false;
  step(d);
  return true;
}

// Step 1: error manager, memory source, header; output colour space as PIL's
// JpegDecode sets it for the mode JpegImagePlugin derives from the layer count.
void read_header_step(Decoder* d) {
  jpeg_decompress_struct& c = d->cinfo;
  c.err = jpeg_std_error(&d->err.pub);
  d->err.pub.error_exit = on_error;
  d->err.pub.emit_message = on_message;
  jpeg_create_decompress(&c);
  jpeg_mem_src(&c, d->data, static_cast<unsigned long>(d->size));
  d->progress.progress_monitor = on_progress;
  c.progress = &d->progress;
  jpeg_read_header(&c, TRUE);
  switch (c.num_components) {
    case 1: c.out_color_space = JCS_GRAYSCALE; d->components = 1; break;
    case 3: c.out_color_space = JCS_RGB; d->components = 3; break;
    case 4: c.out_color_space = JCS_CMYK; d->components = 4; break;
    default: d->components = 0; break;  // refused by the caller, as PIL does
  }
}

void start_step(Decoder* d) { jpeg_start_decompress(&d->cinfo); }

// Step 3: every scanline into d->raw (sized by the caller), then EOI.
void read_pixels_step(Decoder* d) {
  jpeg_decompress_struct& c = d->cinfo;
  const size_t stride = size_t(c.output_width) * d->components;
  while (c.output_scanline < c.output_height) {
    JSAMPROW row = d->raw.data() + size_t(c.output_scanline) * stride;
    if (jpeg_read_scanlines(&c, &row, 1) != 1) {  // memory source never suspends
      std::snprintf(d->err.message, sizeof(d->err.message), "decoder stopped at row %u",
                    c.output_scanline);
      d->err.truncated = true;
      std::longjmp(d->err.jump, 1);
    }
  }
  jpeg_finish_decompress(&c);
}

[[noreturn]] void fail(const Decoder& d, const std::string& name) {
  std::string why(d.err.message);
  for (char& ch : why)
    if (static_cast<unsigned char>(ch) < 0x20 || static_cast<unsigned char>(ch) > 0x7E) ch = '?';
  throw_error(strfmt("image '%s': %s JPEG (%s)", name.c_str(),
                     d.err.truncated ? "truncated" : "corrupt", why.c_str()));
}

}  // namespace

void pil_inverted_cmyk_to_rgb(const uint8_t cmyk[4], uint8_t rgb[3]) {
  // PIL's pixel is the inverse of libjpeg's sample ("CMYK;I"); its
  // cmyk2rgb computes nk − nk·C/255 with nk = 255 − K, dividing by 255 as
  // t = a·b + 128, (t + (t >> 8)) >> 8.
  const int nk = 255 - (255 - cmyk[3]);
  for (int i = 0; i < 3; ++i) {
    const int c = 255 - cmyk[i];
    const int t = c * nk + 128;
    const int v = nk - (((t >> 8) + t) >> 8);
    rgb[i] = uint8_t(v < 0 ? 0 : v > 255 ? 255 : v);
  }
}

Image decode_jpeg(const uint8_t* data, size_t size, const std::string& name,
                  const std::function<void(int, int)>& check_size) {
  Decoder d;
  d.data = data;
  d.size = size;
  if (!run_protected(&d, read_header_step)) fail(d, name);
  QVL_CHECK(d.components != 0, "image '%s': unsupported JPEG (%d colour components; PIL reads 1, "
            "3 or 4)", name.c_str(), d.cinfo.num_components);
  check_size(int(d.cinfo.image_width), int(d.cinfo.image_height));
  if (!run_protected(&d, start_step)) fail(d, name);
  const int w = int(d.cinfo.output_width), h = int(d.cinfo.output_height);
  QVL_CHECK(d.cinfo.output_components == d.components, "image '%s': unsupported JPEG (decoder "
            "gives %d components, expected %d)", name.c_str(), d.cinfo.output_components,
            d.components);
  d.raw.resize(size_t(w) * h * d.components);
  if (!run_protected(&d, read_pixels_step)) fail(d, name);

  Image img;
  img.width = w;
  img.height = h;
  const size_t n = size_t(w) * h;
  if (d.components == 3) {
    img.rgb = std::move(d.raw);
  } else if (d.components == 1) {
    img.rgb.resize(n * 3);
    for (size_t i = 0; i < n; ++i) std::memset(&img.rgb[3 * i], d.raw[i], 3);
  } else {
    img.rgb.resize(n * 3);
    for (size_t i = 0; i < n; ++i) pil_inverted_cmyk_to_rgb(&d.raw[4 * i], &img.rgb[3 * i]);
  }
  return img;
}

}  // namespace qvl
