"""text.onnx, --ort-fused form: the same decoder as text.py written with ONNX Runtime's
fused operators, as the onnxruntime-genai builder emits them (for speed comparisons):

  first norm SimplifiedLayerNormalization; later norms com.microsoft
  SkipSimplifiedLayerNormalization (output 3 = residual sum; the DeepStack row is added to
  the MLP output before the skip add); q/k norm SimplifiedLayerNormalization per head;
  M-RoPE applied to q/k in [B,S,n,D] layout; attention com.microsoft GroupQueryAttention
  (do_rotary 0, seqlens_k = Σ attention_mask − 1, total_sequence_length = P+S; batch 1 or
  right padding only); linears as in text.py (MatMulNBits for INT4).
Same I/O and initializer names as text.py.
"""
import numpy as np
from onnx import TensorProto

from .layers import linear, rotate_half_rope, silu
from .text import rope_tables, text_io

MS = "com.microsoft"


def _sln(g, x, wname, weight, eps, node):
    w = g.weight(wname, weight.astype(np.float32))
    return g.op("SimplifiedLayerNormalization", [x, w], node + "/SimplifiedLayerNormalization",
                axis=-1, epsilon=eps, stash_type=1)


def _skip_sln(g, x, skip, wname, weight, eps, node):
    """(normed, residual sum) = SkipSimplifiedLayerNormalization(x, skip, w)."""
    w = g.weight(wname, weight.astype(np.float32))
    name = node + "/SkipLayerNorm"
    outs = [f"{name}/output_0", "", "", f"{name}/output_3"]
    g.op("SkipSimplifiedLayerNormalization", [x, skip, w], name, outputs=outs, domain=MS, epsilon=eps)
    return outs[0], outs[3]


def _seqlens(g):
    node = "/model/attn_mask"
    s = g.op("ReduceSum", ["attention_mask", g.const([1])], node + "/ReduceSum", keepdims=0)
    s = g.op("Sub", [s, g.const([1])], node + "/Sub")
    seqlens = g.op("Cast", [s], node + "/Cast_seqlens", to=TensorProto.INT32)
    t = g.op("Shape", ["attention_mask"], node + "/Shape", start=1, end=2)
    t = g.op("Squeeze", [t, g.const([0])], node + "/Squeeze")
    return seqlens, g.op("Cast", [t], node + "/Cast_total", to=TensorProto.INT32)


def _attention(g, src, x, i, d, opts, cos, sin, seqlens, total):
    D = d.head_dim
    hp, p, node = f"model.language_model.layers.{i}.self_attn.", f"model.layers.{i}.attn.", f"/model/layers.{i}/attn"
    qkv = {}
    for name, n in (("q", d.heads), ("k", d.kv_heads), ("v", d.kv_heads)):
        y = linear(g, x, src.load(hp + f"{name}_proj.weight"), p + f"{name}_proj.MatMul.weight",
                   node + f"/{name}_proj", opts)
        if name != "v":
            y = g.op("Reshape", [y, g.const([0, 0, n, D])], node + f"/{name}_norm/Reshape")
            y = _sln(g, y, p + f"{name}_norm.layernorm.weight", src.load(hp + f"{name}_norm.weight"),
                     d.rms_eps, node + f"/{name}_norm")
            y = rotate_half_rope(g, y, cos, sin, D // 2, node + f"/{name}_rope")
            y = g.op("Reshape", [y, g.const([0, 0, n * D])], node + f"/{name}_rope/Reshape")
        qkv[name] = y
    outs = [f"{node}/GroupQueryAttention/output_0", f"present.{i}.key", f"present.{i}.value"]
    g.op("GroupQueryAttention", [qkv["q"], qkv["k"], qkv["v"], f"past_key_values.{i}.key",
                                 f"past_key_values.{i}.value", seqlens, total], node + "/GroupQueryAttention",
         outputs=outs, domain=MS, num_heads=d.heads, kv_num_heads=d.kv_heads, scale=float(D) ** -0.5,
         do_rotary=0)
    return linear(g, outs[0], src.load(hp + "o_proj.weight"), p + "o_proj.MatMul.weight", node + "/o_proj", opts)


def _mlp(g, src, x, i, d, opts):
    hp, p, node = f"model.language_model.layers.{i}.mlp.", f"model.layers.{i}.mlp.", f"/model/layers.{i}/mlp"
    gt = linear(g, x, src.load(hp + "gate_proj.weight"), p + "gate_proj.MatMul.weight", node + "/gate_proj", opts)
    up = linear(g, x, src.load(hp + "up_proj.weight"), p + "up_proj.MatMul.weight", node + "/up_proj", opts)
    h = g.op("Mul", [silu(g, gt, node + "/act_fn"), up], node + "/Mul")
    return linear(g, h, src.load(hp + "down_proj.weight"), p + "down_proj.MatMul.weight", node + "/down_proj", opts)


def build_text_fused(g, src, d, opts, progress=None):
    text_io(g, d)
    cos, sin = rope_tables(g, d, head_axis=2)
    seqlens, total = _seqlens(g)
    res, out = "inputs_embeds", None
    for i in range(d.layers):
        hp, p, node = f"model.language_model.layers.{i}.", f"model.layers.{i}.", f"/model/layers.{i}"
        w_in = src.load(hp + "input_layernorm.weight")
        if out is None:
            a = _sln(g, res, p + "input_layernorm.weight", w_in, d.rms_eps, node + "/input_layernorm")
        else:
            a, res = _skip_sln(g, out, res, p + "input_layernorm.weight", w_in, d.rms_eps, node + "/input_layernorm")
        attn = _attention(g, src, a, i, d, opts, cos, sin, seqlens, total)
        m, res = _skip_sln(g, attn, res, p + "post_attention_layernorm.weight",
                           src.load(hp + "post_attention_layernorm.weight"), d.rms_eps,
                           node + "/post_attention_layernorm")
        out = _mlp(g, src, m, i, d, opts)
        if i < len(d.deepstack):
            ds = g.op("Gather", ["deepstack_embeds", g.const(i)], node + "/deepstack/Gather", axis=0)
            out = g.op("Add", [out, ds], node + "/deepstack/Add")
        if progress:
            progress.note(f"text layer {i + 1}/{d.layers}")
    L = d.layers
    h, _ = _skip_sln(g, out, res, f"model.layers.{L}.final_norm_layernorm.weight",
                     src.load("model.language_model.norm.weight"), d.rms_eps, f"/model/layers.{L}/final_norm_layernorm")
    head = "model.language_model.embed_tokens.weight" if d.tied else "lm_head.weight"
    linear(g, h, src.load(head), "lm_head.MatMul.weight", "/lm_head", opts)
    g.nodes[-1].output[0] = "logits"
