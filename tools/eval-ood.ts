// Out-of-distribution evaluation through the running service's HTTP API (npm run eval:ood).
// For each image model: its own test split (in-distribution) against the other MNIST-like data set,
// uniform noise and inverted test images; AUROC, AUPR and FPR at 95% TPR for every score; plus the
// cost of the extra scores at batch 64 by the request's `scores`. Writes docs/anomaly-results.md (included by docs/anomaly.md).
//   EVAL_COUNT=2000 npm run eval:ood
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '../src/flow/random.js';
import { SCORE_NAMES, type ScoreName } from '../src/flow/anomaly.js';
import { datasetImages } from './lib/datasets.js';
import { aupr, auroc, fprAt95Tpr } from './lib/roc.js';

const ROOT = new URL('..', import.meta.url).pathname;
const COUNT = Number(process.env.EVAL_COUNT ?? 2000);
const PORT = Number(process.env.EVAL_PORT ?? 18081);
const base = `http://127.0.0.1:${PORT}`;
const MODELS = (process.env.EVAL_MODELS ?? 'glow-fashion,nice-mnist,realnvp-mnist').split(',');
const SCORES = [...SCORE_NAMES, 'anomalyScore'] as const;
// The JPEG-LS compressor was chosen after looking at glow-fashion vs MNIST on the first 2,000 test
// images of each set; metrics on the images after them are reported separately, untouched by that choice.
const SEEN = 2000;
const OTHER: Record<string, string> = { 'fashion-mnist': 'mnist', mnist: 'fashion-mnist' };

type Scored = Record<(typeof SCORES)[number], number> & { logLikelihood: number };

const likelihoodBody = (model: string, images: Uint8Array[], scores?: ScoreName[]) =>
  JSON.stringify({ model, inputs: images.map((img) => Array.from(img, (k) => (k + 0.5) / 256)), ...(scores ? { scores } : {}) });

async function score(model: string, images: Uint8Array[]): Promise<Scored[]> {
  const out: Scored[] = [];
  for (let i = 0; i < images.length; i += 64) {
    const res = await fetch(`${base}/likelihood`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: likelihoodBody(model, images.slice(i, i + 64), [...SCORE_NAMES]) });
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
const latency: Record<string, Record<string, number>> = {};

function costVariants(defaultScore?: string): [string, ScoreName[] | undefined][] {
  return [['none', []], ['defaultOnly', defaultScore ? [defaultScore as ScoreName] : []], ['all', undefined]];
}

/** Median latency of each body, the calls interleaved round-robin so drift hits every variant alike. */
async function medianMs(bodies: string[], rounds = 60, warmUp = 3): Promise<number[]> {
  const ts: number[][] = bodies.map(() => []);
  for (let i = 0; i < warmUp + rounds; i++) {
    for (const [k, body] of bodies.entries()) {
      const t = performance.now();
      const res = await fetch(`${base}/likelihood`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`/likelihood answered ${res.status}`);
      if (i >= warmUp) ts[k].push(performance.now() - t);
    }
  }
  return ts.map((xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]);
}
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
      // the in-distribution images themselves, inverted: the pairing is harmless for AUROC
      [`inverted ${dataset} test`, inverted(idImages)],
    ];
    const id = await score(model, idImages);
    log(`### ${model} (trained on ${dataset}; default score: ${manifest.calibration?.defaultScore})`);
    log();
    log(`In-distribution mean log-likelihood ${(id.reduce((s, r) => s + r.logLikelihood, 0) / id.length).toFixed(1)} nats.`);
    log();
    const split = COUNT > SEEN;
    log(`| OOD set | mean log p (nats) | score | AUROC | AUPR | FPR@95%TPR | flagged (isAnomaly) |${split ? ` AUROC, images ${SEEN}+ |` : ''}`);
    log(`|---|---|---|---|---|---|---|${split ? '---|' : ''}`);
    const idFlagged = id.filter((r) => r.anomalyScore > 0.5).length / id.length;
    for (const [setName, images] of sets) {
      const ood = await score(model, images);
      const meanLp = ood.reduce((s, r) => s + r.logLikelihood, 0) / ood.length;
      const flagged = ood.filter((r) => r.anomalyScore > 0.5).length / ood.length;
      for (const s of SCORES) {
        if (id.some((r) => r[s] === null || r[s] === undefined)) continue;
        const a = id.map((r) => r[s]), b = ood.map((r) => r[s]);
        const late = split ? ` ${auroc(a.slice(SEEN), b.slice(SEEN)).toFixed(3)} |` : '';
        log(`| ${setName} | ${meanLp.toFixed(1)} | ${s === 'anomalyScore' ? `**default (${manifest.calibration?.defaultScore})**` : s} | ${auroc(a, b).toFixed(3)} | ${aupr(a, b).toFixed(3)} | ${fprAt95Tpr(a, b).toFixed(3)} | ${s === 'anomalyScore' ? `${(100 * flagged).toFixed(1)}% (ID: ${(100 * idFlagged).toFixed(1)}%)` : ''} |${late}`);
      }
    }
    log();
    // HTTP latency of one batch-64 /likelihood by requested scores, for the cost table below.
    const batch = idImages.slice(0, 64);
    const variants = costVariants(manifest.calibration?.defaultScore);
    const ms = await medianMs(variants.map(([, scores]) => likelihoodBody(model, batch, scores)));
    latency[model] = Object.fromEntries(variants.map(([label], k) => [label, ms[k]]));
  }
} finally {
  child.kill('SIGTERM');
}

log('Cost of the extra scores: median latency of 60 `POST /likelihood` calls with 64 test images for each value of the request\'s `scores`, the variants interleaved call by call (after 3 warm-up rounds). `[]` computes log p only; the default computes every score.');
log();
log('| model | `scores: []` (ms) | `[default score]` (ms) | all scores, the default (ms) | overhead, default score only | overhead, all scores |');
log('|---|---|---|---|---|---|');
for (const model of MODELS) {
  const t = latency[model];
  const pct = (v: number) => `${((100 * (v - t.none)) / t.none).toFixed(1)}%`;
  log(`| ${model} | ${t.none.toFixed(1)} | ${t.defaultOnly.toFixed(1)} | ${t.all.toFixed(1)} | ${pct(t.defaultOnly)} | ${pct(t.all)} |`);
}
writeFileSync(join(ROOT, 'docs', 'anomaly-results.md'), lines.join('\n') + '\n');
console.log('wrote docs/anomaly-results.md');
