// Density heatmaps of every 2-D package (data.shape [2]) in MODEL_DIR: log p on a grid of cell
// centres through the service's own likelihood path (a FlowService in this process, its batchers and
// inference worker, as tools/calibrate.ts does; not raw ORT), drawn as p (not log p) in a
// viridis-like colormap clipped at the grid's 99th percentile. Writes docs/families/<model>.png and
// docs/families/densities.png: one row per training set, its data first (a histogram of fresh
// draws on the same grid), then each model; prints the grid's integral Σ p·(cell area) per model,
// ≈ 1 when the box holds the mass.
//   npx tsx tools/heatmaps.ts [--model-dir DIR] [--out docs/families] [--cells 200] [--scale 2]
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import sharp, { type OverlayOptions } from 'sharp';
import { loadConfig } from '../src/config/config.js';
import type { Manifest } from '../src/config/manifest-schema.js';
import { Rng } from '../src/flow/random.js';
import { FlowService } from '../src/service/flow-service.js';
import { createMetrics } from '../src/service/metrics.js';
import { checkerboard } from './bench-families.js';

const ROOT = new URL('..', import.meta.url).pathname;
const { values: args } = parseArgs({ options: { 'model-dir': { type: 'string' }, out: { type: 'string' }, cells: { type: 'string' }, scale: { type: 'string' } } });
const MODEL_DIR = resolve(args['model-dir'] ?? process.env.MODEL_DIR ?? join(ROOT, 'models'));
const OUT = resolve(args.out ?? join(ROOT, 'docs', 'families'));
/** Cells along the longer side of the box. */
const CELLS = Number(args.cells ?? 200);
/** Pixels per cell. */
const SCALE = Number(args.scale ?? 2);
const CHUNK = 4096;
const CLIP_QUANTILE = 0.99;
const TITLE_H = 22;

interface Box { x: [number, number]; y: [number, number] }
/** Where each training set's mass lies, with a margin. */
const BOXES: Record<string, Box> = {
  checkerboard: { x: [-3, 3], y: [-3, 3] },
  'two-moons': { x: [-1.5, 2.5], y: [-1.0, 1.5] },
};
const DEFAULT_BOX: Box = { x: [-4, 4], y: [-4, 4] };

/** A grid of cell centres; row 0 is the top (largest y), so the image reads like a plot. */
class Grid {
  readonly h: number;
  readonly nx: number;
  readonly ny: number;
  constructor(readonly box: Box) {
    const wx = box.x[1] - box.x[0], wy = box.y[1] - box.y[0];
    this.h = Math.max(wx, wy) / CELLS;
    this.nx = Math.round(wx / this.h);
    this.ny = Math.round(wy / this.h);
  }
  get cells(): number {
    return this.nx * this.ny;
  }
  points(): Float64Array {
    const out = new Float64Array(2 * this.cells);
    for (let r = 0; r < this.ny; r++)
      for (let c = 0; c < this.nx; c++) {
        const k = r * this.nx + c;
        out[2 * k] = this.box.x[0] + (c + 0.5) * this.h;
        out[2 * k + 1] = this.box.y[1] - (r + 0.5) * this.h;
      }
    return out;
  }
  /** Empirical density of points: count / (N · cell area) per cell. */
  histogram(xy: Float64Array): Float64Array {
    const p = new Float64Array(this.cells);
    const n = xy.length / 2;
    for (let i = 0; i < n; i++) {
      const c = Math.floor((xy[2 * i] - this.box.x[0]) / this.h);
      const r = Math.floor((this.box.y[1] - xy[2 * i + 1]) / this.h);
      if (c >= 0 && c < this.nx && r >= 0 && r < this.ny) p[r * this.nx + c]++;
    }
    for (let k = 0; k < p.length; k++) p[k] /= n * this.h * this.h;
    return p;
  }
}


/** sklearn make_moons(noise=0.05), the two-moons set of scripts/flow_data.py (angles drawn, not spaced). */
function twoMoons(n: number, rng: Rng): Float64Array {
  const out = new Float64Array(2 * n);
  for (let i = 0; i < n; i++) {
    const t = Math.PI * rng.nextOpen01();
    const outer = i % 2 === 0;
    out[2 * i] = (outer ? Math.cos(t) : 1 - Math.cos(t)) + 0.05 * rng.nextNormal();
    out[2 * i + 1] = (outer ? Math.sin(t) : 1 - Math.sin(t) - 0.5) + 0.05 * rng.nextNormal();
  }
  return out;
}

