// npm run eval:likelihood against the real server: the centre figure of the first test images is
// the package's float64 PyTorch reference (reference.json holds test[:5] at pixel centres).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { killGroup, modelDirWith, ROOT, startServer, type ServerProcess } from '../helpers/server-process.js';
import { shippedPackages } from '../helpers/packages.js';

const run = promisify(execFile);
const mnist = shippedPackages().find((p) => p.name === 'realnvp-mnist')!;
let server: ServerProcess;
let dir: string;

before(async () => {
  dir = await modelDirWith(['realnvp-mnist', 'realnvp-moons']);
  server = await startServer({ via: 'node', env: { MODEL_DIR: dir } });
});
after(async () => {
  killGroup(server);
  await rm(dir, { recursive: true, force: true });
});

async function evalLikelihood(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'tools/eval-likelihood.ts', ...args, '--model-dir', dir], { cwd: ROOT });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
const meanOf = (out: string) => Number(/mean log-likelihood (-?[\d.]+) nats/.exec(out)?.[1]);

test('pixel centres through /likelihood reproduce the float64 reference, as inputs rows or as PNG images', async () => {
  const want = mnist.reference.logProb.reduce((a, b) => a + b, 0) / 5;
  for (const send of ['inputs', 'images']) {
    const r = await evalLikelihood('realnvp-mnist', '--url', server.base, '--limit', '5', '--batch', '2', '--send', send, '--dequantization', 'centre');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /5 inputs of mnist test/);
    assert.match(r.stdout, /service reported \{"dequantization":"centre"\}/);
    assert.ok(Math.abs(meanOf(r.stdout) - want) < 0.05, `${send}: ${meanOf(r.stdout)} vs ${want}`);
    const bpd = Number(/bits\/dim\s+([\d.]+)/.exec(r.stdout)?.[1]);
    assert.ok(Math.abs(bpd - (784 * 8 * Math.LN2 - want) / (784 * Math.LN2)) < 1e-3);
    assert.match(r.stdout, /meanLogLikelihoodAtPixelCentres: 3815\.88\d\d nats/);
  }
});

test('uniform dequantization is repeatable for a seed and reports the protocol the service used', async () => {
  const args = ['realnvp-mnist', '--url', server.base, '--limit', '5', '--batch', '2', '--dequantization', 'uniform', '--draws', '2', '--seed', '7'];
  const [a, b] = [await evalLikelihood(...args), await evalLikelihood(...args)];
  assert.equal(a.code, 0, a.stderr);
  assert.match(a.stdout, /service reported \{"dequantization":"uniform","draws":2,"seed":7\}/);
  assert.equal(meanOf(a.stdout), meanOf(b.stdout));
  assert.notEqual(meanOf(a.stdout), meanOf((await evalLikelihood(...args.slice(0, -1), '8')).stdout));
});

test('BAD CALL - eval:likelihood says what is missing: a running service, a test split, a consistent protocol', async () => {
  // a port nothing listens on: one the OS just handed out and took back
  const probe = createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const closed = (probe.address() as AddressInfo).port;
  await new Promise((r) => probe.close(r));
  const cases: [string[], RegExp][] = [
    [['realnvp-mnist', '--url', `http://127.0.0.1:${closed}`, '--limit', '1'], /cannot reach http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED \(is the service running\? npm start\)/],
    [['realnvp-moons', '--url', server.base], /realnvp-moons was trained on 'two-moons', which has no built-in test split here .*: give the test data with --data/],
    [['realnvp-mnist', '--url', server.base, '--draws', '4'], /--draws and --seed are for --dequantization uniform/],
    [['realnvp-mnist', '--url', server.base, '--limit', '5', '--batch', '300', '--dequantization', 'uniform', '--draws', '64'], /answered 400: .*MAX_ITEMS_PER_REQUEST/],
    [['no-such-model', '--url', server.base], /no-such-model.flow\.json not found/],
  ];
  for (const [args, re] of cases) {
    const r = await evalLikelihood(...args);
    assert.equal(r.code, 1, args.join(' '));
    assert.match(r.stderr, re);
  }
});
