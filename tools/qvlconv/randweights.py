"""--random weight source: seeded random tensors at a preset's real shapes.

Scales are chosen so every activation stays O(1) through all layers (GPT-2 style):
  linears that read a normalized/unit-scale input: N(0, 1/K) (K = in-features), so the
  output has about the input's scale; the two linears that write into a residual
  stream (text o_proj/down_proj, vision attn.proj/mlp.linear_fc2) get an extra
  1/sqrt(2·layers), so the residual stream grows to at most ~sqrt(2) of its start;
  text embeddings (and an untied lm_head) N(0, 0.02²) like real checkpoints, so the
  decoder layers, not the input embedding, dominate the final hidden state (with a
  unit-scale tied embedding, greedy decoding just repeats the last token); norm weights
  1 + 0.05·N, biases 0.02·N; the final norm weight is 3/(0.02·sqrt(H)) (normed h · E rows
  of std 0.02 → logit std ~3); the merger fc2 gives image embeddings of rms ~1.
Each tensor has its own generator seeded by (seed, crc32(name)), so a tensor is the
same whichever order it is read in (the tied embedding is read twice).
"""
import math
import zlib

import numpy as np

from .config import text_tensors, vision_tensors

EMBED_STD = 0.02


class RandomSource:
    def __init__(self, d, seed):
        self.d, self.seed = d, seed
        self.shapes = dict(vision_tensors(d))
        self.shapes.update(text_tensors(d))

    def has(self, name):
        return name in self.shapes

    def shape(self, name):
        return self.shapes[name]

    def _std_offset(self, name):
        d = self.d
        shape = self.shapes[name]
        if name.endswith("norm.weight") or "norm1.weight" in name or "norm2.weight" in name \
                or name.endswith("layernorm.weight"):
            if name == "model.language_model.norm.weight":
                w = 3 / (EMBED_STD * math.sqrt(d.hidden))
                return 0.05 * w, w
            return 0.05, 1.0
        if name.endswith(".bias"):
            return 0.02, 0.0
        if "embed_tokens" in name or name == "lm_head.weight":
            return EMBED_STD, 0.0
        if name == "model.visual.pos_embed.weight":
            return 0.5, 0.0
        if name == "model.visual.patch_embed.proj.weight":
            return 1.7 / math.sqrt(d.patch_dim), 0.0
        k = shape[-1]
        std = 1.0 / math.sqrt(k)
        if any(s in name for s in ("o_proj", "down_proj")):
            std /= math.sqrt(2 * d.layers)
        elif any(s in name for s in ("attn.proj", "mlp.linear_fc2")):
            std /= math.sqrt(2 * d.v_depth)
        elif "merger.linear_fc2" in name:
            std *= 1.5
        elif "deepstack_merger_list" in name and "linear_fc2" in name:
            std *= 0.75
        return std, 0.0

    def load(self, name):
        std, off = self._std_offset(name)
        rng = np.random.default_rng([self.seed, zlib.crc32(name.encode())])
        w = rng.standard_normal(self.shapes[name], dtype=np.float32)
        w *= np.float32(std)
        if off:
            w += np.float32(off)
        return w
