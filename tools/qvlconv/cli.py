"""qvl-convert command line: argument parsing, conversion driver, progress bar, copies."""
import argparse
import json
import os
import shutil
import sys
import time

import numpy as np

from . import ConvertError
from .config import Dims, check_tensors, load_config, preset_config, text_tensors, vision_tensors
from .embedding import build_embedding
from .layers import Options
from .randweights import RandomSource
from .safetensors import Checkpoint
from .text import build_text
from .text_fused import build_text_fused
from .vision import build_vision
from .writer import Graph

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOLDEN = os.path.join(REPO, "tests", "data", "qwen3vl-a")
COPIED = ["tokenizer.json", "tokenizer_config.json", "chat_template.json", "preprocessor_config.json",
          "generation_config.json"]


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise ConvertError(message)


def parse_args(argv):
    p = _Parser(prog="qvl-convert", usage="qvl-convert SRC_HF_DIR OUT_DIR [options] | qvl-convert --random PRESET "
                "OUT_DIR [options]", description="Convert a Hugging Face Qwen3-VL checkpoint to the qvl "
                "ONNX model folder (vision.onnx, embedding.onnx, text.onnx + external data).")
    p.add_argument("paths", nargs="+", metavar="DIR", help="checkpoint folder and output folder "
                   "(only OUT_DIR with --random)")
    p.add_argument("--dtype", choices=["fp32", "fp16", "int4", "int8"], default="fp32")
    p.add_argument("--block-size", type=int, choices=[32, 64, 128], default=32)
    p.add_argument("--zero-points", action="store_true", help="asymmetric INT4/INT8 with zero points")
    p.add_argument("--accuracy-level", type=int, choices=[0, 1, 2, 3, 4], default=None,
                   help="MatMulNBits accuracy_level attribute (4 = int8 activations in ORT); "
                        "default 0, or 4 with --ort-fused")
    p.add_argument("--embed-quant", choices=["none", "int4", "int8"], default="none")
    p.add_argument("--random", choices=["tiny", "2b", "4b", "8b"], help="random weights at a preset's shapes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ort-fused", action="store_true", help="text.onnx with ORT fused ops (GroupQueryAttention, "
                   "SkipSimplifiedLayerNormalization) as onnxruntime-genai builds it; for speed comparisons")
    a = p.parse_args(argv)
    want = 1 if a.random else 2
    if len(a.paths) != want:
        raise ConvertError("usage: qvl-convert SRC_HF_DIR OUT_DIR [options] | qvl-convert --random PRESET OUT_DIR")
    return a


class Progress:
    """Byte-weighted progress bar on stderr (only on a terminal)."""

    def __init__(self, total):
        self.total, self.done, self.t0, self.last = max(1, total), 0, time.time(), 0.0
        self.label = ""
        self.tty = sys.stderr.isatty()

    def advance(self, n):
        self.done += n
        self._draw()

    def note(self, label):
        self.label = label
        self._draw()

    def _draw(self, force=False):
        now = time.time()
        if not self.tty or (now - self.last < 0.2 and not force):
            return
        self.last = now
        f = min(1.0, self.done / self.total)
        bar = "#" * int(f * 30)
        sys.stderr.write(f"\r[{bar:<30}] {f * 100:5.1f}% {now - self.t0:6.1f}s {self.label:<28}")
        sys.stderr.flush()

    def finish(self):
        self.done = self.total
        self._draw(force=True)
        if self.tty:
            sys.stderr.write("\n")


class Tracked:
    """Source wrapper that reports every loaded tensor to the progress bar."""

    def __init__(self, src, progress):
        self.src, self.progress = src, progress

    def load(self, name):
        w = self.src.load(name)
        self.progress.advance(w.size)
        return w


def _total_elems(d):
    shapes = list(vision_tensors(d).values()) + list(text_tensors(d).values())
    total = sum(int(np.prod(s)) for s in shapes)
    return total + (d.vocab * d.hidden if d.tied else 0)


def _copy_aux(src_dir, out_dir, cfg):
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    for name in COPIED:
        path = os.path.join(src_dir, name)
        if os.path.exists(path):
            shutil.copyfile(path, os.path.join(out_dir, name))
        else:
            print(f"qvl-convert: warning: {path} not found, not copied", file=sys.stderr)


