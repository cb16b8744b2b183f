#!/usr/bin/env python3
# Bad-input and sharding checks of tools/qvl-convert, on checkpoints derived from
# tests/data/qwen3vl-a inside WORK_DIR:
#   - a 2-shard copy (model-0000N-of-00002.safetensors + index), an all-F32 copy and an
#     untied copy (lm_head.weight = embedding) convert to exactly the same weight bytes as
#     the single-file BF16 checkpoint; an all-F16 copy
#     converts and reads back as float32(float16 data);
#   - not a Qwen3-VL config, a missing shard, a tensor with a wrong shape, an unsupported
#     tensor dtype, a missing tensor, a missing config.json and a bad flag each exit 1 with ONE line on
#     stderr that names the file/tensor/flag (checked by substring).
# Usage: test_converter_errors.py WORK_DIR   (PYENV_VERSION=system python3)
import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from qvlconv.safetensors import Checkpoint  # noqa: E402
GOLDEN = os.path.join(ROOT, "tests", "data", "qwen3vl-a")
CONVERT = os.path.join(ROOT, "tools", "qvl-convert")
AUX = ["config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.json",
       "preprocessor_config.json", "generation_config.json"]


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def read_safetensors(path):
    """name -> (dtype, shape, raw bytes), in file order."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    header.pop("__metadata__", None)
    return {k: (v["dtype"], v["shape"], data[v["data_offsets"][0]:v["data_offsets"][1]]) for k, v in header.items()}


def write_safetensors(path, tensors):
    header, off = {}, 0
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        off += len(raw)
    hb = json.dumps(header).encode()
    hb += b" " * (-len(hb) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)) + hb + b"".join(t[2] for t in tensors.values()))


def make_checkpoint(folder, tensors, shards=1, config=None):
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    for a in AUX:
        shutil.copyfile(os.path.join(GOLDEN, a), os.path.join(folder, a))
    if config is not None:
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(config, f)
    if shards == 1:
        write_safetensors(os.path.join(folder, "model.safetensors"), tensors)
        return
    names, weight_map = list(tensors), {}
    for s in range(shards):
        part = names[s::shards]
        fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        write_safetensors(os.path.join(folder, fname), {n: tensors[n] for n in part})
        weight_map.update({n: fname for n in part})
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": weight_map}, f)


def convert(args):
    env = {**os.environ, "PYENV_VERSION": "system"}
    return subprocess.run([CONVERT, *args], capture_output=True, text=True, env=env)


def expect_error(what, args, *needles):
    r = convert(args)
    lines = r.stderr.strip().splitlines()
    if r.returncode != 1:
        fail(f"{what}: exit code {r.returncode}, expected 1 (stderr: {r.stderr.strip()[:300]})")
    if len(lines) != 1:
        fail(f"{what}: {len(lines)} stderr lines, expected one: {r.stderr.strip()[:300]}")
    for n in needles:
        if n not in lines[0]:
            fail(f"{what}: message lacks '{n}': {lines[0]}")
    return lines[0]


def main(argv):
    if len(argv) != 1:
        print("usage: test_converter_errors.py WORK_DIR")
        return 2
    work = argv[0]
    os.makedirs(work, exist_ok=True)
    tensors = read_safetensors(os.path.join(GOLDEN, "model.safetensors"))
    cfg = json.load(open(os.path.join(GOLDEN, "config.json")))

    # sharded == single file
    make_checkpoint(os.path.join(work, "sharded"), tensors, shards=2)
    for src, out in ((GOLDEN, "out_single"), (os.path.join(work, "sharded"), "out_sharded")):
        r = convert([src, os.path.join(work, out)])
        if r.returncode != 0:
            fail(f"converting {src}: {r.stderr.strip()}")
    for f in ("vision.onnx.data", "embedding.onnx.data", "text.onnx.data"):
        a, b = (open(os.path.join(work, o, f), "rb").read() for o in ("out_single", "out_sharded"))
        if a != b:
            fail(f"{f}: sharded checkpoint gives different bytes than the single file")

    # F32 and F16 checkpoints: F32 holds the bf16 values exactly -> same bytes; F16 is read
    # as float32(float16(value)) (what the reader must return) and converts.
    bits = lambda raw: np.frombuffer(raw, np.uint16).astype(np.uint32) << 16
    as_f32 = {k: ("F32", sh, bits(raw).view(np.float32).tobytes()) for k, (dt, sh, raw) in tensors.items()}
    as_f16 = {k: ("F16", sh, bits(raw).view(np.float32).astype(np.float16).tobytes())
              for k, (dt, sh, raw) in tensors.items()}
    make_checkpoint(os.path.join(work, "f32"), as_f32)
    make_checkpoint(os.path.join(work, "f16"), as_f16)
    for src in ("f32", "f16"):
        r = convert([os.path.join(work, src), os.path.join(work, "out_" + src)])
        if r.returncode != 0:
            fail(f"converting the {src} checkpoint: {r.stderr.strip()}")
    for f in ("vision.onnx.data", "embedding.onnx.data", "text.onnx.data"):
        a, b = (open(os.path.join(work, o, f), "rb").read() for o in ("out_single", "out_f32"))
        if a != b:
            fail(f"{f}: F32 checkpoint gives different bytes than the BF16 one")
    # untied copy (tie_word_embeddings false + lm_head.weight = the embedding): same bytes
    untied = dict(tensors)
    untied["lm_head.weight"] = tensors["model.language_model.embed_tokens.weight"]
    ucfg = json.loads(json.dumps(cfg))
    ucfg["tie_word_embeddings"] = False
    ucfg["text_config"]["tie_word_embeddings"] = False
    make_checkpoint(os.path.join(work, "untied"), untied, config=ucfg)
    r = convert([os.path.join(work, "untied"), os.path.join(work, "out_untied")])
    if r.returncode != 0:
        fail(f"converting the untied checkpoint: {r.stderr.strip()}")
    if open(os.path.join(work, "out_untied", "text.onnx.data"), "rb").read() != \
            open(os.path.join(work, "out_single", "text.onnx.data"), "rb").read():
        fail("text.onnx.data: untied lm_head.weight (= embedding) differs from the tied conversion")
    ck = Checkpoint(os.path.join(work, "f16"))
    for name in ("model.visual.blocks.1.attn.qkv.weight", "model.language_model.layers.2.mlp.down_proj.weight"):
        want = np.frombuffer(as_f16[name][2], np.float16).astype(np.float32).reshape(as_f16[name][1])
        if not np.array_equal(ck.load(name), want):
            fail(f"F16 reader: {name} differs from float32(float16 data)")

    msgs = []
    bad = dict(cfg, model_type="llama", architectures=["LlamaForCausalLM"])
    make_checkpoint(os.path.join(work, "not_qwen"), tensors, config=bad)
    msgs.append(expect_error("not a checkpoint", [os.path.join(work, "not_qwen"), os.path.join(work, "o1")],
                             "config.json", "not a Qwen3-VL checkpoint"))

    os.remove(os.path.join(work, "sharded", "model-00002-of-00002.safetensors"))
    msgs.append(expect_error("missing shard", [os.path.join(work, "sharded"), os.path.join(work, "o2")],
                             "model-00002-of-00002.safetensors", "missing shard"))

    name = "model.language_model.layers.1.self_attn.q_proj.weight"
    wrong = dict(tensors)
    dt, shape, raw = wrong[name]
    wrong[name] = (dt, [shape[0] // 2, shape[1]], raw[:len(raw) // 2])
    make_checkpoint(os.path.join(work, "wrong_shape"), wrong)
    msgs.append(expect_error("wrong shape", [os.path.join(work, "wrong_shape"), os.path.join(work, "o3")],
                             "model.safetensors", name, f"[{shape[0] // 2}, {shape[1]}]",
                             f"expected [{shape[0]}, {shape[1]}]"))

    name = "model.language_model.layers.3.mlp.down_proj.weight"
    make_checkpoint(os.path.join(work, "missing_tensor"), {k: v for k, v in tensors.items() if k != name})
    msgs.append(expect_error("missing tensor", [os.path.join(work, "missing_tensor"), os.path.join(work, "o7")],
                             name, "missing"))

    name = "model.visual.blocks.0.attn.qkv.bias"
    f64 = dict(tensors)
    dt, shape, raw = f64[name]
    f64[name] = ("F64", shape, raw * 4)
    make_checkpoint(os.path.join(work, "f64"), f64)
    msgs.append(expect_error("unsupported dtype", [os.path.join(work, "f64"), os.path.join(work, "o4")],
                             name, "unsupported dtype F64"))

    os.makedirs(os.path.join(work, "empty"), exist_ok=True)
    msgs.append(expect_error("no config", [os.path.join(work, "empty"), os.path.join(work, "o5")], "config.json"))
    msgs.append(expect_error("bad flag", [GOLDEN, os.path.join(work, "o6"), "--block-size", "48"], "block-size"))
    msgs.append(expect_error("no output dir", [GOLDEN], "usage"))
    print(f"PASS sharded == single file, F32 == BF16 == untied, F16 read exactly; {len(msgs)} bad inputs rejected with one line, e.g. '{msgs[2]}'")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
