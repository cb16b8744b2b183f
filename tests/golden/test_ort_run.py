#!/usr/bin/env python3
# Golden checks of tools/ort-run on the torch-exported graphs in tests/data/qwen3vl-a/onnx-torch
# against the Hugging Face reference tensors of the cases.
#
#   test_ort_run.py vision CASE WORK_DIR    vision_<CASE>.onnx on the case's pixel_values:
#       image_embeds + deepstack_* within 1e-4; --outputs exposes the output of vision
#       block 0 (an intermediate value) which must match vision_block_0.npy within 1e-4.
#   test_ort_run.py decoder CASE WORK_DIR   decoder_with_past.onnx, first decode step: one
#       token (generated_ids[0], embedding row from model.safetensors, bf16 -> f32) on the
#       case's full prefill KV cache: argmax == generated_ids[1], top-8 logits within 1e-3
#       of gen_top8_values[1].
# Run with PYENV_VERSION=system python3 (numpy). Prints one summary line; exit 0 = pass.
import json
import os
import struct
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
GOLDEN = os.path.join(ROOT, "tests", "data", "qwen3vl-a")
ORT_RUN = os.path.join(ROOT, "tools", "ort-run")


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def ort_run(model, in_dir, out_dir, *extra):
    """Runs tools/ort-run; fails the test with its stderr on a non-zero exit."""
    r = subprocess.run([ORT_RUN, model, in_dir, out_dir, *extra], capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"ort-run exited {r.returncode}: {r.stderr.strip()}")
    return r.stderr.strip()


def max_diff(a, b, what):
    if a.shape != b.shape:
        fail(f"{what}: shape {a.shape} != reference {b.shape}")
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())


def embed_row(token):
    """Row `token` of embed_tokens from model.safetensors (BF16 widened to float32)."""
    name = "model.language_model.embed_tokens.weight"
    with open(os.path.join(GOLDEN, "model.safetensors"), "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        entry = json.loads(f.read(n))[name]
        rows, hidden = entry["shape"]
        assert entry["dtype"] == "BF16" and 0 <= token < rows
        f.seek(8 + n + entry["data_offsets"][0] + token * hidden * 2)
        bf16 = np.frombuffer(f.read(hidden * 2), dtype="<u2")
    return (bf16.astype(np.uint32) << 16).view(np.float32)


def check_vision(case, work):
    cdir = os.path.join(GOLDEN, "cases", case)
    in_dir, out_dir = os.path.join(work, "in"), os.path.join(work, "out")
    os.makedirs(in_dir, exist_ok=True)
    np.save(os.path.join(in_dir, "pixel_values.npy"), np.load(os.path.join(cdir, "pixel_values.npy")))
    block0 = "/visual/blocks.0/Add_1_output_0"  # residual add closing vision block 0
    timing = ort_run(os.path.join(GOLDEN, "onnx-torch", f"vision_{case}.onnx"), in_dir, out_dir,
                     "--outputs", block0)
    worst = {}
    names = ["image_embeds"] + sorted(f[:-4] for f in os.listdir(cdir) if f.startswith("deepstack_"))
    for name in names:
        got = np.load(os.path.join(out_dir, name + ".npy"))
        worst[name] = max_diff(got, np.load(os.path.join(cdir, name + ".npy")), name)
    got = np.load(os.path.join(out_dir, block0.replace("/", "_").replace(":", "_") + ".npy"))
    worst["vision_block_0(--outputs)"] = max_diff(got, np.load(os.path.join(cdir, "vision_block_0.npy")),
                                                  "vision_block_0")
    bad = {k: v for k, v in worst.items() if not v <= 1e-4}
    stats = ", ".join(f"{k} {v:.2e}" for k, v in worst.items())
    if bad:
        fail(f"vision {case}: max abs diff > 1e-4: {stats}")
    print(f"PASS vision {case}: {stats} (tol 1e-4); {timing}")


def check_decoder(case, work):
    cdir = os.path.join(GOLDEN, "cases", case)
    in_dir, out_dir = os.path.join(work, "in"), os.path.join(work, "out")
    os.makedirs(in_dir, exist_ok=True)
    gen = np.load(os.path.join(cdir, "generated_ids.npy")).reshape(-1)
    top8 = np.load(os.path.join(cdir, "gen_top8_values.npy"))
    seq = np.load(os.path.join(cdir, "input_ids.npy")).shape[1]
    delta = int(np.load(os.path.join(cdir, "rope_deltas.npy")).reshape(-1)[0])
    np.save(os.path.join(in_dir, "inputs_embeds.npy"), embed_row(int(gen[0])).reshape(1, 1, -1))
    np.save(os.path.join(in_dir, "attention_mask.npy"), np.ones((1, seq + 1), dtype=np.int64))
    np.save(os.path.join(in_dir, "position_ids.npy"), np.full((3, 1, 1), seq + delta, dtype=np.int64))
    layer = 0
    while os.path.exists(os.path.join(cdir, f"prefill_key_{layer}.npy")):
        for kind in ("key", "value"):
            kv = np.load(os.path.join(cdir, f"prefill_{kind}_{layer}.npy"))
            np.save(os.path.join(in_dir, f"past_key_values.{layer}.{kind}.npy"), kv)
        layer += 1
    timing = ort_run(os.path.join(GOLDEN, "onnx-torch", "decoder_with_past.onnx"), in_dir, out_dir)
    logits = np.load(os.path.join(out_dir, "logits.npy")).reshape(-1)
    present = np.load(os.path.join(out_dir, "present.0.key.npy"))
    if present.shape[2] != seq + 1:
        fail(f"decoder {case}: present.0.key has {present.shape[2]} positions, expected {seq + 1}")
    argmax = int(np.argmax(logits))
    got8 = np.sort(logits)[::-1][:8]
    d8 = float(np.abs(got8 - top8[1]).max())
    if argmax != int(gen[1]) or not d8 <= 1e-3:
        fail(f"decoder {case}: argmax {argmax} (want {int(gen[1])}), top8 max diff {d8:.2e} (tol 1e-3)")
    print(f"PASS decoder first step {case}: argmax {argmax}, top8 max diff {d8:.2e} (tol 1e-3), "
          f"P={seq}, layers {layer}; {timing}")


def main(argv):
    if len(argv) != 4 or argv[1] not in ("vision", "decoder"):
        print("usage: test_ort_run.py vision|decoder CASE WORK_DIR", file=sys.stderr)
        return 2
    if not os.path.isdir(os.path.join(GOLDEN, "cases", argv[2])):
        fail(f"no golden case '{argv[2]}'")
    (check_vision if argv[1] == "vision" else check_decoder)(argv[2], argv[3])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
