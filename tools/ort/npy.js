// .npy read/write (format 1.0-3.0, little-endian, C order) mapped to ONNX Runtime
// tensor types: float32, float16, float64, int64, int32, int8, uint8, bool.
'use strict';

const fs = require('fs');

// numpy descr (without byte-order char) -> [ort type, TypedArray constructor]
const DESCR = {
  f4: ['float32', Float32Array],
  f2: ['float16', Uint16Array],
  f8: ['float64', Float64Array],
  i8: ['int64', BigInt64Array],
  i4: ['int32', Int32Array],
  i1: ['int8', Int8Array],
  u1: ['uint8', Uint8Array],
  b1: ['bool', Uint8Array],
};

const ORT_TO_DESCR = {
  float32: '<f4', float16: '<f2', float64: '<f8', int64: '<i8',
  int32: '<i4', int8: '|i1', uint8: '|u1', bool: '|b1',
};

// Parses the python-literal header dict of a .npy file.
function parseHeader(text, file) {
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(text);
  const order = /'fortran_order'\s*:\s*(True|False)/.exec(text);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(text);
  if (!descr || !order || !shape) throw new Error(`${file}: malformed .npy header`);
  if (order[1] === 'True') throw new Error(`${file}: fortran-order .npy is not supported`);
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s.length > 0)
    .map((s) => Number(s));
  return { descr: descr[1], shape: dims };
}

// Reads a .npy file -> { type, shape, data } (data is a fresh TypedArray).
function readNpy(file) {
  let buf;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw new Error(`${file}: cannot read (${e.code || e.message})`);
  }
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') {
    throw new Error(`${file}: not a .npy file`);
  }
  const major = buf[6];
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const hstart = major === 1 ? 10 : 12;
  const { descr, shape } = parseHeader(buf.toString('latin1', hstart, hstart + hlen), file);
  const bo = descr[0];
  const key = descr.slice(1);
  if (!(key in DESCR) || bo === '>') {
    throw new Error(`${file}: unsupported dtype '${descr}'`);
  }
  const [type, Ctor] = DESCR[key];
  const count = shape.reduce((a, b) => a * b, 1);
  const off = hstart + hlen;
  const need = count * Ctor.BYTES_PER_ELEMENT;
  if (buf.length - off < need) {
    throw new Error(`${file}: truncated (${buf.length - off} data bytes, need ${need})`);
  }
  const raw = new ArrayBuffer(need);
  buf.copy(Buffer.from(raw), 0, off, off + need);
  return { type, shape, data: new Ctor(raw) };
}

// Writes { type, shape, data } (ort type names) as a version-1.0 .npy file.
function writeNpy(file, type, shape, data) {
  const descr = ORT_TO_DESCR[type];
  if (!descr) throw new Error(`${file}: cannot write tensor type '${type}' as .npy`);
  const shp = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shp}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  let body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (type === 'bool') body = Buffer.from(Uint8Array.from(data, (v) => (v ? 1 : 0)));
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(header, 'latin1'), body]));
}

module.exports = { readNpy, writeNpy };
