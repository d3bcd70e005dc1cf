// The model card: what the model is, how it was trained and measured, and what it accepts, all
// from GET /models (the list carries the full card of every model).
import { h, clear, append } from './dom.js';
import { DIGITS, fixed, grouped, numberEl, percent } from './format.js';
import type { ModelCard } from './types.js';

const shape = (s?: number[]) => (s && s.length ? s.join('×') : 'n/a');

function row(dl: HTMLElement, term: string, ...desc: (Node | string | null | undefined | false)[]): void {
  if (desc.every((d) => d === null || d === undefined || d === false || d === '')) return;
  const dd = h('dd');
  append(dd, ...desc);
  dl.append(h('dt', {}, term), dd);
}

/** Is this card's model servable now? Everything else shows it as unavailable, with its reason. */
export const isReady = (card: ModelCard): boolean => card.status === 'ready';

export function renderModelCard(root: HTMLElement, card: ModelCard): void {
  clear(root);
  root.dataset.model = card.name;
  root.dataset.status = card.status;
  const ready = isReady(card);
  root.append(
    h('div', { class: 'card-head' }, h('h3', {}, card.name), h('span', { class: `badge ${ready ? 'ok' : 'bad'}`, 'data-field': 'status' }, ready ? 'ready' : card.status === 'loading' ? 'loading' : 'unavailable')),
  );
  if (!ready) {
    root.append(h('p', { class: 'unavailable', 'data-field': 'reason' }, `This model cannot be used now${card.reason ? ': ' + card.reason : ' (no reason given)'}.`));
  }
  if (card.description) root.append(h('p', { class: 'description' }, card.description));

  const groups = h('div', { class: 'fact-groups' });
  const group = (title: string) => {
    const dl = h('dl', { class: 'facts' });
    groups.append(h('section', { class: 'fact-group', 'aria-label': title }, h('h4', {}, title), dl));
    return dl;
  };

  const q = card.quality;
  const quality = group('Quality');
  if (q) {
    if (q.testLogLikelihood !== undefined) row(quality, 'Test log-likelihood', numberEl(q.testLogLikelihood, DIGITS.logLikelihood, 'testLogLikelihood'), ' nats');
    if (q.testBitsPerDim !== undefined) row(quality, 'Test bits/dim', numberEl(q.testBitsPerDim, DIGITS.bitsPerDim, 'testBitsPerDim'));
    row(quality, 'Protocol', q.label ? h('span', { 'data-field': 'qualityLabel' }, q.label) : null);
    row(quality, 'Data set', [q.dataset, q.split && `${q.split} split`, q.count !== undefined && `${grouped(q.count)} items`].filter(Boolean).join(', '));
    if (q.parameters !== undefined) row(quality, 'Parameters', h('span', { 'data-field': 'parameters', 'data-value': String(q.parameters) }, grouped(q.parameters)));
  } else row(quality, 'Figures', 'not measured (the package has no test figures)');

  const data = group('Data and latent');
  row(data, 'Family', card.family);
  row(
    data,
    'Data',
    card.input ? `${card.input.kind}, ${shape(card.input.shape)} (${card.input.size} values)` : shape(card.dataShape),
    card.input?.range ? `, range [${card.input.range.join(', ')}]` : '',
    card.input?.bitDepth ? `, ${card.input.bitDepth}-bit` : '',
  );
  if (card.input?.pixelMapping) row(data, 'Pixel mapping', card.input.pixelMapping);
  row(data, 'Latent', card.latentSize !== undefined ? `${card.latentSize} values` : null, card.latentParts && card.latentParts.length > 1 ? ` (${card.latentParts.map((p) => `${p.name} ${shape(p.shape)}`).join(', ')})` : '', card.latentSize !== undefined ? ', standard normal' : '');

  const sampling = group('Sampling and cost');
  const t = card.sampling?.temperature;
  if (t) row(sampling, 'Temperature', `${t.minExclusive ? '(' : '['}${t.min}, ${t.max}], default ${t.default}${t.measured ? ' (measured range)' : ''}`);
  if (card.cost) {
    row(sampling, 'Encode, likelihood', card.cost.forward.description ?? card.cost.forward.kind);
    row(sampling, 'Decode, sample', card.cost.inverse.description ?? card.cost.inverse.kind);
  }
  row(sampling, 'Provider', card.provider);
  if (card.limits) row(sampling, 'Limits', `${card.limits.maxItemsPerRequest} items, ${card.limits.maxSamplesPerRequest} samples per request`);

  const scoring = group('Anomaly scoring');
  if (card.likelihood) row(scoring, 'Scores', card.likelihood.scores.join(', '));
  const cal = card.calibration;
  if (cal) {
    row(scoring, 'Anomaly score', `${cal.defaultScore}, calibrated: 0.5 is the threshold`);
    row(scoring, 'Raw threshold', numberEl(cal.threshold, DIGITS.score, 'calibrationThreshold'), cal.targetFalsePositiveRate !== undefined ? ` (${percent(cal.targetFalsePositiveRate)} false positives)` : '');
    row(scoring, 'Calibrated on', [cal.split, cal.count !== undefined && `${grouped(cal.count)} items`, cal.scoredAt].filter(Boolean).join(', '));
    if (cal.thresholds) row(scoring, 'Per score', Object.entries(cal.thresholds).map(([k, v]) => `${k} ${fixed(v, DIGITS.score)}`).join(', '));
  } else if (card.likelihood) row(scoring, 'Calibration', 'none: anomaly scores are not calibrated for this model');
  if (card.likelihood) row(scoring, 'Batch test', card.likelihood.batchTest ? 'available' : 'not available');
  for (const g of Array.from(groups.children)) if (!g.querySelector('dt')) g.remove();
  root.append(groups);
}

/** The option text in the picker: unavailable models say so. */
export const optionLabel = (card: ModelCard): string => (isReady(card) ? `${card.name} (${card.family ?? card.dataKind ?? 'model'})` : `${card.name} (unavailable)`);
