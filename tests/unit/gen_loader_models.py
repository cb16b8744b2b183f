#!/usr/bin/env python3
"""Writes small ONNX files for tests/unit/test_loader.cpp into OUTDIR.

Usage: PYENV_VERSION=system python3 gen_loader_models.py OUTDIR   (onnx >= 1.12, numpy)

Good models (OUTDIR/good/) cover every dtype the loader accepts, inline raw_data,
the typed fields (float_data, int32_data with fp16/bf16 bits and small ints,
int64_data), Constant nodes, an If subgraph, external data in one file and in
several files with offsets. OUTDIR/good/expected.json lists, per model, every
tensor the loader must expose with the exact bytes (hex) it must hand out,
computed here with numpy independently of the C++ code.

Bad models (OUTDIR/bad/) each break one rule; OUTDIR/bad/expected.json names
the file, the tensor the error must name (or null) and a phrase the message
must contain.
"""
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper

# Numeric type codes (onnx 1.12 has no INT4/UINT4 enum members).
FLOAT, UINT8, INT8, INT32, INT64, STRING, BOOL = 1, 2, 3, 6, 7, 8, 9
FLOAT16, DOUBLE, BFLOAT16, FLOAT8E4M3FN, UINT4, INT4 = 10, 11, 16, 17, 21, 22


def pack4(nibbles):
    """Two 4-bit values per byte, first element in the low nibble."""
    n = [int(x) & 0xF for x in nibbles]
    if len(n) % 2:
        n.append(0)
    return bytes(n[i] | (n[i + 1] << 4) for i in range(0, len(n), 2))


def bf16_bits(values):
    """bfloat16 bits of values that are exactly representable in bfloat16."""
    f = np.asarray(values, dtype=np.float32)
    bits = f.view(np.uint32)
    assert np.all(bits & 0xFFFF == 0), "test values must be exact in bfloat16"
    return (bits >> 16).astype(np.uint16)


def tensor(name, dtype, dims):
    t = TensorProto()
    t.name = name
    t.data_type = dtype
    t.dims.extend(dims)
    return t


def float_values(dtype, data):
    """Float values of float-typed bytes, decoded by numpy (for tensor_to_f32)."""
    b = bytes(data)
    if dtype == FLOAT:
        v = np.frombuffer(b, np.float32)
    elif dtype == FLOAT16:
        v = np.frombuffer(b, np.float16).astype(np.float32)
    elif dtype == BFLOAT16:
        v = (np.frombuffer(b, np.uint16).astype(np.uint32) << 16).view(np.float32)
    else:
        return None
    return [float(x) for x in v]


def expect_entry(name, dtype, shape, data, location="", offset=0, constant=False):
    e = {"name": name, "dtype": dtype, "shape": shape, "hex": bytes(data).hex(), "location": location,
         "offset": offset, "from_constant_node": constant}
    f = float_values(dtype, data)
    if f is not None:
        e["f32"] = f
    return e


class Model:
    """Collects initializers/nodes of one model plus the expected loader view."""

    def __init__(self):
        self.inits, self.nodes, self.expect = [], [], []

    def add(self, t, data, location="", offset=0, constant=False):
        self.expect.append(expect_entry(t.name, t.data_type, list(t.dims), data, location, offset, constant))

    def raw(self, name, dtype, dims, data):
        t = tensor(name, dtype, dims)
        t.raw_data = bytes(data)
        self.inits.append(t)
        self.add(t, data)
        return t


