// Anomaly scoring (POST /likelihood): images dropped or chosen (multipart upload, the way a user's
// files arrive) or typed vectors (JSON inputs). Every number the API returns is shown, against the
// model's calibration: the threshold and the histogram of in-distribution scores.
import { apiCall, freshSignal } from './api.js';
import { ApiError, isAbort } from './api-error.js';
import { bumpRun, reportError, setButtonsDisabled, setStatus } from './alerts.js';
import { byId, h } from './dom.js';
import { costText, DIGITS, fixed, numberEl, percent } from './format.js';
import { drawHistogram, BINS, type Marker } from './histogram.js';
import { isReady } from './model-card-view.js';
import { setPlaneMarkers } from './plane-view.js';
import { greyMapping, tileUrl } from './tiles.js';
import type { LikelihoodAnswer, ModelCard, SampleAnswer } from './types.js';
import { dataSize, viewKind } from './view-kind.js';

const view = byId('anomaly');
const dropZone = byId('drop-zone');
const fileInput = byId<HTMLInputElement>('anomaly-files');
const pointsForm = byId<HTMLFormElement>('points-form');
const pointsInput = byId<HTMLTextAreaElement>('points-input');
const results = byId('anomaly-results');
const histogram = byId<HTMLCanvasElement>('calibration-histogram');
const histogramCaption = byId('histogram-caption');
const batchBox = byId('batch-test');

/** The normalized anomaly score's threshold: the API calibrates anomalyScore so that 0.5 is it. */
const NORMALIZED_THRESHOLD = 0.5;

let card: ModelCard | null = null;
let markers: Marker[] = [];
let thumbnails: string[] = [];
let samples: () => SampleAnswer | null = () => null;

export function initAnomaly(currentSamples: () => SampleAnswer | null): void {
  samples = currentSamples;
  for (const type of ['dragenter', 'dragover']) {
    dropZone.addEventListener(type, (e) => {
      e.preventDefault(); // allows the drop
      dropZone.classList.add('over');
    });
  }
  dropZone.addEventListener('dragleave', () => dropZone.classList.remove('over'));
  dropZone.addEventListener('drop', (e) => {
    e.preventDefault(); // never let the browser open the file instead
    dropZone.classList.remove('over');
    const files = Array.from(e.dataTransfer?.files ?? []);
    if (files.length) void scoreFiles(files);
  });
  fileInput.addEventListener('change', () => {
    const files = Array.from(fileInput.files ?? []);
    if (files.length) void scoreFiles(files);
  });
  pointsForm.addEventListener('submit', (e) => {
    e.preventDefault();
    void scorePoints();
  });
  byId('points-from-samples').addEventListener('click', () => {
    const a = samples();
    if (a?.outputs) pointsInput.value = a.outputs.slice(0, 4).map((r) => r.join(', ')).join('\n');
  });
  new ResizeObserver(() => drawCalibration()).observe(histogram);
}

export function configureAnomaly(next: ModelCard): void {
  card = next;
  markers = [];
  clearThumbnails();
  results.replaceChildren(h('p', { class: 'placeholder' }, 'No inputs scored yet.'));
  results.dataset.state = 'idle';
  batchBox.hidden = true;
  setPlaneMarkers([]);
  const kind = viewKind(next);
  const images = next.input?.images;
  dropZone.hidden = kind !== 'image';
  pointsForm.hidden = kind === 'image';
  const cal = next.calibration;
  const d = dataSize(next);
  byId('anomaly-lede').textContent =
    (kind === 'image'
      ? `Drop ${images!.width}×${images!.height} images (or tick "resize"): each is scored by POST /likelihood (multipart upload); several at once also get the batch typicality test. `
      : `Type inputs of ${d} numbers each (one per line) and score them with POST /likelihood. `) +
    (cal
      ? `The anomaly score is ${cal.defaultScore} calibrated so that ${NORMALIZED_THRESHOLD} is the threshold (raw ${fixed(cal.threshold, DIGITS.score)}${cal.targetFalsePositiveRate !== undefined ? `, ${percent(cal.targetFalsePositiveRate)} false positives on in-distribution data` : ''}).`
      : 'This model has no calibration: log-likelihoods and raw scores only.');
  if (kind === 'plane') pointsInput.value = '0, 0\n4, 4';
  else if (kind !== 'image') pointsInput.value = '';
  const ready = isReady(next);
  fileInput.disabled = !ready;
  for (const el of pointsForm.querySelectorAll<HTMLButtonElement | HTMLTextAreaElement>('button, textarea')) el.disabled = !ready;
  for (const b of pointsForm.querySelectorAll<HTMLButtonElement>('button')) b.dataset.unusable = String(!ready);
  setStatus(view, 'idle', ready ? '' : 'This model is unavailable.');
  drawCalibration();
}

