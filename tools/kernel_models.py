#!/usr/bin/env python3
# Writes one-op (or few-op) ONNX models with random inputs, one folder per case,
# for `qvl compare --kernels`: ONNX Runtime runs model.onnx (tools/ort-run) and
# qvl runs its own kernel on the same .npy files, then the outputs are compared.
#
#   PYENV_VERSION=system python3 tools/kernel_models.py OUT_DIR [--seed N]
#
# OUT_DIR/<case>/model.onnx   the ONNX graph (weights as initializers)
#                in/<input>.npy  graph inputs (what ort-run feeds)
#                w/<name>.npy    the initializers again, for qvl's kernel
#                meta.json       {"case", "kernel", "output", params...}
# OUT_DIR/cases.json lists the case names in order.
#
# Kernel families: MatMulNBits (block 16/32/128, with and without zero points,
# M = 1 and M > 1, K not a multiple of the block), MatMul (fp32 and fp16 B),
# causal GQA attention over a KV cache with past, segment attention (vision),
# MRoPE and 2-D vision rotary embeddings, SimplifiedLayerNormalization,
# LayerNormalization, Gelu (tanh and erf), Softmax, SwiGLU, GatherBlockQuantized.
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 20
F32 = TensorProto.FLOAT


class Case:
    """Accumulates nodes, inputs and initializers of one small graph."""

    def __init__(self, name, kernel, **meta):
        self.name, self.nodes, self.inputs, self.inits = name, [], [], []
        self.feeds, self.weights, self.count = {}, {}, 0
        self.meta = dict(case=name, kernel=kernel, output="y", **meta)

    def inp(self, name, arr):
        """A graph input fed from in/<name>.npy."""
        dt = helper.np_dtype_to_tensor_dtype(arr.dtype) if hasattr(helper, "np_dtype_to_tensor_dtype") \
            else onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[arr.dtype]
        self.inputs.append(helper.make_tensor_value_info(name, dt, list(arr.shape)))
        self.feeds[name] = arr
        return name

    def init(self, name, arr, weight=True):
        """An initializer; weight=True also saves it for qvl's side in w/."""
        self.inits.append(numpy_helper.from_array(arr, name))
        if weight:
            self.weights[name] = arr
        return name

    def const(self, arr):
        self.count += 1
        return self.init(f"c{self.count}", np.asarray(arr), weight=False)

    def op(self, op_type, inputs, domain="", out=None, **attrs):
        self.count += 1
        out = out or f"t{self.count}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], domain=domain, **attrs))
        return out

    def save(self, root):
        d = os.path.join(root, self.name)
        for sub in ("in", "w"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        y = helper.make_tensor_value_info("y", F32, None)
        graph = helper.make_graph(self.nodes, self.name, self.inputs, [y], self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET),
                                                        helper.make_opsetid("com.microsoft", 1)])
        model.ir_version = 9
        onnx.save(model, os.path.join(d, "model.onnx"))
        for k, v in self.feeds.items():
            np.save(os.path.join(d, "in", k + ".npy"), v)
        for k, v in self.weights.items():
            np.save(os.path.join(d, "w", k + ".npy"), v)
        with open(os.path.join(d, "meta.json"), "w") as f:
            json.dump(self.meta, f, indent=1)


