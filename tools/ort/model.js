// Model-folder driver of tools/ort-generate: runs a converted Qwen3-VL folder
// (vision.onnx, embedding.onnx, text.onnx; see ARCHITECTURE.md "Model folder") with
// ONNX Runtime: vision tower with host grid inputs, embedding lookup with the image rows
// scattered in, text decoder prefill + single-token decode steps with a KV cache
// (present -> past), 3-D position ids and DeepStack rows at image positions.
'use strict';

const fs = require('fs');
const path = require('path');
const S = require('./session');
const { visionGridInputs } = require('./positions');
const { readJson } = require('./chat');

// float32 -> IEEE half bits (round to nearest even), for fp16 graphs.
function toHalf(src) {
  const out = new Uint16Array(src.length);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < src.length; i++) {
    f[0] = src[i];
    const x = u[0];
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    let mant = x & 0x7fffff;
    if (exp === 0xff) {
      out[i] = sign | 0x7c00 | (mant ? 0x200 : 0);
      continue;
    }
    let e = exp - 127 + 15;
    if (e >= 0x1f) {
      out[i] = sign | 0x7c00;
      continue;
    }
    if (e <= 0) {
      if (e < -10) {
        out[i] = sign;
        continue;
      }
      mant |= 0x800000;
      const shift = 14 - e;
      let h = mant >>> shift;
      const rem = mant & ((1 << shift) - 1);
      const halfway = 1 << (shift - 1);
      if (rem > halfway || (rem === halfway && (h & 1))) h++;
      out[i] = sign | h;
      continue;
    }
    let h = (e << 10) | (mant >>> 13);
    const rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
    out[i] = sign | h;
  }
  return out;
}

// IEEE half bits -> float32.
function fromHalf(src) {
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const h = src[i];
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >>> 10) & 0x1f;
    const m = h & 0x3ff;
    if (e === 0) out[i] = s * m * 2 ** -24;
    else if (e === 0x1f) out[i] = m ? NaN : s * Infinity;
    else out[i] = s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return out;
}

// float32 data as a tensor of the graph input's float type.
function floatTensor(type, data, shape) {
  return type === 'float16' ? S.tensor('float16', toHalf(data), shape) : S.tensor('float32', data, shape);
}

// Output tensor data as Float32Array.
function asFloat32(t) {
  return t.type === 'float16' ? fromHalf(t.data) : t.data;
}

class QwenVLFolder {
  // this.trace: optional (graph, feeds, outputs) callback after every run (ort-generate --dump).

  // Opens a converted model folder: configs + embedding/text (+ vision if present) sessions.
  static async open(dir, threads) {
    const m = new QwenVLFolder();
    m.dir = dir;
    m.threads = threads;
    for (const f of ['config.json', 'embedding.onnx', 'text.onnx']) {
      if (!fs.existsSync(path.join(dir, f))) throw new Error(`${path.join(dir, f)}: not found (expected a converted model folder)`);
    }
    const cfg = readJson(path.join(dir, 'config.json'));
    const tc = cfg.text_config || cfg;
    const vc = cfg.vision_config || {};
    m.hidden = tc.hidden_size;
    m.kvHeads = tc.num_key_value_heads;
    m.headDim = tc.head_dim || tc.hidden_size / tc.num_attention_heads;
    m.imageTokenId = cfg.image_token_id !== undefined ? cfg.image_token_id : 151655;
    m.merge = vc.spatial_merge_size || 2;
    m.vision = {
      side: Math.round(Math.sqrt(vc.num_position_embeddings || 2304)),
      merge: m.merge,
      headDim: vc.hidden_size / vc.num_heads,
    };
    m.nDeepstack = (vc.deepstack_visual_indexes || []).length;
    const gen = path.join(dir, 'generation_config.json');
    const eos = fs.existsSync(gen) ? readJson(gen).eos_token_id : tc.eos_token_id;
    m.eos = new Set([].concat(eos === undefined || eos === null ? [] : eos));
    const t0 = process.hrtime.bigint();
    // The embedding is one Gather per step: its threads must not spin while text.onnx runs.
    m.embedding = await S.createSession(path.join(dir, 'embedding.onnx'), threads, true);
    m.text = await S.createSession(path.join(dir, 'text.onnx'), threads);
    const vision = path.join(dir, 'vision.onnx');
    if (fs.existsSync(vision)) m.visionSession = await S.createSession(vision, threads);
    m.textInfo = S.inputInfo(m.text);
    m.layers = m.text.inputNames.filter((n) => /^past_key_values\.\d+\.key$/.test(n)).length;
    // GroupQueryAttention (the --ort-fused form) can update a KV cache in place.
    m.fusedAttention = fs.readFileSync(path.join(dir, 'text.onnx')).includes('GroupQueryAttention');
    m.loadMs = S.msSince(t0);
    return m;
  }