function clearThumbnails(): void {
  for (const url of thumbnails) if (url.startsWith('blob:')) URL.revokeObjectURL(url);
  thumbnails = [];
}

function drawCalibration(): void {
  const cal = card?.calibration;
  histogram.parentElement!.hidden = !cal;
  if (!cal || !histogram.clientWidth) return;
  const dist = cal.distribution && cal.distribution.quantiles?.length >= 3 ? cal.distribution : null;
  drawHistogram(histogram, { quantiles: dist?.quantiles ?? null, threshold: cal.threshold, markers });
  histogramCaption.textContent = dist
    ? `In-distribution ${dist.score} on ${cal.split ?? 'the calibration split'}${cal.count !== undefined ? ` (${cal.count} items)` : ''}: the card's ${dist.quantiles.length} quantiles rebinned into ${BINS} equal bins over the 1–99 % quantiles (each quantile interval holds an equal share of the mass, spread evenly; the 1 % tails are not drawn). Red bins lie above the threshold (dashed). Triangles: the raw ${cal.defaultScore} of your inputs, numbered as in the results; ◀ ▶ mark values beyond the axis.`
    : `The card has no calibration distribution: the dashed line is the raw ${cal.defaultScore} threshold, triangles your inputs' raw scores.`;
}

function fileUrl(file: File): string {
  const url = URL.createObjectURL(file); // a blob: URL (allowed by img-src), revoked on the next scoring
  thumbnails.push(url);
  return url;
}

export async function scoreFiles(files: File[]): Promise<void> {
  if (!card || !isReady(card)) return;
  const model = card;
  const form = new FormData();
  form.append('model', model.name);
  const batch = files.length > 1 && model.likelihood?.batchTest === true;
  if (batch) form.append('batchTest', 'true');
  if (byId<HTMLInputElement>('anomaly-resize').checked) form.append('resize', 'true');
  for (const f of files) form.append('images', f, f.name);
  clearThumbnails();
  const thumbs = files.map(fileUrl);
  await score(
    model,
    { form },
    files.map((f, i) => ({ name: f.name, thumb: thumbs[i] })),
    batch,
  );
}

function parsePoints(text: string, d: number): number[][] {
  const rows = text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => l.split(/[\s,;]+/).filter(Boolean).map(Number));
  rows.forEach((r, i) => {
    if (r.length !== d || r.some((v) => !Number.isFinite(v))) throw new ApiError('INVALID_INPUT', `Line ${i + 1}: expected ${d} numbers, got ${r.length}${r.some((v) => !Number.isFinite(v)) ? ' (some are not numbers)' : ''}.`, 0);
  });
  if (!rows.length) throw new ApiError('INVALID_INPUT', 'Type at least one input.', 0);
  return rows;
}

export async function scorePoints(): Promise<void> {
  if (!card || !isReady(card)) return;
  const model = card;
  let rows: number[][];
  try {
    rows = parsePoints(pointsInput.value, dataSize(model));
  } catch (err) {
    reportError(err, 'Anomaly scoring');
    return;
  }
  const batch = rows.length > 1 && model.likelihood?.batchTest === true;
  const kind = viewKind(model);
  const mapping = kind === 'tiles' ? greyMapping(model, rows) : null;
  const items = rows.map((r) => ({ name: r.length <= 3 ? `(${r.map((v) => fixed(v, DIGITS.coordinate)).join(', ')})` : `${r.length} values`, thumb: mapping ? tileUrl(r, mapping) : null }));
  const ok = await score(model, { json: { model: model.name, inputs: rows, ...(batch ? { batchTest: true } : {}) } }, items, batch);
  if (ok && kind === 'plane') setPlaneMarkers(rows);
}

async function score(model: ModelCard, body: { json?: unknown; form?: FormData }, items: { name: string; thumb: string | null }[], batch: boolean): Promise<boolean> {
  const signal = freshSignal('anomaly');
  results.dataset.state = 'loading';
  setStatus(view, 'loading', `Scoring ${items.length} input${items.length > 1 ? 's' : ''}…`);
  setButtonsDisabled(view, true);
  try {
    const a = await apiCall<LikelihoodAnswer>('/likelihood', { ...body, signal });
    render(model, a, items, batch);
    const flagged = a.results.filter((r) => r.isAnomaly).length;
    setStatus(view, 'done', `${a.results.length} scored: ${flagged} flagged as anomalous; ${costText(a.cost) || 'no cost reported'}.`);
    return true;
  } catch (err) {
    if (isAbort(err)) return false;
    results.dataset.state = 'error';
    setStatus(view, 'error', 'Scoring failed (see the message above).');
    reportError(err, 'Anomaly scoring');
    return false;
  } finally {
    if (!signal.aborted) setButtonsDisabled(view, false);
    fileInput.value = ''; // choosing the same files again scores them again
  }
}

