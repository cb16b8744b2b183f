// Host-side index tensors of Qwen3-VL, written from the model fact sheet
// (docs: qwen-vl-model-spec.md §2.2, §2.3, §2.5, §5):
//  - visionGridInputs: pos_idx/pos_weight (bilinear corners of the 48x48 position table),
//    rope_cos/rope_sin (2-D vision rotary angles) and segment_ids, all in merge-block order;
//  - ropeIndex: 3-D M-RoPE position ids of a prompt (get_rope_index) and rope_delta.
// float32 rounding (Math.fround) follows PyTorch's float32 computation.
'use strict';

const f32 = Math.fround;

// PyTorch-style float32 linspace(start, end, n): first half from start, second half from end.
function linspace(start, end, n) {
  const out = new Float32Array(n);
  if (n === 1) {
    out[0] = start;
    return out;
  }
  const step = f32((end - start) / (n - 1));
  const half = Math.floor(n / 2);
  for (let i = 0; i < n; i++) {
    out[i] = i < half ? f32(start + f32(step * i)) : f32(end - f32(step * (n - 1 - i)));
  }
  return out;
}

// Calls fn(row, col, k) for the patches of an h x w grid in merge-block order (k = row index).
function forEachMergeOrder(h, w, merge, fn) {
  let k = 0;
  for (let bh = 0; bh < h / merge; bh++) {
    for (let bw = 0; bw < w / merge; bw++) {
      for (let ih = 0; ih < merge; ih++) {
        for (let iw = 0; iw < merge; iw++) fn(bh * merge + ih, bw * merge + iw, k++);
      }
    }
  }
}

// Vision host inputs for images with grids [[t,h,w],...]:
//   pos_idx i64 [4,N], pos_weight f32 [4,N]: corners (y0,x0),(y0,x1),(y1,x0),(y1,x1) of the
//     side x side table (row index y*side + x) with bilinear align-corners weights;
//   rope_cos / rope_sin f32 [N, headDim/2]: angles [row*inv_freq, col*inv_freq],
//     inv_freq[j] = 10000^(-2j/(headDim/2)), j < headDim/4;
//   segment_ids i64 [N]: one segment per (image, temporal index).
function visionGridInputs(grids, { side, merge, headDim }) {
  const n = grids.reduce((a, [t, h, w]) => a + t * h * w, 0);
  const half = headDim / 2; // rotary angles per token (row freqs then column freqs)
  const nFreq = half / 2;
  const inv = new Float32Array(nFreq);
  for (let j = 0; j < nFreq; j++) inv[j] = f32(1 / f32(Math.pow(10000, f32(f32(2 * j) / half))));
  const posIdx = new BigInt64Array(4 * n);
  const posW = new Float32Array(4 * n);
  const cos = new Float32Array(n * half);
  const sin = new Float32Array(n * half);
  const seg = new BigInt64Array(n);
  let base = 0;
  let segment = 0;
  for (const [t, h, w] of grids) {
    const ys = linspace(0, side - 1, h);
    const xs = linspace(0, side - 1, w);
    for (let tt = 0; tt < t; tt++, segment++) {
      forEachMergeOrder(h, w, merge, (r, c, k) => {
        const i = base + tt * h * w + k;
        const y0 = Math.trunc(ys[r]);
        const x0 = Math.trunc(xs[c]);
        const y1 = Math.min(y0 + 1, side - 1);
        const x1 = Math.min(x0 + 1, side - 1);
        const dy = f32(ys[r] - y0);
        const dx = f32(xs[c] - x0);
        const corners = [[y0, x0], [y0, x1], [y1, x0], [y1, x1]];
        const weights = [f32(f32(1 - dy) * f32(1 - dx)), f32(f32(1 - dy) * dx),
          f32(dy * f32(1 - dx)), f32(dy * dx)];
        for (let q = 0; q < 4; q++) {
          posIdx[q * n + i] = BigInt(corners[q][0] * side + corners[q][1]);
          posW[q * n + i] = weights[q];
        }
        for (let j = 0; j < nFreq; j++) {
          const ar = f32(r * inv[j]);
          const ac = f32(c * inv[j]);
          cos[i * half + j] = Math.cos(ar);
          sin[i * half + j] = Math.sin(ar);
          cos[i * half + nFreq + j] = Math.cos(ac);
          sin[i * half + nFreq + j] = Math.sin(ac);
        }
        seg[i] = BigInt(segment);
      });
    }
    base += t * h * w;
  }
  return {
    pos_idx: { type: 'int64', data: posIdx, shape: [4, n] },
    pos_weight: { type: 'float32', data: posW, shape: [4, n] },
    rope_cos: { type: 'float32', data: cos, shape: [n, half] },
    rope_sin: { type: 'float32', data: sin, shape: [n, half] },
    segment_ids: { type: 'int64', data: seg, shape: [n] },
  };
}

// get_rope_index for one sequence of image prompts: ids (numbers), image grids in prompt
// order, the image-pad id. Returns { pos: [T[], H[], W[]], delta } (delta = max + 1 - S).
function ropeIndex(ids, grids, { imageTokenId, merge }) {
  const S = ids.length;
  const pos = [new Array(S), new Array(S), new Array(S)];
  let next = 0;
  let img = 0;
  let i = 0;
  while (i < S) {
    if (ids[i] !== imageTokenId) {
      pos[0][i] = pos[1][i] = pos[2][i] = next++;
      i++;
      continue;
    }
    if (img >= grids.length) throw new Error(`prompt has more image blocks than images (${grids.length})`);
    const [t, h, w] = grids[img++];
    const mh = h / merge;
    const mw = w / merge;
    const count = t * mh * mw;
    for (let k = 0; k < count; k++, i++) {
      if (ids[i] !== imageTokenId) throw new Error(`image ${img - 1}: expected ${count} image pad tokens`);
      const rem = k % (mh * mw);
      pos[0][i] = next + Math.floor(k / (mh * mw));
      pos[1][i] = next + Math.floor(rem / mw);
      pos[2][i] = next + (rem % mw);
    }
    next += Math.max(t, mh, mw);
  }
  if (img !== grids.length) throw new Error(`prompt has ${img} image blocks but ${grids.length} images`);
  return { pos, delta: next - S };
}

module.exports = { linspace, visionGridInputs, ropeIndex };