const DATA: Record<string, (n: number, rng: Rng) => Float64Array> = { checkerboard, 'two-moons': twoMoons };

// viridis, as a degree-6 polynomial per channel (fit by Matt Zucker, public domain)
const VIRIDIS = [
  [0.2777273272234177, 0.005407344544966578, 0.3340998053353061],
  [0.1050930431085774, 1.404613529898575, 1.384590162594685],
  [-0.3308618287255563, 0.214847559468213, 0.09509516302823659],
  [-4.634230498983486, -5.799100973351585, -19.33244095627987],
  [6.228269936347081, 14.17993336680509, 56.69055772225101],
  [4.776384997670288, -13.74514537774601, -65.35303263337234],
  [-5.435455855934631, 4.645852612178535, 26.3124352495832],
];
function viridis(t: number): [number, number, number] {
  const rgb: [number, number, number] = [0, 0, 0];
  for (let ch = 0; ch < 3; ch++) {
    let v = 0;
    for (let k = VIRIDIS.length - 1; k >= 0; k--) v = v * t + VIRIDIS[k][ch];
    rgb[ch] = Math.round(255 * Math.min(1, Math.max(0, v)));
  }
  return rgb;
}

function quantile(xs: Float64Array, q: number): number {
  const s = Float64Array.from(xs.filter(Number.isFinite)).sort();
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0;
}

const escapeXml = (s: string) => s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);