function render(model: ModelCard, a: LikelihoodAnswer, items: { name: string; thumb: string | null }[], batch: boolean): void {
  const cal = model.calibration;
  const defaultScore = cal?.defaultScore ?? model.anomaly?.defaultScore;
  const thresholds = cal?.thresholds ?? (cal ? { [cal.defaultScore]: cal.threshold } : {});
  results.replaceChildren(
    h(
      'ol',
      { class: 'result-list' },
      ...a.results.map((r, i) => {
        const scoreRows = Object.entries(r.scores)
          .filter((e): e is [string, number] => e[1] !== null)
          .map(([name, v]) =>
            h(
              'tr',
              { class: name === defaultScore ? 'default-score' : '' },
              h('th', { scope: 'row' }, name === defaultScore ? `${name} (default)` : name),
              numberEl(v, DIGITS.score, `score-${name}`, 'td'),
              h('td', {}, thresholds[name] !== undefined ? fixed(thresholds[name], DIGITS.score) : ''),
            ),
          );
        return h(
          'li',
          { class: `result ${r.isAnomaly ? 'is-anomaly' : 'is-normal'}`, 'data-index': i },
          h('div', { class: 'thumb' }, items[i]?.thumb ? h('img', { src: items[i].thumb!, alt: `Input ${i + 1}: ${items[i].name}`, class: 'pixelated' }) : h('span', { class: 'num-badge' }, String(i + 1))),
          h(
            'div',
            { class: 'result-body' },
            h('p', { class: 'result-head' }, h('strong', {}, `${i + 1}. `), h('span', { class: 'name' }, items[i]?.name ?? `input ${i + 1}`), ' ', h('span', { class: `badge ${r.isAnomaly ? 'bad' : 'ok'}`, 'data-field': 'isAnomaly', 'data-value': String(r.isAnomaly) }, r.isAnomaly ? 'anomalous' : 'in-distribution')),
            h(
              'dl',
              { class: 'pairs' },
              h('dt', {}, 'log p(x)'),
              h('dd', {}, numberEl(r.logLikelihood, DIGITS.logLikelihood, 'logLikelihood'), ' nats'),
              h('dt', {}, 'bits/dim'),
              h('dd', {}, numberEl(r.bitsPerDim, DIGITS.bitsPerDim, 'bitsPerDim')),
              h('dt', {}, 'anomaly score'),
              h('dd', {}, numberEl(r.anomalyScore, DIGITS.score, 'anomalyScore'), h('span', { class: 'muted' }, ` vs ${NORMALIZED_THRESHOLD}`)),
            ),
            h('table', { class: 'scores' }, h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'score'), h('th', { scope: 'col' }, 'raw value'), h('th', { scope: 'col' }, 'threshold'))), h('tbody', {}, ...scoreRows)),
          ),
        );
      }),
    ),
  );
  results.dataset.state = 'done';
  bumpRun(results);
  results.dataset.model = model.name;
  markers = a.results.map((r, i) => ({ value: defaultScore ? (r.scores[defaultScore] ?? NaN) : NaN, label: String(i + 1), anomalous: r.isAnomaly })).filter((m) => Number.isFinite(m.value));
  drawCalibration();
  renderBatch(a, batch);
}

function renderBatch(a: LikelihoodAnswer, asked: boolean): void {
  const b = a.batchTest;
  batchBox.hidden = !b;
  if (!b) {
    batchBox.replaceChildren();
    return;
  }
  batchBox.replaceChildren(
    h('h3', {}, 'Batch typicality test'),
    h(
      'p',
      {},
      `Are these ${b.batchSize ?? a.results.length} inputs, taken together, typical of the training data? `,
      h('span', { class: `badge ${b.isOutOfDistribution ? 'bad' : 'ok'}`, 'data-field': 'isOutOfDistribution', 'data-value': String(b.isOutOfDistribution) }, b.isOutOfDistribution ? 'out of distribution' : 'in distribution'),
    ),
    h(
      'dl',
      { class: 'pairs' },
      h('dt', {}, 'statistic'),
      h('dd', {}, numberEl(b.statistic, DIGITS.batch, 'statistic')),
      h('dt', {}, 'threshold'),
      h('dd', {}, numberEl(b.threshold, DIGITS.batch, 'threshold')),
      h('dt', {}, 'p-value'),
      h('dd', {}, numberEl(b.pValue, DIGITS.batch, 'pValue')),
    ),
  );
  if (!asked) batchBox.hidden = true;
}
