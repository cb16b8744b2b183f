#!/usr/bin/env python3
# Helper of tools/ort-run --outputs: copies an ONNX model's graph (external data left
# where it is, referenced by location) and adds intermediate value names as graph outputs.
# Usage: add_outputs.py IN.onnx OUT_DIR name[,name...]   -> prints the path of the copy.
# The copy goes to OUT_DIR, except when the model has external data: then it is written
# next to IN.onnx (external-data locations are relative to the model's folder) and the
# caller deletes it once the session is created.
# Needs python3-onnx (Debian; run with PYENV_VERSION=system). One-line errors, exit 1.
import os
import sys

import onnx


def produced_names(graph):
    """All value names the graph computes or receives (node outputs, inputs, initializers)."""
    names = set()
    for node in graph.node:
        names.update(o for o in node.output if o)
    names.update(i.name for i in graph.input)
    names.update(i.name for i in graph.initializer)
    return names


def has_external_data(graph):
    """True when any initializer keeps its bytes in an external file."""
    return any(t.data_location == onnx.TensorProto.EXTERNAL for t in graph.initializer)


def main(argv):
    if len(argv) != 4:
        print("add_outputs.py: usage: add_outputs.py IN.onnx OUT_DIR name[,name...]", file=sys.stderr)
        return 1
    src, out_dir, wanted = argv[1], argv[2], [n for n in argv[3].split(",") if n]
    try:
        model = onnx.load(src, load_external_data=False)
    except Exception as e:  # noqa: BLE001 - any parse failure is reported in one line
        print(f"{src}: cannot parse ONNX model ({type(e).__name__})", file=sys.stderr)
        return 1
    graph = model.graph
    known = produced_names(graph)
    existing = {o.name for o in graph.output}
    typed = {v.name: v for v in graph.value_info}
    for name in wanted:
        if name not in known:
            print(f"{src}: --outputs: no value named '{name}' in the graph", file=sys.stderr)
            return 1
        if name in existing:
            continue
        out = graph.output.add()
        if name in typed:
            out.CopyFrom(typed[name])
        else:
            out.name = name  # ONNX Runtime infers the type from the producing node
        existing.add(name)
    stem = os.path.splitext(os.path.basename(src))[0]
    if has_external_data(graph):
        dst = os.path.join(os.path.dirname(os.path.abspath(src)), f".{stem}.ortrun{os.getpid()}.onnx")
    else:
        dst = os.path.join(out_dir, f".{stem}.ortrun.onnx")
    try:
        onnx.save(model, dst)
    except OSError as e:
        print(f"{dst}: cannot write model copy ({e.strerror})", file=sys.stderr)
        return 1
    print(dst)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
