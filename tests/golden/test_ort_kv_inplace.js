#!/usr/bin/env node
// The in-place KV cache of the ONNX Runtime tools (QwenVLFolder.sharedCache, used by
// tools/ort-bench on --ort-fused folders) against the copying path (present fed back as
// past) on one converted --ort-fused folder:
//   - greedy ids of a 40-token prompt + 16 decode steps are identical, and every step's
//     logits agree within 1e-4 of max|logit| (the same arithmetic; only where the cache
//     lives differs, so in practice they are bit-identical);
//   - the cache really is updated in place: after P + n tokens rows [0, P + n) of every
//     layer's buffer hold the keys/values and rows past them are still zero;
//   - exceeding the buffer's capacity is a one-line error, not a silent overwrite;
//   - the standard (non-fused) graph refuses an in-place cache (its attention concatenates).
//
//   node test_ort_kv_inplace.js FUSED_MODEL_DIR [STANDARD_MODEL_DIR]
'use strict';

const path = require('path');
const root = path.resolve(__dirname, '..', '..');
const { QwenVLFolder, argmax } = require(path.join(root, 'tools', 'ort', 'model'));
const { ropeIndex } = require(path.join(root, 'tools', 'ort', 'positions'));

function fail(msg) {
  console.error(`FAIL ${msg}`);
  process.exit(1);
}

// Prefill `ids`, then `steps` greedy decode steps; returns { ids, logits[], cache }.
async function greedy(model, ids, steps, cache) {
  const { pos } = ropeIndex(ids, [], { imageTokenId: model.imageTokenId, merge: model.merge });
  let r = await model.forward(await model.embed(ids), pos, null, cache, 0);
  let len = ids.length;
  const out = [];
  const logits = [];
  for (let i = 0; i < steps; i++) {
    const tok = argmax(r.logits);
    out.push(tok);
    logits.push(Float32Array.from(r.logits));
    r = await model.forward(await model.embed([tok]), [[len], [len], [len]], null, r.cache, len);
    len += 1;
  }
  logits.push(Float32Array.from(r.logits));
  return { ids: out, logits, cache: r.cache, len };
}

async function main(argv) {
  if (argv.length < 1) fail('usage: test_ort_kv_inplace.js FUSED_MODEL_DIR [STANDARD_MODEL_DIR]');
  const model = await QwenVLFolder.open(argv[0], 1);
  if (!model.fusedAttention) fail(`${argv[0]}: not an --ort-fused folder (no GroupQueryAttention)`);
  const prompt = Array.from({ length: 40 }, (_, i) => 1000 + ((i * 7919) % 90000));
  const steps = 16;
  const copied = await greedy(model, prompt, steps, model.emptyCache());
  const capacity = prompt.length + steps + 8;
  const shared = model.sharedCache(capacity);
  const inPlace = await greedy(model, prompt, steps, shared);

  if (copied.ids.join(',') !== inPlace.ids.join(',')) {
    fail(`greedy ids differ: copied ${copied.ids.join(',')} vs in place ${inPlace.ids.join(',')}`);
  }
  let worst = 0;
  copied.logits.forEach((a, s) => {
    const b = inPlace.logits[s];
    let scale = 0;
    let d = 0;
    for (let j = 0; j < a.length; j++) {
      scale = Math.max(scale, Math.abs(a[j]));
      d = Math.max(d, Math.abs(a[j] - b[j]));
    }
    worst = Math.max(worst, d / scale);
  });
  if (!(worst <= 1e-4)) fail(`logits differ by ${worst} of max|logit| (bound 1e-4)`);

  // Written rows: [0, len) where len = prompt + steps (the last step's own token is in too).
  if (inPlace.cache !== shared) fail('forward returned a new cache object instead of the in-place one');
  const D = model.headDim;
  for (const [name, t] of Object.entries(shared.tensors)) {
    const data = t.data;
    for (let h = 0; h < model.kvHeads; h++) {
      const base = h * capacity * D;
      let filled = 0;
      for (let r = 0; r < inPlace.len; r++) {
        let nz = false;
        for (let j = 0; j < D; j++) if (data[base + r * D + j] !== 0) { nz = true; break; }
        if (nz) filled++;
      }
      for (let r = inPlace.len; r < capacity; r++) {
        for (let j = 0; j < D; j++) {
          if (data[base + r * D + j] !== 0) fail(`${name} head ${h}: row ${r} written past the ${inPlace.len} tokens`);
        }
      }
      if (filled !== inPlace.len) fail(`${name} head ${h}: ${filled} of ${inPlace.len} rows written`);
    }
  }

  // Capacity: one more token than the buffer holds is refused.
  const full = model.sharedCache(prompt.length);
  const { pos } = ropeIndex(prompt, [], { imageTokenId: model.imageTokenId, merge: model.merge });
  const r = await model.forward(await model.embed(prompt), pos, null, full, 0);
  let refused = '';
  try {
    await model.forward(await model.embed([argmax(r.logits)]), [[40], [40], [40]], null, r.cache, prompt.length);
  } catch (e) {
    refused = e.message;
  }
  if (!/capacity 40 exceeded/.test(refused)) fail(`over-capacity step not refused (got '${refused}')`);

  if (argv[1]) {
    const standard = await QwenVLFolder.open(argv[1], 1);
    let msg = '';
    try {
      standard.sharedCache(8);
    } catch (e) {
      msg = e.message;
    }
    if (standard.fusedAttention || !/needs the --ort-fused graph/.test(msg)) {
      fail(`${argv[1]}: standard graph accepted an in-place cache (${msg || 'no error'})`);
    }
  }
  console.log(`PASS in-place KV cache: ${steps} greedy ids identical, logits within ${worst.toExponential(1)} ` +
    `of max|logit|, rows [0, ${inPlace.len}) written in place in all ${Object.keys(shared.tensors).length} buffers`);
}

main(process.argv.slice(2)).catch((e) => fail(e.message));
