// Reproduces a package's test log-likelihood through the running service's POST /likelihood, so
// the README's figures can be checked against what the service actually computes.
//   npm run eval:likelihood -- <model> [--url http://127.0.0.1:8080] [--dequantization centre|uniform]
//       [--draws 1] [--seed 1234] [--limit N] [--batch 64] [--api-key K] [--send inputs|images]
//       [--data <images folder | file.npy | IDX file>] [--model-dir DIR]
// The data: the model's test split (mnist, fashion-mnist: the 10,000 test images), or --data.
// Images go as `inputs` rows at pixel centres (k + 0.5)/2^b, or with --send images as PNGs (the
// service decodes them to the same centres). Uniform dequantization: batch b is sent with seed
// (seed + b) mod 2^32, so batches draw different noise and the run as a whole is repeatable.
// The comparison figure is the package's flow.json training.test (read from --model-dir).
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Manifest } from '../src/config/manifest-schema.js';
import { encodePng } from '../src/imaging/image-codec.js';
import { DATASETS, datasetImages } from './lib/datasets.js';
import { DatasetError, readDataset, toModelRows, type RawArray } from './lib/dataset-files.js';
import { UsageError, parseModelArgs } from './lib/cli.js';

const USAGE = 'usage: npm run eval:likelihood -- <model> [--url http://127.0.0.1:8080] [--dequantization centre|uniform] [--draws 1] [--seed 1234] [--limit N] [--batch 64] [--api-key K] [--send inputs|images] [--data PATH] [--model-dir DIR]';
const FLAGS = ['url', 'dequantization', 'draws', 'seed', 'limit', 'batch', 'api-key', 'send', 'data', 'model-dir'];

function intOpt(opts: Record<string, string>, k: string, def: number | undefined, min: number, max: number): number | undefined {
  if (opts[k] === undefined) return def;
  const v = Number(opts[k]);
  if (!Number.isInteger(v) || v < min || v > max) throw new UsageError(`--${k} ${opts[k]}: must be an integer in [${min}, ${max}]`);
  return v;
}

interface TestFigure {
  label: string;
  meanLogLikelihood: number;
}

/** The flow.json test figure measured under the same protocol as this run, if the package has one. */
function comparable(m: Manifest, kind: 'centre' | 'uniform' | 'none'): TestFigure | null {
  const t = m.training.test as (NonNullable<Manifest['training']['test']> & { meanLogLikelihoodAtPixelCentres?: number; dequantization?: string }) | undefined;
  if (!t) return null;
  const what = `flow.json training.test (${t.count ?? '?'} ${t.split ?? 'test'} inputs`;
  const main = t.protocol?.dequantization ?? (typeof t.dequantization === 'string' && t.dequantization.startsWith('uniform') ? 'uniform' : t.dequantization === 'none' ? 'none' : undefined);
  if (main === kind) return { label: `${what}, ${t.protocol ? JSON.stringify(t.protocol) : t.dequantization}): meanLogLikelihood`, meanLogLikelihood: t.meanLogLikelihood };
  if (kind === 'centre' && typeof t.meanLogLikelihoodAtPixelCentres === 'number') return { label: `${what}, pixel centres): meanLogLikelihoodAtPixelCentres`, meanLogLikelihood: t.meanLogLikelihoodAtPixelCentres };
  return null;
}

interface LikelihoodResponse {
  protocol?: Record<string, unknown>;
  results: { logLikelihood: number; bitsPerDim: number | null }[];
}

