#!/usr/bin/env python3
# Golden checks of tools/qvl-convert: the tiny checkpoint tests/data/qwen3vl-a converted to
# fp32 and run in ONNX Runtime (tools/ort-run) must reproduce the Hugging Face tensors.
#
#   test_converter.py convert OUT [flags]  convert the golden checkpoint into OUT
#   test_converter.py vision MODEL CASE    vision.onnx on pixel_values + host inputs from
#       image_grid_thw: image_embeds and deepstack_* within 1e-4 (HF vs independent numpy
#       reached 2.5e-4 on the whole model; the vision part alone agrees to ~1e-5)
#   test_converter.py vision_multi MODEL   02_image + 03_resize + 02_image as a t=2 video item in
#       one call: every segment equals its single-image reference within 1e-4
#   test_converter.py random OUT           --random tiny runs with bounded activations; preset
#       parameter counts equal the published ones
#   test_converter.py prefill MODEL CASE   text.onnx on inputs_embeds + position_ids (+ the
#       case's deepstack rows scattered at the image positions): logits_last within 1e-3,
#       present.* vs prefill_key/value_* within 1e-3
#   test_converter.py decode MODEL CASE [N]  prefill, then 23 (N−1) decode steps through the KV cache:
#       argmax ids == generated_ids exactly, each step's top-8 logits within 1e-3 of
#       gen_top8_values; token embeddings come from embedding.onnx (one run over the
#       expected ids: equal to the generated ones since every step is checked first),
#       which must also match the case's inputs_embeds rows at text positions (1e-6)
# Run with PYENV_VERSION=system python3. Prints one summary line; exit 0 = pass.
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
GOLDEN = os.path.join(ROOT, "tests", "data", "qwen3vl-a")
sys.path.insert(0, os.path.join(ROOT, "tools"))
from qvlconv.config import load_config  # noqa: E402
from qvlconv.hostinputs import vision_host_inputs  # noqa: E402
from qvlconv.ortrun import ort_run  # noqa: E402

IMAGE_PAD = 151655


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def dims():
    return load_config(GOLDEN)[1]


def case_file(case, name):
    return np.load(os.path.join(GOLDEN, "cases", case, name))


def max_diff(a, b, what):
    if a.shape != b.shape:
        fail(f"{what}: shape {a.shape} != reference {b.shape}")
    d = np.abs(a.astype(np.float64) - b.astype(np.float64))
    return float(d.max()), np.unravel_index(int(d.argmax()), d.shape)


def expect_close(a, b, tol, what):
    m, at = max_diff(a, b, what)
    if not m <= tol:
        fail(f"{what}: max abs diff {m:.3g} at {tuple(int(i) for i in at)} > {tol}")
    return m


def run(model_dir, model, inputs, outputs=None):
    try:
        return ort_run(os.path.join(model_dir, model), inputs, outputs)
    except RuntimeError as e:
        fail(str(e))


def convert(out, *flags):
    cmd = [os.path.join(ROOT, "tools", "qvl-convert"), GOLDEN, out, *flags]
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYENV_VERSION": "system"})
    if r.returncode != 0:
        fail(f"qvl-convert {' '.join(flags)} exited {r.returncode}: {r.stderr.strip()}")
    for f in ("vision.onnx", "embedding.onnx", "text.onnx", "text.onnx.data", "config.json", "tokenizer.json",
              "tokenizer_config.json", "chat_template.json", "preprocessor_config.json", "generation_config.json"):
        if not os.path.exists(os.path.join(out, f)):
            fail(f"{out}: {f} missing after conversion")
    return r.stdout.strip()


def vision_inputs(case, d):
    inp = vision_host_inputs(case_file(case, "image_grid_thw.npy"), d.v_head_dim, d.grid_side, d.merge)
    inp["pixel_values"] = case_file(case, "pixel_values.npy")
    return inp


def decoder_inputs(d, embeds, positions, past=None, deepstack=None):
    """text.onnx feeds for B=1: embeds [1,S,H], positions [3,1,S], past {i: (k, v)}."""
    s = embeds.shape[1]
    p = 0 if past is None else past[0][0].shape[2]
    inp = {"inputs_embeds": embeds.astype(np.float32), "position_ids": positions.astype(np.int64),
           "attention_mask": np.ones((1, p + s), np.int64)}
    empty = np.zeros((1, d.kv_heads, 0, d.head_dim), np.float32)
    for i in range(d.layers):
        inp[f"past_key_values.{i}.key"] = empty if past is None else past[i][0]
        inp[f"past_key_values.{i}.value"] = empty if past is None else past[i][1]
    if d.deepstack:
        inp["deepstack_embeds"] = (np.zeros((len(d.deepstack), 1, s, d.hidden), np.float32)
                                   if deepstack is None else deepstack)
    return inp


