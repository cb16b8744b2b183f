#!/usr/bin/env python3
# Golden check of tools/ort-generate: greedy generation through ONNX Runtime on a model
# folder converted from tests/data/qwen3vl-a (tools/qvl-convert, fp32) must reproduce the
# case's generated_ids.npy (HF transformers greedy) exactly, and its decoded text
# (generation.json text_skip_special_tokens).
#
#   test_ort_generate.py CASE MODEL_DIR [--prompt-flags]
# Default: --messages <case>/messages.json. --prompt-flags: the same request given as
# -p TEXT --image PATH... (only for cases with one user message: images first, then text).
# Run with PYENV_VERSION=system python3 (numpy).
import json
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
GOLDEN = os.path.join(ROOT, "tests", "data", "qwen3vl-a")
ORT_GENERATE = os.path.join(ROOT, "tools", "ort-generate")


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


def main(argv):
    if len(argv) not in (3, 4) or (len(argv) == 4 and argv[3] != "--prompt-flags"):
        print("usage: test_ort_generate.py CASE MODEL_DIR [--prompt-flags]", file=sys.stderr)
        return 2
    case, model = argv[1], argv[2]
    cdir = os.path.join(GOLDEN, "cases", case)
    ref = np.load(os.path.join(cdir, "generated_ids.npy")).reshape(-1).tolist()
    with open(os.path.join(cdir, "generation.json"), encoding="utf-8") as f:
        ref_text = json.load(f)["text_skip_special_tokens"]
    if len(argv) == 4:
        req = prompt_flags(cdir)
    else:
        req = ["--messages", os.path.join(cdir, "messages.json")]
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
    mode = "-p/--image" if len(argv) == 4 else "--messages"
    print(f"PASS ort-generate {case} ({mode}): {len(ids)}/{len(ref)} ids identical, prompt {prompt_len} tokens; "
          f"prefill {out['prefill_tok_s']} tok/s, decode {out['decode_tok_s']} tok/s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
