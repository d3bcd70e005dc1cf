// Out-of-distribution evaluation through the running service's HTTP API (npm run eval:ood).
// For each image model: its own test split (in-distribution) against the other MNIST-like data set,
// uniform noise and inverted test images; AUROC, AUPR and FPR at 95% TPR for every score; plus the
// cost of the extra scores at batch 64. Writes docs/anomaly-results.md (included by docs/anomaly.md).
//   EVAL_COUNT=2000 npm run eval:ood
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../src/config/config.js';
import { FlowService } from '../src/service/flow-service.js';
import { createMetrics } from '../src/service/metrics.js';
import { Rng } from '../src/flow/random.js';
import { datasetImages, toDataRows } from './lib/datasets.js';
import { aupr, auroc, fprAt95Tpr } from './lib/roc.js';

const ROOT = new URL('..', import.meta.url).pathname;
const COUNT = Number(process.env.EVAL_COUNT ?? 2000);
const PORT = Number(process.env.EVAL_PORT ?? 18081);
const base = `http://127.0.0.1:${PORT}`;
const MODELS = (process.env.EVAL_MODELS ?? 'glow-fashion,nice-mnist,realnvp-mnist').split(',');
const SCORES = ['nll', 'typicality', 'complexity', 'anomalyScore'] as const;
const OTHER: Record<string, string> = { 'fashion-mnist': 'mnist', mnist: 'fashion-mnist' };

type Scored = Record<(typeof SCORES)[number], number> & { logLikelihood: number };

async function score(model: string, images: Uint8Array[]): Promise<Scored[]> {
  const out: Scored[] = [];
  for (let i = 0; i < images.length; i += 64) {
    const inputs = images.slice(i, i + 64).map((img) => Array.from(img, (k) => (k + 0.5) / 256));
    const res = await fetch(`${base}/likelihood`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model, inputs }) });
    if (res.status !== 200) throw new Error(`${model}: /likelihood answered ${res.status}: ${await res.text()}`);
    const body = (await res.json()) as { results: { logLikelihood: number; anomalyScore: number; scores: Record<string, number> }[] };
    for (const r of body.results) out.push({ ...(r.scores as Record<string, number>), anomalyScore: r.anomalyScore, logLikelihood: r.logLikelihood } as Scored);
  }
  return out;
}

function noise(n: number, d: number): Uint8Array[] {
  const rng = new Rng(11);
  return Array.from({ length: n }, () => Uint8Array.from({ length: d }, () => rng.nextUint32() & 255));
}
const inverted = (xs: Uint8Array[]) => xs.map((x) => x.map((k) => 255 - k));

