"""vision.onnx: Qwen3-VL vision tower (model spec §2), any number of images, any size.

  pixel_values [N,1536] ─MatMul+b─► x [N,H] + Σ_c pos_weight[c]·pos_embed[pos_idx[c]]
  blocks ×depth: x += proj(attn(rope2d(qkv(LN1 x)), mask(segment_ids)));  x += fc2(gelu_tanh(fc1(LN2 x)))
                 block index ∈ deepstack_visual_indexes → deepstack_j = fc2(gelu(fc1(LN_4H(reshape4 x))))
  merger: image_embeds = fc2(gelu(fc1(reshape4(LN_H x))))        [N/4, out_hidden]
Host inputs (pos_idx, pos_weight, rope_cos, rope_sin, segment_ids) come from
hostinputs.vision_host_inputs(grid_thw); see tools/README.md for their formulas.
"""
import math

import numpy as np
from onnx import TensorProto

from .layers import F32, gelu_erf, gelu_tanh, layer_norm, linear, rotate_half_rope

I64 = TensorProto.INT64
EPS = 1e-6


def _pos_embed(g, src, x, d):
    """x + Σ_c pos_weight[c,n]·pos_embed[pos_idx[c,n]] (corner order 00, 01, 10, 11)."""
    table = g.weight("model.visual.pos_embed.weight", src.load("model.visual.pos_embed.weight"))
    acc = None
    for c in range(4):
        node = f"/model/visual/pos_embed/corner{c}"
        idx = g.op("Gather", ["pos_idx", g.const(c)], node + "/Gather_idx", axis=0)
        w = g.op("Gather", ["pos_weight", g.const(c)], node + "/Gather_w", axis=0)
        w = g.op("Unsqueeze", [w, g.const([-1])], node + "/Unsqueeze")
        term = g.op("Mul", [g.op("Gather", [table, idx], node + "/Gather", axis=0), w], node + "/Mul")
        acc = term if acc is None else g.op("Add", [acc, term], node + "/Add")
    return g.op("Add", [x, acc], "/model/visual/pos_embed/Add")


