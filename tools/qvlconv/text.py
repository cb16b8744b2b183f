"""text.onnx: Qwen3-VL text decoder with KV cache (model spec §3-4), genai I/O names.

  x = inputs_embeds; cos/sin from position_ids [3,B,S] × model.inv_freq (interleaved MRoPE)
  layer i: a = RMS(x); q,k = RMS_head(a·Wq/k) → rope; v = a·Wv; K,V = concat(past, new) → present.i
           x += o_proj(softmax(q·Kᵀ/√D + causal/padding mask)·V)   (GQA: q head h ↔ kv head h/rep)
           x += down(silu(gate(RMS(x))) ⊙ up(RMS(x)));  i < n_deepstack: x += deepstack_embeds[i]
  logits = RMS_final(x) · lm_head                                     [B,S,V]
"""
import math

import numpy as np
from onnx import TensorProto

from .layers import F32, linear, rms_norm, rotate_half_rope, silu

I64 = TensorProto.INT64
BOOL = TensorProto.BOOL


def inv_freq(d):
    """inv[i] = θ^(−2i/D), i < D/2, computed in float32 like HF's default rope init."""
    exps = np.arange(0, d.head_dim, 2, dtype=np.int64).astype(np.float32) / np.float32(d.head_dim)
    return (np.float32(1.0) / np.power(np.float32(d.rope_theta), exps)).astype(np.float32)


def mrope_axis(d):
    """Axis (0=T, 1=H, 2=W) of each of the D/2 frequencies: H at i%3==1 for i < 3·sec[1],
    W at i%3==2 for i < 3·sec[2], T elsewhere (Qwen3-VL interleaved layout)."""
    half = d.head_dim // 2
    axis = np.zeros(half, np.int64)
    for a in (1, 2):
        axis[a:3 * d.mrope_section[a]:3] = a
    return axis


def rope_tables(g, d, head_axis=1):
    """cos/sin [B,1,S,D] (head_axis 1) or [B,S,1,D] (head_axis 2) from position_ids and
    model.inv_freq (in-graph)."""
    node = "/model/rotary_emb"
    inv = g.weight("model.inv_freq", inv_freq(d))
    pos = g.op("Cast", ["position_ids"], node + "/Cast", to=F32)                     # [3,B,S]
    f = g.op("Mul", [g.op("Unsqueeze", [pos, g.const([-1])], node + "/Unsqueeze"), inv], node + "/Mul")
    onehot = (mrope_axis(d)[None, :] == np.arange(3)[:, None]).astype(np.float32).reshape(3, 1, 1, -1)
    f = g.op("Mul", [f, g.const(onehot, np.float32)], node + "/Mul_section")        # [3,B,S,D/2]
    f = g.op("ReduceSum", [f, g.const([0])], node + "/ReduceSum", keepdims=0)        # [B,S,D/2]
    emb = g.op("Concat", [f, f], node + "/Concat", axis=-1)
    emb = g.op("Unsqueeze", [emb, g.const([head_axis])], node + "/Unsqueeze_head")   # [B,1,S,D]
    return g.op("Cos", [emb], node + "/Cos"), g.op("Sin", [emb], node + "/Sin")


def _mask(g):
    """Additive mask [B,1,1,S,T]: 0 where key j ≤ query's absolute position and attention_mask=1."""
    node = "/model/attn_mask"
    s = g.op("Shape", ["inputs_embeds"], node + "/Shape_S", start=1, end=2)
    t = g.op("Shape", ["attention_mask"], node + "/Shape_T", start=1, end=2)
    s0 = g.op("Squeeze", [s, g.const([0])], node + "/Squeeze_S")
    t0 = g.op("Squeeze", [t, g.const([0])], node + "/Squeeze_T")
    p0 = g.op("Sub", [t0, s0], node + "/Sub_P")
    qpos = g.op("Range", [p0, t0, g.const(1)], node + "/Range_q")
    kpos = g.op("Range", [g.const(0), t0, g.const(1)], node + "/Range_k")
    causal = g.op("LessOrEqual", [kpos, g.op("Unsqueeze", [qpos, g.const([1])], node + "/Unsqueeze_q")],
                  node + "/LessOrEqual")                                                # [S,T]
    pad = g.op("Cast", ["attention_mask"], node + "/Cast", to=BOOL)
    pad = g.op("Unsqueeze", [pad, g.const([1, 2, 3])], node + "/Unsqueeze_pad")        # [B,1,1,1,T]
    ok = g.op("And", [causal, pad], node + "/And")                                     # [B,1,1,S,T]
    lowest = np.float32(np.finfo(np.float32).min)
    return g.op("Where", [ok, g.const(0.0, np.float32), g.const(lowest, np.float32)], node + "/Where")