def prefill_inputs(case, d):
    """The case's prompt: HF inputs_embeds, position_ids and DeepStack rows at image positions."""
    ids = case_file(case, "input_ids.npy")
    s = ids.shape[1]
    ds = np.zeros((len(d.deepstack), 1, s, d.hidden), np.float32)
    pads = ids[0] == IMAGE_PAD
    if pads.any():
        for j in range(len(d.deepstack)):
            ds[j, 0, pads] = case_file(case, f"deepstack_{j}.npy")
    return decoder_inputs(d, case_file(case, "inputs_embeds.npy"), case_file(case, "position_ids.npy"),
                          deepstack=ds)


def check_vision(model_dir, case):
    d = dims()
    out = run(model_dir, "vision.onnx", vision_inputs(case, d))
    worst = 0.0
    for name in ["image_embeds"] + [f"deepstack_{j}" for j in range(len(d.deepstack))]:
        worst = max(worst, expect_close(out[name], case_file(case, name + ".npy"), 1e-4, f"{case} {name}"))
    return f"vision {case}: image_embeds + {len(d.deepstack)} deepstack max abs diff {worst:.2e}"


def check_vision_multi(model_dir):
    """Three items in one call: 02_image, 03_resize and 02_image as a 2-frame video item
    (t=2, its pixel rows repeated): each segment must reproduce its single-image reference,
    which fails if attention leaks across segments or the host inputs mis-order items."""
    d = dims()
    pv = {c: case_file(c, "pixel_values.npy") for c in ("02_image", "03_resize")}
    grid = np.concatenate([case_file("02_image", "image_grid_thw.npy"), case_file("03_resize", "image_grid_thw.npy"),
                           case_file("02_image", "image_grid_thw.npy") * np.array([[2, 1, 1]])])
    inp = vision_host_inputs(grid, d.v_head_dim, d.grid_side, d.merge)
    inp["pixel_values"] = np.concatenate([pv["02_image"], pv["03_resize"], pv["02_image"], pv["02_image"]])
    if int(inp["segment_ids"].max()) != 3:
        fail(f"segment_ids: {int(inp['segment_ids'].max()) + 1} segments, expected 4")
    out = run(model_dir, "vision.onnx", inp)
    worst = 0.0
    for name in ["image_embeds"] + [f"deepstack_{j}" for j in range(len(d.deepstack))]:
        r2, r3 = case_file("02_image", name + ".npy"), case_file("03_resize", name + ".npy")
        worst = max(worst, expect_close(out[name], np.concatenate([r2, r3, r2, r2]), 1e-4, f"multi-image {name}"))
    return f"vision 3 items / 4 segments ({inp['pixel_values'].shape[0]} patches): max abs diff {worst:.2e}"


def check_prefill(model_dir, case):
    d = dims()
    out = run(model_dir, "text.onnx", prefill_inputs(case, d))
    m = expect_close(out["logits"][:, -1], case_file(case, "logits_last.npy"), 1e-3, f"{case} logits_last")
    kv = 0.0
    for i in range(d.layers):
        kv = max(kv, expect_close(out[f"present.{i}.key"], case_file(case, f"prefill_key_{i}.npy"), 1e-3,
                                  f"{case} present.{i}.key"))
        kv = max(kv, expect_close(out[f"present.{i}.value"], case_file(case, f"prefill_value_{i}.npy"), 1e-3,
                                  f"{case} present.{i}.value"))
    return f"prefill {case}: logits max abs diff {m:.2e}, KV cache {kv:.2e}"


def check_embedding(model_dir, case, ids):
    """embedding.onnx rows of `ids` [n]; also checks the prompt's text rows against HF."""
    d = dims()
    prompt = case_file(case, "input_ids.npy")
    both = np.concatenate([prompt[0], ids]).reshape(1, -1)
    out = run(model_dir, "embedding.onnx", {"input_ids": both})["inputs_embeds"][0]
    text = prompt[0] != IMAGE_PAD
    expect_close(out[:prompt.shape[1]][text], case_file(case, "inputs_embeds.npy")[0][text], 1e-6,
                 f"{case} embedding.onnx vs inputs_embeds")
    if out.shape[1] != d.hidden:
        fail(f"embedding.onnx: hidden {out.shape[1]} != {d.hidden}")
    return out[prompt.shape[1]:]