  // Vision tower on all images: { embeds [M*H], deepstack: [[M*H]...], rows M }.
  async runVision(pixels, grids) {
    const file = path.join(this.dir, 'vision.onnx');
    if (!this.visionSession) throw new Error(`${file}: not found (prompt has images)`);
    const sess = this.visionSession;
    const info = S.inputInfo(sess);
    const host = visionGridInputs(grids, this.vision);
    const feeds = {};
    for (const name of sess.inputNames) {
      if (name === 'pixel_values') {
        feeds[name] = floatTensor(info[name].type, pixels.data, pixels.shape);
      } else if (host[name]) {
        const h = host[name];
        feeds[name] = h.type === 'float32' ? floatTensor(info[name].type, h.data, h.shape) : S.tensor(h.type, h.data, h.shape);
      } else {
        throw new Error(`${file}: unexpected graph input '${name}'`);
      }
    }
    const out = await S.run(sess, feeds, file);
    if (this.trace) this.trace('vision', feeds, out);
    const ds = sess.outputNames.filter((n) => /^deepstack_\d+$/.test(n))
      .sort((a, b) => Number(a.split('_')[1]) - Number(b.split('_')[1]));
    return {
      embeds: asFloat32(out.image_embeds),
      rows: out.image_embeds.dims[0],
      deepstack: ds.map((n) => asFloat32(out[n])),
    };
  }

  // embedding.onnx: ids -> Float32Array [S*H].
  async embed(ids) {
    const t = S.tensor('int64', BigInt64Array.from(ids, (v) => BigInt(v)), [1, ids.length]);
    const out = await S.run(this.embedding, { input_ids: t }, path.join(this.dir, 'embedding.onnx'));
    if (this.trace) this.trace('embedding', { input_ids: t }, out);
    return Float32Array.from(asFloat32(out[this.embedding.outputNames[0]]));
  }

  // One zero tensor [1, kv, len, D] per past_key_values input, in the graph's past dtype.
  cacheTensors(len) {
    const cache = {};
    for (let i = 0; i < this.layers; i++) {
      for (const kind of ['key', 'value']) {
        const name = `past_key_values.${i}.${kind}`;
        const type = this.textInfo[name].type || 'float32';
        const Ctor = type === 'float16' ? Uint16Array : Float32Array;
        cache[name] = S.tensor(type, new Ctor(this.kvHeads * len * this.headDim), [1, this.kvHeads, len, this.headDim]);
      }
    }
    return cache;
  }

  // Empty KV cache (P = 0), fed back through present -> past.
  emptyCache() {
    return this.cacheTensors(0);
  }

  // KV cache of capacity maxLen updated in place, as onnxruntime-genai binds it:
  // past_key_values.i and present.i are the same [1, kv, maxLen, D] buffers (fed as
  // inputs and pre-allocated as outputs), so GroupQueryAttention appends the new rows
  // where they belong and nothing is copied between steps. Only for the fused graph
  // (its total_sequence_length comes from attention_mask, not from the past shape).
  sharedCache(maxLen) {
    if (!this.fusedAttention) {
      throw new Error(`${path.join(this.dir, 'text.onnx')}: an in-place KV cache needs the --ort-fused graph (GroupQueryAttention)`);
    }
    return { shared: true, maxLen, tensors: this.cacheTensors(maxLen) };
  }

  // One text.onnx forward over `n` new tokens: embeds [n*H], pos [3][n] (numbers),
  // deepstack [nDs][n*H] or null (zeros), past length P. Returns { logits row of the
  // last token (Float32Array V), cache (present -> past) }.
  async forward(embeds, pos, deepstack, cache, pastLen) {
    const n = pos[0].length;
    const H = this.hidden;
    const info = this.textInfo;
    const shared = cache.shared === true;
    if (shared && pastLen + n > cache.maxLen) {
      throw new Error(`KV cache capacity ${cache.maxLen} exceeded (${pastLen} + ${n} tokens)`);
    }
    const feeds = shared ? { ...cache.tensors } : { ...cache };
    feeds.inputs_embeds = floatTensor(info.inputs_embeds.type, embeds, [1, n, H]);
    feeds.attention_mask = S.tensor('int64', new BigInt64Array(pastLen + n).fill(1n), [1, pastLen + n]);
    const p = new BigInt64Array(3 * n);
    for (let a = 0; a < 3; a++) for (let i = 0; i < n; i++) p[a * n + i] = BigInt(pos[a][i]);
    feeds.position_ids = S.tensor('int64', p, [3, 1, n]);
    if (info.deepstack_embeds) {
      const nDs = this.nDeepstack;
      const ds = new Float32Array(nDs * n * H);
      if (deepstack) deepstack.forEach((rows, k) => ds.set(rows, k * n * H));
      feeds.deepstack_embeds = floatTensor(info.deepstack_embeds.type, ds, [nDs, 1, n, H]);
    }
    let fetches;
    if (shared) {
      fetches = { logits: null };
      for (let i = 0; i < this.layers; i++) {
        for (const kind of ['key', 'value']) fetches[`present.${i}.${kind}`] = cache.tensors[`past_key_values.${i}.${kind}`];
      }
    }
    const out = await S.run(this.text, feeds, path.join(this.dir, 'text.onnx'), fetches);
    if (this.trace) this.trace('text', feeds, out);
    const logits = out.logits;
    const V = logits.dims[2];
    const all = asFloat32(logits);
    const last = all.subarray((logits.dims[1] - 1) * V, logits.dims[1] * V);
    if (shared) return { logits: last, cache };
    const next = {};
    for (let i = 0; i < this.layers; i++) {
      next[`past_key_values.${i}.key`] = out[`present.${i}.key`];
      next[`past_key_values.${i}.value`] = out[`present.${i}.value`];
    }
    return { logits: last, cache: next };
  }
}

// Index of the largest value (first one on ties, like torch.argmax).
function argmax(v) {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

module.exports = { QwenVLFolder, argmax, toHalf, fromHalf };
