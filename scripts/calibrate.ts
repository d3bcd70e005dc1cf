// Writes the anomaly calibration of an image model into its flow.json from held-out in-distribution
// data (train[55000:60000], never trained on and never the evaluation data): for each score
// (nll, typicality, complexity, complexityJpegLs) mean, std, robust min/max and the threshold at the (1 − FPR) quantile, plus
// 101 NLL quantiles for the batch typicality bootstrap.
//   npm run calibrate -- glow-fashion [--default-score complexityJpegLs] [--fpr 0.05]
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { loadConfig } from '../src/config/config.js';
import { ManifestSchema, type Manifest } from '../src/config/manifest-schema.js';
import { SCORE_NAMES, availableScores } from '../src/flow/anomaly.js';
import { FlowService } from '../src/service/flow-service.js';
import { createMetrics } from '../src/service/metrics.js';
import { datasetImages, toDataRows } from './lib/datasets.js';

const args = process.argv.slice(2);
const name = args.find((a) => !a.startsWith('--'));
const opt = (k: string) => {
  const i = args.indexOf(`--${k}`);
  return i >= 0 ? args[i + 1] : undefined;
};
if (!name) throw new Error(`usage: npm run calibrate -- <model> [--default-score ${SCORE_NAMES.join('|')}] [--fpr 0.05]`);
const HELD_OUT = [55000, 60000] as const;
const BATCH = 256;

const modelDir = process.env.MODEL_DIR ?? join(new URL('..', import.meta.url).pathname, 'models');
const manifestPath = join(modelDir, name, 'flow.json');
const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as Manifest;
if (manifest.data.kind !== 'image') throw new Error(`${name} is a vector model: its calibration comes from the exporter (scripts/train.py)`);
const fpr = Number(opt('fpr') ?? manifest.calibration?.targetFalsePositiveRate ?? 0.05);
const defaultScore = opt('default-score') ?? manifest.calibration?.defaultScore ?? 'complexityJpegLs';
if (!(SCORE_NAMES as readonly string[]).includes(defaultScore)) throw new Error(`--default-score ${defaultScore}: not a score (${SCORE_NAMES.join(', ')})`);

const service = new FlowService(loadConfig({}, { modelDir, executionProvider: 'cpu', maxQueueSize: 1_000_000, requestTimeoutMs: 3_600_000 }), createMetrics(), { info() {}, warn: console.warn, error: console.error });
await service.start();
const model = service.resolve(name);
const images = datasetImages(manifest.training.dataset, 'train', ...HELD_OUT);
// Typicality is left out here: it is derived below from this run's own NLL statistics.
const computed = availableScores(manifest.data, true).filter((s) => s !== 'typicality');
const scores: Record<string, number[]> = Object.fromEntries(computed.map((s) => [s, []]));
for (let i = 0; i < images.length; i += BATCH) {
  const chunk = images.slice(i, i + BATCH);
  for (const r of await service.likelihood(model, toDataRows(chunk), chunk.length, { scores: computed })) for (const k of computed) scores[k].push(r.scores[k]!);
}
await service.close();

// Typicality needs the NLL statistics first: computed from this run's own NLL mean and std.
const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const std = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1));
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  // min/max are the 0.5 % and 99.5 % quantiles: the normalization span must not hinge on a few
  // extreme held-out scores (NICE's NLL has a tail to 1e5 nats).
  return { mean, std, min: q(0.005), max: q(0.995), threshold: q(1 - fpr), sorted: s };
};
const nll = stats(scores.nll);
scores.typicality = scores.nll.map((v) => Math.abs(v - nll.mean) / nll.std);
const table = Object.fromEntries(SCORE_NAMES.filter((k) => scores[k]).map((k) => {
  const { sorted: _s, ...rest } = stats(scores[k]);
  return [k, rest];
}));
const nllQuantiles = Array.from({ length: 101 }, (_, i) => nll.sorted[Math.min(nll.sorted.length - 1, Math.round((i / 100) * (nll.sorted.length - 1)))]);

manifest.calibration = { split: `train[${HELD_OUT[0]}:${HELD_OUT[1]}]`, count: images.length, defaultScore, targetFalsePositiveRate: fpr, scores: table, nllQuantiles, method: 'scripts/calibrate.ts: pixel centres (k + 0.5)/256, the same inputs the service scores' } as Manifest['calibration'];
if (!Value.Check(ManifestSchema, manifest)) throw new Error(`calibrated manifest fails its schema: ${JSON.stringify(Value.Errors(ManifestSchema, manifest).First())}`);
writeFileSync(manifestPath, JSON.stringify(manifest, null, 2) + '\n');
console.log(`${name}: calibrated on ${images.length} held-out images (default score ${defaultScore}, FPR ${fpr})`);
for (const [k, v] of Object.entries(table)) console.log(`  ${k.padEnd(16)} mean ${v.mean.toFixed(2)} std ${v.std.toFixed(2)} threshold ${v.threshold.toFixed(2)}`);