def _attention(g, src, x, i, d, opts, cos, sin, mask):
    D, nh, nkv = d.head_dim, d.heads, d.kv_heads
    hp, p, node = f"model.language_model.layers.{i}.self_attn.", f"model.layers.{i}.attn.", f"/model/layers.{i}/attn"
    heads = {}
    for name, n in (("q", nh), ("k", nkv), ("v", nkv)):
        y = linear(g, x, src.load(hp + f"{name}_proj.weight"), p + f"{name}_proj.MatMul.weight",
                   node + f"/{name}_proj", opts)
        y = g.op("Reshape", [y, g.const([0, 0, n, D])], node + f"/{name}_proj/Reshape")   # [B,S,n,D]
        if name != "v":
            y = rms_norm(g, y, p + f"{name}_norm.layernorm.weight", src.load(hp + f"{name}_norm.weight"),
                         d.rms_eps, node + f"/{name}_norm")
        y = g.op("Transpose", [y], node + f"/{name}_proj/Transpose", perm=[0, 2, 1, 3])   # [B,n,S,D]
        if name != "v":
            y = rotate_half_rope(g, y, cos, sin, D // 2, node + f"/{name}_rope")
        heads[name] = y
    k = g.op("Concat", [f"past_key_values.{i}.key", heads["k"]], node + "/Concat_k", axis=2,
             outputs=[f"present.{i}.key"])
    v = g.op("Concat", [f"past_key_values.{i}.value", heads["v"]], node + "/Concat_v", axis=2,
             outputs=[f"present.{i}.value"])
    rep = nh // nkv
    q = g.op("Reshape", [heads["q"], g.const([0, nkv, rep, -1, D])], node + "/Reshape_q_groups")
    kt = g.op("Unsqueeze", [g.op("Transpose", [k], node + "/Transpose_k", perm=[0, 1, 3, 2]), g.const([2])],
              node + "/Unsqueeze_k")                                                       # [B,kv,1,D,T]
    vg = g.op("Unsqueeze", [v, g.const([2])], node + "/Unsqueeze_v")                       # [B,kv,1,T,D]
    s = g.op("MatMul", [q, kt], node + "/MatMul_qk")                                       # [B,kv,rep,S,T]
    s = g.op("Mul", [s, g.const(1.0 / math.sqrt(D), np.float32)], node + "/Mul_scale")
    pr = g.op("Softmax", [g.op("Add", [s, mask], node + "/Add_mask")], node + "/Softmax", axis=-1)
    o = g.op("MatMul", [pr, vg], node + "/MatMul_pv")                                     # [B,kv,rep,S,D]
    o = g.op("Reshape", [o, g.const([0, nh, -1, D])], node + "/Reshape_o")
    o = g.op("Transpose", [o], node + "/Transpose_o", perm=[0, 2, 1, 3])
    o = g.op("Reshape", [o, g.const([0, 0, nh * D])], node + "/Reshape_o2")
    return linear(g, o, src.load(hp + "o_proj.weight"), p + "o_proj.MatMul.weight", node + "/o_proj", opts)


def _mlp(g, src, x, i, d, opts):
    hp, p, node = f"model.language_model.layers.{i}.mlp.", f"model.layers.{i}.mlp.", f"/model/layers.{i}/mlp"
    gt = linear(g, x, src.load(hp + "gate_proj.weight"), p + "gate_proj.MatMul.weight", node + "/gate_proj", opts)
    up = linear(g, x, src.load(hp + "up_proj.weight"), p + "up_proj.MatMul.weight", node + "/up_proj", opts)
    h = g.op("Mul", [silu(g, gt, node + "/act_fn"), up], node + "/Mul")
    return linear(g, h, src.load(hp + "down_proj.weight"), p + "down_proj.MatMul.weight", node + "/down_proj", opts)


def text_io(g, d):
    n_ds = len(d.deepstack)
    g.input("inputs_embeds", F32, ["batch_size", "sequence_length", d.hidden])
    g.input("attention_mask", I64, ["batch_size", "total_sequence_length"])
    g.input("position_ids", I64, [3, "batch_size", "sequence_length"])
    kv = ["batch_size", d.kv_heads, "past_sequence_length", d.head_dim]
    for i in range(d.layers):
        g.input(f"past_key_values.{i}.key", F32, kv)
        g.input(f"past_key_values.{i}.value", F32, kv)
    if n_ds:
        g.input("deepstack_embeds", F32, [n_ds, "batch_size", "sequence_length", d.hidden])
    g.output("logits", F32, ["batch_size", "sequence_length", d.vocab])
    pkv = ["batch_size", d.kv_heads, "total_sequence_length", d.head_dim]
    for i in range(d.layers):
        g.output(f"present.{i}.key", F32, pkv)
        g.output(f"present.{i}.value", F32, pkv)


def build_text(g, src, d, opts, progress=None):
    """Fills graph g with the decoder; lm_head = lm_head.weight or (tied) embed_tokens."""
    text_io(g, d)
    cos, sin = rope_tables(g, d)
    mask = _mask(g)
    x = "inputs_embeds"
    for i in range(d.layers):
        hp, p, node = f"model.language_model.layers.{i}.", f"model.layers.{i}.", f"/model/layers.{i}"
        a = rms_norm(g, x, p + "input_layernorm.weight", src.load(hp + "input_layernorm.weight"),
                     d.rms_eps, node + "/input_layernorm")
        x = g.op("Add", [x, _attention(g, src, a, i, d, opts, cos, sin, mask)], node + "/Add_attn")
        m = rms_norm(g, x, p + "post_attention_layernorm.weight", src.load(hp + "post_attention_layernorm.weight"),
                     d.rms_eps, node + "/post_attention_layernorm")
        x = g.op("Add", [x, _mlp(g, src, m, i, d, opts)], node + "/Add_mlp")
        if i < len(d.deepstack):
            ds = g.op("Gather", ["deepstack_embeds", g.const(i)], node + "/deepstack/Gather", axis=0)
            x = g.op("Add", [x, ds], node + "/deepstack/Add")
        if progress:
            progress.note(f"text layer {i + 1}/{d.layers}")
    L = d.layers
    x = rms_norm(g, x, f"model.layers.{L}.final_norm_layernorm.weight", src.load("model.language_model.norm.weight"),
                 d.rms_eps, f"/model/layers.{L}/final_norm_layernorm")
    head = "model.language_model.embed_tokens.weight" if d.tied else "lm_head.weight"
    linear(g, x, src.load(head), "lm_head.MatMul.weight", "/lm_head", opts)
    last = g.nodes[-1]
    last.output[0] = "logits"
