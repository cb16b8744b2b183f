"""Run an ONNX model in ONNX Runtime through tools/ort-run (node, onnxruntime-node),
exchanging .npy files; used by the converter tests and sanity checks."""
import os
import subprocess
import tempfile

import numpy as np

TOOLS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ORT_RUN = os.path.join(TOOLS, "ort-run")


def ort_run(model, inputs, outputs=None, threads=2):
    """inputs: {name: np.ndarray}; returns {output name: np.ndarray}."""
    with tempfile.TemporaryDirectory(prefix="qvl-ort-") as tmp:
        ind, outd = os.path.join(tmp, "in"), os.path.join(tmp, "out")
        os.makedirs(ind)
        for k, v in inputs.items():
            np.save(os.path.join(ind, k + ".npy"), np.ascontiguousarray(v))
        cmd = [ORT_RUN, model, ind, outd, "--threads", str(threads)]
        if outputs:
            cmd += ["--outputs", ",".join(outputs)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"ort-run failed on {model}: {r.stderr.strip()}")
        return {f[:-4]: np.load(os.path.join(outd, f)) for f in os.listdir(outd) if f.endswith(".npy")}
