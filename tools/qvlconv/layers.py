"""Graph building blocks shared by the vision and text graphs: linears in every weight
format (fp32 MatMul, fp16 weight + Cast, INT4/INT8 MatMulNBits), norms, activations, rope.

Linear convention: the HF weight is W [N, K] (y = x·Wᵀ); a float MatMul stores B = Wᵀ
[K, N] under `wname`; INT4 stores `wname_Q4` uint8 [N, kb, bs/2], `wname_scales` f32
[N, kb] and, with --zero-points, `wname_zero_points` uint8 [N, ceil(kb/2)]; INT8 stores
`wname_Q8` uint8 [N, kb, bs], the same scales and zero points uint8 [N, kb].
"""
import math

import numpy as np
from onnx import TensorProto

from .quant import QuantizedMatrix

F32 = TensorProto.FLOAT


class Options:
    """Weight-format options from the command line."""

    def __init__(self, dtype="fp32", block_size=32, zero_points=False, accuracy_level=0,
                 embed_quant="none", ort_fused=False):
        self.dtype, self.block_size, self.zero_points = dtype, block_size, zero_points
        self.accuracy_level, self.embed_quant, self.ort_fused = accuracy_level, embed_quant, ort_fused

    @property
    def bits(self):
        """MatMulNBits bit width of the weight format, or None for float weights."""
        return {"int4": 4, "int8": 8}.get(self.dtype)

    @property
    def float_dtype(self):
        return np.float16 if self.dtype == "fp16" else np.float32


def transposed_chunks(w, dtype):
    """W [N, K] -> Wᵀ [K, N] in chunks of ~4M elements (no full transposed copy)."""
    step = max(1, (1 << 22) // max(1, w.shape[0]))
    for k0 in range(0, w.shape[1], step):
        yield np.ascontiguousarray(w[:, k0:k0 + step].T, dtype=dtype)


def write_float_matrix(g, wname, w, dtype):
    """Stores Wᵀ [K, N] under wname in `dtype`."""
    n, k = w.shape
    return g.weight(wname, shape=(k, n), dtype=dtype, chunks=transposed_chunks(w, dtype))


def nbits_matmul(g, x, w, wname, node, opts):
    """com.microsoft MatMulNBits (bits 4 or 8) on `wname_Q{bits}`, `wname_scales` and, with
    --zero-points, `wname_zero_points`; node `node/MatMul_Q{bits}`."""
    n, k = w.shape
    bits = opts.bits
    sfx = f"_Q{bits}"
    qm = QuantizedMatrix(n, k, opts.block_size, bits, opts.zero_points)
    g.weight(wname + sfx, shape=(n, qm.kb, qm.blob), dtype=np.uint8, chunks=qm.chunks(w))
    ins = [x, wname + sfx, g.weight(wname + "_scales", qm.scales)]
    if opts.zero_points:
        ins.append(g.weight(wname + "_zero_points", qm.packed_zero_points()))
    return g.op("MatMulNBits", ins, node + "/MatMul" + sfx, domain="com.microsoft", K=k, N=n, bits=bits,
                block_size=opts.block_size, accuracy_level=opts.accuracy_level)


def linear(g, x, w, wname, node, opts, bias=None, bname=None):
    """y = x·Wᵀ (+ b). w: HF weight [N, K] fp32; node: node name without /MatMul suffix."""
    n, k = w.shape
    if opts.bits:
        y = nbits_matmul(g, x, w, wname, node, opts)
    elif opts.dtype == "fp16":
        b = write_float_matrix(g, wname, w, np.float16)
        b32 = g.op("Cast", [b], node + "/MatMul/Cast_weight", to=F32)
        y = g.op("MatMul", [x, b32], node + "/MatMul")
    else:
        y = g.op("MatMul", [x, write_float_matrix(g, wname, w, np.float32)], node + "/MatMul")
    if bias is not None:
        y = g.op("Add", [y, g.weight(bname, bias.astype(np.float32))], node + "/Add")
    return y


def rms_norm(g, x, wname, weight, eps, node):
    """w ⊙ x / sqrt(mean(x²) + eps) over the last axis; weight stays fp32."""
    w = g.weight(wname, weight.astype(np.float32))
    sq = g.op("Mul", [x, x], node + "/Pow")
    ms = g.op("ReduceMean", [sq], node + "/ReduceMean", axes=[-1], keepdims=1)
    den = g.op("Sqrt", [g.op("Add", [ms, g.const(eps, np.float32)], node + "/Add")], node + "/Sqrt")
    y = g.op("Div", [x, den], node + "/Div")
    return g.op("Mul", [y, w], node + "/Mul_1")


def layer_norm(g, x, wname, weight, bname, bias, eps, node):
    """Standard LayerNormalization over the last axis (opset 17), fp32 weight and bias."""
    w = g.weight(wname, weight.astype(np.float32))
    b = g.weight(bname, bias.astype(np.float32))
    return g.op("LayerNormalization", [x, w, b], node + "/LayerNorm", axis=-1, epsilon=eps)


def gelu_tanh(g, x, node):
    """0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))  (gelu_pytorch_tanh)."""
    x3 = g.op("Mul", [g.op("Mul", [x, x], node + "/Mul_x2"), x], node + "/Mul_x3")
    inner = g.op("Add", [x, g.op("Mul", [x3, g.const(0.044715, np.float32)], node + "/Mul_c")], node + "/Add")
    t = g.op("Tanh", [g.op("Mul", [inner, g.const(math.sqrt(2.0 / math.pi), np.float32)], node + "/Mul_k")],
             node + "/Tanh")
    one_t = g.op("Add", [t, g.const(1.0, np.float32)], node + "/Add_1")
    return g.op("Mul", [g.op("Mul", [x, g.const(0.5, np.float32)], node + "/Mul_half"), one_t], node + "/Mul")


def gelu_erf(g, x, node):
    """0.5·x·(1 + erf(x/√2))  (exact GELU, nn.GELU())."""
    e = g.op("Erf", [g.op("Div", [x, g.const(math.sqrt(2.0), np.float32)], node + "/Div")], node + "/Erf")
    one_e = g.op("Add", [e, g.const(1.0, np.float32)], node + "/Add")
    return g.op("Mul", [g.op("Mul", [x, g.const(0.5, np.float32)], node + "/Mul_half"), one_e], node + "/Mul")


def silu(g, x, node):
    return g.op("Mul", [x, g.op("Sigmoid", [x], node + "/Sigmoid")], node + "/Mul")


def rotate_half_rope(g, x, cos, sin, half, node):
    """x·cos + rotate_half(x)·sin, rotate_half(v) = [−v[half:], v[:half]] on the last axis."""
    x1 = g.op("Slice", [x, g.const([0]), g.const([half]), g.const([-1])], node + "/Slice_1")
    x2 = g.op("Slice", [x, g.const([half]), g.const([2 * half]), g.const([-1])], node + "/Slice_2")
    rot = g.op("Concat", [g.op("Neg", [x2], node + "/Neg"), x1], node + "/Concat", axis=-1)
    return g.op("Add", [g.op("Mul", [x, cos], node + "/Mul_cos"), g.op("Mul", [rot, sin], node + "/Mul_sin")],
                node + "/Add")
