#!/usr/bin/env python3
# Reference image preprocessing for Qwen2-VL/Qwen3-VL style models, written after the
# behaviour of Hugging Face's slow (PIL + numpy) Qwen2VLImageProcessor: PIL decode ->
# convert("RGB") -> smart_resize (round half to even, min/max pixels) -> PIL bicubic resize
# on uint8 -> x/255 (float64, stored float32) -> (x - mean)/std (float32) -> frame
# duplicated to temporal_patch_size -> patches in merge-block order.
#
#   PYENV_VERSION=system python3 tools/hf_preprocess.py [--config preprocessor_config.json]
#       [--min-pixels N] [--max-pixels N] --out DIR IMAGE...
#
# Writes DIR/pixel_values.npy f32 [sum t*h*w, C*T*P*P], DIR/image_grid_thw.npy i64 [n,3]
# and DIR/image_<k>_resized_rgb.npy u8 [h,w,3]. min/max pixels default to the config's
# size.shortest_edge / size.longest_edge (then min_pixels / max_pixels, then HF defaults).
# Needs python3-pil and python3-numpy. Errors: one line on stderr, exit 1.
import argparse
import json
import math
import os
import sys

import numpy as np
from PIL import Image


class PreprocessError(Exception):
    pass


def load_config(path):
    """Preprocessor settings with HF's Qwen2-VL class defaults as fallbacks."""
    cfg = {}
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                cfg = json.load(f)
        except (OSError, ValueError) as e:
            raise PreprocessError(f"{path}: cannot read preprocessor config ({e})")
    size = cfg.get("size") or {}
    return {
        "patch": int(cfg.get("patch_size", 14)),
        "merge": int(cfg.get("merge_size", 2)),
        "temporal": int(cfg.get("temporal_patch_size", 2)),
        "min_pixels": int(size.get("shortest_edge", cfg.get("min_pixels", 56 * 56))),
        "max_pixels": int(size.get("longest_edge", cfg.get("max_pixels", 28 * 28 * 1280))),
        "mean": [float(v) for v in cfg.get("image_mean", [0.48145466, 0.4578275, 0.40821073])],
        "std": [float(v) for v in cfg.get("image_std", [0.26862954, 0.26130258, 0.27577711])],
        "rescale": float(cfg.get("rescale_factor", 1.0 / 255.0)),
        "resample": int(cfg.get("resample", 3)),
    }


def smart_resize(height, width, factor, min_pixels, max_pixels):
    """Target (h, w): multiples of factor, pixel count inside [min_pixels, max_pixels]."""
    if max(height, width) / min(height, width) > 200:
        raise PreprocessError(f"aspect ratio of {width}x{height} exceeds 200")
    h = round(height / factor) * factor  # Python round: half to even
    w = round(width / factor) * factor
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h = max(factor, math.floor(height / beta / factor) * factor)
        w = max(factor, math.floor(width / beta / factor) * factor)
    elif h * w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h = math.ceil(height * beta / factor) * factor
        w = math.ceil(width * beta / factor) * factor
    return h, w


def load_rgb(path):
    """Decodes an image file with PIL and converts it to RGB (alpha dropped)."""
    try:
        img = Image.open(path)
        img.load()
    except (OSError, ValueError) as e:
        raise PreprocessError(f"{path}: cannot decode image ({e})")
    return img if img.mode == "RGB" else img.convert("RGB")


def resize_rgb(img, cfg):
    """smart_resize + PIL resize; returns uint8 [h, w, 3]."""
    factor = cfg["patch"] * cfg["merge"]
    h, w = smart_resize(img.height, img.width, factor, cfg["min_pixels"], cfg["max_pixels"])
    if (h, w) != (img.height, img.width):
        img = img.resize((w, h), resample=cfg["resample"])
    return np.asarray(img, dtype=np.uint8)


def normalize(rgb, cfg):
    """uint8 [h,w,3] -> float32 [3,h,w]: rescale in float64, then (x - mean)/std in float32."""
    x = (rgb.astype(np.float64) * cfg["rescale"]).astype(np.float32)
    mean = np.array(cfg["mean"], dtype=np.float32)
    std = np.array(cfg["std"], dtype=np.float32)
    x = (x - mean) / std
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def patchify(chw, cfg):
    """float32 [C,h,w] -> (rows [gh*gw, C*T*P*P] in merge-block order, (1, gh, gw))."""
    p, m, t = cfg["patch"], cfg["merge"], cfg["temporal"]
    c, h, w = chw.shape
    gh, gw = h // p, w // p
    frames = np.stack([chw] * t)  # a still image fills every temporal slot
    # axes: (t, c, bh, ih, y, bw, iw, x) -> (bh, bw, ih, iw, c, t, y, x)
    v = frames.reshape(t, c, gh // m, m, p, gw // m, m, p)
    v = v.transpose(2, 5, 3, 6, 1, 0, 4, 7)
    return np.ascontiguousarray(v.reshape(gh * gw, c * t * p * p)), (1, gh, gw)


def preprocess(paths, cfg):
    """All images -> (pixel_values, grid_thw [n,3], resized uint8 images)."""
    rows, grids, resized = [], [], []
    for path in paths:
        rgb = resize_rgb(load_rgb(path), cfg)
        r, g = patchify(normalize(rgb, cfg), cfg)
        rows.append(r)
        grids.append(g)
        resized.append(rgb)
    return np.concatenate(rows, axis=0), np.array(grids, dtype=np.int64), resized


def main(argv):
    ap = argparse.ArgumentParser(description="HF Qwen2-VL image preprocessing reference")
    ap.add_argument("--config", help="preprocessor_config.json")
    ap.add_argument("--min-pixels", type=int)
    ap.add_argument("--max-pixels", type=int)
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("images", nargs="+")
    args = ap.parse_args(argv)
    try:
        cfg = load_config(args.config)
        if args.min_pixels is not None:
            cfg["min_pixels"] = args.min_pixels
        if args.max_pixels is not None:
            cfg["max_pixels"] = args.max_pixels
        if cfg["min_pixels"] <= 0 or cfg["max_pixels"] < cfg["min_pixels"]:
            raise PreprocessError(f"bad pixel range [{cfg['min_pixels']}, {cfg['max_pixels']}]")
        pixels, grids, resized = preprocess(args.images, cfg)
        os.makedirs(args.out, exist_ok=True)
        np.save(os.path.join(args.out, "pixel_values.npy"), pixels)
        np.save(os.path.join(args.out, "image_grid_thw.npy"), grids)
        for k, rgb in enumerate(resized):
            np.save(os.path.join(args.out, f"image_{k}_resized_rgb.npy"), rgb)
    except PreprocessError as e:
        print(f"hf_preprocess: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"hf_preprocess: error: {e.filename}: {e.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