def _genai_config(d, out_dir, cfg):
    gen = {"model": {"type": "qwen3_vl", "vocab_size": d.vocab, "context_length": 262144,
                     "image_token_id": cfg.get("image_token_id", 151655),
                     "video_token_id": cfg.get("video_token_id", 151656),
                     "vision_start_token_id": cfg.get("vision_start_token_id", 151652),
                     "eos_token_id": [151645, 151643], "bos_token_id": 151643, "pad_token_id": 151643,
                     "decoder": {"filename": "text.onnx", "head_size": d.head_dim, "hidden_size": d.hidden,
                                 "num_attention_heads": d.heads, "num_key_value_heads": d.kv_heads,
                                 "num_hidden_layers": d.layers,
                                 "inputs": {"inputs_embeds": "inputs_embeds", "attention_mask": "attention_mask",
                                            "position_ids": "position_ids",
                                            "past_key_names": "past_key_values.%d.key",
                                            "past_value_names": "past_key_values.%d.value",
                                            "deepstack_embeds": "deepstack_embeds"},
                                 "outputs": {"logits": "logits", "present_key_names": "present.%d.key",
                                             "present_value_names": "present.%d.value"}},
                     "embedding": {"filename": "embedding.onnx", "inputs": {"input_ids": "input_ids"},
                                   "outputs": {"inputs_embeds": "inputs_embeds"}},
                     "vision": {"filename": "vision.onnx", "config_filename": "preprocessor_config.json",
                                "spatial_merge_size": d.merge, "patch_size": d.patch,
                                "inputs": ["pixel_values", "pos_idx", "pos_weight", "rope_cos", "rope_sin",
                                           "segment_ids"],
                                "outputs": ["image_embeds"] + [f"deepstack_{j}" for j in range(len(d.deepstack))]}},
           "search": {"max_length": 4096, "do_sample": False}}
    with open(os.path.join(out_dir, "genai_config.json"), "w") as f:
        json.dump(gen, f, indent=2)
        f.write("\n")


def convert(a):
    level = a.accuracy_level if a.accuracy_level is not None else (4 if a.ort_fused else 0)
    opts = Options(a.dtype, a.block_size, a.zero_points, level, a.embed_quant, a.ort_fused)
    if a.random:
        out_dir, src_dir = a.paths[0], GOLDEN
        with open(os.path.join(GOLDEN, "config.json")) as f:
            cfg = preset_config(a.random, json.load(f))
        d = Dims(cfg, f"--random {a.random}")
        src = RandomSource(d, a.seed)
    else:
        src_dir, out_dir = a.paths
        if not os.path.isdir(src_dir):
            raise ConvertError(f"{src_dir}: not a directory")
        cfg, d = load_config(src_dir)
        src = Checkpoint(src_dir)
        check_tensors(src, d)
    if a.embed_quant != "none" and d.hidden % a.block_size:
        raise ConvertError(f"--embed-quant {a.embed_quant}: hidden size {d.hidden} is not a multiple of "
                           f"--block-size {a.block_size}")
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as e:
        raise ConvertError(f"{out_dir}: cannot create ({e.strerror})")
    t0 = time.time()
    progress = Progress(_total_elems(d))
    tracked = Tracked(src, progress)
    sizes = {}
    for model, name, build in (("vision.onnx", "qwen3vl_vision", build_vision),
                               ("embedding.onnx", "qwen3vl_embedding", build_embedding),
                               ("text.onnx", "qwen3vl_text", build_text_fused if a.ort_fused else build_text)):
        progress.note(model)
        g = Graph(out_dir, model, name)
        if model == "text.onnx":
            build(g, tracked, d, opts, progress)
        else:
            build(g, tracked, d, opts)
        g.save()
        sizes[model] = g.bytes_written
    progress.finish()
    _copy_aux(src_dir, out_dir, cfg)
    _genai_config(d, out_dir, cfg)
    mb = sum(sizes.values()) / 1e6
    print(f"qvl-convert: wrote {out_dir} ({a.dtype}, {mb:.1f} MB of weights) in {time.time() - t0:.1f} s")


def main(argv=None):
    try:
        convert(parse_args(sys.argv[1:] if argv is None else argv))
    except ConvertError as e:
        print(f"qvl-convert: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("qvl-convert: error: interrupted", file=sys.stderr)
        return 1
    return 0
