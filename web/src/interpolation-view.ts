// Interpolation (POST /interpolate): two ends (pressed samples, uploaded images, or typed points
// for 2-D models), a number of frames and a path (linear or spherical in latent space). Frames are
// shown as images, tiles or, for 2-D models, as a path on the plane view, each with its log p.
import { apiCall, freshSignal } from './api.js';
import { ApiError, isAbort } from './api-error.js';
import { bumpRun, reportError, setButtonsDisabled, setStatus } from './alerts.js';
import { byId, h } from './dom.js';
import { costText, DIGITS, fixed, numberEl } from './format.js';
import { isReady } from './model-card-view.js';
import { setPlanePath } from './plane-view.js';
import { greyMapping, mappingCaption, tileUrl } from './tiles.js';
import type { InterpolateAnswer, Item, ModelCard } from './types.js';
import { viewKind, type ViewKind } from './view-kind.js';

const view = byId('interpolation');
const form = byId<HTMLFormElement>('interp-form');
const endsBox = byId('interp-ends');
const frames = byId('interp-frames');
const stepsInput = byId<HTMLInputElement>('interp-steps');
const methodSelect = byId<HTMLSelectElement>('interp-method');
const SLOTS = ['A', 'B'] as const;

let card: ModelCard | null = null;
let kind: ViewKind = 'image';
let ends: (Item | null)[] = [null, null];
let endSamples: (number | null)[] = [null, null];
let nextSlot = 0;
let onEndsChanged: (sampleIndexes: (number | null)[]) => void = () => {};

export function initInterpolation(changed: (sampleIndexes: (number | null)[]) => void): void {
  onEndsChanged = changed;
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void runInterpolation();
  });
}

/** Rebuilds the two end slots for a new model. */
export function configureInterpolation(next: ModelCard): void {
  card = next;
  kind = viewKind(next);
  ends = [null, null];
  endSamples = [null, null];
  nextSlot = 0;
  frames.replaceChildren();
  frames.dataset.state = 'idle';
  setPlanePath(null);
  const images = next.input?.images;
  byId('interp-lede').textContent =
    kind === 'image'
      ? `Press two samples above (they become A, then B), or upload two ${images!.width}×${images!.height} images. Both are encoded, the path between their latents decoded frame by frame (POST /interpolate); the end frames are the inputs reconstructed.`
      : kind === 'plane'
        ? 'Click two samples on the plane (or focus it and press Enter on a sample), or type two points. The path between their latents is decoded and drawn on the plane (POST /interpolate).'
        : 'Press two samples above: they become A, then B. The path between their latents is decoded frame by frame (POST /interpolate).';
  endsBox.replaceChildren(...SLOTS.map((s, k) => slotElement(s, k)));
  if (kind === 'image') endsBox.append(h('label', { class: 'check' }, h('input', { type: 'checkbox', id: 'interp-resize' }), ` resize uploads to ${images!.width}×${images!.height}`));
  const ready = isReady(next);
  for (const el of form.querySelectorAll<HTMLInputElement | HTMLButtonElement | HTMLSelectElement>('input, button, select')) el.disabled = !ready;
  for (const b of form.querySelectorAll<HTMLButtonElement>('button')) b.dataset.unusable = String(!ready);
  setStatus(view, 'idle', ready ? '' : 'This model is unavailable.');
}

function slotElement(slot: string, k: number): HTMLElement {
  const id = slot.toLowerCase();
  const box = h('fieldset', { class: 'end', id: `interp-end-${id}` }, h('legend', {}, `End ${slot}`));
  if (kind === 'plane') {
    for (const axis of ['x', 'y'])
      box.append(h('label', { for: `interp-${id}-${axis}` }, `${slot} ${axis}`), h('input', { id: `interp-${id}-${axis}`, type: 'number', step: 'any', inputmode: 'decimal', oninput: () => typed(k) }));
    return box;
  }
  box.append(h('div', { class: 'end-preview', id: `interp-preview-${id}` }, h('span', { class: 'placeholder' }, 'not chosen')));
  if (kind === 'image') {
    const accept = (card?.input?.images?.formats ?? ['png']).map((f) => `image/${f}`).join(',');
    box.append(
      h('label', { for: `interp-file-${id}` }, `Upload image ${slot}`),
      h('input', { id: `interp-file-${id}`, type: 'file', accept, onchange: (e: Event) => void upload(k, (e.target as HTMLInputElement).files?.[0]) }),
    );
  }
  return box;
}

