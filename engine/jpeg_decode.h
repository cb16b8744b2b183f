// JPEG → RGB with libjpeg-turbo, configured the way Pillow 9.4 decodes it, so
// the pixels equal what Hugging Face gets from
// PIL.Image.open(f).convert("RGB") byte for byte (stb_image differs by a few
// LSB: other IDCT and chroma upsampling).
//
// PIL's settings, reproduced here:
//   - libjpeg defaults: JDCT_ISLOW, fancy upsampling, block smoothing for
//     progressive files, full size (no draft / DCT scaling);
//   - the input colour space is libjpeg's own guess (JFIF / Adobe markers);
//   - output colour space by component count: 1 → gray, 3 → RGB, 4 → CMYK;
//     other counts and precisions other than 8 bits are refused, as in PIL.
// Then PIL's convert("RGB"):
//   - gray → R = G = B;
//   - CMYK: PIL assumes Adobe polarity (rawmode "CMYK;I": every channel
//     inverted on read), then R = clip(nk − nk·C/255) with nk = 255 − K and
//     PIL's rounded integer division by 255.
//
// Errors: every libjpeg error, and the libjpeg warnings that mean damaged pixel
// data (bad Huffman/arithmetic code, premature end of a data segment or of the
// file, lost restart sync, bad progression), become one qvl::Error line naming
// the file. Pillow raises for truncated files ("image file is truncated") but
// silently decodes corrupt entropy data; qvl refuses it instead. Harmless
// warnings PIL also ignores (unknown JFIF revision, unknown Adobe transform,
// extraneous bytes between markers, bad ICC marker) are ignored.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "engine/image.h"

namespace qvl {

// A progressive file with more scans than this is refused (a few hundred
// bytes of empty scans could otherwise make the decoder loop over a large
// coefficient buffer for minutes). Real encoders write at most ~20.
constexpr int kMaxJpegScans = 1000;

// Decodes a complete JPEG file held in memory (`name` for messages).
// `check_size(width, height)` runs after the header is read and before any
// pixel memory is allocated; it may throw to refuse the image.
Image decode_jpeg(const uint8_t* data, size_t size, const std::string& name,
                  const std::function<void(int, int)>& check_size);

// PIL's CMYK → RGB for one pixel as libjpeg returns it (Adobe-inverted CMYK,
// i.e. PIL's "CMYK;I" raw mode followed by convert("RGB")); exposed for tests.
void pil_inverted_cmyk_to_rgb(const uint8_t cmyk[4], uint8_t rgb[3]);

}  // namespace qvl