def _attention(g, src, x, i, d, opts, cos, sin, mask):
    """Segment-restricted bidirectional attention of block i; returns proj output [N,H]."""
    H, nh, hd = d.v_hidden, d.v_heads, d.v_head_dim
    p, node = f"model.visual.blocks.{i}.attn.", f"/model/visual/blocks.{i}/attn"
    qkv = linear(g, x, src.load(p + "qkv.weight"), p + "qkv.weight", node + "/qkv", opts,
                 src.load(p + "qkv.bias"), p + "qkv.bias")
    qkv = g.op("Reshape", [qkv, g.const([-1, 3, nh, hd])], node + "/Reshape_qkv")
    q, k, v = (g.op("Gather", [qkv, g.const(j)], node + f"/Gather_{'qkv'[j]}", axis=1) for j in range(3))
    q = rotate_half_rope(g, q, cos, sin, hd // 2, node + "/rope_q")
    k = rotate_half_rope(g, k, cos, sin, hd // 2, node + "/rope_k")
    q = g.op("Transpose", [q], node + "/Transpose_q", perm=[1, 0, 2])        # [nh,N,hd]
    kt = g.op("Transpose", [k], node + "/Transpose_k", perm=[1, 2, 0])       # [nh,hd,N]
    v = g.op("Transpose", [v], node + "/Transpose_v", perm=[1, 0, 2])        # [nh,N,hd]
    s = g.op("MatMul", [q, kt], node + "/MatMul_qk")
    s = g.op("Mul", [s, g.const(1.0 / math.sqrt(hd), np.float32)], node + "/Mul_scale")
    s = g.op("Add", [s, mask], node + "/Add_mask")
    pr = g.op("Softmax", [s], node + "/Softmax", axis=-1)
    o = g.op("MatMul", [pr, v], node + "/MatMul_pv")                          # [nh,N,hd]
    o = g.op("Transpose", [o], node + "/Transpose_o", perm=[1, 0, 2])
    o = g.op("Reshape", [o, g.const([-1, H])], node + "/Reshape_o")
    return linear(g, o, src.load(p + "proj.weight"), p + "proj.weight", node + "/proj", opts,
                  src.load(p + "proj.bias"), p + "proj.bias")


def _block(g, src, x, i, d, opts, cos, sin, mask):
    p, node = f"model.visual.blocks.{i}.", f"/model/visual/blocks.{i}"
    a = layer_norm(g, x, p + "norm1.weight", src.load(p + "norm1.weight"), p + "norm1.bias",
                   src.load(p + "norm1.bias"), EPS, node + "/norm1")
    x = g.op("Add", [x, _attention(g, src, a, i, d, opts, cos, sin, mask)], node + "/Add_attn")
    m = layer_norm(g, x, p + "norm2.weight", src.load(p + "norm2.weight"), p + "norm2.bias",
                   src.load(p + "norm2.bias"), EPS, node + "/norm2")
    m = linear(g, m, src.load(p + "mlp.linear_fc1.weight"), p + "mlp.linear_fc1.weight",
               node + "/mlp/linear_fc1", opts, src.load(p + "mlp.linear_fc1.bias"), p + "mlp.linear_fc1.bias")
    m = gelu_tanh(g, m, node + "/mlp/act")
    m = linear(g, m, src.load(p + "mlp.linear_fc2.weight"), p + "mlp.linear_fc2.weight",
               node + "/mlp/linear_fc2", opts, src.load(p + "mlp.linear_fc2.bias"), p + "mlp.linear_fc2.bias")
    return g.op("Add", [x, m], node + "/Add_mlp")


def _merger(g, src, x, prefix, node, d, opts, postshuffle, out_name):
    """Patch merger: pre-shuffle LN(H) (main) or post-shuffle LN(4H) (DeepStack), fc1, erf GELU, fc2."""
    H4 = 4 * d.v_hidden
    ln = lambda t: layer_norm(g, t, prefix + "norm.weight", src.load(prefix + "norm.weight"),
                              prefix + "norm.bias", src.load(prefix + "norm.bias"), EPS, node + "/norm")
    if postshuffle:
        h = ln(g.op("Reshape", [x, g.const([-1, H4])], node + "/Reshape"))
    else:
        h = g.op("Reshape", [ln(x), g.const([-1, H4])], node + "/Reshape")
    h = linear(g, h, src.load(prefix + "linear_fc1.weight"), prefix + "linear_fc1.weight",
               node + "/linear_fc1", opts, src.load(prefix + "linear_fc1.bias"), prefix + "linear_fc1.bias")
    h = gelu_erf(g, h, node + "/act")
    w2 = src.load(prefix + "linear_fc2.weight")
    h = linear(g, h, w2, prefix + "linear_fc2.weight", node + "/linear_fc2", opts,
               src.load(prefix + "linear_fc2.bias"), prefix + "linear_fc2.bias")
    g.op("Identity", [h], node + "/Identity", outputs=[out_name])
    g.output(out_name, F32, ["num_merged_patches", d.out_hidden])


def build_vision(g, src, d, opts):
    """Fills graph g with the vision tower; weights read from src (HF names, fp32 arrays)."""
    half = d.v_head_dim // 2
    g.input("pixel_values", F32, ["num_patches", d.patch_dim])
    g.input("pos_idx", I64, [4, "num_patches"])
    g.input("pos_weight", F32, [4, "num_patches"])
    g.input("rope_cos", F32, ["num_patches", half])
    g.input("rope_sin", F32, ["num_patches", half])
    g.input("segment_ids", I64, ["num_patches"])
    pw = src.load("model.visual.patch_embed.proj.weight").reshape(d.v_hidden, d.patch_dim)
    x = linear(g, "pixel_values", pw, "model.visual.patch_embed.proj.weight", "/model/visual/patch_embed/proj",
               opts, src.load("model.visual.patch_embed.proj.bias"), "model.visual.patch_embed.proj.bias")
    x = _pos_embed(g, src, x, d)
    node = "/model/visual/rotary"
    cos = g.op("Concat", ["rope_cos", "rope_cos"], node + "/Concat_cos", axis=-1)
    sin = g.op("Concat", ["rope_sin", "rope_sin"], node + "/Concat_sin", axis=-1)
    cos = g.op("Unsqueeze", [cos, g.const([1])], node + "/Unsqueeze_cos")   # [N,1,hd]
    sin = g.op("Unsqueeze", [sin, g.const([1])], node + "/Unsqueeze_sin")
    node = "/model/visual/mask"
    eq = g.op("Equal", [g.op("Unsqueeze", ["segment_ids", g.const([1])], node + "/Unsqueeze_r"),
                        g.op("Unsqueeze", ["segment_ids", g.const([0])], node + "/Unsqueeze_c")], node + "/Equal")
    mask = g.op("Where", [eq, g.const(0.0, np.float32), g.const(-np.inf, np.float32)], node + "/Where")
    for i in range(d.v_depth):
        x = _block(g, src, x, i, d, opts, cos, sin, mask)
        if i in d.deepstack:
            j = d.deepstack.index(i)
            _merger(g, src, x, f"model.visual.deepstack_merger_list.{j}.",
                    f"/model/visual/deepstack_merger_list.{j}", d, opts, True, f"deepstack_{j}")
    _merger(g, src, x, "model.visual.merger.", "/model/visual/merger", d, opts, False, "image_embeds")
    # outputs in the documented order: image_embeds first, then deepstack_0..k
    g.outputs.sort(key=lambda o: (o.name != "image_embeds", o.name))
