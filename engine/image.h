// Image input for the vision tower: decode a file to RGB uint8, then the
// Hugging Face Qwen2-VL/Qwen3-VL image-processor recipe, reproduced bit-exactly
// against the slow (PIL + numpy) processor:
//   decode → RGB → smart_resize target (factor = patch·merge, min/max pixels)
//   → PIL-identical bicubic resize on uint8 → x·rescale → (x − mean)/std
//   → frame duplicated to temporal_patch → patches in merge-block order.
//
// Colour conversion follows PIL's Image.convert("RGB"), which is what
// transformers' convert_to_rgb / load_image do for these processors:
//   - grayscale → R = G = B;
//   - alpha (RGBA, gray+alpha, palette with tRNS) is DROPPED, not composited
//     over white (transformers.image_transforms.convert_to_rgb is a plain
//     convert("RGB"); only some other models composite);
//   - 16-bit PNG with colour or alpha → high byte (v >> 8), as PIL's
//     RGB;16B / RGBA;16B unpackers do;
//   - 16-bit grayscale PNG → min(v, 255): PIL opens it as mode "I" and its
//     I → RGB conversion clips (so a full-range 16-bit gray image becomes
//     mostly white, exactly as in HF).
//   - GIF: first frame; a transparent palette index shows its palette colour
//     (PIL keeps frame 0 in palette mode, convert("RGB") ignores transparency);
//   - EXIF orientation (JPEG APP1, PNG eXIf) is applied: transformers'
//     image_utils.load_image calls PIL.ImageOps.exif_transpose.
// Formats: JPEG (baseline, progressive, arithmetic; gray / RGB / CMYK) through
// libjpeg-turbo with PIL's settings, bit-exact with PIL (engine/jpeg_decode.h);
// PNG, BMP, GIF (first frame), TGA (by .tga extension: it has no signature),
// PNM through stb_image.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "kernels/base.h"  // qvl::Error
#include "loader/config.h"

namespace qvl {

// HWC RGB uint8, rgb.size() == width * height * 3, row-major.
struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
};

// Largest accepted side (pixels) and pixel count of a decoded image; the count
// is PIL's decompression-bomb error threshold (2 × 89,478,485).
constexpr int kMaxImageSide = 1 << 15;
constexpr int64_t kMaxImagePixels = 178956970;
// smart_resize refuses aspect ratios above this (HF raises too).
constexpr double kMaxAspectRatio = 200.0;

// Decodes an image file to RGB. Throws qvl::Error (one line naming the file)
// on a missing / empty / truncated / corrupt / unsupported file or absurd
// dimensions (side > kMaxImageSide, pixels > kMaxImagePixels, aspect > 200).
Image decode_image(const std::string& path);
// Same from bytes already in memory; `name` is used in error messages and its
// extension decides whether TGA is tried.
Image decode_image_memory(const uint8_t* data, size_t size, const std::string& name);

// HF smart_resize: returns (height, width), multiples of `factor`, with
// Python round-half-to-even of H/F and W/F, then scaled by β = sqrt(area
// ratio) (floor when above max_pixels, ceil when below min_pixels), all in
// float64 exactly as Python computes it. Throws if the aspect ratio > 200 or
// a side is not positive.
std::pair<int, int> smart_resize(int height, int width, int factor, int64_t min_pixels,
                                 int64_t max_pixels);

// PIL Image.resize((out_w, out_h), BICUBIC) on an RGB uint8 image, identical
// to Pillow's ImagingResample: separable (horizontal pass over the needed rows
// into a uint8 intermediate, then vertical), cubic a = −0.5 with support
// widened by the downscale factor (antialias), per-output normalized weights
// quantized to 22-bit fixed point, round-half-up accumulation, clamp to 0..255.
// An axis whose size does not change is not resampled.
Image resize_bicubic(const Image& in, int out_w, int out_h);
// Plain double-precision twin of resize_bicubic (same coefficients, float
// accumulation, intermediate rounded to uint8): a test reference, may differ
// from the fixed-point result by 1 LSB where the sum sits on a rounding edge.
Image resize_bicubic_ref(const Image& in, int out_w, int out_h);

// Patch grid of one image in patches (t = temporal patches, 1 for images).
struct PatchGrid {
  int t = 0, h = 0, w = 0;
};

struct PreprocessedImage {
  PatchGrid grid;
  int resized_w = 0, resized_h = 0;
  int row_len = 0;            // 3 * temporal * patch * patch (1536 for Qwen3-VL);
                              // 3 * patch * patch with single_frame
  std::vector<float> pixels;  // [t*h*w, row_len], rows in merge-block order
  int64_t rows() const { return int64_t(grid.t) * grid.h * grid.w; }
  // <|image_pad|> tokens this image occupies: t*h*w / merge².
  int64_t num_tokens(int merge) const { return rows() / (int64_t(merge) * merge); }
};

// The full recipe above from decoded RGB. Row layout (spec §6.4): row
// (((gt*H2 + bh)*W2 + bw)*m + ih)*m + iw, column ((c*T + tt)*P + y)*P + x,
// pixel (y_img, x_img) = ((bh*m + ih)*P + y, (bw*m + iw)*P + x).
// single_frame = true skips the temporal duplication: rows are [3*P*P]
// (column (c*P + y)*P + x), half the memory; a consumer then multiplies with
// the patch-embedding weight summed over its temporal axis (exactly
// equivalent, since every temporal copy of an image frame is identical).
PreprocessedImage preprocess_image(const Image& img, const PreprocessorConfig& cfg,
                                   bool single_frame = false);
// Only the patchify + normalize step on an image already at a multiple of
// patch·merge (used by preprocess_image; exposed for tests).
PreprocessedImage patchify_image(const Image& resized, const PreprocessorConfig& cfg,
                                 bool single_frame = false);

}  // namespace qvl
