"""Block-wise weight quantization (MatMulNBits / GatherBlockQuantized layouts) and the
matching numpy dequantization used by the tests as the reference.

Logical weight W [N, K] (row = output feature), blocks of `bs` along K, kb = ceil(K/bs);
K is zero-padded to kb*bs. Value: w = (q - zp) * scale.
  symmetric : zp = 2^(bits-1) (implicit, no zero-point tensor); scale = m / -2^(bits-1)
              where m is the block's element of largest magnitude (sign kept), so the
              full code range is used; q = clip(rint(w/scale) + zp).
  asymmetric: lo = min(min(w), 0), hi = max(max(w), 0); scale = (hi-lo)/(2^bits-1);
              zp = clip(rint(-lo/scale)); q = clip(rint(w/scale) + zp).
4-bit packing: two codes per byte, first (lower k) in the low nibble; zero points are
packed the same way along the block axis, each row padded to whole bytes.
"""
import numpy as np

ROWS_PER_CHUNK_ELEMS = 1 << 24  # quantize ~16M weights at a time


def quantize_blocks(w, bits, asym):
    """w [n, kb, bs] fp32 -> (q uint8 [n,kb,bs], scales fp32 [n,kb], zp uint8 [n,kb])."""
    qmax, mid = (1 << bits) - 1, 1 << (bits - 1)
    if asym:
        lo = np.minimum(w.min(axis=2), 0.0)
        hi = np.maximum(w.max(axis=2), 0.0)
        scale = ((hi - lo) / qmax).astype(np.float32)
        inv = np.divide(1.0, scale, out=np.zeros_like(scale), where=scale != 0)
        zp = np.clip(np.rint(-lo * inv), 0, qmax).astype(np.float32)
    else:
        idx = np.abs(w).argmax(axis=2)
        m = np.take_along_axis(w, idx[..., None], axis=2)[..., 0]
        scale = (m / -mid).astype(np.float32)
        inv = np.divide(1.0, scale, out=np.zeros_like(scale), where=scale != 0)
        zp = np.full(scale.shape, mid, np.float32)
    q = np.clip(np.rint(w * inv[..., None]) + zp[..., None], 0, qmax).astype(np.uint8)
    return q, scale, zp.astype(np.uint8)


def pack4(q):
    """uint8 codes [..., n] (n even) -> packed [..., n/2], element 2j in the low nibble."""
    return (q[..., 0::2] & 0xF) | ((q[..., 1::2] & 0xF) << 4)


def pack4_pad(q):
    """Like pack4 but pads an odd last dimension (padding code 8) first."""
    if q.shape[-1] % 2:
        q = np.concatenate([q, np.full(q.shape[:-1] + (1,), 8, np.uint8)], axis=-1)
    return pack4(q)


def unpack4(p, n):
    """packed [..., m] -> codes [..., n] (n <= 2m)."""
    q = np.empty(p.shape[:-1] + (p.shape[-1] * 2,), np.uint8)
    q[..., 0::2] = p & 0xF
    q[..., 1::2] = p >> 4
    return q[..., :n]


class QuantizedMatrix:
    """Result of quantizing W [N, K]: packed codes streamed in row chunks + scales/zp."""

    def __init__(self, n, k, bs, bits, asym):
        self.n, self.k, self.bs, self.bits, self.asym = n, k, bs, bits, asym
        self.kb = (k + bs - 1) // bs
        self.scales = np.empty((n, self.kb), np.float32)
        self.zp = np.empty((n, self.kb), np.uint8) if asym else None

    @property
    def blob(self):
        return self.bs * self.bits // 8

    def chunks(self, w):
        """Yields packed codes [rows, kb, blob] for W [N, K] (fp32), filling scales/zp."""
        step = max(1, ROWS_PER_CHUNK_ELEMS // (self.kb * self.bs))
        for r0 in range(0, self.n, step):
            r1 = min(self.n, r0 + step)
            blk = np.zeros((r1 - r0, self.kb * self.bs), np.float32)
            blk[:, :self.k] = w[r0:r1]
            q, s, z = quantize_blocks(blk.reshape(r1 - r0, self.kb, self.bs), self.bits, self.asym)
            self.scales[r0:r1] = s
            if self.asym:
                self.zp[r0:r1] = z
            yield pack4(q) if self.bits == 4 else q

    def packed_zero_points(self):
        """uint8 [N, ceil(kb/2)] (4-bit) or [N, kb] (8-bit)."""
        return pack4_pad(self.zp) if self.bits == 4 else self.zp


def dequantize(packed, scales, zero_points, k, bs, bits=4):
    """Reference: packed [N, kb, blob] (or [N, kb*blob]) -> W [N, K] fp32."""
    n, kb = scales.shape
    codes = unpack4(packed.reshape(n, kb, -1), bs) if bits == 4 else packed.reshape(n, kb, bs)
    if zero_points is None:
        zp = np.full((n, kb), 1 << (bits - 1), np.float32)
    elif bits == 4:
        zp = unpack4(zero_points.reshape(n, -1), kb).astype(np.float32)
    else:
        zp = zero_points.reshape(n, kb).astype(np.float32)
    w = (codes.astype(np.float32) - zp[..., None]) * scales[..., None]
    return w.reshape(n, kb * bs)[:, :k]
