#!/usr/bin/env python3
# Golden check of tools/hf_preprocess.py: re-creates a case's pixel_values.npy,
# image_grid_thw.npy and the resized uint8 image from the case's image file(s) and the
# checkpoint's preprocessor_config.json. Expected: bit-identical (max abs diff 0).
#
#   test_ort_preprocess.py CASE WORK_DIR      (PYENV_VERSION=system python3: numpy + PIL)
import json
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
GOLDEN = os.path.join(ROOT, "tests", "data", "qwen3vl-a")
TOOL = os.path.join(ROOT, "tools", "hf_preprocess.py")


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def main(argv):
    if len(argv) != 3:
        print("usage: test_ort_preprocess.py CASE WORK_DIR", file=sys.stderr)
        return 2
    case, work = argv[1], argv[2]
    cdir = os.path.join(GOLDEN, "cases", case)
    with open(os.path.join(cdir, "images.json"), encoding="utf-8") as f:
        images = [os.path.join(cdir, im["file"]) for im in json.load(f)]
    if not images:
        fail(f"{case} has no images")
    r = subprocess.run([sys.executable, TOOL, "--config", os.path.join(GOLDEN, "preprocessor_config.json"),
                        "--out", work, *images], capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"hf_preprocess.py exited {r.returncode}: {r.stderr.strip()}")
    got = np.load(os.path.join(work, "pixel_values.npy"))
    ref = np.load(os.path.join(cdir, "pixel_values.npy"))
    if got.shape != ref.shape or got.dtype != ref.dtype:
        fail(f"{case}: pixel_values {got.dtype}{got.shape} != reference {ref.dtype}{ref.shape}")
    diff = float(np.abs(got - ref).max())
    grid = np.load(os.path.join(work, "image_grid_thw.npy"))
    ref_grid = np.load(os.path.join(cdir, "image_grid_thw.npy"))
    if not np.array_equal(grid, ref_grid):
        fail(f"{case}: image_grid_thw {grid.tolist()} != reference {ref_grid.tolist()}")
    for k in range(len(images)):
        rgb = np.load(os.path.join(work, f"image_{k}_resized_rgb.npy"))
        ref_rgb = np.load(os.path.join(cdir, f"image_{k}_resized_rgb.npy"))
        if rgb.shape != ref_rgb.shape or not np.array_equal(rgb, ref_rgb):
            n = int((rgb != ref_rgb).sum()) if rgb.shape == ref_rgb.shape else -1
            fail(f"{case}: resized image {k} differs ({n} values; shape {rgb.shape} vs {ref_rgb.shape})")
    if not np.array_equal(got.view(np.uint32), ref.view(np.uint32)):
        fail(f"{case}: pixel_values not bit-identical (max abs diff {diff:.3e})")
    print(f"PASS preprocess {case}: pixel_values {list(got.shape)} bit-identical (max abs diff {diff}), "
          f"grid {grid.tolist()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
