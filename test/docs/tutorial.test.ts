// docs/tutorial.md end to end, so that the tutorial a new user follows is the code that runs:
//  - the doc's Python blocks, read in order, are exactly docs/tutorial/digits_flow.py (no line more or less);
//  - the doc's shell blocks marked <!-- tutorial:run --> run as printed, in a temp dir, with the doc's
//    `.venv/bin/python` replaced by /usr/bin/python3 + PYTHONPATH=exporter (CI has no venv) and its
//    my-models / my-data folders by temp folders: train (fixed steps), export, calibrate;
//  - the real server (MODEL_DIR=that folder) answers what the doc's curl calls ask: /likelihood on the
//    PNGs the script wrote matches PyTorch's float64 log p of the same images (reference.json), /sample
//    works, batchTest works straight from the exporter's calibration, and after `npm run calibrate`
//    every anomaly score is there.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killGroup, startServer, type ServerProcess } from '../helpers/server-process.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const DOC = readFileSync(join(ROOT, 'docs/tutorial.md'), 'utf8');
const SCRIPT = 'docs/tutorial/digits_flow.py';
const work = mkdtempSync(join(tmpdir(), 'flowserve-tutorial-'));
const MODELS = join(work, 'my-models');
const DATA = join(work, 'my-data');
const MODEL = 'digits-8x8';
after(() => rmSync(work, { recursive: true, force: true }));

/** Fenced blocks of a language, with whether the line before the fence is the given marker. */
function blocks(lang: string): { code: string; marked: boolean }[] {
  const out: { code: string; marked: boolean }[] = [];
  const re = new RegExp('(?:^|\\n)([^\\n]*)\\n```' + lang + '\\n([\\s\\S]*?)\\n```', 'g');
  for (const m of DOC.matchAll(re)) out.push({ code: m[2], marked: m[1].trim() === '<!-- tutorial:run -->' });
  return out;
}

const nonBlank = (text: string) => text.split('\n').filter((l) => l.trim() !== '');

test('the tutorial quotes docs/tutorial/digits_flow.py verbatim and completely, in order', () => {
  const quoted = nonBlank(blocks('python').map((b) => b.code).join('\n'));
  const file = nonBlank(readFileSync(join(ROOT, SCRIPT), 'utf8'));
  assert.ok(quoted.length > 50, 'docs/tutorial.md quotes no Python');
  for (let i = 0; i < Math.max(quoted.length, file.length); i++)
    assert.equal(quoted[i], file[i], `docs/tutorial.md drifts from ${SCRIPT} at its ${i + 1}th non-blank line`);
});

function runDocBlock(code: string): string {
  const cmd = code
    .replaceAll('.venv/bin/python', '/usr/bin/python3')
    .replaceAll('my-models', MODELS)
    .replaceAll('my-data', DATA);
  const r = spawnSync('bash', ['-euo', 'pipefail', '-c', cmd], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, PYTHONPATH: join(ROOT, 'exporter'), OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1' },
    maxBuffer: 64 * 1024 * 1024,
    timeout: 300_000,
  });
  assert.equal(r.status, 0, `tutorial step failed (exit ${r.status}):\n${cmd}\n${(r.stdout + r.stderr).slice(-4000)}`);
  return r.stdout;
}

interface Likelihood {
  results: { logLikelihood: number; scores: Record<string, number | null>; anomalyScore: number | null }[];
  batchTest?: { pValue: number } & Record<string, unknown>;
}

async function likelihood(base: string, extra: Record<string, string> = {}): Promise<Likelihood> {
  const form = new FormData();
  form.append('model', MODEL);
  for (const [k, v] of Object.entries(extra)) form.append(k, v);
  for (let i = 0; i < 4; i++) form.append(`d${i}`, new Blob([readFileSync(join(DATA, `digit-${i}.png`))], { type: 'image/png' }), `digit-${i}.png`);
  const r = await fetch(`${base}/likelihood`, { method: 'POST', body: form });
  const body = await r.text();
  assert.equal(r.status, 200, body);
  return JSON.parse(body) as Likelihood;
}