def f32(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def pack_nibbles(codes):
    """[..., 2m] uint8 codes 0..15 -> [..., m] bytes, first element in the low nibble."""
    return (codes[..., 0::2] | (codes[..., 1::2] << 4)).astype(np.uint8)


def matmul_nbits(rng, name, M, K, N, bs, zp):
    kb = (K + bs - 1) // bs
    codes = rng.integers(0, 16, size=(N, kb * bs), dtype=np.uint8)
    zps = rng.integers(0, 16, size=(N, kb), dtype=np.uint8) if zp else np.full((N, kb), 8, np.uint8)
    codes[:, K:] = np.repeat(zps, bs, axis=1)[:, K:]  # padding dequantizes to 0
    B = pack_nibbles(codes).reshape(N, kb, bs // 2)
    scales = (rng.uniform(0.005, 0.05, size=(N, kb)) * rng.choice([-1, 1], size=(N, kb))).astype(np.float32)
    c = Case(name, "matmul_nbits", M=M, K=K, N=N, block_size=bs, bits=4, zero_points=zp)
    ins = [c.inp("a", f32(rng, M, K)), c.init("B", B), c.init("scales", scales.reshape(-1))]
    if zp:
        zrow = np.concatenate([zps, np.zeros((N, kb % 2), np.uint8)], axis=1) if kb % 2 else zps
        ins.append(c.init("zero_points", pack_nibbles(zrow).reshape(-1)))
    c.op("MatMulNBits", ins, domain="com.microsoft", out="y", K=K, N=N, bits=4, block_size=bs)
    return c


def matmul(rng, name, M, K, N, half):
    c = Case(name, "matmul", M=M, K=K, N=N, dtype="float16" if half else "float32")
    a = c.inp("a", f32(rng, M, K))
    w = f32(rng, K, N, scale=0.1)
    if half:
        b = c.op("Cast", [c.init("B", w.astype(np.float16))], to=F32)
    else:
        b = c.init("B", w)
    c.op("MatMul", [a, b], out="y")
    return c


def repeat_kv(c, x, Hkv, G, T, D):
    """[Hkv, T, D] -> [Hkv*G, T, D]: query head h reads kv head h // G."""
    e = c.op("Expand", [c.op("Unsqueeze", [x, c.const(np.array([1]))]), c.const(np.array([Hkv, G, T, D]))])
    return c.op("Reshape", [e, c.const(np.array([Hkv * G, T, D]))])


def attend(c, q, k, v, mask, scale):
    """softmax(q·kᵀ·scale + mask)·v on [H, S, D] x [H, T, D]."""
    s = c.op("Mul", [c.op("MatMul", [q, c.op("Transpose", [k], perm=[0, 2, 1])]), c.const(np.float32(scale))])
    p = c.op("Softmax", [c.op("Add", [s, mask])], axis=-1)
    return c.op("MatMul", [p, v])


def attention_causal(rng, name, S, P, Hq, Hkv, D, ctx):
    T, G = P + S, Hq // Hkv
    c = Case(name, "attention_causal", S=S, past=P, Hq=Hq, Hkv=Hkv, D=D, ctx=ctx, scale=D ** -0.5)
    q = c.inp("q", f32(rng, S, Hq, D))
    kc, vc = c.inp("kcache", f32(rng, Hkv, ctx, D)), c.inp("vcache", f32(rng, Hkv, ctx, D))
    sl = [c.const(np.array([0])), c.const(np.array([T])), c.const(np.array([1]))]
    k = repeat_kv(c, c.op("Slice", [kc] + sl), Hkv, G, T, D)
    v = repeat_kv(c, c.op("Slice", [vc] + sl), Hkv, G, T, D)
    i, j = np.arange(S)[:, None], np.arange(T)[None, :]
    mask = np.where(j <= P + i, 0.0, -1e9).astype(np.float32)
    o = attend(c, c.op("Transpose", [q], perm=[1, 0, 2]), k, v, c.const(mask), D ** -0.5)
    c.op("Transpose", [o], perm=[1, 0, 2], out="y")
    return c


def attention_segments(rng, name, N, H, D, cu):
    c = Case(name, "attention_segments", N=N, H=H, D=D, cu_seqlens=cu, scale=D ** -0.5)
    qkv = c.inp("qkv", f32(rng, N, 3 * H * D))
    parts = []
    for t in range(3):
        sl = c.op("Slice", [qkv, c.const(np.array([t * H * D])), c.const(np.array([(t + 1) * H * D])),
                            c.const(np.array([1]))])
        parts.append(c.op("Transpose", [c.op("Reshape", [sl, c.const(np.array([N, H, D]))])], perm=[1, 0, 2]))
    seg = np.zeros(N, np.int64)
    for s in range(len(cu) - 1):
        seg[cu[s]:cu[s + 1]] = s
    mask = np.where(seg[:, None] == seg[None, :], 0.0, -1e9).astype(np.float32)
    o = attend(c, parts[0], parts[1], parts[2], c.const(mask), D ** -0.5)
    c.op("Reshape", [c.op("Transpose", [o], perm=[1, 0, 2]), c.const(np.array([N, H * D]))], out="y")
    return c


def rotate(c, x, pos, table, S, D):
    """x [S,H,D] rotated by angles = posᵀ·table ([S,A]·[A,D/2]), rotate_half pairing."""
    ang = c.op("MatMul", [c.op("Transpose", [c.op("Cast", [pos], to=F32)], perm=[1, 0]), c.const(table)])
    ang = c.op("Unsqueeze", [ang, c.const(np.array([1]))])
    cos, sin = c.op("Cos", [ang]), c.op("Sin", [ang])
    h = D // 2
    one = c.const(np.array([1]))
    x1 = c.op("Slice", [x, c.const(np.array([0])), c.const(np.array([h])), c.const(np.array([2])), one])
    x2 = c.op("Slice", [x, c.const(np.array([h])), c.const(np.array([D])), c.const(np.array([2])), one])
    lo = c.op("Sub", [c.op("Mul", [x1, cos]), c.op("Mul", [x2, sin])])
    hi = c.op("Add", [c.op("Mul", [x2, cos]), c.op("Mul", [x1, sin])])
    c.op("Concat", [lo, hi], axis=2, out="y")


def rope_mrope(rng, name, S, H, D, theta, section):
    c = Case(name, "rope_mrope", S=S, H=H, D=D, theta=theta, section=section, interleaved=True)
    x = c.inp("x", f32(rng, S, H, D))
    pos = c.inp("pos", rng.integers(0, 300, size=(3, S)).astype(np.int64))
    half = D // 2
    inv = (1.0 / theta ** (np.arange(0, D, 2, dtype=np.float32) / D)).astype(np.float32)
    table = np.zeros((3, half), np.float32)
    for j in range(half):  # interleaved T,H,W while j < 3*section[1], then T
        axis = j % 3 if j < 3 * section[1] else 0
        table[axis, j] = inv[j]
    rotate(c, x, pos, table, S, D)
    return c


def rope_vision(rng, name, N, H, Dv):
    c = Case(name, "rope_vision", N=N, H=H, D=Dv)
    x = c.inp("x", f32(rng, N, H, Dv))
    pos = c.inp("pos", rng.integers(0, 40, size=(2, N)).astype(np.int64))
    q = Dv // 4
    inv = (1.0 / 10000.0 ** (np.arange(0, Dv // 2, 2, dtype=np.float32) / (Dv // 2))).astype(np.float32)
    table = np.zeros((2, Dv // 2), np.float32)
    table[0, :q], table[1, q:] = inv, inv
    rotate(c, x, pos, table, N, Dv)
    return c


def norm(rng, name, rows, dim, layer):
    c = Case(name, "layer_norm" if layer else "rms_norm", rows=rows, dim=dim, eps=1e-6)
    x = c.inp("x", f32(rng, rows, dim, scale=3.0) + 0.5)
    ins = [x, c.init("w", f32(rng, dim) + 1.0)]
    if layer:
        ins.append(c.init("b", f32(rng, dim, scale=0.1)))
        c.op("LayerNormalization", ins, out="y", axis=-1, epsilon=1e-6)
    else:
        c.op("SimplifiedLayerNormalization", ins, out="y", axis=-1, epsilon=1e-6)
    return c


def elementwise(rng, name, kernel, n, scale):
    c = Case(name, kernel, n=n)
    x = c.inp("x", f32(rng, n, scale=scale))
    if kernel == "gelu_tanh":
        c.op("Gelu", [x], out="y", approximate="tanh")
    elif kernel == "gelu_erf":
        c.op("Gelu", [x], out="y")
    elif kernel == "swiglu":
        up = c.inp("up", f32(rng, n, scale=scale))
        c.op("Mul", [c.op("Mul", [x, c.op("Sigmoid", [x])]), up], out="y")
    return c


def softmax(rng, name, rows, n):
    c = Case(name, "softmax", rows=rows, n=n)
    c.op("Softmax", [c.inp("x", f32(rng, rows, n, scale=10.0))], out="y", axis=-1)
    return c


def gather_bq(rng, name, V, H, bs, zp):
    nb = H // bs
    c = Case(name, "gather_block_quantized", V=V, H=H, block_size=bs, bits=4, zero_points=zp)
    ids = c.inp("ids", np.concatenate([rng.integers(0, V, size=6), [0, V - 1, 3, 3]]).astype(np.int64))
    data = c.init("data", pack_nibbles(rng.integers(0, 16, size=(V, H), dtype=np.uint8)))
    scales = c.init("scales", rng.uniform(0.01, 0.1, size=(V, nb)).astype(np.float32))
    ins = [data, ids, scales]
    if zp:
        z = rng.integers(0, 16, size=(V, nb + nb % 2), dtype=np.uint8)
        ins.append(c.init("zero_points", pack_nibbles(z)))
    c.op("GatherBlockQuantized", ins, domain="com.microsoft", out="y", bits=4, block_size=bs,
         gather_axis=0, quantize_axis=1)
    return c


def all_cases(rng):
    cases = []
    for bs, K in ((16, 200), (32, 256), (128, 384)):
        for zp in (False, True):
            cases.append(matmul_nbits(rng, f"matmul_nbits_bs{bs}{'_zp' if zp else ''}", 5, K, 48, bs, zp))
    cases.append(matmul_nbits(rng, "matmul_nbits_bs32_zp_m1", 1, 80, 40, 32, True))
    cases.append(matmul_nbits(rng, "matmul_nbits_bs128_m1", 1, 256, 64, 128, False))
    cases += [matmul(rng, "matmul_f32", 6, 96, 40, False), matmul(rng, "matmul_f32_m1", 1, 96, 40, False),
              matmul(rng, "matmul_f16", 4, 64, 24, True)]
    cases += [attention_causal(rng, "attention_gqa_prefill", 7, 0, 4, 2, 64, 10),
              attention_causal(rng, "attention_gqa_past", 3, 9, 4, 2, 64, 16),
              attention_causal(rng, "attention_gqa_decode", 1, 20, 8, 2, 32, 24),
              attention_segments(rng, "attention_segments", 10, 2, 32, [0, 4, 10])]
    cases += [rope_mrope(rng, "rope_mrope", 5, 3, 128, 5e6, [24, 20, 20]),
              rope_mrope(rng, "rope_mrope_tiny", 4, 2, 32, 5e6, [6, 5, 5]),
              rope_vision(rng, "rope_vision", 8, 2, 64)]
    cases += [norm(rng, "simplified_layer_norm", 5, 96, False), norm(rng, "layer_norm", 5, 80, True)]
    cases += [elementwise(rng, "gelu_tanh", "gelu_tanh", 257, 3.0),
              elementwise(rng, "gelu_erf", "gelu_erf", 257, 3.0),
              elementwise(rng, "swiglu", "swiglu", 300, 3.0), softmax(rng, "softmax", 4, 100)]
    cases += [gather_bq(rng, "gather_block_quantized_bs32", 50, 64, 32, False),
              gather_bq(rng, "gather_block_quantized_bs16_zp", 50, 64, 16, True)]
    return cases


def main(argv):
    if len(argv) < 2 or argv[1].startswith("-"):
        print("usage: kernel_models.py OUT_DIR [--seed N]", file=sys.stderr)
        return 2
    seed = int(argv[argv.index("--seed") + 1]) if "--seed" in argv else 1234
    rng = np.random.default_rng(seed)
    out = argv[1]
    os.makedirs(out, exist_ok=True)
    cases = all_cases(rng)
    for c in cases:
        c.save(out)
    with open(os.path.join(out, "cases.json"), "w") as f:
        json.dump([c.name for c in cases], f, indent=1)
    print(f"{len(cases)} kernel cases -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