def all_dtypes_raw(m):
    m.raw("f32", FLOAT, [2, 3], np.array([1.5, -2.25, 0, 3.4e38, -1e-40, 7], np.float32).tobytes())
    m.raw("f16", FLOAT16, [5], np.array([1, -0.5, 65504, 6e-8, 0.1], np.float16).tobytes())
    m.raw("bf16", BFLOAT16, [4], bf16_bits([1.0, -3.5, 0.15625, 2.0 ** 100]).tobytes())
    m.raw("i8", INT8, [4], np.array([-128, -1, 0, 127], np.int8).tobytes())
    m.raw("u8", UINT8, [3], np.array([0, 128, 255], np.uint8).tobytes())
    m.raw("i4_odd", INT4, [5], pack4([-8, -1, 0, 7, 3]))          # 3 bytes
    m.raw("u4_odd", UINT4, [1, 7], pack4([0, 15, 1, 14, 2, 13, 9]))  # 4 bytes
    m.raw("u4_even", UINT4, [2, 2], pack4([1, 2, 3, 4]))            # 2 bytes
    m.raw("i32", INT32, [3], np.array([-2**31, 0, 2**31 - 1], np.int32).tobytes())
    m.raw("i64", INT64, [2], np.array([-2**63, 2**62 + 5], np.int64).tobytes())
    m.raw("bool", BOOL, [4], np.array([True, False, False, True], np.bool_).tobytes())
    m.raw("scalar", FLOAT, [], np.array([42.0], np.float32).tobytes())
    m.raw("empty", FLOAT, [0, 4], b"")


def typed_fields(m):
    vals = [0.5, -1.25, 3e-5, 1e10]
    t = tensor("typed_f32", FLOAT, [4]); t.float_data.extend(vals)
    m.inits.append(t); m.add(t, np.array(vals, np.float32).tobytes())
    h = np.array([1.0, -2.0, 0.333, 65504, 0], np.float16)
    t = tensor("typed_f16", FLOAT16, [5]); t.int32_data.extend(int(x) for x in h.view(np.uint16))
    m.inits.append(t); m.add(t, h.tobytes())
    b = bf16_bits([1.0, -0.5, 3.0])
    t = tensor("typed_bf16", BFLOAT16, [3]); t.int32_data.extend(int(x) for x in b)
    m.inits.append(t); m.add(t, b.tobytes())
    for name, dt, npdt, v in [("typed_i8", INT8, np.int8, [-128, 5, 127]),
                              ("typed_u8", UINT8, np.uint8, [0, 200, 255]),
                              ("typed_bool", BOOL, np.bool_, [1, 0, 1]),
                              ("typed_i32", INT32, np.int32, [-7, 0, 2**31 - 1])]:
        t = tensor(name, dt, [len(v)]); t.int32_data.extend(v)
        m.inits.append(t); m.add(t, np.array(v, npdt).tobytes())
    packed = pack4([-3, 4, 7])  # int4: int32_data holds the packed bytes
    t = tensor("typed_i4", INT4, [3]); t.int32_data.extend(packed)
    m.inits.append(t); m.add(t, packed)
    v = [-(2**40), 3, 2**62]
    t = tensor("typed_i64", INT64, [3]); t.int64_data.extend(v)
    m.inits.append(t); m.add(t, np.array(v, np.int64).tobytes())


