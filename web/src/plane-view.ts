// The 2-D view, for models whose data are points in the plane: a log-density heatmap, the current
// samples, the latent grid mapped into data space and the interpolation path, on two stacked
// canvases (the heatmap alone on #heatmap, so its pixels can be read back as density).
import { apiCall, freshSignal } from './api.js';
import { isAbort } from './api-error.js';
import { reportError, setStatus } from './alerts.js';
import { drawColourBar, viridis } from './colormap.js';
import { byId } from './dom.js';
import { DIGITS, fixed } from './format.js';
import { chunks, quantileSorted, runPool } from './stats.js';
import type { DecodeAnswer, Item, LikelihoodAnswer, ModelCard, SampleAnswer } from './types.js';

interface Window2 {
  x0: number;
  x1: number;
  y0: number;
  y1: number;
}

const section = byId('plane');
const heat = byId<HTMLCanvasElement>('heatmap');
const overlay = byId<HTMLCanvasElement>('plane-overlay');
const readout = byId('plane-readout');
const caption = byId('plane-caption');
const showDensity = byId<HTMLInputElement>('show-density');
const showGrid = byId<HTMLInputElement>('show-grid');
const showSamples = byId<HTMLInputElement>('show-samples');
const SIZE = heat.width; // 512: both canvases share it

/** Lines of constant z₁ and z₂ at these values, each decoded at LINE_POINTS points over the same span. */
const GRID_TICKS = Array.from({ length: 11 }, (_, i) => -2.5 + i * 0.5);
const LINE_POINTS = 41;
/** The colour scale covers at most this many nats below the maximum (far tails would flatten it). */
const COLOUR_SPAN = 12;
const IN_FLIGHT = 2;

let card: ModelCard | null = null;
let win: Window2 | null = null;
let gridN = 0;
let values = new Float64Array(0);
let lines: { z1: number[][][]; z2: number[][][] } | null = null;
let samples: SampleAnswer | null = null;
let selected = -1;
let path: number[][] | null = null;
let markers: number[][] = [];
let onPick: (item: Item, index: number) => void = () => {};

const toCanvas = (x: number, y: number): [number, number] => [((x - win!.x0) / (win!.x1 - win!.x0)) * SIZE, ((win!.y1 - y) / (win!.y1 - win!.y0)) * SIZE];
const toData = (cx: number, cy: number): [number, number] => [win!.x0 + (cx / SIZE) * (win!.x1 - win!.x0), win!.y1 - (cy / SIZE) * (win!.y1 - win!.y0)];

export function initPlane(pick: (item: Item, index: number) => void): void {
  onPick = pick;
  drawColourBar(byId<HTMLCanvasElement>('legend'));
  for (const box of [showDensity, showGrid, showSamples]) box.addEventListener('change', redraw);
  overlay.addEventListener('mousemove', (e) => {
    if (!win) return;
    const [cx, cy] = eventPoint(e);
    const near = nearestSample(cx, cy);
    if (near >= 0) describeSample(near);
    else readout.textContent = describePoint(cx, cy);
  });
  overlay.addEventListener('click', (e) => {
    if (!win) return;
    const [cx, cy] = eventPoint(e);
    const near = nearestSample(cx, cy);
    if (near >= 0) choose(near);
  });
  overlay.addEventListener('keydown', (e) => {
    const n = samples?.outputs?.length ?? 0;
    if (!n) return;
    if (['ArrowRight', 'ArrowDown', 'ArrowLeft', 'ArrowUp'].includes(e.key)) {
      e.preventDefault();
      const step = e.key === 'ArrowRight' || e.key === 'ArrowDown' ? 1 : -1;
      selected = (Math.max(selected, step > 0 ? -1 : 0) + step + n) % n;
      describeSample(selected);
      redraw();
    } else if ((e.key === 'Enter' || e.key === ' ') && selected >= 0) {
      e.preventDefault();
      choose(selected);
    }
  });
}

function choose(i: number): void {
  selected = i;
  describeSample(i);
  redraw();
  onPick({ kind: 'vector', row: samples!.outputs![i], label: `sample ${i + 1}` }, i);
}

