// Sample grids of the image models, as the service draws them (POST /sample, output "quantized": what its PNGs hold), into
// docs/samples/<model>-<tag>.png: one row per temperature (T = 0.5, the manifest's default, 1 where served, and the
// top of its served range), 12 samples per row, the same seeds in every row and every tag, so that
// "before" and "after" grids of a retrained model compare draw for draw. Tiles are 28x28 pixels
// upscaled 3x (nearest), on a mid-grey 4-pixel grid so that black and white tiles both show.
//   npx tsx tools/sample-grid.ts --tag after [--models glow-fashion,nice-mnist,realnvp-mnist] [--model-dir models]
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import sharp, { type OverlayOptions } from 'sharp';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config/config.js';

const ROOT = new URL('..', import.meta.url).pathname;
const { values: args } = parseArgs({
  options: { tag: { type: 'string' }, models: { type: 'string' }, 'model-dir': { type: 'string' }, out: { type: 'string' } },
});
if (!args.tag || !/^[a-z0-9-]+$/.test(args.tag)) throw new Error('--tag is required: lower-case letters, digits and dashes (e.g. before, after)');
const MODELS = (args.models ?? 'glow-fashion,nice-mnist,realnvp-mnist').split(',');
const OUT = resolve(args.out ?? join(ROOT, 'docs', 'samples'));
const COLS = 12;
const SCALE = 3;
const GAP = 4;
const SEED = 20261125;

interface ModelCard {
  sampling: { temperature: { default: number; min: number; max: number } };
  dataShape: number[];
}

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  const config = loadConfig({}, { modelDir: resolve(args['model-dir'] ?? join(ROOT, 'models')), logLevel: 'silent', intraOpThreads: 1 });
  const app = await buildApp(config);
  await app.ready();
  await app.flowserve.whenReady();
  try {
    for (const model of MODELS) {
      const card = (await app.inject({ method: 'GET', url: `/models/${model}` })).json() as ModelCard;
      if (!card.dataShape) throw new Error(`${model}: not served from this model folder`);
      const [, h, w] = card.dataShape;
      const { default: t0, max } = card.sampling.temperature;
      const temps = [...new Set([0.5, t0, ...(max >= 1 ? [1] : []), max])].sort((a, b) => a - b);
      const tile = { w: w * SCALE, h: h * SCALE };
      const width = GAP + COLS * (tile.w + GAP);
      const height = GAP + temps.length * (tile.h + GAP);
      const layers: OverlayOptions[] = [];
      for (const [row, temperature] of temps.entries()) {
        const res = await app.inject({ method: 'POST', url: '/sample', payload: { model, count: COLS, seed: SEED, temperature, output: 'quantized', format: 'array' } });
        if (res.statusCode !== 200) throw new Error(`${model} T=${temperature}: ${res.statusCode} ${res.body}`);
        const samples = (res.json() as { outputs: number[][] }).outputs;
        for (const [col, values] of samples.entries()) {
          // quantized values are bin centres (k + 0.5) / 256: k is the PNG's byte
          const pixels = Uint8Array.from(values, (v) => Math.floor(v * 256));
          const input = await sharp(pixels, { raw: { width: w, height: h, channels: 1 } }).resize(tile.w, tile.h, { kernel: 'nearest' }).png().toBuffer();
          layers.push({ input, left: GAP + col * (tile.w + GAP), top: GAP + row * (tile.h + GAP) });
        }
      }
      const file = join(OUT, `${model}-${args.tag}.png`);
      await sharp({ create: { width, height, channels: 3, background: { r: 128, g: 128, b: 128 } } }).composite(layers).png().toFile(file);
      console.log(`wrote ${file}: rows T = ${temps.join(', ')}; ${COLS} samples per row, seed ${SEED}`);
    }
  } finally {
    await app.close();
  }
}

await main();
