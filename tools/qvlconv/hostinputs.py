"""Host-computed inputs of vision.onnx from image_grid_thw (see tools/README.md).

For each item (t, h, w) (h, w in 16-px patches, even), patches are listed in
merge-block order: for tt < t, bh < h/2, bw < w/2, ih < 2, iw < 2 the patch at
row r = 2·bh + ih, column c = 2·bw + iw.
  pos_idx/pos_weight [4,N]: align-corners bilinear lookup into the G×G table (G = 48):
      ys = linspace(0, G−1, h), xs = linspace(0, G−1, w) (float32);
      y0 = ⌊ys⌋, y1 = min(y0+1, G−1), fy = ys − y0 (same for x);
      corners (y0,x0), (y0,x1), (y1,x0), (y1,x1) → idx = y·G + x,
      weights (1−fy)(1−fx), (1−fy)fx, fy(1−fx), fy·fx  (float32).
  rope_cos/rope_sin [N, Dv/2]: inv[j] = 1/10000^(2j/(Dv/2)), j < Dv/4;
      angles = [r·inv[0..Dv/4), c·inv[0..Dv/4)] → cos/sin (float32).
  segment_ids [N]: index of the (item, tt) pair, counted from 0 over all items.
"""
import numpy as np


def linspace32(start, end, n):
    """float32 linspace, first half from start, second half from end (PyTorch's scheme)."""
    if n == 1:
        return np.array([start], np.float32)
    step = np.float32((end - start) / (n - 1))
    i = np.arange(n)
    lo = np.float32(start) + i.astype(np.float32) * step
    hi = np.float32(end) - (n - 1 - i).astype(np.float32) * step
    return np.where(i < n // 2, lo, hi).astype(np.float32)


def merge_order(h, w, merge=2):
    """(rows, cols) int64 [h·w] of the patches in merge-block order."""
    bh, bw, ih, iw = np.meshgrid(np.arange(h // merge), np.arange(w // merge), np.arange(merge),
                                 np.arange(merge), indexing="ij")
    return (bh * merge + ih).reshape(-1), (bw * merge + iw).reshape(-1)


def vision_host_inputs(grid_thw, head_dim, grid_side=48, merge=2, theta=10000.0):
    """dict of pos_idx i64 [4,N], pos_weight f32 [4,N], rope_cos/rope_sin f32 [N,Dv/2], segment_ids i64 [N]."""
    G = grid_side
    quarter = head_dim // 4
    inv = (1.0 / np.power(np.float32(theta),
                          np.arange(0, head_dim // 2, 2, dtype=np.float32) / np.float32(head_dim // 2)))
    inv = inv.astype(np.float32)[:quarter]
    idx, wts, cos, sin, seg = [], [], [], [], []
    s = 0
    for t, h, w in np.asarray(grid_thw, np.int64).reshape(-1, 3):
        t, h, w = int(t), int(h), int(w)
        if t < 1 or h < merge or w < merge or h % merge or w % merge:
            raise ValueError(f"image_grid_thw row ({t}, {h}, {w}): t must be >= 1 and h, w positive "
                             f"multiples of {merge}")
        ys, xs = linspace32(0, G - 1, h), linspace32(0, G - 1, w)
        y0, x0 = ys.astype(np.int64), xs.astype(np.int64)
        y1, x1 = np.minimum(y0 + 1, G - 1), np.minimum(x0 + 1, G - 1)
        fy, fx = (ys - y0).astype(np.float32), (xs - x0).astype(np.float32)
        r, c = merge_order(h, w, merge)
        one = np.float32(1)
        corner_idx = [y0[r] * G + x0[c], y0[r] * G + x1[c], y1[r] * G + x0[c], y1[r] * G + x1[c]]
        corner_w = [(one - fy[r]) * (one - fx[c]), (one - fy[r]) * fx[c], fy[r] * (one - fx[c]), fy[r] * fx[c]]
        ang = np.concatenate([r[:, None].astype(np.float32) * inv[None, :],
                              c[:, None].astype(np.float32) * inv[None, :]], axis=1).astype(np.float32)
        for _ in range(t):
            idx.append(np.stack(corner_idx))
            wts.append(np.stack(corner_w).astype(np.float32))
            cos.append(np.cos(ang))
            sin.append(np.sin(ang))
            seg.append(np.full(h * w, s, np.int64))
            s += 1
    return {"pos_idx": np.concatenate(idx, axis=1).astype(np.int64),
            "pos_weight": np.concatenate(wts, axis=1).astype(np.float32),
            "rope_cos": np.concatenate(cos).astype(np.float32),
            "rope_sin": np.concatenate(sin).astype(np.float32),
            "segment_ids": np.concatenate(seg)}
