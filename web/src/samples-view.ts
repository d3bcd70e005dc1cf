// The sample grid (POST /sample): temperature within the card's measured range, a seed, a count.
// Image models get the server's PNGs shown unchanged; 2-D models a table here and the points on
// the plane view; square vectors grey tiles; anything else a table of values.
import { ApiError, isAbort } from './api-error.js';
import { apiCall, freshSignal } from './api.js';
import { bumpRun, reportError, setButtonsDisabled, setStatus } from './alerts.js';
import { byId, clear, h } from './dom.js';
import { costText, DIGITS, fixed, numberEl } from './format.js';
import { isReady } from './model-card-view.js';
import { greyMapping, mappingCaption, tileUrl } from './tiles.js';
import type { Item, ModelCard, SampleAnswer } from './types.js';
import { viewKind, type ViewKind } from './view-kind.js';

export interface SampleHooks {
  /** A sample was chosen (pressed) as an interpolation end. */
  onPick(item: Item, index: number): void;
  /** New samples (or none, while the model changes). */
  onSamples(answer: SampleAnswer | null, card: ModelCard): void;
}

const view = byId('samples');
const form = byId<HTMLFormElement>('sample-form');
const slider = byId<HTMLInputElement>('temperature');
const sliderValue = byId<HTMLOutputElement>('temperature-value');
const seedInput = byId<HTMLInputElement>('seed');
const countSelect = byId<HTMLSelectElement>('sample-count');
const grid = byId('sample-grid');
const readout = byId('sample-readout');
const caption = byId('sample-caption');

let card: ModelCard | null = null;
let kind: ViewKind = 'image';
let last: SampleAnswer | null = null;
let hooks: SampleHooks;
let debounce: number | undefined;

export const currentSamples = (): SampleAnswer | null => last;

/** The slider's value as the number sent (the browser may give 0.30000000000000004). */
const temperature = (): number => Math.round(Number(slider.value) * 1000) / 1000;

export function initSamples(h: SampleHooks): void {
  hooks = h;
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void runSamples();
  });
  slider.addEventListener('input', () => {
    sliderValue.textContent = temperature().toFixed(DIGITS.temperature);
    // Dragging fires many events: wait for a short pause, and the previous request is aborted anyway.
    window.clearTimeout(debounce);
    debounce = window.setTimeout(() => void runSamples(), 120);
  });
  seedInput.addEventListener('change', () => void runSamples());
  countSelect.addEventListener('change', () => void runSamples());
  byId('new-seed').addEventListener('click', () => {
    const max = card?.sampling?.seed.max ?? 2 ** 32 - 1;
    seedInput.value = String(crypto.getRandomValues(new Uint32Array(1))[0] % (max + 1));
    void runSamples();
  });
  grid.addEventListener('click', (e) => {
    const btn = (e.target as Element).closest<HTMLElement>('[data-index]');
    if (btn && last && card) hooks.onPick(itemOf(last, Number(btn.dataset.index)), Number(btn.dataset.index));
  });
  const show = (e: Event) => {
    const el = (e.target as Element).closest<HTMLElement>('[data-index]');
    if (el && last) readout.textContent = describe(last, Number(el.dataset.index));
  };
  grid.addEventListener('mouseover', show);
  grid.addEventListener('focusin', show);
}

function describe(a: SampleAnswer, i: number): string {
  const where = a.outputs && a.outputs[i].length <= 3 ? ` at (${a.outputs[i].map((v) => fixed(v, DIGITS.coordinate)).join(', ')})` : '';
  return `Sample ${i + 1}${where}: log p(x) = ${fixed(a.logLikelihood[i], DIGITS.logLikelihood)} nats.`;
}

export function itemOf(a: SampleAnswer, i: number): Item {
  return a.images ? { kind: 'image', base64: a.images[i], label: `sample ${i + 1}` } : { kind: 'vector', row: a.outputs![i], label: `sample ${i + 1}` };
}