function eventPoint(e: MouseEvent): [number, number] {
  const r = overlay.getBoundingClientRect();
  return [((e.clientX - r.left) / r.width) * SIZE, ((e.clientY - r.top) / r.height) * SIZE];
}

/** The sample nearest to a canvas point, within ~8 CSS pixels; -1 when none. */
function nearestSample(cx: number, cy: number): number {
  const rows = samples?.outputs;
  if (!rows || !showSamples.checked) return -1;
  const reach = (8 * SIZE) / overlay.getBoundingClientRect().width;
  let best = -1;
  let bestD = reach * reach;
  rows.forEach(([x, y], i) => {
    const [px, py] = toCanvas(x, y);
    const d = (px - cx) ** 2 + (py - cy) ** 2;
    if (d < bestD) {
      bestD = d;
      best = i;
    }
  });
  return best;
}

function describeSample(i: number): void {
  const [x, y] = samples!.outputs![i];
  readout.textContent = `Sample ${i + 1} at (${fixed(x, DIGITS.coordinate)}, ${fixed(y, DIGITS.coordinate)}): log p(x) = ${fixed(samples!.logLikelihood[i], DIGITS.logLikelihood)} nats.`;
  readout.dataset.value = String(samples!.logLikelihood[i]);
}

function describePoint(cx: number, cy: number): string {
  const [x, y] = toData(cx, cy);
  const i = Math.floor((cx / SIZE) * gridN);
  const j = Math.floor((cy / SIZE) * gridN);
  const v = i >= 0 && j >= 0 && i < gridN && j < gridN ? values[j * gridN + i] : NaN;
  return `(${fixed(x, DIGITS.coordinate)}, ${fixed(y, DIGITS.coordinate)})${Number.isNaN(v) ? '' : `: log p ≈ ${fixed(v, DIGITS.logLikelihood)} nats (grid cell)`}`;
}

/** A new model: forget everything drawn, and compute its window, heatmap and latent grid. */
export async function startPlane(next: ModelCard): Promise<void> {
  card = next;
  win = null;
  lines = null;
  samples = null;
  path = null;
  markers = [];
  selected = -1;
  values = new Float64Array(0);
  heat.getContext('2d')!.clearRect(0, 0, SIZE, SIZE);
  overlay.getContext('2d')!.clearRect(0, 0, SIZE, SIZE);
  heat.dataset.state = 'loading';
  overlay.dataset.lines = '0';
  byId('legend-lo').textContent = '';
  byId('legend-hi').textContent = '';
  const signal = freshSignal('plane');
  const model = next.name;
  const maxItems = next.limits?.maxItemsPerRequest ?? 256;
  try {
    setStatus(section, 'loading', 'Finding the data window from 512 samples at T = 1…');
    win = await dataWindow(next, signal);
    heat.dataset.window = JSON.stringify([win.x0, win.x1, win.y0, win.y1]);
    redraw();

    // ODE flows (cost.forward.kind "adaptive") cost ~90 network evaluations per point: coarser grid.
    gridN = next.cost?.forward.kind === 'adaptive' ? 40 : 64;
    heat.dataset.grid = String(gridN);
    values = new Float64Array(gridN * gridN).fill(NaN);
    const centres: number[][] = [];
    for (let j = 0; j < gridN; j++) for (let i = 0; i < gridN; i++) centres.push(toData(((i + 0.5) * SIZE) / gridN, ((j + 0.5) * SIZE) / gridN));
    let done = 0;
    const parts = chunks(centres, maxItems);
    setStatus(section, 'loading', `Evaluating log p on a ${gridN}×${gridN} grid (${parts.length} requests)…`);
    await runPool(
      parts.map((part, k) => async () => {
        const a = await apiCall<LikelihoodAnswer>('/likelihood', { json: { model, inputs: part, scores: ['nll'] }, signal });
        a.results.forEach((r, m) => (values[k * maxItems + m] = r.logLikelihood));
        done += part.length;
        drawHeatmap();
        setStatus(section, 'loading', `Evaluating log p on a ${gridN}×${gridN} grid: ${done} of ${centres.length} points…`);
      }),
      IN_FLIGHT,
    );
    heat.dataset.state = 'done';

    setStatus(section, 'loading', 'Decoding the latent grid…');
    const latents: number[][] = [];
    const along = Array.from({ length: LINE_POINTS }, (_, i) => -2.5 + (5 * i) / (LINE_POINTS - 1));
    for (const z of GRID_TICKS) for (const s of along) latents.push([z, s]); // constant z₁
    for (const z of GRID_TICKS) for (const s of along) latents.push([s, z]); // constant z₂
    const decoded = (await runPool(chunks(latents, maxItems).map((part) => () => apiCall<DecodeAnswer>('/decode', { json: { model, latents: part, output: 'raw' }, signal })), IN_FLIGHT)).flatMap((a) => a.outputs!);
    const perLine = (k: number) => decoded.slice(k * LINE_POINTS, (k + 1) * LINE_POINTS);
    lines = { z1: GRID_TICKS.map((_, k) => perLine(k)), z2: GRID_TICKS.map((_, k) => perLine(GRID_TICKS.length + k)) };
    overlay.dataset.lines = String(lines.z1.length + lines.z2.length);
    redraw();
    caption.textContent = `Window [${fixed(win.x0, 2)}, ${fixed(win.x1, 2)}] × [${fixed(win.y0, 2)}, ${fixed(win.y1, 2)}]: the 1–99 % quantiles of 512 samples at T = 1 (seed 0), plus 20 % margin, made square. Heatmap: log p at the centres of a ${gridN}×${gridN} grid, colours from max − ${COLOUR_SPAN} nats (or the 2 % quantile, if higher) to the maximum. Latent grid: z₁, z₂ ∈ {−2.5, −2, …, 2.5}, ${LINE_POINTS} decoded points per line.`;
    setStatus(section, 'done', `Density from ${centres.length} points; ${lines.z1.length + lines.z2.length} latent lines.`);
  } catch (err) {
    if (isAbort(err)) return;
    heat.dataset.state = 'error';
    setStatus(section, 'error', 'The 2-D view could not be computed (see the message above).');
    reportError(err, '2-D view');
  }
}

