#!/usr/bin/env python3
# Golden checks of tools/qvl-convert's quantized and fp16 outputs (case 02_image: vision,
# DeepStack and a 100-token prefill).
#
#   test_converter_quant.py int4 OUT BLOCK ZP [EMBED]   --dtype int4 --block-size BLOCK
#       (--zero-points if ZP=1, --embed-quant EMBED). Reference = the same graphs with every
#       MatMulNBits replaced by an fp32 MatMul on the weight dequantized in numpy
#       (w = (q − zp)·scale, qvlconv.quant.dequantize), also run in ORT. ORT INT4 vs reference:
#       image_embeds/deepstack within 1e-4, logits and KV cache within 1e-3. Also: every HF
#       linear of text and vision is a MatMulNBits with the documented initializer names and
#       shapes, and each dequantized weight is within one quantization step (|scale|) of the
#       HF weight; a quantized embedding (GatherBlockQuantized) returns the dequantized rows.
#   test_converter_quant.py int8 OUT BLOCK ZP [EMBED]   the same checks for --dtype int8
#       (MatMulNBits bits 8: <w>_Q8 uint8 [N,kb,BLOCK], zero points uint8 [N,kb]).
#   test_converter_quant.py fp16 OUT   --dtype fp16: every linear weight is FLOAT16 and norms
#       FLOAT; logits within a tolerance derived from fp16 rounding (see check_fp16).
# Run with PYENV_VERSION=system python3. Prints one summary line; exit 0 = pass.
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import test_converter as tc
from qvlconv.config import text_tensors, vision_tensors
from qvlconv.quant import dequantize, unpack4
from qvlconv.safetensors import Checkpoint

CASE = "02_image"


def onnx_name(hf):
    """HF linear weight name -> ONNX initializer base name (ARCHITECTURE.md)."""
    if hf == "lm_head.weight" or hf == "model.language_model.embed_tokens.weight":
        return "lm_head.MatMul.weight"
    if hf.startswith("model.visual."):
        return hf
    name = hf.replace("model.language_model.", "model.").replace(".self_attn.", ".attn.")
    return name[:-len(".weight")] + ".MatMul.weight"


def linear_names(d):
    names = [n for n, s in vision_tensors(d).items() if n.endswith(".weight") and len(s) >= 2
             and "pos_embed" not in n]
    names += [n for n, s in text_tensors(d).items() if n.endswith("proj.weight")]
    names.append("model.language_model.embed_tokens.weight" if d.tied else "lm_head.weight")
    return names


def dequantized_reference(model_dir, model, ref_dir):
    """Copy of `model` with each MatMulNBits → MatMul on its numpy-dequantized weight."""
    m = onnx.load(os.path.join(model_dir, model))
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    nodes, deq = [], {}
    for n in m.graph.node:
        if n.op_type != "MatMulNBits":
            nodes.append(n)
            continue
        a = {x.name: helper.get_attribute_value(x) for x in n.attribute}
        zp = inits[n.input[3]] if len(n.input) > 3 and n.input[3] else None
        w = dequantize(inits[n.input[1]], inits[n.input[2]], zp, a["K"], a["block_size"], a["bits"])
        base = n.input[1][:-len("_Q4")]  # _Q4 or _Q8
        deq[base] = w
        t = numpy_helper.from_array(np.ascontiguousarray(w.T), base + "_dequantized")
        m.graph.initializer.append(t)
        nodes.append(helper.make_node("MatMul", [n.input[0], t.name], list(n.output), name=n.name + "_ref"))
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    os.makedirs(ref_dir, exist_ok=True)
    onnx.save(m, os.path.join(ref_dir, model), save_as_external_data=True, location=model + ".data")
    return deq, inits


def check_names_and_error(d, deq, inits, block, bits):
    """Every HF linear became <name>_Q{bits}/_scales(/_zero_points); dequantized ≈ HF weight."""
    ck = Checkpoint(tc.GOLDEN)
    worst = 0.0
    for hf in linear_names(d):
        base = onnx_name(hf)
        if base not in deq:
            tc.fail(f"no MatMulNBits for {hf} (expected initializer {base}_Q{bits})")
        w = ck.load(hf).reshape(ck.shape(hf)[0], -1)
        n, k = w.shape
        kb = (k + block - 1) // block
        blob, zbytes = block * bits // 8, (kb * bits + 7) // 8
        q, sc = inits.get(f"{base}_Q{bits}"), inits[base + "_scales"]
        if (q is None or q.shape != (n, kb, blob) or q.dtype != np.uint8 or sc.shape != (n, kb)
                or sc.dtype != np.float32):
            tc.fail(f"{base}: Q{bits} {None if q is None else (q.shape, q.dtype)} scales {sc.shape} {sc.dtype}, "
                    f"expected uint8 [{n},{kb},{blob}] float32 [{n},{kb}]")
        zp = inits.get(base + "_zero_points")
        if zp is not None and (zp.shape != (n, zbytes) or zp.dtype != np.uint8):
            tc.fail(f"{base}_zero_points: {zp.shape} {zp.dtype}, expected uint8 [{n},{zbytes}]")
        step = np.repeat(np.abs(sc), block, axis=1)[:, :k]
        err = np.abs(deq[base] - w)
        if not (err <= step * 1.0001 + 1e-7).all():
            i = np.unravel_index(int((err - step).argmax()), err.shape)
            tc.fail(f"{base}: dequantized weight off by {err[i]:.3g} at {i}, step {step[i]:.3g}")
        worst = max(worst, float((err / np.maximum(step, 1e-30)).max()))
    return len(deq), worst


