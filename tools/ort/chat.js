// Prompt side of tools/ort-generate: reads messages (-p TEXT or a messages JSON file),
// renders the model folder's chat template with @huggingface/jinja (add_generation_prompt
// = true), expands each <|image_pad|> to grid_t*grid_h*grid_w/merge^2 copies at text level,
// and tokenizes / decodes with Hugging Face `tokenizers` (the Rust library) from tokenizer.json.
'use strict';

const fs = require('fs');
const path = require('path');

const IMAGE_PAD = '<|image_pad|>';

// Reads a JSON file with a one-line error naming it.
function readJson(file) {
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`${file}: cannot read (${e.code || e.message})`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: invalid JSON (${e.message})`);
  }
}

// -p TEXT with --image paths: one user message, images first, then the text.
function messagesFromPrompt(text, images) {
  if (!images.length) return [{ role: 'user', content: text }];
  const parts = images.map((p) => ({ type: 'image', image: path.resolve(p) }));
  parts.push({ type: 'text', text });
  return [{ role: 'user', content: parts }];
}

// Loads a messages file (a list, or an object with `messages`); image paths are made
// absolute relative to the file's folder. Validates roles and part shapes.
function messagesFromFile(file) {
  const doc = readJson(file);
  const msgs = Array.isArray(doc) ? doc : doc && doc.messages;
  if (!Array.isArray(msgs) || !msgs.length) throw new Error(`${file}: expected a non-empty messages list`);
  const base = path.dirname(path.resolve(file));
  return msgs.map((m, i) => {
    if (!m || !['system', 'user', 'assistant'].includes(m.role)) {
      throw new Error(`${file}: messages[${i}]: role must be system, user or assistant`);
    }
    if (typeof m.content === 'string') return { role: m.role, content: m.content };
    if (!Array.isArray(m.content)) throw new Error(`${file}: messages[${i}].content must be a string or a list`);
    const content = m.content.map((part, j) => {
      if (part && part.type === 'text' && typeof part.text === 'string') return { type: 'text', text: part.text };
      if (part && part.type === 'image' && typeof part.image === 'string') {
        return { type: 'image', image: path.isAbsolute(part.image) ? part.image : path.join(base, part.image) };
      }
      throw new Error(`${file}: messages[${i}].content[${j}]: expected {type:text,text} or {type:image,image}`);
    });
    return { role: m.role, content };
  });
}

// Image paths in the order the template renders them (user messages' image parts).
function imagesOf(messages) {
  const out = [];
  for (const m of messages) {
    if (m.role !== 'user' || !Array.isArray(m.content)) continue;
    for (const part of m.content) if (part.type === 'image') out.push(part.image);
  }
  return out;
}

// The chat template string of a model folder (chat_template.json, else tokenizer_config.json).
function chatTemplate(dir) {
  const ct = path.join(dir, 'chat_template.json');
  if (fs.existsSync(ct)) {
    const t = readJson(ct).chat_template;
    if (typeof t === 'string') return t;
  }
  const tc = path.join(dir, 'tokenizer_config.json');
  const t = fs.existsSync(tc) ? readJson(tc).chat_template : undefined;
  if (typeof t !== 'string') throw new Error(`${dir}: no chat_template in chat_template.json or tokenizer_config.json`);
  return t;
}

// Renders the template like transformers' apply_chat_template(add_generation_prompt=True).
function renderPrompt(dir, messages) {
  const { Template } = require('@huggingface/jinja');
  const tc = path.join(dir, 'tokenizer_config.json');
  const cfg = fs.existsSync(tc) ? readJson(tc) : {};
  const special = {};
  for (const k of ['bos_token', 'eos_token', 'pad_token', 'unk_token']) {
    const v = cfg[k];
    special[k] = v && typeof v === 'object' ? v.content : v;
  }
  try {
    return new Template(chatTemplate(dir)).render({ messages, add_generation_prompt: true, ...special });
  } catch (e) {
    throw new Error(`${dir}: chat template failed to render (${e.message})`);
  }
}

// Replaces the k-th <|image_pad|> with counts[k] copies; checks the number of image blocks.
function expandImagePads(prompt, counts) {
  const pieces = prompt.split(IMAGE_PAD);
  if (pieces.length - 1 !== counts.length) {
    throw new Error(`chat template produced ${pieces.length - 1} image blocks for ${counts.length} images`);
  }
  let out = pieces[0];
  counts.forEach((n, k) => {
    out += IMAGE_PAD.repeat(n) + pieces[k + 1];
  });
  return out;
}

// Loads tokenizer.json of a model folder with the Rust `tokenizers` binding.
function loadTokenizer(dir) {
  const file = path.join(dir, 'tokenizer.json');
  if (!fs.existsSync(file)) throw new Error(`${file}: tokenizer file not found`);
  const { Tokenizer } = require('tokenizers');
  try {
    return Tokenizer.fromFile(file);
  } catch (e) {
    throw new Error(`${file}: cannot load tokenizer (${e.message})`);
  }
}

// Token ids of a text (special tokens of the text matched as whole tokens).
async function encode(tokenizer, text) {
  const enc = await tokenizer.encode(text, null, { addSpecialTokens: true });
  return Array.from(enc.getIds());
}

// Text of generated ids, special tokens skipped when asked.
async function decode(tokenizer, ids, skipSpecial) {
  return tokenizer.decode(ids, skipSpecial);
}

module.exports = {
  readJson, messagesFromPrompt, messagesFromFile, imagesOf, renderPrompt, expandImagePads,
  loadTokenizer, encode, decode,
};