async function dataWindow(next: ModelCard, signal: AbortSignal): Promise<Window2> {
  const count = Math.min(512, next.limits?.maxSamplesPerRequest ?? 256);
  const temperature = Math.min(1, next.sampling?.temperature.max ?? 1);
  const a = await apiCall<SampleAnswer>('/sample', { json: { model: next.name, count, temperature, seed: 0 }, signal });
  const rows = a.outputs!;
  const range = (k: number) => {
    const sorted = rows.map((r) => r[k]).sort((p, q) => p - q);
    return [quantileSorted(sorted, 0.01), quantileSorted(sorted, 0.99)];
  };
  const [ax, bx] = range(0);
  const [ay, by] = range(1);
  // Square, so that the plane is not distorted: the larger span plus 20 % margin on each side.
  const half = (Math.max(bx - ax, by - ay, 1e-6) / 2) * 1.4;
  const cx = (ax + bx) / 2;
  const cy = (ay + by) / 2;
  return { x0: cx - half, x1: cx + half, y0: cy - half, y1: cy + half };
}

function drawHeatmap(): void {
  const finite = Array.from(values).filter(Number.isFinite).sort((a, b) => a - b);
  if (!finite.length) return;
  const hi = finite[finite.length - 1];
  const lo = Math.min(hi - 1e-9, Math.max(quantileSorted(finite, 0.02), hi - COLOUR_SPAN));
  heat.dataset.lo = String(lo);
  heat.dataset.hi = String(hi);
  byId('legend-lo').textContent = `≤ ${fixed(lo, DIGITS.logLikelihood)}`;
  byId('legend-hi').textContent = fixed(hi, DIGITS.logLikelihood);
  const small = document.createElement('canvas');
  small.width = gridN;
  small.height = gridN;
  const sctx = small.getContext('2d')!;
  const img = sctx.createImageData(gridN, gridN);
  values.forEach((v, k) => {
    if (Number.isNaN(v)) return; // not evaluated yet: stays transparent
    const [r, g, b] = viridis((v - lo) / (hi - lo));
    img.data.set([r, g, b, 255], k * 4);
  });
  sctx.putImageData(img, 0, 0);
  const ctx = heat.getContext('2d')!;
  ctx.clearRect(0, 0, SIZE, SIZE);
  ctx.imageSmoothingEnabled = true; // bilinear between cell centres: the density is smooth
  ctx.drawImage(small, 0, 0, SIZE, SIZE);
}