def check_embedding_quant(model_dir, d, embed):
    m = onnx.load(os.path.join(model_dir, "embedding.onnx"))
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    node = next((n for n in m.graph.node if n.op_type == "GatherBlockQuantized"), None)
    if node is None:
        tc.fail(f"--embed-quant {embed}: embedding.onnx has no GatherBlockQuantized")
    a = {x.name: helper.get_attribute_value(x) for x in node.attribute}
    bits, bs = a["bits"], a["block_size"]
    data, scales = inits[node.input[0]], inits[node.input[2]]
    zp = inits[node.input[3]] if len(node.input) > 3 else None
    ids = tc.case_file(CASE, "input_ids.npy")
    rows = ids[0]
    q = unpack4(data[rows], d.hidden) if bits == 4 else data[rows]
    zpv = (np.full(scales[rows].shape, 1 << (bits - 1), np.float32) if zp is None else
           (unpack4(zp[rows], scales.shape[1]) if bits == 4 else zp[rows]).astype(np.float32))
    ref = ((q.reshape(len(rows), -1, bs).astype(np.float32) - zpv[..., None]) * scales[rows][..., None])
    out = tc.run(model_dir, "embedding.onnx", {"input_ids": ids})["inputs_embeds"][0]
    return tc.expect_close(out, ref.reshape(len(rows), -1), 1e-6, f"embedding {embed} vs dequantized rows")


def check_nbits(out, bits, block, zp, embed="none"):
    d = tc.dims()
    name = f"int{bits}"
    flags = ["--dtype", name, "--block-size", str(block), "--embed-quant", embed] + (["--zero-points"] if zp else [])
    tc.convert(out, *flags)
    ref = out + "_dequantized_ref"
    deq_v, inits_v = dequantized_reference(out, "vision.onnx", ref)
    deq_t, inits_t = dequantized_reference(out, "text.onnx", ref)
    count, rel = check_names_and_error(d, {**deq_v, **deq_t}, {**inits_v, **inits_t}, block, bits)
    vin = tc.vision_inputs(CASE, d)
    got, want = tc.run(out, "vision.onnx", vin), tc.run(ref, "vision.onnx", vin)
    vis = max(tc.expect_close(got[k], want[k], 1e-4, f"{name} vision {k}") for k in want)
    tin = tc.prefill_inputs(CASE, d)
    got, want = tc.run(out, "text.onnx", tin), tc.run(ref, "text.onnx", tin)
    lg = tc.expect_close(got["logits"], want["logits"], 1e-3, f"{name} logits")
    kv = max(tc.expect_close(got[k], want[k], 1e-3, f"{name} {k}") for k in want if k.startswith("present"))
    hf = float(np.abs(got["logits"][0, -1] - tc.case_file(CASE, "logits_last.npy")[0]).max())
    msg = (f"{name} block {block} zp {zp}: {count} MatMulNBits, |deq−hf|/step ≤ {rel:.2f}; ORT vs dequantized "
           f"fp32: vision {vis:.2e}, logits {lg:.2e}, KV {kv:.2e} ({name} vs HF logits {hf:.2f})")
    if embed != "none":
        msg += f"; embedding {embed} {check_embedding_quant(out, d, embed):.1e}"
    return msg


def check_fp16(out):
    """Tolerance: the golden weights are bf16 (8-bit mantissa), which fp16 (11-bit) holds
    exactly unless |w| < 2^-14 (fp16 subnormals, abs error ≤ 2^-25) or > 65504 (none here);
    activations stay fp32. So the fp16 model must meet the fp32 tolerances (1e-3 logits,
    1e-4 image_embeds). For a real checkpoint the error would be ~2^-11 relative per weight."""
    d = tc.dims()
    tc.convert(out, "--dtype", "fp16")
    m = onnx.load(os.path.join(out, "text.onnx"), load_external_data=False)
    for t in m.graph.initializer:
        want = TensorProto.FLOAT16 if t.name.endswith("MatMul.weight") else TensorProto.FLOAT
        if t.data_type != want:
            tc.fail(f"fp16 text.onnx: {t.name} has data type {t.data_type}, expected {want}")
    got = tc.run(out, "text.onnx", tc.prefill_inputs(CASE, d))["logits"][0, -1]
    ref = tc.case_file(CASE, "logits_last.npy")[0]
    tol = 1e-3
    diff = tc.expect_close(got, ref, tol, "fp16 logits vs HF fp32")
    vis = tc.run(out, "vision.onnx", tc.vision_inputs(CASE, d))["image_embeds"]
    vref = tc.case_file(CASE, "image_embeds.npy")
    vdiff = tc.expect_close(vis, vref, 1e-4, "fp16 image_embeds")
    if int(np.argmax(got)) != int(np.argmax(ref)):
        tc.fail("fp16 logits: argmax differs from HF")
    return f"fp16: logits max abs diff {diff:.3g} (tol {tol:.3g}), image_embeds {vdiff:.3g}, same argmax"


def main(argv):
    if len(argv) in (4, 5) and argv[0] in ("int4", "int8"):
        print("PASS " + check_nbits(argv[1], int(argv[0][3:]), int(argv[2]), argv[3] == "1",
                                    argv[4] if len(argv) == 5 else "none"))
    elif len(argv) == 2 and argv[0] == "fp16":
        print("PASS " + check_fp16(argv[1]))
    else:
        print("usage: test_converter_quant.py int4|int8 OUT BLOCK ZP [EMBED] | fp16 OUT")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
