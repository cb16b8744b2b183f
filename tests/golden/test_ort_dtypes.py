#!/usr/bin/env python3
# tools/ort-run .npy dtype round trip and tools/ort/model.js half-float conversion.
#  1. A small ONNX graph (built here with python3-onnx) passes float32, float16, float64,
#     int64, int32, int8, uint8 and bool inputs through Identity (and float16 through a
#     Cast to float32, int32 through Add): ort-run must write the same values, dtypes and
#     shapes (incl. a 0-d scalar and a zero-length tensor); a dtype mismatch is one error line.
#     The same graph saved with external data: --outputs returns an intermediate value and
#     leaves no temporary model copy next to the model.
#  2. toHalf/fromHalf of tools/ort/model.js (used for float16 graphs) equal numpy's
#     float32<->float16 conversion bit for bit: all 65536 half patterns and 20000 floats
#     (random, ties, subnormals, overflow).
#   test_ort_dtypes.py WORK_DIR      (PYENV_VERSION=system python3: numpy + onnx)
import os
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
ORT_RUN = os.path.join(ROOT, "tools", "ort-run")

CASES = {  # input name -> (array, onnx type)
    "f32": (np.arange(12, dtype=np.float32).reshape(3, 4) / 7, TensorProto.FLOAT),
    "f16": (np.array([0.5, -2.25, 65504, 6e-8], dtype=np.float16), TensorProto.FLOAT16),
    "f64": (np.array([[1e300, -1.5]], dtype=np.float64), TensorProto.DOUBLE),
    "i64": (np.array([-(2 ** 62), 3, 151655], dtype=np.int64), TensorProto.INT64),
    "i32": (np.array(-7, dtype=np.int32), TensorProto.INT32),
    "i8": (np.array([-128, 127], dtype=np.int8), TensorProto.INT8),
    "u8": (np.arange(256, dtype=np.uint8).reshape(16, 16), TensorProto.UINT8),
    "b": (np.array([True, False, True]), TensorProto.BOOL),
    "empty": (np.zeros((1, 2, 0, 4), dtype=np.float32), TensorProto.FLOAT),
}


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def build_model(path):
    """Identity per input; f16 -> Cast to f32; i32 + 1."""
    nodes, inputs, outputs = [], [], []
    for name, (arr, ty) in CASES.items():
        inputs.append(helper.make_tensor_value_info(name, ty, list(arr.shape)))
        nodes.append(helper.make_node("Identity", [name], [f"out/{name}"]))
        outputs.append(helper.make_tensor_value_info(f"out/{name}", ty, list(arr.shape)))
    nodes.append(helper.make_node("Cast", ["f16"], ["f16:as_f32"], to=TensorProto.FLOAT))
    outputs.append(helper.make_tensor_value_info("f16:as_f32", TensorProto.FLOAT, [4]))
    one = numpy_helper.from_array(np.array(1, dtype=np.int32), "one")
    nodes.append(helper.make_node("Add", ["i32", "one"], ["i32_sum"]))
    nodes.append(helper.make_node("Identity", ["i32_sum"], ["i32_plus_1"]))
    outputs.append(helper.make_tensor_value_info("i32_plus_1", TensorProto.INT32, []))
    graph = helper.make_graph(nodes, "dtypes", inputs, outputs, initializer=[one])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    ext = os.path.join(os.path.dirname(path), "ext")
    os.makedirs(ext, exist_ok=True)
    onnx.save_model(model, os.path.join(ext, "dtypes_ext.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="dtypes_ext.onnx.data", size_threshold=0)


def check_roundtrip(work):
    in_dir, out_dir = os.path.join(work, "in"), os.path.join(work, "out")
    os.makedirs(in_dir, exist_ok=True)
    model = os.path.join(work, "dtypes.onnx")
    build_model(model)
    for name, (arr, _) in CASES.items():
        np.save(os.path.join(in_dir, name + ".npy"), arr)
    r = subprocess.run([ORT_RUN, model, in_dir, out_dir], capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"ort-run exited {r.returncode}: {r.stderr.strip()}")
    for name, (arr, _) in CASES.items():
        got = np.load(os.path.join(out_dir, f"out_{name}.npy"))
        if got.dtype != arr.dtype or got.shape != arr.shape or not np.array_equal(got, arr):
            fail(f"{name}: got {got.dtype}{got.shape} {got.ravel()[:4]}, want {arr.dtype}{arr.shape}")
    cast = np.load(os.path.join(out_dir, "f16_as_f32.npy"))
    if not np.array_equal(cast, CASES["f16"][0].astype(np.float32)):
        fail(f"f16 cast: {cast}")
    if np.load(os.path.join(out_dir, "i32_plus_1.npy")) != -6:
        fail("i32 + 1 != -6")
    ext = os.path.join(work, "ext")
    ext_out = os.path.join(work, "out_ext")
    r = subprocess.run([ORT_RUN, os.path.join(ext, "dtypes_ext.onnx"), in_dir, ext_out, "--outputs", "i32_sum"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"ort-run --outputs on external data exited {r.returncode}: {r.stderr.strip()}")
    if np.load(os.path.join(ext_out, "i32_sum.npy")) != -6:
        fail("--outputs i32_sum (external data) != -6")
    left = sorted(os.listdir(ext))
    if left != ["dtypes_ext.onnx", "dtypes_ext.onnx.data"]:
        fail(f"ort-run --outputs left files next to the model: {left}")
    if any(".ortrun" in f for f in os.listdir(ext_out)):
        fail(f"ort-run --outputs left a model copy in OUT_DIR: {os.listdir(ext_out)}")
    np.save(os.path.join(in_dir, "i32.npy"), np.array(-7, dtype=np.int64))
    r = subprocess.run([ORT_RUN, model, in_dir, out_dir], capture_output=True, text=True)
    if r.returncode != 1 or len(r.stderr.strip().splitlines()) != 1 or "i32.npy: dtype int64" not in r.stderr:
        fail(f"dtype mismatch: rc {r.returncode}, stderr {r.stderr.strip()!r}")


def check_half(work):
    rng = np.random.default_rng(0)
    vals = np.concatenate([
        rng.standard_normal(10000).astype(np.float32) * np.float32(100),
        (rng.integers(0, 2048, 4000) * 2 + 1).astype(np.float32) * np.float32(2.0 ** -12),  # ties at 1 ulp
        rng.uniform(-1e-4, 1e-4, 3000).astype(np.float32),  # half subnormals
        np.array([65504, 65519.99, 65520, 1e6, -1e6, 0.0, -0.0, 2.0 ** -25, 2.0 ** -24, 3 * 2.0 ** -26,
                  np.inf, -np.inf], dtype=np.float32),
    ]).astype(np.float32)
    vals = np.concatenate([vals, rng.uniform(-70000, 70000, 20000 - vals.size).astype(np.float32)])
    np.save(os.path.join(work, "f32.npy"), vals)
    np.save(os.path.join(work, "h16.npy"), np.arange(65536, dtype=np.uint16).view(np.float16))
    js = f"""
const {{ toHalf, fromHalf }} = require({repr(os.path.join(ROOT, 'tools', 'ort', 'model.js'))});
const {{ readNpy, writeNpy }} = require({repr(os.path.join(ROOT, 'tools', 'ort', 'npy.js'))});
const w = {repr(work)};
const f = readNpy(w + '/f32.npy');
writeNpy(w + '/js_half.npy', 'float16', f.shape, toHalf(f.data));
const h = readNpy(w + '/h16.npy');
writeNpy(w + '/js_float.npy', 'float32', h.shape, fromHalf(h.data));
"""
    r = subprocess.run(["node", "-e", js], capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"node half conversion failed: {r.stderr.strip()}")
    got = np.load(os.path.join(work, "js_half.npy")).view(np.uint16)
    with np.errstate(over="ignore"):
        want = vals.astype(np.float16).view(np.uint16)
    if not np.array_equal(got, want):
        i = int(np.nonzero(got != want)[0][0])
        fail(f"toHalf({vals[i]!r}) = {got[i]:#06x}, numpy {want[i]:#06x} ({int((got != want).sum())} differ)")
    back = np.load(os.path.join(work, "js_float.npy"))
    ref = np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float32)
    same = (back.view(np.uint32) == ref.view(np.uint32)) | (np.isnan(back) & np.isnan(ref))
    if not same.all():
        i = int(np.nonzero(~same)[0][0])
        fail(f"fromHalf({i:#06x}) = {back[i]!r}, numpy {ref[i]!r}")
    return vals.size


def main(argv):
    if len(argv) != 2:
        print("usage: test_ort_dtypes.py WORK_DIR", file=sys.stderr)
        return 2
    os.makedirs(argv[1], exist_ok=True)
    check_roundtrip(argv[1])
    n = check_half(argv[1])
    print(f"PASS ort-run dtypes: {len(CASES)} inputs round-trip exactly, dtype mismatch rejected; "
          f"half conversion bit-exact on 65536 patterns + {n} floats")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
