"""Regenerates the small image fixtures of tests/unit/test_image*.cpp with PIL
(the library Hugging Face's slow Qwen2-VL processor uses). Run from this folder:
    PYENV_VERSION=system python3 make_fixtures.py
Made with Pillow 9.4.0 / numpy 1.24.2. Every *.npy here is PIL's answer."""
import struct
import zlib

import numpy as np
from PIL import Image, ImageOps

rng = np.random.default_rng(1234)


def save_npy(name, arr):
    np.save(name, np.ascontiguousarray(arr))


# --- bicubic resize: PIL Image.resize(BICUBIC) on uint8 RGB -----------------
src = rng.integers(0, 256, size=(41, 53, 3), dtype=np.uint8)
yy, xx = np.mgrid[0:41, 0:53]
src[:20, :, 0] = (xx[:20] * 4).astype(np.uint8)          # smooth ramp
src[20:24, :, :] = 255 * ((xx[20:24] // 3) % 2)[..., None]  # hard stripes
save_npy("resize_src.npy", src)
im = Image.fromarray(src, "RGB")
for w, h in [(32, 32), (96, 64), (53, 20), (20, 41), (128, 17), (7, 5), (160, 123), (53, 41)]:
    save_npy(f"resize_{w}x{h}.npy", np.array(im.resize((w, h), Image.BICUBIC)))


# --- 16-bit and alpha PNGs, written by hand (PIL cannot write 16-bit RGB) ---
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)


def write_png(path, arr, ctype, depth):
    h, w = arr.shape[:2]
    dt = ">u2" if depth == 16 else "u1"
    raw = b"".join(b"\0" + arr[y].astype(dt).tobytes() for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
                + chunk(b"IEND", b""))


def pil_rgb(path):
    return np.array(Image.open(path).convert("RGB"))


v16 = rng.integers(0, 65536, size=(6, 9, 4), dtype=np.uint16)
v16[0, :4, 0] = [0, 255, 256, 65535]
write_png("gray16.png", v16[..., 0], 0, 16)
write_png("graya16.png", v16[..., :2], 4, 16)
write_png("rgb16.png", v16[..., :3], 2, 16)
write_png("rgba16.png", v16, 6, 16)
v8 = rng.integers(0, 256, size=(6, 9, 4), dtype=np.uint8)
write_png("rgba8.png", v8, 6, 8)
write_png("graya8.png", v8[..., :2], 4, 8)
for n in ["gray16", "graya16", "rgb16", "rgba16", "rgba8", "graya8"]:
    save_npy(f"{n}_rgb.npy", pil_rgb(f"{n}.png"))

# palette PNG with transparency, and a 2-frame GIF (first frame is used)
pal = Image.fromarray(rng.integers(0, 16, size=(7, 10), dtype=np.uint8), "P")
pal.putpalette(list(rng.integers(0, 256, size=16 * 3, dtype=np.uint8)))
pal.save("palette_trns.png", transparency=3)
save_npy("palette_trns_rgb.npy", pil_rgb("palette_trns.png"))
f0 = Image.fromarray(rng.integers(0, 256, size=(8, 12, 3), dtype=np.uint8)).quantize(32)
f1 = Image.fromarray(rng.integers(0, 256, size=(8, 12, 3), dtype=np.uint8)).quantize(32)
f0.save("anim.gif", save_all=True, append_images=[f1], duration=100, loop=0)
save_npy("anim_rgb.npy", pil_rgb("anim.gif"))

# GIF with a transparent palette index: PIL shows that entry's colour
tr = Image.fromarray(rng.integers(0, 8, size=(6, 9), dtype=np.uint8), "P")
tr.putpalette([10, 20, 30, 200, 100, 50, 0, 255, 0, 255, 255, 255, 90, 90, 90, 1, 2, 3,
               250, 0, 250, 7, 77, 177])
tr.save("transparent.gif", transparency=2)
save_npy("transparent_rgb.npy", pil_rgb("transparent.gif"))

# progressive JPEG (libjpeg-turbo; block smoothing applies to progressive files)
sm = np.zeros((32, 48, 3), np.uint8)
sm[..., 0] = np.linspace(0, 255, 48)[None, :]
sm[..., 1] = np.linspace(255, 0, 32)[:, None]
sm[..., 2] = 128
Image.fromarray(sm).save("progressive.jpg", quality=90, progressive=True)
save_npy("progressive_rgb.npy", pil_rgb("progressive.jpg"))

# EXIF orientation (PNG eXIf chunk): what transformers' load_image returns
base = Image.fromarray(rng.integers(0, 256, size=(3, 5, 3), dtype=np.uint8))
for o in range(1, 9):
    ex = Image.Exif()
    ex[0x0112] = o
    base.save(f"exif_orient_{o}.png", exif=ex.tobytes())
    got = ImageOps.exif_transpose(Image.open(f"exif_orient_{o}.png")).convert("RGB")
    save_npy(f"exif_orient_{o}_rgb.npy", np.array(got))

# grayscale, CMYK (PIL writes and reads Adobe-inverted CMYK) and an odd-sized
# 4:2:2 JPEG (fancy upsampling at the right/bottom edges): PIL's convert("RGB")
yy, xx = np.mgrid[0:23, 0:37]
g = (xx * 6 + yy * 3 + rng.integers(0, 40, size=(23, 37))).clip(0, 255).astype(np.uint8)
Image.fromarray(g, "L").save("gray.jpg", quality=90)
save_npy("gray_rgb.npy", pil_rgb("gray.jpg"))
c4 = rng.integers(0, 256, size=(19, 29, 4), dtype=np.uint8)
c4[:, :, 3] = (np.arange(29) * 8)[None, :]
Image.fromarray(c4, "CMYK").save("cmyk.jpg", quality=92)
save_npy("cmyk_rgb.npy", pil_rgb("cmyk.jpg"))
sub = rng.integers(0, 256, size=(21, 35, 3), dtype=np.uint8)
sub[:10] = np.stack([xx[:10, :35] * 7, 255 - yy[:10, :35] * 20, xx[:10, :35] * 3], -1)
Image.fromarray(sub).save("odd_422.jpg", quality=85, subsampling=1)
save_npy("odd_422_rgb.npy", pil_rgb("odd_422.jpg"))
