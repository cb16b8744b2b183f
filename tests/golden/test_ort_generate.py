#!/usr/bin/env python3
# Golden check of tools/ort-generate: greedy generation through ONNX Runtime on a model
# folder converted from tests/data/qwen3vl-a (tools/qvl-convert, fp32) must reproduce the
# case's generated_ids.npy (HF transformers greedy) exactly, and its decoded text
# (generation.json text_skip_special_tokens). With --dump it also checks the prefill tensors
# against the HF references: input_ids and position_ids exact; image_embeds, deepstack_k and
# the decoder's inputs_embeds within 1e-4; present KV within 5e-4 of prefill_key/value;
# logits_last and every step's top-8 logits within 1e-3.
#
#   test_ort_generate.py CASE MODEL_DIR WORK_DIR [--prompt-flags]
# Default: --messages <case>/messages.json. --prompt-flags: the same request given as
# -p TEXT --image PATH... (only for cases with one user message: images first, then text).
# Run with PYENV_VERSION=system python3 (numpy).
import json
import os
import shutil
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
GOLDEN = os.path.join(ROOT, "tests", "data", "qwen3vl-a")
ORT_GENERATE = os.path.join(ROOT, "tools", "ort-generate")
ORT_RUN = os.path.join(ROOT, "tools", "ort-run")


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def prompt_flags(cdir):
    """-p/--image flags equivalent to a one-message messages.json (images first, then text)."""
    with open(os.path.join(cdir, "messages.json"), encoding="utf-8") as f:
        msgs = json.load(f)["messages"]
    if len(msgs) != 1 or msgs[0]["role"] != "user":
        fail("--prompt-flags needs a single user message")
    content = msgs[0]["content"]
    if isinstance(content, str):
        return ["-p", content]
    images = [p["image"] for p in content if p["type"] == "image"]
    texts = [p["text"] for p in content if p["type"] == "text"]
    if len(texts) != 1 or content[-1]["type"] != "text":
        fail("--prompt-flags needs images first, then one text part")
    flags = ["-p", texts[0]]
    for im in images:
        flags += ["--image", os.path.join(cdir, im)]
    return flags


def check_dump(cdir, dump):
    """Max abs diffs of the dumped prefill tensors vs the case's references; fails past tolerance."""
    pairs = [("input_ids.npy", "input_ids.npy", 0), ("text/in/position_ids.npy", "position_ids.npy", 0),
             ("text/in/inputs_embeds.npy", "inputs_embeds.npy", 1e-4),
             ("text/out/logits_last.npy", "logits_last.npy", 1e-3),
             ("gen_top8_values.npy", "gen_top8_values.npy", 1e-3)]
    if os.path.exists(os.path.join(cdir, "image_embeds.npy")):
        pairs.append(("vision/out/image_embeds.npy", "image_embeds.npy", 1e-4))
        k = 0
        while os.path.exists(os.path.join(cdir, f"deepstack_{k}.npy")):
            pairs.append((f"vision/out/deepstack_{k}.npy", f"deepstack_{k}.npy", 1e-4))
            k += 1
    layer = 0
    while os.path.exists(os.path.join(cdir, f"prefill_key_{layer}.npy")):
        for kind in ("key", "value"):
            pairs.append((f"text/out/present.{layer}.{kind}.npy", f"prefill_{kind}_{layer}.npy", 5e-4))
        layer += 1
    worst = 0.0
    for got_name, ref_name, tol in pairs:
        got, ref = np.load(os.path.join(dump, got_name)), np.load(os.path.join(cdir, ref_name))
        if got.shape != ref.shape:
            fail(f"{got_name}: shape {got.shape} != reference {ref_name} {ref.shape}")
        d = float(np.abs(got.astype(np.float64) - ref.astype(np.float64)).max())
        if not d <= tol:
            fail(f"{got_name}: max abs diff {d:.3e} vs {ref_name} > {tol}")
        if tol:
            worst = max(worst, d)
    return f"{len(pairs)} prefill tensors within tolerance (worst float diff {worst:.2e})"


def check_replay(model, dump):
    """ort-run replays the dumped text.onnx prefill (external data + --outputs): same last logits
    row and the intermediate is returned. (Cleanup of the temporary copy is checked in
    test_ort_dtypes.py: tests running in parallel share MODEL_DIR.)"""
    inter = "/model/layers.0/input_layernorm/Mul_1/output_0"
    out_dir = os.path.join(dump, "replay")
    r = subprocess.run([ORT_RUN, os.path.join(model, "text.onnx"), os.path.join(dump, "text", "in"), out_dir,
                        "--outputs", inter], capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"ort-run replay exited {r.returncode}: {r.stderr.strip()}")
    logits = np.load(os.path.join(out_dir, "logits.npy"))
    want = np.load(os.path.join(dump, "text", "out", "logits_last.npy"))
    d = float(np.abs(logits[0, -1] - want[0]).max())
    if not d <= 1e-5:
        fail(f"ort-run replay: last logits differ from ort-generate's by {d:.3e}")
    h = np.load(os.path.join(out_dir, inter.replace("/", "_") + ".npy"))
    if h.shape[:2] != logits.shape[:2]:
        fail(f"ort-run replay: intermediate {inter} has shape {h.shape}")
    return f"replay via ort-run --outputs ok (diff {d:.1e})"


def main(argv):
    if len(argv) not in (4, 5) or (len(argv) == 5 and argv[4] != "--prompt-flags"):
        print("usage: test_ort_generate.py CASE MODEL_DIR WORK_DIR [--prompt-flags]", file=sys.stderr)
        return 2
    case, model, work = argv[1], argv[2], argv[3]
    cdir = os.path.join(GOLDEN, "cases", case)
    ref = np.load(os.path.join(cdir, "generated_ids.npy")).reshape(-1).tolist()
    with open(os.path.join(cdir, "generation.json"), encoding="utf-8") as f:
        ref_text = json.load(f)["text_skip_special_tokens"]
    flags = len(argv) == 5
    if flags:
        req = prompt_flags(cdir)
    else:
        shutil.rmtree(work, ignore_errors=True)
        req = ["--messages", os.path.join(cdir, "messages.json"), "--dump", work]
    cmd = [ORT_GENERATE, model, *req, "-n", str(len(ref)), "--threads", "2", "--json"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"ort-generate exited {r.returncode}: {r.stderr.strip()}")
    out = json.loads(r.stdout)
    ids = out["ids"]
    prompt_len = np.load(os.path.join(cdir, "input_ids.npy")).shape[1]
    if out["prompt_tokens"] != prompt_len:
        fail(f"{case}: prompt_tokens {out['prompt_tokens']} != reference {prompt_len}")
    if ids != ref:
        first = next((i for i, (a, b) in enumerate(zip(ids, ref)) if a != b), min(len(ids), len(ref)))
        fail(f"{case}: ids differ from step {first}: got {ids[first:first + 4]}, want {ref[first:first + 4]} "
             f"({len(ids)} vs {len(ref)} tokens)")
    if out["text"] != ref_text:
        fail(f"{case}: decoded text differs: {out['text']!r} vs {ref_text!r}")
    mode = "-p/--image" if flags else "--messages"
    dumped = "" if flags else "; " + check_dump(cdir, work) + "; " + check_replay(model, work)
    print(f"PASS ort-generate {case} ({mode}): {len(ids)}/{len(ref)} ids identical, prompt {prompt_len} tokens{dumped}; "
          f"prefill {out['prefill_tok_s']} tok/s, decode {out['decode_tok_s']} tok/s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
