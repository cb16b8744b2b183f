"""Qwen3-VL config.json: validation, the dimensions the graphs need, the expected
tensor table (HF name -> shape) and the --random presets (real released shapes).
"""
import copy
import json
import math
import os

from . import ConvertError


class Dims:
    """Dimensions of one Qwen3-VL model, read from a HF config dict."""

    def __init__(self, cfg, path="config.json"):
        arch = cfg.get("architectures") or []
        if cfg.get("model_type") != "qwen3_vl" or "Qwen3VLForConditionalGeneration" not in arch:
            raise ConvertError(f"{path}: not a Qwen3-VL checkpoint (model_type={cfg.get('model_type')!r}, "
                               f"architectures={arch!r}; expected qwen3_vl / Qwen3VLForConditionalGeneration)")
        t, v = cfg.get("text_config"), cfg.get("vision_config")
        if not isinstance(t, dict) or not isinstance(v, dict):
            raise ConvertError(f"{path}: missing text_config or vision_config")
        try:
            self.hidden = int(t["hidden_size"])
            self.layers = int(t["num_hidden_layers"])
            self.heads = int(t["num_attention_heads"])
            self.kv_heads = int(t["num_key_value_heads"])
            self.head_dim = int(t.get("head_dim") or self.hidden // self.heads)
            self.inter = int(t["intermediate_size"])
            self.vocab = int(t["vocab_size"])
            self.rope_theta = float(t.get("rope_theta", 5e6))
            self.rms_eps = float(t.get("rms_norm_eps", 1e-6))
            rs = t.get("rope_scaling") or {}
            self.mrope_section = list(rs.get("mrope_section", [24, 20, 20]))
            self.tied = bool(cfg.get("tie_word_embeddings", t.get("tie_word_embeddings", False)))
            self.v_hidden = int(v["hidden_size"])
            self.v_depth = int(v["depth"])
            self.v_heads = int(v["num_heads"])
            self.v_inter = int(v["intermediate_size"])
            self.patch = int(v["patch_size"])
            self.temporal = int(v["temporal_patch_size"])
            self.merge = int(v["spatial_merge_size"])
            self.in_ch = int(v.get("in_channels", 3))
            self.out_hidden = int(v["out_hidden_size"])
            self.num_pos = int(v["num_position_embeddings"])
            self.deepstack = [int(i) for i in v.get("deepstack_visual_indexes", [])]
        except (KeyError, TypeError, ValueError) as e:
            raise ConvertError(f"{path}: missing or bad field {e}")
        self._check(path)

    def _check(self, path):
        if self.heads % self.kv_heads:
            raise ConvertError(f"{path}: num_attention_heads {self.heads} not a multiple of kv heads {self.kv_heads}")
        if self.v_hidden % self.v_heads or (self.v_hidden // self.v_heads) % 4:
            raise ConvertError(f"{path}: vision hidden {self.v_hidden} / heads {self.v_heads} unusable for 2-D rope")
        if sum(self.mrope_section) != self.head_dim // 2:
            raise ConvertError(f"{path}: mrope_section {self.mrope_section} does not sum to head_dim/2")
        side = int(round(math.sqrt(self.num_pos)))
        if side * side != self.num_pos:
            raise ConvertError(f"{path}: num_position_embeddings {self.num_pos} is not a square")
        if any(i < 0 or i >= self.v_depth for i in self.deepstack):
            raise ConvertError(f"{path}: deepstack_visual_indexes {self.deepstack} outside 0..{self.v_depth - 1}")
        if self.out_hidden != self.hidden:
            raise ConvertError(f"{path}: vision out_hidden_size {self.out_hidden} != text hidden {self.hidden}")

    @property
    def v_head_dim(self):
        return self.v_hidden // self.v_heads

    @property
    def patch_dim(self):
        return self.in_ch * self.temporal * self.patch * self.patch

    @property
    def grid_side(self):
        return int(round(math.sqrt(self.num_pos)))


def load_config(folder):
    path = os.path.join(folder, "config.json")
    if not os.path.exists(path):
        raise ConvertError(f"{path}: missing (not a Hugging Face checkpoint folder)")
    try:
        with open(path) as f:
            cfg = json.load(f)
    except (OSError, ValueError) as e:
        raise ConvertError(f"{path}: cannot parse ({e})")
    if not isinstance(cfg, dict):
        raise ConvertError(f"{path}: not a JSON object")
    return cfg, Dims(cfg, path)


def vision_tensors(d):
    """HF vision tensor name -> expected shape, in conversion order."""
    H, I, P = d.v_hidden, d.v_inter, d.patch
    t = {"model.visual.patch_embed.proj.weight": (H, d.in_ch, d.temporal, P, P),
         "model.visual.patch_embed.proj.bias": (H,),
         "model.visual.pos_embed.weight": (d.num_pos, H)}
    for i in range(d.v_depth):
        b = f"model.visual.blocks.{i}."
        t.update({b + "norm1.weight": (H,), b + "norm1.bias": (H,),
                  b + "attn.qkv.weight": (3 * H, H), b + "attn.qkv.bias": (3 * H,),
                  b + "attn.proj.weight": (H, H), b + "attn.proj.bias": (H,),
                  b + "norm2.weight": (H,), b + "norm2.bias": (H,),
                  b + "mlp.linear_fc1.weight": (I, H), b + "mlp.linear_fc1.bias": (I,),
                  b + "mlp.linear_fc2.weight": (H, I), b + "mlp.linear_fc2.bias": (H,)})
    mergers = ["model.visual.merger."] + [f"model.visual.deepstack_merger_list.{j}."
                                           for j in range(len(d.deepstack))]
    for j, m in enumerate(mergers):
        nh = H if j == 0 else 4 * H
        t.update({m + "norm.weight": (nh,), m + "norm.bias": (nh,),
                  m + "linear_fc1.weight": (4 * H, 4 * H), m + "linear_fc1.bias": (4 * H,),
                  m + "linear_fc2.weight": (d.out_hidden, 4 * H), m + "linear_fc2.bias": (d.out_hidden,)})
    return t


def text_tensors(d):
    """HF text tensor name -> expected shape (embedding first, lm_head last if untied)."""
    H, D = d.hidden, d.head_dim
    t = {"model.language_model.embed_tokens.weight": (d.vocab, H)}
    for i in range(d.layers):
        b = f"model.language_model.layers.{i}."
        t.update({b + "input_layernorm.weight": (H,),
                  b + "self_attn.q_proj.weight": (d.heads * D, H),
                  b + "self_attn.k_proj.weight": (d.kv_heads * D, H),
                  b + "self_attn.v_proj.weight": (d.kv_heads * D, H),
                  b + "self_attn.q_norm.weight": (D,), b + "self_attn.k_norm.weight": (D,),
                  b + "self_attn.o_proj.weight": (H, d.heads * D),
                  b + "post_attention_layernorm.weight": (H,),
                  b + "mlp.gate_proj.weight": (d.inter, H), b + "mlp.up_proj.weight": (d.inter, H),
                  b + "mlp.down_proj.weight": (H, d.inter)})
    t["model.language_model.norm.weight"] = (H,)
    if not d.tied:
        t["lm_head.weight"] = (d.vocab, H)
    return t


def check_tensors(src, d):
    """Every expected tensor present with the expected shape (fails before writing anything)."""
    for table in (vision_tensors(d), text_tensors(d)):
        for name, shape in table.items():
            if not src.has(name):
                raise ConvertError(f"{src.folder}: tensor {name} missing from the checkpoint")
            got = tuple(src.shape(name))
            if got != tuple(shape):
                raise ConvertError(f"{src.file_of(name)}: tensor {name} has shape {list(got)}, "
                                   f"expected {list(shape)}")


# --random presets: the released 2B/4B/8B-Instruct shapes (model spec §1); tiny = tests/data/qwen3vl-a.
_PRESETS = {
    "2b": dict(hidden=2048, layers=28, heads=16, kv=8, inter=6144, tied=True,
               v_depth=24, v_hidden=1024, v_inter=4096, ds=[5, 11, 17]),
    "4b": dict(hidden=2560, layers=36, heads=32, kv=8, inter=9728, tied=True,
               v_depth=24, v_hidden=1024, v_inter=4096, ds=[5, 11, 17]),
    "8b": dict(hidden=4096, layers=36, heads=32, kv=8, inter=12288, tied=False,
               v_depth=27, v_hidden=1152, v_inter=4304, ds=[8, 16, 24]),
}


def preset_config(preset, tiny_config):
    """config.json dict of a --random preset; tiny = the golden checkpoint's config."""
    if preset == "tiny":
        return copy.deepcopy(tiny_config)
    p = _PRESETS[preset]
    cfg = copy.deepcopy(tiny_config)
    t, v = cfg["text_config"], cfg["vision_config"]
    t.update(hidden_size=p["hidden"], num_hidden_layers=p["layers"], num_attention_heads=p["heads"],
             num_key_value_heads=p["kv"], head_dim=128, intermediate_size=p["inter"],
             vocab_size=151936, rope_theta=5000000, tie_word_embeddings=p["tied"])
    t["rope_scaling"] = {"mrope_interleaved": True, "mrope_section": [24, 20, 20], "rope_type": "default"}
    v.update(depth=p["v_depth"], hidden_size=p["v_hidden"], num_heads=16, intermediate_size=p["v_inter"],
             out_hidden_size=p["hidden"], deepstack_visual_indexes=p["ds"])
    cfg["tie_word_embeddings"] = p["tied"]
    return cfg
