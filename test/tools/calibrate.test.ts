// npm run calibrate end to end, on copies of shipped packages: a .npy of the user's own data goes
// through the service's likelihood path into a flow.json that validates and still loads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Value } from '@sinclair/typebox/value';
import { ManifestSchema, type Manifest } from '../../src/config/manifest-schema.js';
import { loadPackage } from '../../src/service/registry.js';
import { encodeNpy } from '../../tools/lib/dataset-files.js';
import { ROOT, tempModelDirs } from '../helpers/server-process.js';
import { mnistTestImages } from '../helpers/packages.js';

const run = promisify(execFile);
const models = tempModelDirs();

async function calibrate(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'tools/calibrate.ts', ...args], { cwd: ROOT });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Two moons (noise 0.05, as the package was trained on), from a fixed LCG. */
function moons(n: number): Float32Array {
  let s = 7;
  const u = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const g = () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
  const x = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) {
    const t = Math.PI * u();
    const upper = i % 2 === 0;
    x[2 * i] = (upper ? Math.cos(t) : 1 - Math.cos(t)) + 0.05 * g();
    x[2 * i + 1] = (upper ? Math.sin(t) : 0.5 - Math.sin(t)) + 0.05 * g();
  }
  return x;
}

const manifestOf = (dir: string, name: string) => JSON.parse(readFileSync(join(dir, name, 'flow.json'), 'utf8')) as Manifest;

test('a vector model calibrates from a float32 .npy: every score, thresholds at 1 − FPR, 101 quantiles; the package still loads', async () => {
  const dir = await models('realnvp-moons');
  const shipped = manifestOf(dir, 'realnvp-moons').calibration!;
  writeFileSync(join(dir, 'moons.npy'), encodeNpy(moons(400), [400, 2]));
  const r = await calibrate('realnvp-moons', '--data', join(dir, 'moons.npy'), '--model-dir', dir, '--fpr', '0.1');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /realnvp-moons: calibrated on 400 items/);
  const m = manifestOf(dir, 'realnvp-moons');
  assert.ok(Value.Check(ManifestSchema, m));
  const cal = m.calibration!;
  assert.equal(cal.split, 'moons.npy (400 of 400 items)');
  assert.equal(cal.count, 400);
  assert.equal(cal.defaultScore, 'nll', 'the existing default score is kept');
  assert.equal(cal.targetFalsePositiveRate, 0.1);
  assert.deepEqual(Object.keys(cal.scores), ['nll', 'typicality']);
  assert.match(String((cal as { method?: string }).method), /vectors from moons\.npy as given/);
  const q = cal.nllQuantiles!;
  assert.equal(q.length, 101);
  assert.ok(q.every((v, i) => i === 0 || v >= q[i - 1]), 'quantiles ascend');
  // the threshold is the 90 % quantile: 10 of the 101 quantiles lie above it, give or take one
  assert.ok(Math.abs(q.filter((v) => v > cal.scores.nll.threshold).length - 10) <= 1);
  // the same distribution as the shipped held-out split: the NLL mean agrees within its standard error × 4
  assert.ok(Math.abs(cal.scores.nll.mean - shipped.scores.nll.mean) < (4 * shipped.scores.nll.std) / Math.sqrt(400), `${cal.scores.nll.mean} vs ${shipped.scores.nll.mean}`);
  await loadPackage(join(dir, 'realnvp-moons'), 'realnvp-moons');
});

test('an 8-bit image model calibrates from a uint8 .npy of pixels (with --limit), complexity scores included', async () => {
  const dir = await models('realnvp-mnist');
  const { pixels } = mnistTestImages(60);
  writeFileSync(join(dir, 'digits.npy'), encodeNpy(Uint8Array.from(pixels.flatMap((p) => [...p])), [60, 28, 28]));
  const r = await calibrate('realnvp-mnist', '--data', join(dir, 'digits.npy'), '--model-dir', dir, '--limit', '40', '--default-score', 'complexityJpegLs');
  assert.equal(r.code, 0, r.stderr);
  const cal = manifestOf(dir, 'realnvp-mnist').calibration!;
  assert.equal(cal.split, 'digits.npy (40 of 60 items)');
  assert.equal(cal.count, 40);
  assert.equal(cal.defaultScore, 'complexityJpegLs');
  assert.deepEqual(Object.keys(cal.scores), ['nll', 'typicality', 'complexity', 'complexityJpegLs']);
  assert.match(String((cal as { method?: string }).method), /pixel centres \(k \+ 0\.5\)\/256/);
  // NLL at pixel centres of MNIST digits under this model: thousands of nats below zero (flow.json test figure ≈ −3662)
  assert.ok(cal.scores.nll.mean < -3000 && cal.scores.nll.mean > -4500, String(cal.scores.nll.mean));
  await loadPackage(join(dir, 'realnvp-mnist'), 'realnvp-mnist');
});

test('BAD CALL - calibrate names what is wrong and leaves flow.json untouched', async () => {
  const dir = await models('realnvp-moons');
  const before = readFileSync(join(dir, 'realnvp-moons', 'flow.json'), 'utf8');
  writeFileSync(join(dir, 'three.npy'), encodeNpy(new Float32Array(30), [10, 3]));
  const cases: [string[], RegExp][] = [
    [['my-digits', '--model-dir', dir], /model 'my-digits' not found in .* \(present: realnvp-moons\)/],
    [['realnvp-moons', '--model-dir', dir], /realnvp-moons was trained on 'two-moons': give its held-out data with --data/],
    [['realnvp-moons', '--model-dir', dir, '--data', join(dir, 'three.npy')], /three\.npy: items are \[3\] \(3 values\); each item must be \[2\] \(D = 2 values\)/],
    [['realnvp-moons', '--model-dir', dir, '--data', join(dir, 'nothing.npy')], /cannot read .*nothing\.npy: ENOENT/],
    [['realnvp-moons', '--model-dir', dir, '--default-score', 'complexity', '--data', join(dir, 'three.npy')], /--default-score complexity: not a score realnvp-moons has \(nll, typicality\)/],
    [['realnvp-moons', '--model-dir', dir, '--fpr', '1'], /--fpr 1: must be a number between 0 and 1/],
    [['realnvp-moons', '--bogus'], /unknown option --bogus/],
  ];
  for (const [args, re] of cases) {
    const r = await calibrate(...args);
    assert.equal(r.code, 1, args.join(' '));
    assert.match(r.stderr, re);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'one line, no stack');
  }
  assert.equal(readFileSync(join(dir, 'realnvp-moons', 'flow.json'), 'utf8'), before);
});
