"""Activation sanity check of a converted folder (meant for --random presets):
runs the 02_image golden prompt (80 image tokens, grid 1x16x20) through vision.onnx,
embedding.onnx and a text.onnx prefill in ONNX Runtime and prints, per vision block and
per decoder layer, the rms and max |x| of the residual stream, plus logit statistics.
Fails (exit 1) on non-finite values or |hidden| > --bound.

  PYENV_VERSION=system python3 -m qvlconv.sanity MODEL_DIR [--bound 1e3]   (from tools/)
"""
import argparse
import json
import os
import sys

import numpy as np
import onnx

from .config import Dims
from .hostinputs import vision_host_inputs
from .ortrun import ort_run

CASE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                    "tests", "data", "qwen3vl-a", "cases", "02_image")
IMAGE_PAD = 151655


def stats(x):
    x = x.astype(np.float64)
    return float(np.sqrt((x * x).mean())), float(np.abs(x).max()), bool(np.isfinite(x).all())


def report(label, x, bound, bad):
    rms, mx, fin = stats(x)
    print(f"  {label:<28} rms {rms:9.3f}  max|x| {mx:9.3f}{'' if fin else '  NON-FINITE'}")
    if not fin or mx > bound:
        bad.append(label)


def _layer_outputs(path, n):
    """Residual stream after each decoder layer: Add_mlp (standard graph) or the residual
    output 3 of the next SkipSimplifiedLayerNormalization (--ort-fused graph)."""
    produced = {o for node in onnx.load(path, load_external_data=False).graph.node for o in node.output}
    std = [f"/model/layers.{i}/Add_mlp/output_0" for i in range(n)]
    if all(x in produced for x in std):
        return std
    return [f"/model/layers.{i + 1}/input_layernorm/SkipLayerNorm/output_3" for i in range(n - 1)] + \
        [f"/model/layers.{n}/final_norm_layernorm/SkipLayerNorm/output_3"]


def main(argv=None):
    ap = argparse.ArgumentParser(prog="qvlconv.sanity")
    ap.add_argument("model_dir")
    ap.add_argument("--bound", type=float, default=1e3)
    a = ap.parse_args(argv)
    with open(os.path.join(a.model_dir, "config.json")) as f:
        d = Dims(json.load(f))
    bad = []
    load = lambda n: np.load(os.path.join(CASE, n))
    vin = vision_host_inputs(load("image_grid_thw.npy"), d.v_head_dim, d.grid_side, d.merge)
    vin["pixel_values"] = load("pixel_values.npy")
    blocks = [f"/model/visual/blocks.{i}/Add_mlp/output_0" for i in range(d.v_depth)]
    v = ort_run(os.path.join(a.model_dir, "vision.onnx"), vin, blocks)
    print("vision (02_image, 320 patches):")
    for i, name in enumerate(blocks):
        report(f"block {i}", v[name.replace("/", "_")], a.bound, bad)
    for k in ["image_embeds"] + [f"deepstack_{j}" for j in range(len(d.deepstack))]:
        report(k, v[k], a.bound, bad)
    ids = load("input_ids.npy")
    emb = ort_run(os.path.join(a.model_dir, "embedding.onnx"), {"input_ids": ids})["inputs_embeds"]
    pads = ids[0] == IMAGE_PAD
    emb[0, pads] = v["image_embeds"]
    s = ids.shape[1]
    ds = np.zeros((len(d.deepstack), 1, s, d.hidden), np.float32)
    for j in range(len(d.deepstack)):
        ds[j, 0, pads] = v[f"deepstack_{j}"]
    tin = {"inputs_embeds": emb, "attention_mask": np.ones((1, s), np.int64),
           "position_ids": load("position_ids.npy"), "deepstack_embeds": ds}
    for i in range(d.layers):
        for kv in ("key", "value"):
            tin[f"past_key_values.{i}.{kv}"] = np.zeros((1, d.kv_heads, 0, d.head_dim), np.float32)
    layers = _layer_outputs(os.path.join(a.model_dir, "text.onnx"), d.layers)
    t = ort_run(os.path.join(a.model_dir, "text.onnx"), tin, layers + ["logits"])
    print(f"text prefill ({s} tokens):")
    report("inputs_embeds", emb, a.bound, bad)
    for i, name in enumerate(layers):
        report(f"layer {i}", t[name.replace("/", "_")], a.bound, bad)
    lg = t["logits"][0, -1]
    report("logits (last row)", lg, a.bound, bad)
    top = np.argsort(-lg)[:5]
    print(f"  logits std {lg.std():.3f}, top-5 ids {top.tolist()}, top-1 - top-2 = {lg[top[0]] - lg[top[1]]:.3f}")
    if bad:
        print(f"FAIL: non-finite or > {a.bound}: {', '.join(bad)}")
        return 1
    print("PASS all activations finite and bounded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