/** Sets the controls from a new card: temperature range and default, seed range, counts. */
export function configureSamples(next: ModelCard): void {
  card = next;
  kind = viewKind(next);
  last = null;
  clear(grid);
  grid.dataset.state = 'idle';
  caption.textContent = '';
  readout.textContent = kind === 'plane' ? '' : 'Under each sample: its log p(x) in nats. Hover or focus one for details; press it to make it an interpolation end.';
  const t = next.sampling?.temperature ?? { default: 1, min: 0, minExclusive: true, max: 1 };
  // T = 0 is excluded by every card (min exclusive 0): the slider starts one step above it. A
  // 0.05 step when the range and default sit on that grid, else 0.01 so that both are reachable.
  const onGrid = (v: number) => Math.abs(v / 0.05 - Math.round(v / 0.05)) < 1e-9;
  const step = onGrid(t.max) && onGrid(t.default) ? 0.05 : 0.01;
  const min = t.min > 0 && !t.minExclusive ? t.min : Math.max(step, t.min + step);
  slider.step = String(step);
  slider.min = String(min);
  slider.max = String(t.max);
  slider.value = String(Math.min(t.max, Math.max(min, t.default)));
  sliderValue.textContent = temperature().toFixed(DIGITS.temperature);
  byId('temperature-range').textContent = `${min}–${t.max} (measured maximum), default ${t.default}`;
  const seedMax = next.sampling?.seed.max ?? 2 ** 32 - 1;
  seedInput.max = String(seedMax);
  const maxCount = next.limits?.maxSamplesPerRequest ?? 256;
  const counts = (kind === 'plane' ? [64, 128, 256, 512] : kind === 'table' ? [4, 8, 16] : [8, 16, 32, 64]).filter((c) => c <= maxCount);
  const preferred = kind === 'plane' ? 256 : kind === 'table' ? 8 : 16;
  countSelect.replaceChildren(...counts.map((c) => h('option', { value: c, selected: c === Math.min(preferred, maxCount) }, String(c))));
  const ready = isReady(next);
  for (const el of form.querySelectorAll<HTMLInputElement | HTMLButtonElement | HTMLSelectElement>('input, button, select')) el.disabled = !ready;
  for (const b of form.querySelectorAll<HTMLButtonElement>('button')) b.dataset.unusable = String(!ready);
  setStatus(view, 'idle', ready ? '' : 'This model is unavailable: no samples.');
}

function readSeed(): number | null {
  const max = card?.sampling?.seed.max ?? 2 ** 32 - 1;
  const seed = Number(seedInput.value);
  const ok = seedInput.value.trim() !== '' && Number.isInteger(seed) && seed >= 0 && seed <= max;
  seedInput.setAttribute('aria-invalid', String(!ok));
  if (!ok) reportError(new ApiError('INVALID_SEED', `The seed must be a whole number from 0 to ${max}.`, 0), 'Sampling');
  return ok ? seed : null;
}

export async function runSamples(): Promise<void> {
  window.clearTimeout(debounce);
  if (!card || !isReady(card)) return;
  const seed = readSeed();
  if (seed === null) return;
  const model = card;
  const count = Number(countSelect.value);
  const T = temperature();
  const body: Record<string, unknown> = { model: model.name, count, temperature: T, seed };
  if (kind === 'image') body.format = 'png'; // the PNGs are shown exactly as served
  const signal = freshSignal('samples');
  grid.dataset.state = 'loading';
  setStatus(view, 'loading', `Sampling ${count} at T = ${T.toFixed(DIGITS.temperature)}, seed ${seed}…`);
  setButtonsDisabled(form, true);
  try {
    const answer = await apiCall<SampleAnswer>('/sample', { json: body, signal });
    last = answer;
    render(model, answer, count);
    const mean = answer.logLikelihood.reduce((a, b) => a + b, 0) / answer.logLikelihood.length;
    setStatus(view, 'done', `${count} samples at T = ${answer.temperature.toFixed(DIGITS.temperature)}, seed ${answer.seed}: mean log p(x) = ${fixed(mean, DIGITS.logLikelihood)} nats; ${costText(answer.cost) || 'no cost reported'}.`);
    hooks.onSamples(answer, model);
  } catch (err) {
    if (isAbort(err)) return;
    grid.dataset.state = 'error';
    setStatus(view, 'error', 'Sampling failed (see the message above).');
    reportError(err, 'Sampling');
  } finally {
    if (!signal.aborted) setButtonsDisabled(form, false);
  }
}

