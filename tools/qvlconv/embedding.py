"""embedding.onnx: input_ids [B,S] → inputs_embeds [B,S,H].

  float : Gather(model.embed_tokens.weight [V,H])          (fp16 table → Cast to fp32)
  int4  : com.microsoft GatherBlockQuantized(model.embed_tokens.weight_Q4 uint8 [V,H/2],
          _scales f32 [V,H/bs], optional _zero_points uint8 [V,ceil(H/bs/2)]), bits 4,
          block_size bs, quantize_axis 1, gather_axis 0 (default zero point 8)
  int8  : same with bits 8, weight_Q8 uint8 [V,H], zero points uint8 [V,H/bs] (default 128)
"""
import numpy as np
from onnx import TensorProto

from . import ConvertError
from .layers import F32
from .quant import QuantizedMatrix

NAME = "model.embed_tokens.weight"


def build_embedding(g, src, d, opts):
    g.input("input_ids", TensorProto.INT64, ["batch_size", "sequence_length"])
    table = src.load("model.language_model.embed_tokens.weight")                    # [V,H]
    node = "/model/embed_tokens"
    if opts.embed_quant in ("int4", "int8"):
        bits = 4 if opts.embed_quant == "int4" else 8
        bs = opts.block_size
        if d.hidden % bs:
            raise ConvertError(f"--embed-quant {opts.embed_quant}: hidden size {d.hidden} is not a multiple "
                               f"of --block-size {bs}")
        qm = QuantizedMatrix(d.vocab, d.hidden, bs, bits, opts.zero_points)
        qname = NAME + ("_Q4" if bits == 4 else "_Q8")
        g.weight(qname, shape=(d.vocab, d.hidden * bits // 8), dtype=np.uint8,
                 chunks=(c.reshape(c.shape[0], -1) for c in qm.chunks(table)))
        ins = [qname, "input_ids", g.weight(NAME + "_scales", qm.scales)]
        if opts.zero_points:
            ins.append(g.weight(NAME + "_zero_points", qm.packed_zero_points()))
        y = g.op("GatherBlockQuantized", ins, node + "/GatherBlockQuantized", domain="com.microsoft",
                 bits=bits, block_size=bs, gather_axis=0, quantize_axis=1)
    elif opts.dtype == "fp16":
        w = g.weight(NAME, table.astype(np.float16))
        y = g.op("Cast", [g.op("Gather", [w, "input_ids"], node + "/Gather", axis=0)], node + "/Cast", to=F32)
    else:
        y = g.op("Gather", [g.weight(NAME, table), "input_ids"], node + "/Gather", axis=0)
    g.op("Identity", [y], node + "/Identity", outputs=["inputs_embeds"])
    g.output("inputs_embeds", F32, ["batch_size", "sequence_length", d.hidden])
