#!/usr/bin/env python3
"""Writes tiny ONNX graphs for tests/unit/test_weights.cpp into OUTDIR.

Usage: PYENV_VERSION=system python3 gen_weight_models.py OUTDIR   (onnx >= 1.12, numpy)

Each good graph holds one weight in one storage a real exporter uses; beside it
OUTDIR/<name>.W.npy is the logical [N, K] float32 matrix (y = x·Wᵀ) and
OUTDIR/<name>.b.npy the bias (when any), computed here with numpy so the C++
binding is checked against an independent decoding. Bad graphs each break one
rule the weight table must reject.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

N, K = 6, 40  # logical [N, K]; K = 40 is not a multiple of the Q4 block (16)
rng = np.random.default_rng(7)


def save(out, name, nodes, inits, inputs=("x",), W=None, b=None):
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info(i, TensorProto.FLOAT, None) for i in inputs],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.microsoft", 1)])
    onnx.save(model, os.path.join(out, name + ".onnx"))
    if W is not None:
        np.save(os.path.join(out, name + ".W.npy"), W.astype(np.float32))
    if b is not None:
        np.save(os.path.join(out, name + ".b.npy"), b.astype(np.float32))


def t(name, arr):
    return numpy_helper.from_array(arr, name)


def rand(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def matmul_with_bias(node_name, wname, w_kn, bname, b):
    nodes = [helper.make_node("MatMul", ["x", wname], ["m"], name=node_name),
             helper.make_node("Add", ["m", bname], ["y"], name=node_name.replace("MatMul", "Add"))]
    return nodes, [t(wname, w_kn), t(bname, b)]


def quant4(block, zero_points):
    """Random 4-bit MatMulNBits weight: returns (B, scales, zp or None, logical W)."""
    kb = (K + block - 1) // block
    q = rng.integers(0, 16, size=(N, kb * block)).astype(np.uint8)
    scales = (rng.random((N, kb)) * 0.1 + 0.01).astype(np.float32)
    zp = rng.integers(0, 16, size=(N, kb)).astype(np.uint8) if zero_points else np.full((N, kb), 8, np.uint8)
    W = ((q.astype(np.float32) - np.repeat(zp, block, axis=1)) * np.repeat(scales, block, axis=1))[:, :K]
    B = (q[:, 0::2] | (q[:, 1::2] << 4)).reshape(N, kb, block // 2)
    zpad = np.zeros((N, kb + (kb % 2)), np.uint8)
    zpad[:, :kb] = zp
    zpacked = zpad[:, 0::2] | (zpad[:, 1::2] << 4)
    return B, scales, (zpacked if zero_points else None), W


def nbits_graph(out, name, block, zero_points, attrs=None, extra_inputs=()):
    B, scales, zp, W = quant4(block, zero_points)
    base = "model.layers.0.attn.q_proj.MatMul.weight"
    ins = ["x", base + "_Q4", base + "_scales"]
    inits = [t(base + "_Q4", B), t(base + "_scales", scales)]
    if zp is not None:
        ins.append(base + "_zero_points")
        inits.append(t(base + "_zero_points", zp))
    ins += list(extra_inputs)
    for e in extra_inputs:
        if e:
            inits.append(t(e, np.zeros(K, np.int32)))
    a = dict(K=K, N=N, bits=4, block_size=block)
    a.update(attrs or {})
    node = helper.make_node("MatMulNBits", ins, ["y"], name="/model/layers.0/attn/q_proj/MatMul_Q4",
                            domain="com.microsoft", **a)
    save(out, name, [node], inits, W=W)


def good(out):
    W, b = rand(N, K), rand(N)
    # torch.onnx.export: anonymous [K, N] weight, found through the node name; bias via Add.
    nodes, inits = matmul_with_bias("/model/layers.0/self_attn/q_proj/MatMul", "onnx::MatMul_77", W.T.copy(),
                                    "model.layers.0.self_attn.q_proj.bias", b)
    save(out, "torch_matmul", nodes, inits, W=W, b=b)
    # genai name, fp16 [K, N], no bias.
    W16 = rand(N, K).astype(np.float16)
    save(out, "genai_fp16", [helper.make_node("MatMul", ["x", "model.layers.0.attn.q_proj.MatMul.weight"], ["y"],
                                              name="/model/layers.0/attn/q_proj/MatMul")],
         [t("model.layers.0.attn.q_proj.MatMul.weight", W16.T.copy())], W=W16.astype(np.float32))
    # Gemm(transB=1) [N, K] with its C bias (vision layers of torch exports).
    save(out, "gemm", [helper.make_node("Gemm", ["x", "visual.blocks.0.attn.qkv.weight", "visual.blocks.0.attn.qkv.bias"],
                                        ["y"], name="/visual/blocks.0/attn/qkv/Gemm", transB=1)],
         [t("visual.blocks.0.attn.qkv.weight", W), t("visual.blocks.0.attn.qkv.bias", b)], W=W, b=b)
    # Conv patch embedding: [N, C, kt, kh, kw] with C·kt·kh·kw = K (5 × 2 × 2 × 2).
    Wc = rand(N, 5, 2, 2, 2)
    save(out, "conv", [helper.make_node("Conv", ["x", "visual.patch_embed.proj.weight", "visual.patch_embed.proj.bias"],
                                        ["y"], name="/visual/patch_embed/proj/Conv", kernel_shape=[2, 2, 2],
                                        strides=[2, 2, 2])],
         [t("visual.patch_embed.proj.weight", Wc), t("visual.patch_embed.proj.bias", b)], W=Wc.reshape(N, K), b=b)
    # HF name [N, K] → Transpose → MatMul.
    save(out, "transpose", [helper.make_node("Transpose", ["model.language_model.layers.0.self_attn.q_proj.weight"], ["wt"],
                                             name="/t", perm=[1, 0]),
                            helper.make_node("MatMul", ["x", "wt"], ["y"], name="/mm")],
         [t("model.language_model.layers.0.self_attn.q_proj.weight", W)], W=W)
    # MatMulNBits, symmetric and with zero points (K padded to the block).
    nbits_graph(out, "nbits_sym", 16, False)
    nbits_graph(out, "nbits_zp", 16, True)
    # GatherBlockQuantized table [V=N, H=32] uint8 4-bit, block 16, default zero point 8.
    V, H, bs = N, 32, 16
    q = rng.integers(0, 16, size=(V, H)).astype(np.uint8)
    sc = (rng.random((V, H // bs)) + 0.5).astype(np.float32)
    T = (q.astype(np.float32) - 8) * np.repeat(sc, bs, axis=1)
    gbq = helper.make_node("GatherBlockQuantized", ["model.embed_tokens.weight_Q4", "ids", "model.embed_tokens.weight_scales"],
                           ["y"], name="/model/embed_tokens/Gather", domain="com.microsoft", bits=4, block_size=bs,
                           quantize_axis=1, gather_axis=0)
    save(out, "gbq", [gbq], [t("model.embed_tokens.weight_Q4", q[:, 0::2] | (q[:, 1::2] << 4)),
                             t("model.embed_tokens.weight_scales", sc)], inputs=("ids",), W=T)
    # Norm vector in bf16-widened fp16 storage.
    g = rand(K).astype(np.float16)
    save(out, "vector", [helper.make_node("Mul", ["x", "model.layers.0.input_layernorm.weight"], ["y"], name="/n")],
         [t("model.layers.0.input_layernorm.weight", g)], W=g.astype(np.float32).reshape(1, K))


def bad(out):
    W = rand(N, K)
    nodes, inits = matmul_with_bias("/model/layers.0/self_attn/q_proj/MatMul", "onnx::MatMul_5",
                                    rand(K, N + 1), "bias", rand(N + 1))
    save(out, "bad_shape", nodes, inits)
    save(out, "bad_consumer", [helper.make_node("Mul", ["x", "model.layers.0.attn.q_proj.MatMul.weight"], ["y"],
                                                name="/weird/Mul")],
         [t("model.layers.0.attn.q_proj.MatMul.weight", W.T.copy())])
    save(out, "bad_missing", [helper.make_node("Relu", ["x"], ["y"], name="/r")], [])
    nbits_graph(out, "bad_prepacked", 16, False, attrs={"weight_prepacked": 1})
    nbits_graph(out, "bad_bits", 16, False, attrs={"bits": 2})
    nbits_graph(out, "bad_gidx", 16, False, extra_inputs=("", "g_idx"))
    save(out, "bad_gemm_transA", [helper.make_node("Gemm", ["x", "visual.blocks.0.attn.qkv.weight"], ["y"],
                                                   name="/g", transA=1, transB=1)],
         [t("visual.blocks.0.attn.qkv.weight", W)])
    save(out, "bad_vector", [helper.make_node("Mul", ["x", "model.layers.0.input_layernorm.weight"], ["y"], name="/n")],
         [t("model.layers.0.input_layernorm.weight", rand(K + 1))])


if __name__ == "__main__":
    os.makedirs(sys.argv[1], exist_ok=True)
    good(sys.argv[1])
    bad(sys.argv[1])