function render(model: ModelCard, a: SampleAnswer, count: number): void {
  Object.assign(grid.dataset, { model: model.name, seed: String(a.seed), temperature: String(a.temperature), count: String(count), kind });
  grid.dataset.loglik = JSON.stringify(a.logLikelihood);
  if (a.outputs) grid.dataset.outputs = JSON.stringify(a.outputs);
  else delete grid.dataset.outputs;
  grid.className = `grid ${kind}`;
  caption.textContent = '';
  if (kind === 'image' || kind === 'tiles') {
    let urls: string[];
    if (a.images) urls = a.images.map((b64) => `data:image/png;base64,${b64}`);
    else {
      const m = greyMapping(model, a.outputs!);
      urls = a.outputs!.map((row) => tileUrl(row, m));
      caption.textContent = mappingCaption(m, a.outputs![0].length);
    }
    grid.replaceChildren(
      ...urls.map((src, i) =>
        h(
          'button',
          { type: 'button', class: 'sample', 'data-index': i, 'data-value': String(a.logLikelihood[i]), title: `log p(x) = ${a.logLikelihood[i]} nats`, 'aria-label': `Sample ${i + 1}, log p(x) ${fixed(a.logLikelihood[i], DIGITS.logLikelihood)} nats` },
          h('img', { src, alt: '', class: 'pixelated' }),
          h('span', { class: 'll' }, fixed(a.logLikelihood[i], DIGITS.logLikelihood)),
        ),
      ),
    );
  } else {
    // 2-D (plotted on the plane view) or other vectors: the exact numbers, in a scrolling table.
    const rows = a.outputs!;
    const d = rows[0]?.length ?? 0;
    const head = h('tr', {}, h('th', { scope: 'col' }, '#'), ...Array.from({ length: Math.min(d, 8) }, (_, j) => h('th', { scope: 'col' }, d === 2 ? ['x', 'y'][j] : `x${j + 1}`)), d > 8 ? h('th', { scope: 'col' }, '…') : null, h('th', { scope: 'col' }, 'log p (nats)'));
    const body = rows.map((r, i) =>
      h('tr', { 'data-index': i, 'data-value': String(a.logLikelihood[i]) }, h('td', {}, String(i + 1)), ...r.slice(0, 8).map((v) => numberEl(v, DIGITS.coordinate, undefined, 'td')), d > 8 ? h('td', {}, '…') : null, numberEl(a.logLikelihood[i], DIGITS.logLikelihood, 'logLikelihood', 'td')),
    );
    const table = h('div', { class: 'table-scroll', tabindex: 0, role: 'region', 'aria-label': 'Sample values' }, h('table', { class: 'values' }, h('thead', {}, head), h('tbody', {}, ...body)));
    // On the plane the points are the view; their exact values are one click away.
    grid.replaceChildren(kind === 'plane' ? h('details', { class: 'values-details' }, h('summary', {}, `Values of the ${rows.length} samples`), table) : table);
    if (kind === 'plane') caption.textContent = 'The samples are drawn on the 2-D view below; arrow keys on the plane step through them.';
  }
  grid.dataset.state = 'done';
  bumpRun(grid);
}

/** Marks which samples are the interpolation ends (badges A and B). */
export function markEnds(ends: (number | null)[]): void {
  for (const el of grid.querySelectorAll<HTMLElement>('[data-index]')) {
    const i = Number(el.dataset.index);
    const which = ends[0] === i ? 'A' : ends[1] === i ? 'B' : '';
    if (which) el.dataset.end = which;
    else delete el.dataset.end;
  }
}