const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], { cwd: ROOT, env: { ...process.env, HOST: '127.0.0.1', PORT: String(PORT), LOG_LEVEL: 'warn', EXECUTION_PROVIDER: 'cpu', MAX_QUEUE_SIZE: '100000', REQUEST_TIMEOUT_MS: '600000' }, stdio: ['ignore', 'inherit', 'inherit'] });
const lines: string[] = [];
const httpMs: Record<string, number> = {};
const log = (s = '') => {
  console.log(s);
  lines.push(s);
};
try {
  for (let i = 0; ; i++) {
    const r = await fetch(`${base}/readyz`).catch(() => null);
    if (r?.status === 200) break;
    if (i > 600) throw new Error('server did not become ready');
    await new Promise((r) => setTimeout(r, 100));
  }
  log(`Command: \`EVAL_COUNT=${COUNT} npm run eval:ood\` (${new Date().toISOString().slice(0, 10)}, CPU). ${COUNT} images per set; in-distribution = the model's own test split; higher score = more anomalous; OOD is the positive class.`);
  log();
  for (const model of MODELS) {
    const manifest = JSON.parse(readFileSync(join(ROOT, 'models', model, 'flow.json'), 'utf8'));
    const dataset: string = manifest.training.dataset;
    const idImages = datasetImages(dataset, 'test', 0, COUNT);
    const sets: [string, Uint8Array[]][] = [
      [`${OTHER[dataset]} test`, datasetImages(OTHER[dataset], 'test', 0, COUNT)],
      ['uniform noise', noise(COUNT, idImages[0].length)],
      [`inverted ${dataset} test`, inverted(datasetImages(dataset, 'test', COUNT, 2 * COUNT))],
    ];
    const id = await score(model, idImages);
    log(`### ${model} (trained on ${dataset}; default score: ${manifest.calibration?.defaultScore})`);
    log();
    log(`In-distribution mean log-likelihood ${(id.reduce((s, r) => s + r.logLikelihood, 0) / id.length).toFixed(1)} nats.`);
    log();
    log('| OOD set | mean log p (nats) | score | AUROC | AUPR | FPR@95%TPR | flagged (isAnomaly) |');
    log('|---|---|---|---|---|---|---|');
    const idFlagged = id.filter((r) => r.anomalyScore > 0.5).length / id.length;
    for (const [setName, images] of sets) {
      const ood = await score(model, images);
      const meanLp = ood.reduce((s, r) => s + r.logLikelihood, 0) / ood.length;
      const flagged = ood.filter((r) => r.anomalyScore > 0.5).length / ood.length;
      for (const s of SCORES) {
        if (id.some((r) => r[s] === null || r[s] === undefined)) continue;
        const a = id.map((r) => r[s]), b = ood.map((r) => r[s]);
        log(`| ${setName} | ${meanLp.toFixed(1)} | ${s === 'anomalyScore' ? `**default (${manifest.calibration?.defaultScore})**` : s} | ${auroc(a, b).toFixed(3)} | ${aupr(a, b).toFixed(3)} | ${fprAt95Tpr(a, b).toFixed(3)} | ${s === 'anomalyScore' ? `${(100 * flagged).toFixed(1)}% (ID: ${(100 * idFlagged).toFixed(1)}%)` : ''} |`);
      }
    }
    log();
    // HTTP latency of one batch-64 /likelihood, for the cost comparison below.
    const body = JSON.stringify({ model, inputs: idImages.slice(0, 64).map((img) => Array.from(img, (k) => (k + 0.5) / 256)) });
    const ts: number[] = [];
    for (let i = 0; i < 33; i++) {
      const t = performance.now();
      await (await fetch(`${base}/likelihood`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })).arrayBuffer();
      if (i >= 3) ts.push(performance.now() - t);
    }
    httpMs[model] = ts.sort((a, b) => a - b)[Math.floor(ts.length / 2)];
  }
} finally {
  child.kill('SIGTERM');
}

// Cost of the extra scores: the complexity score's PNG encoding is the only non-trivial one.
const service = new FlowService(loadConfig({}, { modelDir: join(ROOT, 'models'), executionProvider: 'cpu' }), createMetrics(), { info() {}, warn() {}, error() {} });
await service.start();
log('Cost of the extra scores at batch 64 (median of 30 calls). nll and typicality are arithmetic on log p; the complexity score encodes 64 PNGs on the event loop while the inference thread runs. In-process: `service.likelihood` with and without the complexity score; HTTP: the whole `POST /likelihood` with 64 inputs (JSON parsing and serialization included), all scores on. Overhead = the in-process difference over the HTTP latency without it.');
log();
log('| model | in-process, log p only (ms) | in-process, all scores (ms) | HTTP /likelihood, all scores (ms) | overhead on /likelihood |');
log('|---|---|---|---|---|');
for (const model of MODELS) {
  const m = service.resolve(model);
  const manifest = m.manifest;
  const x = toDataRows(datasetImages(manifest.training.dataset, 'test', 0, 64));
  const time = async (complexity: boolean) => {
    const ts: number[] = [];
    for (let i = 0; i < 33; i++) {
      const t = performance.now();
      await service.likelihood(m, x, 64, { complexity });
      if (i >= 3) ts.push(performance.now() - t);
    }
    return ts.sort((a, b) => a - b)[Math.floor(ts.length / 2)];
  };
  const plain = await time(false);
  const full = await time(true);
  const extra = Math.max(0, full - plain);
  log(`| ${model} | ${plain.toFixed(1)} | ${full.toFixed(1)} | ${httpMs[model].toFixed(1)} | ${((100 * extra) / (httpMs[model] - extra)).toFixed(1)}% |`);
}
await service.close();
writeFileSync(join(ROOT, 'docs', 'anomaly-results.md'), lines.join('\n') + '\n');
console.log('wrote docs/anomaly-results.md');