async function main(): Promise<void> {
  const { name, opts } = parseModelArgs(process.argv.slice(2), FLAGS, USAGE);
  const url = (opts.url ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
  const kind = opts.dequantization ?? 'centre';
  if (kind !== 'centre' && kind !== 'uniform') throw new UsageError(`--dequantization ${kind}: must be centre or uniform`);
  if (kind === 'centre' && (opts.draws !== undefined || opts.seed !== undefined)) throw new UsageError('--draws and --seed are for --dequantization uniform');
  const draws = intOpt(opts, 'draws', 1, 1, 64)!;
  const seed = intOpt(opts, 'seed', 1234, 0, 2 ** 32 - 1)!;
  const limit = intOpt(opts, 'limit', Infinity, 1, Number.MAX_SAFE_INTEGER)!;
  const batch = intOpt(opts, 'batch', 64, 1, 100_000)!;
  const send = opts.send ?? 'inputs';
  if (send !== 'inputs' && send !== 'images') throw new UsageError(`--send ${send}: must be inputs or images`);

  const modelDir = resolve(opts['model-dir'] ?? process.env.MODEL_DIR ?? join(new URL('..', import.meta.url).pathname, 'models'));
  const manifestPath = join(modelDir, name, 'flow.json');
  if (!existsSync(manifestPath)) throw new UsageError(`${manifestPath} not found: the data layout and the figure to compare come from the package's flow.json (--model-dir DIR)`);
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as Manifest;
  const { data } = manifest;

  let raw: RawArray;
  if (opts.data) raw = await readDataset(resolve(opts.data), manifest, limit);
  else {
    const dataset = manifest.training.dataset;
    if (!DATASETS[dataset])
      throw new UsageError(`${name} was trained on '${dataset}', which has no built-in test split here (built in: ${Object.keys(DATASETS).join(', ')}): give the test data with --data`);
    const images = datasetImages(dataset, 'test', 0, limit);
    raw = { source: `${dataset} test`, kind: 'pixels', shape: [images.length, ...data.shape], data: Uint8Array.from(images.flatMap((img) => [...img])) };
  }
  if (send === 'images' && !(raw.kind === 'pixels' && data.kind === 'image' && data.bitDepth === 8)) throw new UsageError('--send images needs 8-bit pixels and an 8-bit image model');
  const rows = toModelRows(raw, manifest, limit);
  const d = rows.rows.length / rows.count;
  const [c, h, w] = data.shape;

  const headers: Record<string, string> = { 'content-type': 'application/json', ...(opts['api-key'] ? { authorization: `Bearer ${opts['api-key']}` } : {}) };
  let sum = 0;
  let protocol: Record<string, unknown> | undefined;
  const started = performance.now();
  for (let i = 0, b = 0; i < rows.count; i += batch, b++) {
    const n = Math.min(batch, rows.count - i);
    const chunk = rows.rows.subarray(i * d, (i + n) * d);
    const payload =
      send === 'images'
        ? { images: await Promise.all(Array.from({ length: n }, (_, k) => encodePng(Uint8Array.from(raw.data.subarray((i + k) * d, (i + k + 1) * d)), c, h, w).then((png) => png.toString('base64')))) }
        : { inputs: Array.from({ length: n }, (_, k) => Array.from(chunk.subarray(k * d, (k + 1) * d))) };
    const body = { model: name, ...payload, scores: [], ...(kind === 'uniform' ? { dequantization: 'uniform', draws, seed: (seed + b) % 2 ** 32 } : opts.dequantization ? { dequantization: 'centre' } : {}) };
    let res: Response;
    try {
      res = await fetch(`${url}/likelihood`, { method: 'POST', headers, body: JSON.stringify(body) });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new UsageError(`cannot reach ${url}: ${cause?.code ?? cause?.message ?? (err as Error).message} (is the service running? npm start)`);
    }
    const text = await res.text();
    if (res.status !== 200) {
      let message = text.slice(0, 500);
      try {
        message = (JSON.parse(text) as { error: { code: string; message: string } }).error.message;
      } catch {
        /* not JSON: the text as it came */
      }
      throw new UsageError(`POST ${url}/likelihood (items ${i} to ${i + n - 1}) answered ${res.status}: ${message}`);
    }
    const answer = JSON.parse(text) as LikelihoodResponse;
    protocol ??= answer.protocol;
    for (const r of answer.results) sum += r.logLikelihood;
  }
  const seconds = (performance.now() - started) / 1000;

  const mean = sum / rows.count;
  const quantized = data.bitDepth !== null;
  // bits/dim of the discrete data: −log₂ P(k)/D ≈ (D·b·ln 2 − log p(x))/(D ln 2); continuous data: −log p/(D ln 2)
  const bpd = (ll: number) => (quantized ? (d * data.bitDepth! * Math.LN2 - ll) / (d * Math.LN2) : -ll / (d * Math.LN2));
  const protocolText = kind === 'uniform' ? `uniform dequantization, ${draws} draw${draws > 1 ? 's (log-mean-exp)' : ''}, seeds ${seed} + batch index` : quantized ? 'pixel centres (k + 0.5)/' + 2 ** data.bitDepth! : 'inputs as given (continuous data)';
  console.log(`${name}: ${rows.count} inputs of ${raw.source} via ${url}/likelihood (${send}, batch ${batch}, ${seconds.toFixed(1)} s)`);
  console.log(`  protocol            ${protocolText}; service reported ${JSON.stringify(protocol ?? null)}`);
  console.log(`  mean log-likelihood ${mean.toFixed(4)} nats`);
  console.log(`  bits/dim            ${bpd(mean).toFixed(4)}`);
  const fig = comparable(manifest, quantized ? (kind as 'centre' | 'uniform') : 'none');
  if (fig) {
    console.log(`  ${fig.label}: ${fig.meanLogLikelihood.toFixed(4)} nats, ${bpd(fig.meanLogLikelihood).toFixed(4)} bits/dim`);
    console.log(`  difference          ${(mean - fig.meanLogLikelihood).toFixed(4)} nats per input${rows.count < ((manifest.training.test?.count as number | undefined) ?? 0) ? ' (a subset: not the same inputs)' : ''}`);
  } else console.log('  flow.json has no test figure under this protocol to compare with');
}

try {
  await main();
} catch (err) {
  console.error(err instanceof UsageError || err instanceof DatasetError ? `eval:likelihood: ${err.message}` : err);
  process.exitCode = 1;
}