def graph_model(m, name, extra_nodes=(), inputs=None, outputs=None):
    nodes = list(extra_nodes) + m.nodes
    if inputs is None:
        inputs = [helper.make_tensor_value_info("x", FLOAT, ["batch", 4])]
    if outputs is None:
        outputs = [helper.make_tensor_value_info("y", FLOAT, ["batch", 4])]
        nodes.append(helper.make_node("Identity", ["x"], ["y"], name="id"))
    g = helper.make_graph(nodes, name, inputs, outputs, initializer=m.inits)
    model = helper.make_model(g, producer_name="qvl-test", opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def make_inline(out):
    """All dtypes inline + typed fields + Constant nodes + an If subgraph."""
    m = Model()
    all_dtypes_raw(m)
    typed_fields(m)
    # Constant nodes: `value` tensor (raw), value_floats, value_int.
    cval = np.array([[1, 2], [3, 4]], np.float32)
    ct = helper.make_tensor("ignored_name", FLOAT, [2, 2], cval.tobytes(), raw=True)
    n_const = helper.make_node("Constant", [], ["const_out"], name="c0", value=ct)
    n_floats = helper.make_node("Constant", [], ["const_floats"], name="c1", value_floats=[0.25, -8.0])
    n_int = helper.make_node("Constant", [], ["const_int"], name="c2", value_int=-9)
    # If with subgraphs that carry their own initializer and Constant node.
    then_m = Model()
    then_m.raw("then_w", FLOAT, [4], np.array([1, 2, 3, 4], np.float32).tobytes())
    sub_c = helper.make_tensor("v", INT64, [1], np.array([11], np.int64).tobytes(), raw=True)
    then_g = helper.make_graph(
        [helper.make_node("Constant", [], ["then_const"], name="then_c", value=sub_c),
         helper.make_node("Mul", ["x", "then_w"], ["then_y"], name="then_mul")],
        "then", [], [helper.make_tensor_value_info("then_y", FLOAT, ["batch", 4])],
        initializer=then_m.inits)
    else_g = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["else_y"], name="else_neg")],
        "else", [], [helper.make_tensor_value_info("else_y", FLOAT, ["batch", 4])])
    n_cond = helper.make_node("Greater", ["const_int", "i64"], ["cond"], name="cond")
    n_if = helper.make_node("If", ["cond"], ["y"], name="if0", then_branch=then_g, else_branch=else_g)
    n_mm = helper.make_node("MatMul", ["x", "f32"], ["mm"], name="mm0")
    n_mm2 = helper.make_node("Add", ["mm", "f32"], ["y2"], name="add0", domain="")
    n_ms = helper.make_node("MatMulNBits", ["x", "u4_odd"], ["z"], name="q0", domain="com.microsoft",
                            bits=4, block_size=32, K=8, N=1)
    inputs = [helper.make_tensor_value_info("x", FLOAT, ["batch", None, 4]),
              helper.make_tensor_value_info("f32", FLOAT, [2, 3])]  # also an initializer
    outputs = [helper.make_tensor_value_info("y", FLOAT, ["batch", 4]),
               helper.make_tensor_value_info("y2", FLOAT, None), helper.make_tensor_value_info("z", FLOAT, [1])]
    model = graph_model(m, "inline", [n_const, n_floats, n_int, n_cond, n_if, n_mm, n_mm2, n_ms],
                        inputs, outputs)
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    onnx.save(model, os.path.join(out, "inline.onnx"))
    # File order: main initializers, then nodes in order with their subgraphs.
    exp = list(m.expect)
    exp.append(expect_entry("const_out", FLOAT, [2, 2], cval.tobytes(), constant=True))
    exp.append(expect_entry("const_floats", FLOAT, [2], np.array([0.25, -8.0], np.float32).tobytes(),
                            constant=True))
    exp.append(expect_entry("const_int", INT64, [], np.array([-9], np.int64).tobytes(), constant=True))
    exp += then_m.expect
    exp.append(expect_entry("then_const", INT64, [1], np.array([11], np.int64).tobytes(), constant=True))
    return {"file": "inline.onnx", "tensors": exp,
            # make_node stores attributes sorted by name: else_branch comes first.
            "nodes": ["c0", "c1", "c2", "cond", "if0", "else_neg", "then_c", "then_mul", "mm0", "add0", "q0"],
            "inputs": [{"name": "x", "dtype": FLOAT, "dims": ["batch", "?", "4"]}],
            "outputs": [{"name": "y", "dtype": FLOAT, "dims": ["batch", "4"]},
                        {"name": "y2", "dtype": FLOAT, "dims": []},
                        {"name": "z", "dtype": FLOAT, "dims": ["1"]}],
            "consumers": {"x": ["else_neg", "then_mul", "mm0", "q0"], "f32": ["mm0", "add0"],
                          "u4_odd": ["q0"], "mm": ["add0"], "nothing": []},
            "producers": {"y": "if0", "then_y": "then_mul", "cond": "cond", "f32": None},
            "opsets": {"": 17, "com.microsoft": 1}, "ir_version": 8}


class DataFiles:
    """Appends tensor bytes to external data files with alignment gaps."""

    def __init__(self, folder):
        self.folder, self.sizes = folder, {}

    def put(self, location, data, align=64):
        path = os.path.join(self.folder, location)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        off = self.sizes.get(location, 0)
        off = (off + align - 1) // align * align
        with open(path, "r+b" if os.path.exists(path) else "wb") as f:
            f.seek(off)
            f.write(data)
        self.sizes[location] = off + len(data)
        return off


