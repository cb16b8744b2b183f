"""Minimal safetensors reader: header parse, np.memmap views, bf16/fp16/fp32 -> fp32.

A file is: u64 little-endian header length, a JSON header {name: {dtype, shape,
data_offsets: [begin, end]}, "__metadata__": {...}}, then the raw data block.
Sharded checkpoints list name -> shard file in model.safetensors.index.json.
"""
import json
import os
import struct

import numpy as np

from . import ConvertError

_DTYPES = {"BF16": (np.uint16, 2), "F16": (np.float16, 2), "F32": (np.float32, 4)}


class _Entry:
    def __init__(self, path, dtype, shape, begin, end):
        self.path, self.dtype, self.shape = path, dtype, tuple(shape)
        self.begin, self.end = begin, end


def _read_header(path):
    """Returns (data_start, header dict) of one .safetensors file."""
    try:
        with open(path, "rb") as f:
            raw = f.read(8)
            if len(raw) != 8:
                raise ConvertError(f"{path}: truncated safetensors file (no header length)")
            (hlen,) = struct.unpack("<Q", raw)
            size = os.fstat(f.fileno()).st_size
            if hlen > size - 8 or hlen > 100 * 1024 * 1024:
                raise ConvertError(f"{path}: bad safetensors header length {hlen}")
            header = json.loads(f.read(hlen))
    except OSError as e:
        raise ConvertError(f"{path}: cannot read ({e.strerror})")
    except ValueError as e:
        raise ConvertError(f"{path}: safetensors header is not valid JSON ({e})")
    return 8 + hlen, header, size


class Checkpoint:
    """All tensors of a HF folder (single file or sharded), read lazily through memmap."""

    def __init__(self, folder):
        self.folder = folder
        self.entries = {}
        single = os.path.join(folder, "model.safetensors")
        index = os.path.join(folder, "model.safetensors.index.json")
        if os.path.exists(index):
            self._add_sharded(index)
        elif os.path.exists(single):
            self._add_file(single)
        else:
            raise ConvertError(f"{folder}: no model.safetensors or model.safetensors.index.json")
        self._maps = {}

    def _add_sharded(self, index):
        try:
            with open(index) as f:
                weight_map = json.load(f)["weight_map"]
        except (OSError, ValueError, KeyError) as e:
            raise ConvertError(f"{index}: cannot read weight_map ({e})")
        shards = sorted(set(weight_map.values()))
        for shard in shards:
            path = os.path.join(self.folder, shard)
            if not os.path.exists(path):
                raise ConvertError(f"{path}: missing shard listed in {os.path.basename(index)}")
            self._add_file(path)
        for name, shard in weight_map.items():
            if name not in self.entries:
                raise ConvertError(f"{shard}: tensor {name} listed in the index is not in the shard")

    def _add_file(self, path):
        start, header, size = _read_header(path)
        for name, info in header.items():
            if name == "__metadata__":
                continue
            dtype = info.get("dtype")
            if dtype not in _DTYPES:
                raise ConvertError(f"{path}: tensor {name} has unsupported dtype {dtype} "
                                   "(supported: BF16, F16, F32)")
            begin, end = info["data_offsets"]
            shape = info["shape"]
            n = int(np.prod(shape, dtype=np.int64)) if shape else 1
            if end - begin != n * _DTYPES[dtype][1] or start + end > size:
                raise ConvertError(f"{path}: tensor {name} data range does not match its shape {shape}")
            self.entries[name] = _Entry(path, dtype, shape, start + begin, start + end)

    def has(self, name):
        return name in self.entries

    def shape(self, name):
        return self.entries[name].shape

    def file_of(self, name):
        return self.entries[name].path

    def load(self, name):
        """Full tensor as a new float32 array (bf16 widened exactly)."""
        e = self.entries[name]
        np_dtype, _ = _DTYPES[e.dtype]
        n = (e.end - e.begin) // np.dtype(np_dtype).itemsize
        raw = np.memmap(e.path, dtype=np_dtype, mode="r", offset=e.begin, shape=(n,))
        if e.dtype == "BF16":
            out = raw.astype(np.uint32)
            np.left_shift(out, 16, out=out)
            out = out.view(np.float32)
        else:
            out = raw.astype(np.float32)
        del raw
        return out.reshape(e.shape)
