// Image preprocessing for tools/ort-generate: runs tools/hf_preprocess.py (PIL + numpy
// reference of HF's slow Qwen2VLImageProcessor) on the prompt's images and reads back
// pixel_values f32 [N,1536] and image_grid_thw i64 [n,3].
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const { readNpy } = require('./npy');
const { oneLine } = require('./session');

// Preprocesses `images` (paths) with the model folder's preprocessor_config.json.
// Returns { pixels: {type,data,shape}, grids: [[t,h,w],...] }.
function preprocessImages(modelDir, images, { minPixels, maxPixels } = {}) {
  for (const p of images) {
    if (!fs.existsSync(p)) throw new Error(`${p}: image file not found`);
  }
  const cfg = path.join(modelDir, 'preprocessor_config.json');
  if (!fs.existsSync(cfg)) throw new Error(`${cfg}: preprocessor config not found`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ort-generate-'));
  try {
    const args = [path.join(__dirname, '..', 'hf_preprocess.py'), '--config', cfg, '--out', tmp];
    if (minPixels) args.push('--min-pixels', String(minPixels));
    if (maxPixels) args.push('--max-pixels', String(maxPixels));
    args.push(...images);
    try {
      execFileSync('python3', args, {
        env: { ...process.env, PYENV_VERSION: 'system' }, stdio: ['ignore', 'pipe', 'pipe'],
      });
    } catch (e) {
      const msg = e.stderr && String(e.stderr).trim() ? String(e.stderr) : e.message;
      throw new Error(oneLine(msg).replace(/^hf_preprocess: error: /, ''));
    }
    const pixels = readNpy(path.join(tmp, 'pixel_values.npy'));
    const g = readNpy(path.join(tmp, 'image_grid_thw.npy'));
    const grids = [];
    for (let i = 0; i < g.shape[0]; i++) {
      grids.push([Number(g.data[3 * i]), Number(g.data[3 * i + 1]), Number(g.data[3 * i + 2])]);
    }
    return { pixels, grids };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

module.exports = { preprocessImages };