def check_decode(model_dir, case, steps=None):
    d = dims()
    expect = case_file(case, "generated_ids.npy")[0][:steps]
    top8_ids, top8 = case_file(case, "gen_top8_ids.npy"), case_file(case, "gen_top8_values.npy")
    delta = int(case_file(case, "rope_deltas.npy").reshape(-1)[0])
    rows = check_embedding(model_dir, case, expect)
    out = run(model_dir, "text.onnx", prefill_inputs(case, d))
    s = case_file(case, "input_ids.npy").shape[1]
    worst = 0.0
    for step in range(len(expect)):
        logits = out["logits"][0, -1]
        got = int(np.argmax(logits))
        if got != expect[step]:
            fail(f"{case} step {step}: argmax {got} != generated_ids {expect[step]}")
        worst = max(worst, expect_close(logits[top8_ids[step]], top8[step], 1e-3, f"{case} step {step} top-8"))
        if step + 1 == len(expect):
            break
        past = [(out[f"present.{i}.key"], out[f"present.{i}.value"]) for i in range(d.layers)]
        pos = np.full((3, 1, 1), s + step + delta, np.int64)
        out = run(model_dir, "text.onnx", decoder_inputs(d, rows[step].reshape(1, 1, -1), pos, past))
    return f"decode {case}: {len(expect)} greedy ids equal, top-8 logits max abs diff {worst:.2e}"


def check_random(out):
    """--random tiny converts, runs in ORT with finite bounded activations (qvlconv.sanity),
    and the 2b/4b preset shapes give the published parameter counts (model spec §1.1/§1.3:
    2B 2.128 B; 4B text 4.022 B + vision 0.415 B)."""
    import json
    from qvlconv.config import Dims, preset_config, text_tensors, vision_tensors
    r = subprocess.run([os.path.join(ROOT, "tools", "qvl-convert"), "--random", "tiny", out, "--seed", "3"],
                       capture_output=True, text=True, env={**os.environ, "PYENV_VERSION": "system"})
    if r.returncode != 0:
        fail(f"qvl-convert --random tiny: {r.stderr.strip()}")
    r = subprocess.run([sys.executable, "-m", "qvlconv.sanity", out], capture_output=True, text=True,
                       cwd=os.path.join(ROOT, "tools"))
    if r.returncode != 0:
        fail(f"sanity of --random tiny: {r.stdout.strip().splitlines()[-1:]} {r.stderr.strip()[-300:]}")
    with open(os.path.join(GOLDEN, "config.json")) as f:
        tiny = json.load(f)
    count = lambda table: sum(int(np.prod(s)) for s in table.values()) / 1e9
    want = {"2b": (None, None, 2.128), "4b": (0.415, 4.022, 4.438)}
    for preset, (vis, txt, tot) in want.items():
        d = Dims(preset_config(preset, tiny))
        got = (count(vision_tensors(d)), count(text_tensors(d)))
        for what, g, w in (("vision", got[0], vis), ("text", got[1], txt), ("total", sum(got), tot)):
            if w is not None and abs(g - w) > 0.0015:
                fail(f"--random {preset}: {what} parameters {g:.4f} B, published {w} B")
    return "--random tiny runs with bounded activations; 2b/4b preset parameter counts match"


def main(argv):
    if len(argv) >= 2 and argv[0] == "convert":
        print(convert(argv[1], *argv[2:]))
        return 0
    if len(argv) == 2 and argv[0] == "random":
        print("PASS " + check_random(argv[1]))
        return 0
    if len(argv) == 2 and argv[0] == "vision_multi":
        print("PASS " + check_vision_multi(argv[1]))
        return 0
    if len(argv) not in (3, 4) or argv[0] not in ("vision", "prefill", "decode"):
        print("usage: test_converter.py convert OUT [flags] | vision|prefill|decode MODEL_DIR CASE [STEPS]")
        return 2
    check = {"vision": check_vision, "prefill": check_prefill, "decode": check_decode}[argv[0]]
    print("PASS " + check(argv[1], argv[2], *[int(x) for x in argv[3:]]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
