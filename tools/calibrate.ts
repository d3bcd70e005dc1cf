// Writes a model's anomaly calibration into its flow.json from held-out in-distribution data: for
// every score the model has (nll, typicality, and for 8-bit image models complexity and
// complexityJpegLs) mean, std, robust min/max, the threshold at the (1 − FPR) quantile and 101
// quantiles (the web page's histogram), plus the NLL quantiles for the batch typicality test. The
// rows go through the service's own likelihood path, so the statistics describe exactly what
// /likelihood will score.
//   npm run calibrate -- <model> [--data <path>] [--model-dir DIR] [--fpr 0.05] [--default-score <score>] [--limit N]
// <path>: a folder of PNG/JPEG/WebP images, a .npy array (float data-space rows, or uint8/uint16
// pixels) or an IDX file (MNIST format, optionally gzipped). Without --data, mnist and
// fashion-mnist models use train[55000:60000] (never trained on, never the evaluation data).
import { existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { loadConfig } from '../src/config/config.js';
import { ManifestSchema, type Manifest } from '../src/config/manifest-schema.js';
import { SCORE_NAMES, availableScores, type ScoreName } from '../src/flow/anomaly.js';
import { FlowService } from '../src/service/flow-service.js';
import { createMetrics } from '../src/service/metrics.js';
import { AppError } from '../src/errors.js';
import { DATASETS, datasetImages } from './lib/datasets.js';
import { DatasetError, readDataset, toModelRows, type ModelRows } from './lib/dataset-files.js';
import { UsageError, parseModelArgs } from './lib/cli.js';

const USAGE = `usage: npm run calibrate -- <model> [--data <images folder | file.npy | IDX file>] [--model-dir DIR] [--fpr 0.05] [--default-score ${SCORE_NAMES.join('|')}] [--limit N]`;
const FLAGS = ['data', 'model-dir', 'fpr', 'default-score', 'limit'];
const HELD_OUT = [55000, 60000] as const;
const BATCH = 256;


/** 101 evenly spaced quantiles, min … max, of sorted values. */
const evenQuantiles = (sorted: readonly number[]) => Array.from({ length: 101 }, (_, i) => sorted[Math.round((i / 100) * (sorted.length - 1))]);

/** Held-out statistics of one score; min/max are robust quantiles (see below). */
function stats(xs: readonly number[], fpr: number) {
  const s = [...xs].sort((a, b) => a - b);
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const std = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : 0;
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  // min/max are the 0.5 % and 99.5 % quantiles: the normalization span must not hinge on a few
  // extreme held-out scores (NICE's NLL has a tail to 1e5 nats).
  return { mean, std, min: q(0.005), max: q(0.995), threshold: q(1 - fpr), quantiles: evenQuantiles(s), sorted: s };
}

async function main(): Promise<void> {
  const { name, opts } = parseModelArgs(process.argv.slice(2), FLAGS, USAGE);
  const modelDir = resolve(opts['model-dir'] ?? process.env.MODEL_DIR ?? join(new URL('..', import.meta.url).pathname, 'models'));
  const pkgDir = join(modelDir, name);
  const manifestPath = join(pkgDir, 'flow.json');
  if (!existsSync(manifestPath)) {
    let present: string[] = [];
    try {
      present = readdirSync(modelDir).filter((d) => existsSync(join(modelDir, d, 'flow.json'))).sort();
    } catch {
      throw new UsageError(`model directory ${modelDir} cannot be read`);
    }
    throw new UsageError(`model '${name}' not found in ${modelDir} (present: ${present.join(', ') || 'none'})`);
  }
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as Manifest;

  const fpr = Number(opts.fpr ?? manifest.calibration?.targetFalsePositiveRate ?? 0.05);
  if (!(fpr > 0 && fpr < 1)) throw new UsageError(`--fpr ${opts.fpr}: must be a number between 0 and 1 (exclusive)`);
  const limit = opts.limit === undefined ? Infinity : Number(opts.limit);
  if (!(Number.isInteger(limit) && limit >= 1) && limit !== Infinity) throw new UsageError(`--limit ${opts.limit}: must be a positive integer`);
  const scoresHad = availableScores(manifest.data, true);
  const image8 = manifest.data.kind === 'image' && manifest.data.bitDepth === 8;
  const defaultScore = opts['default-score'] ?? manifest.calibration?.defaultScore ?? (image8 ? 'complexityJpegLs' : 'nll');
  if (!(scoresHad as string[]).includes(defaultScore)) throw new UsageError(`--default-score ${defaultScore}: not a score ${name} has (${scoresHad.join(', ')})`);

  // The data, checked against the model before any model is loaded.
  let data: ModelRows;
  let split: string;
  if (opts.data) {
    const raw = await readDataset(resolve(opts.data), manifest, limit);
    data = toModelRows(raw, manifest, limit);
    split = `${raw.source} (${data.count} of ${raw.shape[0]} items)`;
  } else {
    const dataset = manifest.training.dataset;
    if (!DATASETS[dataset]) throw new UsageError(`${name} was trained on '${dataset}': give its held-out data with --data (built-in held-out sets: ${Object.keys(DATASETS).join(', ')})`);
    if (manifest.data.kind !== 'image') throw new UsageError(`${name} is not an image model: give its held-out data with --data`);
    const end = Math.min(HELD_OUT[1], HELD_OUT[0] + limit);
    const images = datasetImages(dataset, 'train', HELD_OUT[0], end);
    const c = manifest.data.shape;
    data = toModelRows({ source: `${dataset} train[${HELD_OUT[0]}:${end}]`, kind: 'pixels', shape: [images.length, ...c], data: Uint8Array.from(images.flatMap((img) => [...img])) }, manifest);
    split = `train[${HELD_OUT[0]}:${end}]`;
  }

  // A MODEL_DIR of one link: the service loads (and verifies) this package only.
  const onlyThis = mkdtempSync(join(tmpdir(), 'flowserve-calibrate-'));
  symlinkSync(pkgDir, join(onlyThis, name), 'dir');
  const service = new FlowService(
    loadConfig({}, { modelDir: onlyThis, executionProvider: 'cpu', maxQueueSize: 1_000_000, requestTimeoutMs: 3_600_000, maxItemsPerRequest: BATCH }),
    createMetrics(),
    { info() {}, warn: console.warn, error: console.error },
  );
  // Typicality is left out here: it is derived below from this run's own NLL statistics.
  const computed = scoresHad.filter((s) => s !== 'typicality');
  const scores: Partial<Record<ScoreName, number[]>> = Object.fromEntries(computed.map((s) => [s, []]));
  const d = data.rows.length / data.count;
  try {
    await service.start();
    const model = service.resolve(name);
    for (let i = 0; i < data.count; i += BATCH) {
      const n = Math.min(BATCH, data.count - i);
      let results;
      try {
        ({ results } = await service.likelihood(model, data.rows.subarray(i * d, (i + n) * d), n, { scores: computed }));
      } catch (err) {
        throw new DatasetError(`items ${i} to ${i + n - 1}: ${(err as Error).message.replace(/inputs\[(\d+)\]/g, (_, k) => `item ${i + Number(k)}`)}`);
      }
      for (const r of results) for (const k of computed) scores[k]!.push(r.scores[k]!);
    }
  } finally {
    await service.close();
    rmSync(onlyThis, { recursive: true, force: true });
  }

  const nll = stats(scores.nll!, fpr);
  scores.typicality = scores.nll!.map((v) => Math.abs(v - nll.mean) / (nll.std > 0 ? nll.std : 1));
  const table = Object.fromEntries(SCORE_NAMES.filter((k) => scores[k]).map((k) => {
    const { sorted: _s, ...rest } = stats(scores[k]!, fpr);
    return [k, rest];
  }));
  const nllQuantiles = evenQuantiles(nll.sorted);

  manifest.calibration = {
    split,
    count: data.count,
    defaultScore,
    targetFalsePositiveRate: fpr,
    scores: table,
    nllQuantiles,
    method: `tools/calibrate.ts: ${data.method}`,
  } as Manifest['calibration'];
  if (!Value.Check(ManifestSchema, manifest)) throw new Error(`calibrated manifest fails its schema: ${JSON.stringify(Value.Errors(ManifestSchema, manifest).First())}`);
  // Write then rename: an interrupted run never leaves a half-written flow.json in the package.
  writeFileSync(`${manifestPath}.tmp`, JSON.stringify(manifest, null, 2) + '\n');
  renameSync(`${manifestPath}.tmp`, manifestPath);
  console.log(`${name}: calibrated on ${data.count} items of ${split} (default score ${defaultScore}, FPR ${fpr})`);
  for (const [k, v] of Object.entries(table)) console.log(`  ${k.padEnd(16)} mean ${v.mean.toFixed(2)} std ${v.std.toFixed(2)} threshold ${v.threshold.toFixed(2)}`);
}

try {
  await main();
} catch (err) {
  // Expected failures (usage, data) are one line; anything else keeps its stack.
  console.error(err instanceof UsageError || err instanceof DatasetError || err instanceof AppError ? `calibrate: ${err.message}` : err);
  process.exitCode = 1;
}
