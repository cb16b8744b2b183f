#!/usr/bin/env python3
# The vision host inputs computed by tools/ort/positions.js (fed by ort-generate) against
# the converter's tools/qvlconv/hostinputs.py (two implementations of the formulas in
# tools/README.md) and against HF's interpolated position table of the golden cases:
#  - several grids incl. multi-image, tiny, tall and wide ones: pos_idx and segment_ids
#    equal, pos_weight / rope_cos / rope_sin within 1e-6;
#  - Σ pos_weight·pos_embed[pos_idx] with the checkpoint's bf16 table matches the case's
#    vision_pos_embeds.npy within 1e-4.
#   test_ort_hostinputs.py WORK_DIR      (PYENV_VERSION=system python3: numpy)
import json
import os
import struct
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
GOLDEN = os.path.join(ROOT, "tests", "data", "qwen3vl-a")
sys.path.insert(0, os.path.join(ROOT, "tools"))
from qvlconv.hostinputs import vision_host_inputs  # noqa: E402

HEAD_DIM = 16  # golden vision: hidden 32, 2 heads
GRIDS = [[[1, 16, 20]], [[1, 20, 14]], [[1, 2, 2]], [[1, 2, 96]], [[1, 98, 4]],
         [[1, 64, 64], [1, 4, 6], [1, 30, 40]]]


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def js_inputs(work, grids, k):
    """Runs positions.visionGridInputs in node; returns {name: array}."""
    out = os.path.join(work, f"js_{k}")
    os.makedirs(out, exist_ok=True)
    js = f"""
const P = require({json.dumps(os.path.join(ROOT, 'tools', 'ort', 'positions.js'))});
const {{ writeNpy }} = require({json.dumps(os.path.join(ROOT, 'tools', 'ort', 'npy.js'))});
const v = P.visionGridInputs({json.dumps(grids)}, {{ side: 48, merge: 2, headDim: {HEAD_DIM} }});
for (const [k, t] of Object.entries(v)) writeNpy({json.dumps(out)} + '/' + k + '.npy', t.type, t.shape, t.data);
"""
    r = subprocess.run(["node", "-e", js], capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"node positions.js failed: {r.stderr.strip()}")
    return {f[:-4]: np.load(os.path.join(out, f)) for f in os.listdir(out)}


def pos_table():
    """model.visual.pos_embed.weight [2304, H] from model.safetensors (bf16 -> f32)."""
    with open(os.path.join(GOLDEN, "model.safetensors"), "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        e = json.loads(f.read(n))["model.visual.pos_embed.weight"]
        f.seek(8 + n + e["data_offsets"][0])
        raw = np.frombuffer(f.read(e["data_offsets"][1] - e["data_offsets"][0]), dtype="<u2")
    return (raw.astype(np.uint32) << 16).view(np.float32).reshape(e["shape"])


def main(argv):
    if len(argv) != 2:
        print("usage: test_ort_hostinputs.py WORK_DIR", file=sys.stderr)
        return 2
    work = argv[1]
    worst = 0.0
    for k, grids in enumerate(GRIDS):
        got = js_inputs(work, grids, k)
        want = vision_host_inputs(np.array(grids, np.int64), HEAD_DIM)
        for name, ref in want.items():
            g = got[name]
            if g.shape != ref.shape or g.dtype != ref.dtype:
                fail(f"grids {grids}: {name} {g.dtype}{g.shape} != converter {ref.dtype}{ref.shape}")
            if ref.dtype == np.int64:
                if not np.array_equal(g, ref):
                    fail(f"grids {grids}: {name} differs at {int(np.nonzero(g != ref)[0][0])}")
            else:
                d = float(np.abs(g.astype(np.float64) - ref).max())
                worst = max(worst, d)
                if not d <= 1e-6:
                    fail(f"grids {grids}: {name} max abs diff {d:.3e} > 1e-6")
    table = pos_table()
    pe_worst = 0.0
    for k, case in enumerate(["02_image", "03_resize"]):
        grid = np.load(os.path.join(GOLDEN, "cases", case, "image_grid_thw.npy")).tolist()
        got = js_inputs(work, grid, f"case{k}")
        pe = sum(table[got["pos_idx"][c]] * got["pos_weight"][c][:, None] for c in range(4))
        ref = np.load(os.path.join(GOLDEN, "cases", case, "vision_pos_embeds.npy"))
        d = float(np.abs(pe - ref).max())
        pe_worst = max(pe_worst, d)
        if not d <= 1e-4:
            fail(f"{case}: interpolated position table differs from vision_pos_embeds by {d:.3e}")
    print(f"PASS vision host inputs: {len(GRIDS)} grid sets equal the converter's (worst float diff {worst:.1e}); "
          f"position table vs HF vision_pos_embeds max diff {pe_worst:.1e} (tol 1e-4)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