def ext(m, files, name, dtype, dims, data, location, write_length=True, offset=None):
    """An external tensor; `offset` forces where it claims to be (bad cases)."""
    off = files.put(location, data) if data is not None else 0
    if offset is not None:
        off = offset
    t = tensor(name, dtype, dims)
    t.data_location = TensorProto.EXTERNAL
    entries = [("location", location), ("offset", str(off))]
    if write_length:
        entries.append(("length", str(len(data) if data is not None else 0)))
    for k, v in entries:
        e = t.external_data.add()
        e.key, e.value = k, v
    m.inits.append(t)
    if data is not None:
        m.add(t, data, location, off)
    return t


def make_external(out):
    """external_one.onnx: several tensors in one file; external_multi.onnx: three
    files (one in a subfolder), a tensor without `length`, mixed with inline."""
    files = DataFiles(out)
    m = Model()
    rng = np.random.default_rng(7)
    ext(m, files, "w0", FLOAT, [8, 16], rng.standard_normal((8, 16)).astype(np.float32).tobytes(), "one.bin")
    ext(m, files, "w1", FLOAT16, [33], rng.standard_normal(33).astype(np.float16).tobytes(), "one.bin")
    ext(m, files, "w2", UINT4, [5, 3], pack4(rng.integers(0, 16, 15)), "one.bin")
    ext(m, files, "w3", INT64, [4], np.arange(4, dtype=np.int64).tobytes(), "one.bin")
    onnx.save(graph_model(m, "ext1"), os.path.join(out, "external_one.onnx"))
    one = {"file": "external_one.onnx", "tensors": m.expect}

    m = Model()
    ext(m, files, "a0", BFLOAT16, [6], bf16_bits([1, 2, 3, 4, 5, -6]).tobytes(), "multi_a.bin")
    m.raw("inline_mid", INT8, [2], np.array([-3, 3], np.int8).tobytes())
    ext(m, files, "b0", INT8, [3, 3], np.arange(-4, 5, dtype=np.int8).tobytes(), "sub/multi_b.bin")
    ext(m, files, "a1", FLOAT, [2], np.array([9.5, -0.0], np.float32).tobytes(), "multi_a.bin",
        write_length=False)
    ext(m, files, "c0", BOOL, [2], np.array([1, 0], np.bool_).tobytes(), "multi_c.bin")
    ext(m, files, "b1", INT4, [7], pack4([-8, 7, -1, 0, 1, 2, 3]), "sub/multi_b.bin")
    onnx.save(graph_model(m, "ext2"), os.path.join(out, "external_multi.onnx"))
    multi = {"file": "external_multi.onnx", "tensors": m.expect}
    return [one, multi]