async function stop(server: ServerProcess): Promise<void> {
  server.signalGroup('SIGTERM');
  await server.exited;
}

test('the tutorial runs end to end: train, export, serve, calibrate', { timeout: 300_000 }, async () => {
  const run = blocks('sh').filter((b) => b.marked);
  assert.equal(run.length, 2, 'docs/tutorial.md should mark two steps <!-- tutorial:run -->: export, then calibrate');
  const [exportStep, calibrateStep] = run;
  assert.match(exportStep.code, /digits_flow\.py/);
  assert.match(calibrateStep.code, /npm run calibrate -- digits-8x8 --data /);

  runDocBlock(exportStep.code);
  const dir = join(MODELS, MODEL);
  const manifest = JSON.parse(readFileSync(join(dir, 'flow.json'), 'utf8'));
  const ref = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8')) as { logProb: number[] };
  assert.ok(manifest.sampling.maxTemperature >= manifest.defaultTemperature);
  assert.equal(manifest.calibration.nllQuantiles.length, 101);

  let server: ServerProcess | undefined;
  try {
    server = await startServer({ via: 'node', env: { MODEL_DIR: MODELS } });
    // the PNGs are the first four test digits; reference.json holds PyTorch float64 log p at their pixel centres
    const lik = await likelihood(server.base, { batchTest: 'true' });
    lik.results.forEach((r, i) => {
      const rel = Math.abs(r.logLikelihood - ref.logProb[i]) / Math.max(1, Math.abs(ref.logProb[i]));
      assert.ok(rel <= 1e-4, `digit ${i}: service log p ${r.logLikelihood}, PyTorch ${ref.logProb[i]}`);
    });
    assert.ok(lik.batchTest, 'batchTest must work on an exporter-built package (calibration.nllQuantiles)');

    const s = await fetch(`${server.base}/sample`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, count: 3, seed: 7 }) });
    const sample = (await s.json()) as { images?: string[]; logLikelihood: number[]; temperature: number };
    assert.equal(s.status, 200, JSON.stringify(sample));
    assert.equal(sample.images?.length, 3);
    assert.equal(sample.temperature, manifest.defaultTemperature);
    assert.ok(sample.logLikelihood.every(Number.isFinite));
    await stop(server);

    runDocBlock(calibrateStep.code);
    const calibrated = JSON.parse(readFileSync(join(dir, 'flow.json'), 'utf8'));
    for (const score of ['nll', 'typicality', 'complexity', 'complexityJpegLs']) assert.ok(calibrated.calibration.scores[score], `calibration.scores.${score}`);
    assert.equal(calibrated.calibration.nllQuantiles.length, 101);

    server = await startServer({ via: 'node', env: { MODEL_DIR: MODELS } });
    const after = await likelihood(server.base, { batchTest: 'true' });
    assert.ok(after.batchTest);
    for (const r of after.results) {
      assert.ok(r.anomalyScore !== null && Number.isFinite(r.anomalyScore), JSON.stringify(r));
      // every calibrated score but the PNG complexity, which is computed when asked for
      for (const score of ['nll', 'typicality', 'complexityJpegLs']) assert.ok(Number.isFinite(r.scores[score]), `${score}: ${JSON.stringify(r.scores)}`);
      assert.equal(r.scores.complexity, null);
    }
    const all = await likelihood(server.base, { scores: 'nll,typicality,complexity,complexityJpegLs' });
    for (const r of all.results) for (const score of ['nll', 'typicality', 'complexity', 'complexityJpegLs']) assert.ok(Number.isFinite(r.scores[score]), `${score}: ${JSON.stringify(r.scores)}`);
    await stop(server);
  } finally {
    killGroup(server);
  }
});