/** A typed coordinate changed: that end is now the typed point, not a sample. */
function typed(k: number): void {
  endSamples[k] = null;
  onEndsChanged(endSamples);
}

async function upload(k: number, file: File | undefined): Promise<void> {
  if (!file) return;
  const url = await new Promise<string>((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
  setEnd(k, { kind: 'image', base64: url.slice(url.indexOf(',') + 1), label: file.name }, null, url);
}

function setEnd(k: number, item: Item, sampleIndex: number | null, previewUrl?: string): void {
  ends[k] = item;
  endSamples[k] = sampleIndex;
  const id = SLOTS[k].toLowerCase();
  if (kind === 'plane' && item.kind === 'vector') {
    byId<HTMLInputElement>(`interp-${id}-x`).value = String(item.row[0]);
    byId<HTMLInputElement>(`interp-${id}-y`).value = String(item.row[1]);
  } else {
    const preview = byId(`interp-preview-${id}`);
    const src = previewUrl ?? (item.kind === 'image' ? `data:image/png;base64,${item.base64}` : card && tileUrl(item.row, greyMapping(card, [item.row])));
    preview.replaceChildren(src ? h('img', { src, alt: `End ${SLOTS[k]}: ${item.label}`, class: 'pixelated' }) : '', h('span', {}, item.label));
  }
  onEndsChanged(endSamples);
}

/** A sample pressed in the grid or on the plane fills A, then B, then A again… */
export function pickEnd(item: Item, sampleIndex: number): void {
  if (!card || item.kind !== (kind === 'image' ? 'image' : 'vector')) return;
  setEnd(nextSlot, item, sampleIndex);
  nextSlot = 1 - nextSlot;
}

/** The samples were redrawn: ends that were samples keep their values but no longer point at a tile. */
export function samplesReplaced(): void {
  endSamples = [null, null];
  onEndsChanged(endSamples);
}

function endRows(): Item[] | null {
  if (kind === 'plane') {
    const rows = SLOTS.map((s) => ['x', 'y'].map((a) => byId<HTMLInputElement>(`interp-${s.toLowerCase()}-${a}`).value.trim()));
    if (rows.some((r) => r.some((v) => v === '' || !Number.isFinite(Number(v))))) return null;
    return rows.map((r, k) => ({ kind: 'vector', row: r.map(Number), label: SLOTS[k] }));
  }
  return ends[0] && ends[1] ? [ends[0], ends[1]] : null;
}

export async function runInterpolation(): Promise<void> {
  if (!card || !isReady(card)) return;
  const model = card;
  const pair = endRows();
  if (!pair) {
    reportError(new ApiError('NO_ENDS', kind === 'plane' ? 'Enter both points (x and y as numbers) or pick two samples on the plane.' : 'Choose both ends first: press two samples, or upload two images.', 0), 'Interpolation');
    return;
  }
  const steps = Number(stepsInput.value);
  if (!Number.isInteger(steps) || steps < 2 || steps > 64) {
    reportError(new ApiError('INVALID_STEPS', 'Frames must be a whole number from 2 to 64.', 0), 'Interpolation');
    return;
  }
  const method = methodSelect.value;
  const body: Record<string, unknown> = { model: model.name, steps, method };
  if (kind === 'image') {
    body.images = pair.map((p) => (p.kind === 'image' ? p.base64 : ''));
    body.format = 'png';
    if (byId<HTMLInputElement>('interp-resize').checked) body.resize = true;
  } else body.inputs = pair.map((p) => (p.kind === 'vector' ? p.row : []));
  const signal = freshSignal('interpolation');
  frames.dataset.state = 'loading';
  setStatus(view, 'loading', `Interpolating ${steps} frames (${method})…`);
  setButtonsDisabled(form, true);
  try {
    const a = await apiCall<InterpolateAnswer>('/interpolate', { json: body, signal });
    render(model, a);
    setStatus(view, 'done', `${a.logLikelihood.length} frames, ${a.method ?? method} path; log p from ${fixed(a.logLikelihood[0], DIGITS.logLikelihood)} to ${fixed(a.logLikelihood[a.logLikelihood.length - 1], DIGITS.logLikelihood)} nats (lowest ${fixed(Math.min(...a.logLikelihood), DIGITS.logLikelihood)}); decoding ${costText(a.cost) || 'cost not reported'}${a.encodeCost ? `, encoding ${costText(a.encodeCost)}` : ''}.`);
  } catch (err) {
    if (isAbort(err)) return;
    frames.dataset.state = 'error';
    setStatus(view, 'error', 'Interpolation failed (see the message above).');
    reportError(err, 'Interpolation');
  } finally {
    if (!signal.aborted) setButtonsDisabled(form, false);
  }
}

function render(model: ModelCard, a: InterpolateAnswer): void {
  const n = a.logLikelihood.length;
  const t = a.t ?? Array.from({ length: n }, (_, i) => (n > 1 ? i / (n - 1) : 0));
  Object.assign(frames.dataset, { model: model.name, steps: String(n), method: a.method ?? '', loglik: JSON.stringify(a.logLikelihood) });
  if (a.outputs) frames.dataset.outputs = JSON.stringify(a.outputs);
  else delete frames.dataset.outputs;
  const caption = (i: number) => h('figcaption', {}, h('span', { class: 't' }, `t = ${t[i].toFixed(3)}`), numberEl(a.logLikelihood[i], DIGITS.logLikelihood, 'logLikelihood'));
  if (a.images || kind === 'tiles') {
    let urls: string[];
    let note = '';
    if (a.images) urls = a.images.map((b64) => `data:image/png;base64,${b64}`);
    else {
      const m = greyMapping(model, a.outputs!);
      urls = a.outputs!.map((r) => tileUrl(r, m));
      note = mappingCaption(m, a.outputs![0].length);
    }
    frames.replaceChildren(
      h('ol', { class: 'frame-list' }, ...urls.map((src, i) => h('li', { class: 'frame', 'data-index': i }, h('figure', {}, h('img', { src, alt: `Frame ${i + 1} of ${n}`, class: 'pixelated' }), caption(i))))),
      note ? h('p', { class: 'caption' }, note) : '',
      h('p', { class: 'caption' }, 'Under each frame: its position t on the path and log p(x) in nats of exactly the frame shown.'),
    );
    setPlanePath(null);
  } else {
    const rows = a.outputs!;
    const d = rows[0]?.length ?? 0;
    frames.replaceChildren(
      h(
        'div',
        { class: 'table-scroll', tabindex: 0, role: 'region', 'aria-label': 'Interpolation frames' },
        h(
          'table',
          { class: 'values' },
          h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 't'), ...rows[0].slice(0, 8).map((_, j) => h('th', { scope: 'col' }, d === 2 ? ['x', 'y'][j] : `x${j + 1}`)), h('th', { scope: 'col' }, 'log p (nats)'))),
          h('tbody', {}, ...rows.map((r, i) => h('tr', { class: 'frame', 'data-index': i }, h('td', {}, t[i].toFixed(3)), ...r.slice(0, 8).map((v) => numberEl(v, DIGITS.coordinate, undefined, 'td')), numberEl(a.logLikelihood[i], DIGITS.logLikelihood, 'logLikelihood', 'td')))),
        ),
      ),
    );
    if (kind === 'plane') setPlanePath(rows);
  }
  frames.dataset.state = 'done';
  bumpRun(frames);
}