function polyline(ctx: CanvasRenderingContext2D, pts: number[][], colour: string, width: number): void {
  ctx.beginPath();
  pts.forEach(([x, y], i) => {
    const [px, py] = toCanvas(x, y);
    if (i === 0) ctx.moveTo(px, py);
    else ctx.lineTo(px, py);
  });
  // A dark halo under each line keeps it visible on both ends of the colour scale.
  ctx.strokeStyle = 'rgba(0, 0, 0, 0.35)';
  ctx.lineWidth = width + 2;
  ctx.stroke();
  ctx.strokeStyle = colour;
  ctx.lineWidth = width;
  ctx.stroke();
}

function dot(ctx: CanvasRenderingContext2D, x: number, y: number, r: number, fill: string, stroke = 'rgba(0,0,0,0.7)'): void {
  const [px, py] = toCanvas(x, y);
  ctx.beginPath();
  ctx.arc(px, py, r, 0, 2 * Math.PI);
  ctx.fillStyle = fill;
  ctx.fill();
  ctx.lineWidth = 1;
  ctx.strokeStyle = stroke;
  ctx.stroke();
}

function label(ctx: CanvasRenderingContext2D, x: number, y: number, text: string): void {
  const [px, py] = toCanvas(x, y);
  ctx.font = 'bold 15px system-ui, sans-serif';
  ctx.lineWidth = 3;
  ctx.strokeStyle = 'rgba(0,0,0,0.8)';
  ctx.strokeText(text, px + 7, py - 7);
  ctx.fillStyle = '#fff';
  ctx.fillText(text, px + 7, py - 7);
}

/** Draws the overlay: latent grid, samples, selection, interpolation path, scored points. */
function redraw(): void {
  heat.classList.toggle('off', !showDensity.checked);
  const ctx = overlay.getContext('2d')!;
  ctx.clearRect(0, 0, SIZE, SIZE);
  if (!win) return;
  if (lines && showGrid.checked) {
    for (const l of lines.z1) polyline(ctx, l, 'rgba(255, 255, 255, 0.9)', 1.3);
    for (const l of lines.z2) polyline(ctx, l, 'rgba(255, 160, 90, 0.95)', 1.3);
  }
  const rows = samples?.outputs;
  overlay.dataset.samples = String(rows?.length ?? 0);
  if (rows && showSamples.checked) for (const [x, y] of rows) dot(ctx, x, y, 2.4, 'rgba(255,255,255,0.92)');
  if (rows && selected >= 0 && selected < rows.length) dot(ctx, rows[selected][0], rows[selected][1], 6, 'rgba(0,0,0,0)', '#ff2d6f');
  if (path && path.length) {
    polyline(ctx, path, '#ff2d6f', 2.5);
    for (const [x, y] of path) dot(ctx, x, y, 3.2, '#ff2d6f', '#fff');
    label(ctx, path[0][0], path[0][1], 'A');
    label(ctx, path[path.length - 1][0], path[path.length - 1][1], 'B');
  }
  markers.forEach(([x, y], i) => {
    dot(ctx, x, y, 4.5, '#00e5ff');
    label(ctx, x, y, String(i + 1));
  });
}

export function setPlaneSamples(answer: SampleAnswer | null): void {
  samples = answer;
  selected = -1;
  redraw();
}

/** The decoded interpolation frames as a path (null clears it). */
export function setPlanePath(rows: number[][] | null): void {
  path = rows;
  overlay.dataset.path = String(rows?.length ?? 0);
  redraw();
}

/** Points scored in the anomaly view, numbered like their results. */
export function setPlaneMarkers(rows: number[][]): void {
  markers = rows.filter((r) => r.length === 2);
  redraw();
}

export const planeModel = (): string | null => card?.name ?? null;