def make_bad(out):
    cases = []
    files = DataFiles(out)
    f32 = np.arange(6, dtype=np.float32).tobytes()

    def save(fname, m, tensor_name, phrase):
        onnx.save(graph_model(m, fname), os.path.join(out, fname))
        cases.append({"file": fname, "tensor": tensor_name, "contains": phrase})

    m = Model()
    ext(m, files, "w", FLOAT, [6], None, "absent.bin", write_length=False)
    save("missing_data_file.onnx", m, "w", "not found")

    m = Model()  # data file shorter than offset + length
    files.put("short.bin", f32[:12])
    t = ext(m, files, "w", FLOAT, [6], None, "short.bin", write_length=False, offset=0)
    save("truncated_data.onnx", m, "w", "past the end")

    m = Model()
    files.put("ok.bin", f32)
    ext(m, files, "w", FLOAT, [6], None, "ok.bin", write_length=False, offset=64)
    save("offset_past_end.onnx", m, "w", "past the end")

    m = Model()  # the escaping file exists, so only the path rule can reject it
    with open(os.path.join(os.path.dirname(os.path.abspath(out)), "escape.bin"), "wb") as f:
        f.write(f32)
    ext(m, files, "w", FLOAT, [6], None, "../escape.bin", write_length=False, offset=0)
    save("dotdot_location.onnx", m, "w", "inside the model folder")

    m = Model()
    ext(m, files, "w", FLOAT, [6], None, os.path.abspath(os.path.join(out, "ok.bin")),
        write_length=False, offset=0)
    save("absolute_location.onnx", m, "w", "inside the model folder")

    m = Model()
    ext(m, files, "w", FLOAT, [6], None, "ok.bin", write_length=False, offset=0)
    e = m.inits[-1].external_data.add()
    e.key, e.value = "length", "20"
    save("length_mismatch.onnx", m, "w", "does not match")

    m = Model()
    m.raw("w", FLOAT, [2, 3], f32[:20])
    save("raw_size_mismatch.onnx", m, "w", "needs 24")

    m = Model()
    t = tensor("w", FLOAT, [2, 3]); t.float_data.extend([1, 2, 3, 4, 5]); m.inits.append(t)
    save("typed_count_mismatch.onnx", m, "w", "needs 6")

    m = Model()
    t = tensor("w", INT4, [5]); t.int32_data.extend([1, 2]); m.inits.append(t)
    save("int4_count_mismatch.onnx", m, "w", "needs 3")

    m = Model()
    t = tensor("names", STRING, [2]); t.string_data.extend([b"a", b"b"]); m.inits.append(t)
    save("string_dtype.onnx", m, "names", "data type 8")

    m = Model()
    m.raw("fp8", FLOAT8E4M3FN, [4], b"\x01\x02\x03\x04")
    save("dtype17.onnx", m, "fp8", "data type 17")

    m = Model()
    t = tensor("d", DOUBLE, [2]); t.double_data.extend([1.0, 2.0]); m.inits.append(t)
    save("double_dtype.onnx", m, "d", "data type 11")

    m = Model()  # bad dtype inside a Constant node in a subgraph
    sub = helper.make_graph(
        [helper.make_node("Constant", [], ["sc"], name="sc",
                          value=helper.make_tensor("v", DOUBLE, [1], [1.0]))],
        "sub", [], [helper.make_tensor_value_info("sc", DOUBLE, [1])])
    n_if = helper.make_node("If", ["c"], ["o"], then_branch=sub, else_branch=sub)
    onnx.save(graph_model(m, "badsub", [n_if]), os.path.join(out, "subgraph_constant_dtype.onnx"))
    cases.append({"file": "subgraph_constant_dtype.onnx", "tensor": "sc", "contains": "data type 11"})

    with open(os.path.join(out, "garbage.onnx"), "wb") as f:
        f.write(b"this is not an ONNX model \xff\xfe\x00\x01" * 10)
    cases.append({"file": "garbage.onnx", "tensor": None, "contains": "not a valid ONNX model"})

    m = Model()
    m.raw("w", FLOAT, [64, 64], np.ones((64, 64), np.float32).tobytes())
    whole = graph_model(m, "trunc").SerializeToString()
    with open(os.path.join(out, "truncated.onnx"), "wb") as f:
        f.write(whole[: len(whole) // 2])
    cases.append({"file": "truncated.onnx", "tensor": None, "contains": "not a valid ONNX model"})

    open(os.path.join(out, "empty.onnx"), "wb").close()
    cases.append({"file": "empty.onnx", "tensor": None, "contains": "not a valid ONNX model"})

    cases.append({"file": "does_not_exist.onnx", "tensor": None, "contains": "no such file"})
    return cases


def self_check(folder, models):
    """Reloads the good models with the onnx package (external data resolved by
    onnx itself) and checks the expected bytes of the types numpy_helper knows."""
    from onnx import numpy_helper
    for entry in models:
        model = onnx.load(os.path.join(folder, entry["file"]))
        inits = {t.name: t for t in model.graph.initializer}
        for e in entry["tensors"]:
            if e["name"] in inits and e["dtype"] in (FLOAT, FLOAT16, INT8, UINT8, INT32, INT64, BOOL):
                got = numpy_helper.to_array(inits[e["name"]]).tobytes()
                assert got.hex() == e["hex"], "self-check failed for " + e["name"]


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: gen_loader_models.py OUTDIR")
    root = sys.argv[1]
    good, bad = os.path.join(root, "good"), os.path.join(root, "bad", "models")
    os.makedirs(good, exist_ok=True)
    os.makedirs(bad, exist_ok=True)
    models = [make_inline(good)] + make_external(good)
    with open(os.path.join(good, "expected.json"), "w") as f:
        json.dump({"models": models}, f, indent=1)
    with open(os.path.join(bad, "expected.json"), "w") as f:
        json.dump({"cases": make_bad(bad)}, f, indent=1)
    self_check(good, models)
    print("wrote", sum(len(m["tensors"]) for m in models), "tensors and the bad cases to", root)


if __name__ == "__main__":
    main()
