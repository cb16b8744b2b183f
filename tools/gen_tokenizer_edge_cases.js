#!/usr/bin/env node
// Writes tests/data/tokenizer/edge_golden.jsonl: strings around the code
// points where Unicode versions disagree, with the ids Hugging Face tokenizers
// gives them (encode without special tokens). Hugging Face's pre-tokenizer
// regex sees General_Category as of Unicode 16.0 while its NFC normalizer uses
// Unicode 9.0 tables; these rows pin both (see tools/gen_unicode_tables.py).
//
//   npm install --prefix /tmp/hftok tokenizers@0.23.2
//   NODE_PATH=/tmp/hftok/node_modules node tools/gen_tokenizer_edge_cases.js
const path = require('path');
const fs = require('fs');
const { Tokenizer } = require('tokenizers');

const root = path.join(__dirname, '..');
const tok = Tokenizer.fromFile(path.join(root, 'tests/data/qwen3vl-a/tokenizer.json'));

// Letters / numbers assigned after Unicode 14.0 (15.0, 15.1, 16.0) and a few
// older ones for contrast.
const classChars = [
  0x1d2c0, 0x1d2c5, 0x1d2d3,  // Kaktovik numerals (No, 15.0)
  0x11f50, 0x11f59,           // Kawi digits (Nd, 15.0)
  0x11f04, 0x11f12,           // Kawi letters (Lo, 15.0)
  0x1e030, 0x1e4d0, 0x1e4f0,  // Cyrillic modifier, Nag Mundari letter/digit (15.0)
  0x31350, 0x2ebf0,           // CJK Ext H (15.0), Ext I (15.1)
  0x1c89, 0xa7cb, 0x10d50, 0x10d40, 0x16d40, 0x1e5d0, 0x1e5f1, 0x116d0,  // 16.0
  0x0041, 0x0661, 0x2167, 0x00b2,  // old L / N for contrast
];
const classPatterns = [(c) => 'a' + c + 'b', (c) => ' ' + c + c + 'x', (c) => c + ' ' + c, (c) => '1' + c + '2',
  (c) => '!' + c + '?', (c) => c + '\n\n', (c) => '\'' + c + 'z'];

// Combining marks whose class (ccc) is non-zero only since Unicode 10.0+.
const marks = [0x07fd, 0x08d3, 0x0898, 0x09fe, 0x0c3c, 0x0d3b, 0x1715, 0x1ac1, 0x1df6, 0x1dfa, 0x10d24, 0x10f46,
  0x1e94a, 0x0301, 0x0316];
const markPatterns = [(m) => 'a' + m + '\u0334', (m) => 'a\u0334' + m, (m) => 'e' + m + '\u0301',
  (m) => 'e\u0301' + m + '\u0323', (m) => 'ka' + m + 'b'];

(async () => {
  const rows = [];
  const add = async (text, cat) => {
    const enc = await tok.encode(text, null, { addSpecialTokens: false });
    rows.push(JSON.stringify({ text, ids: Array.from(enc.getIds()), cat }));
  };
  for (const cp of classChars) for (const p of classPatterns) await add(p(String.fromCodePoint(cp)), 'class');
  for (const cp of marks) for (const p of markPatterns) await add(p(String.fromCodePoint(cp)), 'nfc');
  fs.writeFileSync(path.join(root, 'tests/data/tokenizer/edge_golden.jsonl'), rows.join('\n') + '\n');
  console.log('wrote ' + rows.length + ' rows');
})();
