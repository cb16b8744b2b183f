// Shared ONNX Runtime helpers: session creation with one-line errors, tensor
// construction, file-name mapping of value names, and the CLI error/exit convention.
'use strict';

const fs = require('fs');
const path = require('path');

let ort = null;

// Loads onnxruntime-node lazily so argument errors need no runtime.
function runtime() {
  if (!ort) {
    try {
      ort = require('onnxruntime-node');
    } catch (e) {
      throw new Error('onnxruntime-node is not installed (run: cd tools && ONNXRUNTIME_NODE_INSTALL=skip npm ci)');
    }
  }
  return ort;
}

// Graph value name -> file stem: '/' and ':' become '_' (e.g. '/model/Add:0' -> '_model_Add_0').
function fileStem(name) {
  return name.replace(/[/:]/g, '_');
}

// Creates an InferenceSession (CPU EP, all graph optimizations, optional thread count).
// noSpin: the session's intra-op threads sleep as soon as a run ends instead of spinning
// (for a light session next to a heavy one, whose threads its spinning would steal from).
async function createSession(modelPath, threads, noSpin = false) {
  if (!fs.existsSync(modelPath)) throw new Error(`${modelPath}: model file not found`);
  const opts = { executionProviders: ['cpu'], graphOptimizationLevel: 'all' };
  if (noSpin) opts.extra = { session: { intra_op: { allow_spinning: '0' } } };
  if (threads) {
    opts.intraOpNumThreads = threads;
    opts.interOpNumThreads = 1;
  }
  try {
    return await runtime().InferenceSession.create(modelPath, opts);
  } catch (e) {
    throw new Error(`${modelPath}: ONNX Runtime cannot load the model (${oneLine(e.message)})`);
  }
}

// Makes an ort.Tensor from a type, shape and TypedArray.
function tensor(type, data, shape) {
  return new (runtime().Tensor)(type, data, shape);
}

// Metadata of the session's inputs keyed by name: { type, shape } (shape may hold names).
function inputInfo(session) {
  const info = {};
  const meta = session.inputMetadata || [];
  session.inputNames.forEach((name, i) => {
    const m = meta[i] || {};
    info[name] = { type: m.isTensor ? m.type : undefined, shape: m.shape };
  });
  return info;
}

// Runs the session; ORT failures become one-line errors naming the model.
async function run(session, feeds, label, fetches) {
  try {
    return fetches ? await session.run(feeds, fetches) : await session.run(feeds);
  } catch (e) {
    throw new Error(`${label}: ONNX Runtime run failed (${oneLine(e.message)})`);
  }
}

// First line of a (possibly multi-line) message, trimmed.
function oneLine(msg) {
  return String(msg).split('\n').map((s) => s.trim()).filter((s) => s)[0] || 'unknown error';
}

// Parses "--threads N"-style positive integers.
function positiveInt(flag, value) {
  const n = Number(value);
  if (value === undefined || !Number.isInteger(n) || n <= 0) {
    throw new Error(`${flag}: expected a positive integer, got '${value === undefined ? '' : value}'`);
  }
  return n;
}

// Runs an async CLI main: any error prints "<tool>: error: <one line>" and exits 1.
function cliMain(tool, main) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code || 0),
    (e) => {
      process.stderr.write(`${tool}: error: ${oneLine(e && e.message ? e.message : e)}\n`);
      process.exit(1);
    },
  );
}

// Milliseconds since t0 (from process.hrtime.bigint()).
function msSince(t0) {
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

// Resolves a path relative to a base folder unless it is absolute.
function resolveFrom(base, p) {
  return path.isAbsolute(p) ? p : path.join(base, p);
}

module.exports = {
  runtime, fileStem, createSession, tensor, inputInfo, run, oneLine, positiveInt,
  cliMain, msSince, resolveFrom,
};
