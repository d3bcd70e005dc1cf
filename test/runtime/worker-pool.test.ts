// The inference-worker pool on a real package (realnvp-moons, CPU), in both isolations.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { reportMismatch, WorkerPool, type Isolation } from '../../src/runtime/worker-pool.js';
import type { SessionReport, SessionSpec } from '../../src/runtime/protocol.js';
import { loadPackage } from '../../src/service/registry.js';
import { MODEL_DIR } from '../helpers/app.js';

const silent = { info() {}, warn() {}, error() {} };
const options = { provider: 'cpu' as const, deviceId: 0, intraOpThreads: 1, intraOpSpinning: false };
const moons = await loadPackage(join(MODEL_DIR, 'realnvp-moons'), 'realnvp-moons');
const forward: SessionSpec = { key: 'fwd', graph: moons.bytes.graphs.forward, externalData: [{ path: moons.manifest.graphs.weights!, data: moons.bytes.weights! }] };
const feeds = (n: number) => ({ x: { dims: [n, 2], data: new Float32Array(2 * n).fill(0.25) } });

for (const isolation of ['process', 'thread'] as Isolation[])
  test(`close() lets the runs in hand finish, then releases the sessions and ends the workers (${isolation})`, async () => {
    const warnings: string[] = [];
    const pool = new WorkerPool([forward], options, 2, { ...silent, warn: (_o, m) => void warnings.push(String(m)) }, { isolation });
    const reports = await pool.start();
    assert.equal(reports.fwd.ok, true);
    const n = 4096;
    const runs = Array.from({ length: 16 }, () => pool.run('fwd', feeds(n)));
    await pool.close(); // while the runs above are queued or running
    const results = await Promise.allSettled(runs);
    assert.deepEqual(results.map((r) => r.status), Array(16).fill('fulfilled'), 'a hard kill would have failed them (or, for threads, aborted the process)');
    for (const r of results) if (r.status === 'fulfilled') assert.equal(r.value.outputs.logDet.data.length, n);
    assert.deepEqual(warnings, [], 'every worker closed on its own, without the kill fallback');
    await assert.rejects(pool.run('fwd', feeds(1)), /no live inference worker/);
  });

test('FAULT - a replacement that dies while starting is retried with backoff', async () => {
  const errors: { obj: Record<string, unknown>; msg: string }[] = [];
  const pool = new WorkerPool([forward], options, 1, { ...silent, error: (obj, msg) => void errors.push({ obj: obj as Record<string, unknown>, msg: String(msg) }) }, { isolation: 'process', backoffMs: 250 });
  try {
    await pool.start();
    const before = await pool.run('fwd', feeds(3));
    pool.injectStartFaults(2); // the next two starts exit during init
    const killed = performance.now();
    await pool.killWorker(0);
    // Meanwhile the pool says the truth: nothing live, restarting, failures counted, not yet "failing" (2 < 3).
    const seen = new Set<string>();
    while (pool.status().live === 0) {
      const s = pool.status();
      seen.add(s.failedStarts.join());
      assert.equal(s.restarting, true);
      assert.equal(s.failing, false);
      await assert.rejects(pool.run('fwd', feeds(1)), /no live inference worker/);
      assert.ok(performance.now() - killed < 30_000, 'replaced within 30 s');
      await new Promise((r) => setTimeout(r, 10));
    }
    const elapsed = performance.now() - killed;
    assert.ok(seen.has('1') && seen.has('2'), `saw failed-start counts ${[...seen]}`);
    assert.ok(elapsed >= 250 + 500, `two backoff waits (250 + 500 ms) before the third attempt; replaced after ${elapsed.toFixed(0)} ms`);
    assert.equal(pool.status().failedStarts[0], 0, 'reset after a successful start');
    assert.equal(pool.restarts, 1);
    const after = await pool.run('fwd', feeds(3));
    assert.deepEqual(after.outputs, before.outputs, 'the replacement serves the same sessions');
    // One line for the death, one for the failing starts (the first); the second failure is only counted.
    assert.deepEqual(errors.map((e) => e.msg), ['inference worker died; replacing it', 'inference worker failed to start; retrying with backoff']);
    assert.equal(errors[1].obj.retryInMs, 250);
  } finally {
    await pool.close();
  }
});

test('a start whose sessions differ from the original ones is a failed start', () => {
  const io = (shape: (number | string)[]) => [{ name: 'x', shape }];
  const original: Record<string, SessionReport> = {
    a: { ok: true, provider: 'cpu', inputs: io(['batch', 2]), outputs: io(['batch', 2]) },
    b: { ok: false, error: 'Load model failed' },
  };
  assert.equal(reportMismatch(original, structuredClone(original)), null);
  assert.equal(reportMismatch(original, { ...original, b: { ...original.a } }), 'b: loads now but did not');
  assert.equal(reportMismatch(original, { ...original, a: { ok: false, error: 'gone' } }), 'a: no longer loads');
  assert.match(reportMismatch(original, { ...original, a: { ok: true, provider: 'cpu', inputs: io(['batch', 3]), outputs: io(['batch', 2]) } })!, /^a: inputs/);
  assert.match(reportMismatch(original, { ...original, a: { ok: true, provider: 'cpu', inputs: io(['batch', 2]), outputs: [{ name: 'y', shape: ['batch', 2] }] } })!, /^a: outputs/);
  assert.match(reportMismatch(original, { ...original, a: { ok: true, provider: 'cuda', inputs: io(['batch', 2]), outputs: io(['batch', 2]) } })!, /^a: provider cuda, was cpu/);
  assert.equal(reportMismatch(original, { a: original.a }), 'b: missing');
});