/** A panel: the heatmap of p (non-finite cells red) under a one-line title, as PNG bytes. */
async function panel(grid: Grid, p: Float64Array, title: string): Promise<Buffer> {
  const clip = quantile(p, CLIP_QUANTILE) || 1;
  const w = grid.nx * SCALE, h = grid.ny * SCALE;
  const px = Buffer.alloc(w * h * 3);
  for (let r = 0; r < grid.ny; r++)
    for (let c = 0; c < grid.nx; c++) {
      const v = p[r * grid.nx + c];
      const rgb: [number, number, number] = Number.isFinite(v) ? viridis(Math.min(1, Math.max(0, v / clip))) : [255, 0, 0];
      for (let dy = 0; dy < SCALE; dy++)
        for (let dx = 0; dx < SCALE; dx++) {
          const o = ((r * SCALE + dy) * w + c * SCALE + dx) * 3;
          px[o] = rgb[0];
          px[o + 1] = rgb[1];
          px[o + 2] = rgb[2];
        }
    }
  const heat = await sharp(px, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${TITLE_H}"><text x="4" y="${TITLE_H - 6}" font-family="DejaVu Sans, sans-serif" font-size="13" fill="#111">${escapeXml(title)}</text></svg>`;
  return sharp({ create: { width: w, height: h + TITLE_H, channels: 3, background: '#ffffff' } })
    .composite([{ input: Buffer.from(svg), top: 0, left: 0 }, { input: heat, top: TITLE_H, left: 0 }])
    .png()
    .toBuffer();
}

async function main(): Promise<void> {
  const names = readdirSync(MODEL_DIR)
    .filter((n) => existsSync(join(MODEL_DIR, n, 'flow.json')))
    .sort();
  const manifests = new Map<string, Manifest>();
  for (const n of names) {
    try {
      const m = JSON.parse(readFileSync(join(MODEL_DIR, n, 'flow.json'), 'utf8')) as Manifest;
      if (m.data.shape.length === 1 && m.data.shape[0] === 2) manifests.set(n, m);
    } catch (err) {
      console.warn(`${n}: flow.json unreadable (${(err as Error).message}), skipped`);
    }
  }
  if (manifests.size === 0) throw new Error(`no 2-D package (data.shape [2]) in ${MODEL_DIR}`);

  // A MODEL_DIR of links to the 2-D packages only: the service loads (and verifies) just these.
  const onlyThese = mkdtempSync(join(tmpdir(), 'flowserve-heatmaps-'));
  for (const n of manifests.keys()) symlinkSync(join(MODEL_DIR, n), join(onlyThese, n), 'dir');
  const service = new FlowService(
    loadConfig({}, { modelDir: onlyThese, executionProvider: 'cpu', maxQueueSize: 1_000_000, requestTimeoutMs: 3_600_000, maxItemsPerRequest: CHUNK }),
    createMetrics(),
    { info() {}, warn: console.warn, error: console.error },
  );
  mkdirSync(OUT, { recursive: true });
  /** Panels by training set: data first, then the models. */
  const rows = new Map<string, { grid: Grid; panels: Buffer[] }>();
  const summary: string[] = [];
  try {
    await service.start();
    for (const [name, m] of manifests) {
      const dataset = m.training.dataset;
      const box = BOXES[dataset] ?? DEFAULT_BOX;
      const grid = new Grid(box);
      if (!rows.has(dataset)) {
        const draw = DATA[dataset];
        const panels: Buffer[] = [];
        if (draw) panels.push(await panel(grid, grid.histogram(draw(2_000_000, new Rng(0))), `training data: ${dataset}`));
        rows.set(dataset, { grid, panels });
      }
      let model;
      try {
        model = service.resolve(name);
      } catch (err) {
        summary.push(`${name}: not served (${(err as Error).message}), skipped`);
        continue;
      }
      const xy = grid.points();
      const logp = new Float64Array(grid.cells);
      const started = performance.now();
      for (let i = 0; i < grid.cells; i += CHUNK) {
        const n = Math.min(CHUNK, grid.cells - i);
        const rowsXY = xy.subarray(2 * i, 2 * (i + n));
        try {
          const { results } = await service.likelihood(model, rowsXY, n, { scores: [] });
          results.forEach((r, k) => (logp[i + k] = r.logLikelihood));
        } catch {
          // one row the flow cannot map (non-finite) fails the chunk: score its rows one by one
          for (let k = 0; k < n; k++)
            logp[i + k] = await service
              .likelihood(model, rowsXY.slice(2 * k, 2 * k + 2), 1, { scores: [] })
              .then((a) => a.results[0].logLikelihood, () => NaN);
        }
      }
      const seconds = (performance.now() - started) / 1000;
      const p = logp.map(Math.exp);
      let integral = 0, bad = 0;
      for (const v of p) if (Number.isFinite(v)) integral += v * grid.h * grid.h;
      else bad++;
      const title = `${name} (${m.family})  ∫p = ${integral.toFixed(3)}`;
      const png = await panel(grid, p, title);
      await sharp(png).toFile(join(OUT, `${name}.png`));
      rows.get(dataset)!.panels.push(png);
      const boxText = `[${box.x.join(', ')}] × [${box.y.join(', ')}]`;
      summary.push(`${name} (${m.family}, ${dataset}): Σ p·ΔA over ${boxText} (${grid.nx}×${grid.ny} cells) = ${integral.toFixed(4)}; max p ${Math.max(...p.filter(Number.isFinite)).toFixed(3)}; ${bad} non-finite cells; ${seconds.toFixed(1)} s`);
      console.log(summary[summary.length - 1]);
    }
  } finally {
    await service.close();
    rmSync(onlyThese, { recursive: true, force: true });
  }

  // densities.png: one row per training set, left-aligned; panels of a row share the grid.
  const GAP = 8;
  const metas = [...rows.values()].map((r) => ({ ...r, w: r.grid.nx * SCALE, h: r.grid.ny * SCALE + TITLE_H }));
  const width = GAP + Math.max(...metas.map((r) => r.panels.length * (r.w + GAP)));
  const height = GAP + metas.reduce((s, r) => s + r.h + GAP, 0);
  const layers: OverlayOptions[] = [];
  let top = GAP;
  for (const r of metas) {
    r.panels.forEach((input, i) => layers.push({ input, top, left: GAP + i * (r.w + GAP) }));
    top += r.h + GAP;
  }
  const sideBySide = join(OUT, 'densities.png');
  await sharp({ create: { width, height, channels: 3, background: '#ffffff' } }).composite(layers).png().toFile(sideBySide);
  console.log('');
  for (const s of summary) console.log(s);
  console.log(`wrote ${[...manifests.keys()].map((n) => join(OUT, `${n}.png`)).join(', ')} and ${sideBySide} (colour: p / its ${CLIP_QUANTILE * 100}th percentile over the grid, viridis; red: non-finite)`);
}

await main();
