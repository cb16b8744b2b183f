"""Graph builder that streams initializers to one external-data file.

Each weight is written to OUT_DIR/<model>.onnx.data as soon as it is produced
(possibly in chunks), so peak memory stays around one tensor; the .onnx file
holds only the graph and TensorProto headers pointing into the data file.
Small helper constants are Constant nodes (never initializers), so every
initializer is a real weight with a stable name.
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper

ONNX_DTYPE = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float16): TensorProto.FLOAT16,
              np.dtype(np.uint8): TensorProto.UINT8, np.dtype(np.int64): TensorProto.INT64}
OPSET = 17


def _align(n, a):
    return (n + a - 1) // a * a


class Graph:
    """One ONNX graph under construction; `op` adds a node, `weight` streams an initializer."""

    def __init__(self, out_dir, model_name, name):
        self.out_dir, self.model_name, self.name = out_dir, model_name, name
        self.location = model_name + ".data"
        self.data = open(os.path.join(out_dir, self.location), "wb")
        self.offset = 0
        self.nodes, self.inits, self.inputs, self.outputs = [], [], [], []
        self.used_names = set()
        self.const_cache = {}
        self.uses_ms = False
        self.bytes_written = 0

    # ---- weights -------------------------------------------------------------------------
    def weight(self, name, array=None, shape=None, dtype=None, chunks=None):
        """Write one initializer; either a whole array or (shape, dtype, iterable of arrays)."""
        if array is not None:
            array = np.ascontiguousarray(array)
            shape, dtype, chunks = array.shape, array.dtype, [array]
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        start = _align(self.offset, 4096 if nbytes >= (1 << 16) else 64)
        if start > self.offset:
            self.data.write(b"\0" * (start - self.offset))
        written = 0
        for c in chunks:
            c = np.ascontiguousarray(c, dtype=dtype)
            self.data.write(memoryview(c).cast("B"))
            written += c.nbytes
        assert written == nbytes, f"{name}: wrote {written} bytes, expected {nbytes}"
        self.offset = start + nbytes
        self.bytes_written += nbytes
        t = TensorProto()
        t.name = name
        t.data_type = ONNX_DTYPE[dtype]
        t.dims.extend(int(s) for s in shape)
        t.data_location = TensorProto.EXTERNAL
        for k, v in (("location", self.location), ("offset", str(start)), ("length", str(nbytes))):
            e = t.external_data.add()
            e.key, e.value = k, v
        self.inits.append(t)
        return name

    # ---- nodes ---------------------------------------------------------------------------
    def _unique(self, name):
        base, k = name, 1
        while name in self.used_names:
            name = f"{base}_{k}"
            k += 1
        self.used_names.add(name)
        return name

    def op(self, op_type, inputs, name, n_out=1, outputs=None, domain=None, **attrs):
        """Adds node `name` (made unique); returns its output name (or list if n_out > 1)."""
        name = self._unique(name)
        if outputs is None:
            outputs = [f"{name}/output_{i}" for i in range(n_out)]
        if domain == "com.microsoft":
            self.uses_ms = True
        node = helper.make_node(op_type, list(inputs), list(outputs), name=name, domain=domain, **attrs)
        self.nodes.append(node)
        return outputs[0] if len(outputs) == 1 else outputs

    def const(self, value, dtype=np.int64):
        """Constant node for a small helper value (shapes, axes, scalars); cached by value."""
        arr = np.array(value, dtype=dtype)
        key = (arr.dtype.str, arr.shape, arr.tobytes())
        if key in self.const_cache:
            return self.const_cache[key]
        tag = "_".join(str(x) for x in arr.flatten()[:8]) if arr.size <= 8 else f"n{len(self.const_cache)}"
        name = f"/model/constants/{arr.dtype.name}/{list(arr.shape)}/{tag}".replace(" ", "")
        out = self.op("Constant", [], name, value=helper.make_tensor(
            "value", ONNX_DTYPE[arr.dtype], arr.shape, arr.flatten().tolist()))
        self.const_cache[key] = out
        return out

    def input(self, name, elem, shape):
        self.inputs.append(helper.make_tensor_value_info(name, elem, shape))
        return name

    def output(self, name, elem, shape):
        self.outputs.append(helper.make_tensor_value_info(name, elem, shape))
        return name

    # ---- save ----------------------------------------------------------------------------
    def save(self):
        # Write the weights to disk and drop them from the page cache: the
        # pages a writer leaves behind can be small (4 KiB) folios, which the
        # engine can only map 4 KiB at a time; read back from disk, the kernel
        # caches them as 2 MiB folios and qvl maps them with huge pages.
        self.data.flush()
        os.fsync(self.data.fileno())
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(self.data.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        self.data.close()
        graph = helper.make_graph(self.nodes, self.name, self.inputs, self.outputs, initializer=self.inits)
        opsets = [helper.make_opsetid("", OPSET)]
        if self.uses_ms:
            opsets.append(helper.make_opsetid("com.microsoft", 1))
        model = helper.make_model(graph, opset_imports=opsets, producer_name="qvl-convert",
                                  producer_version="1")
        model.ir_version = 8
        path = os.path.join(self.out_dir, self.model_name)
        with open(path, "wb") as f:
            f.write(model.SerializeToString())
        return path
