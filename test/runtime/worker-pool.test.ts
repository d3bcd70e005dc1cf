// The inference-thread pool on a real package (realnvp-moons, CPU).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { WorkerPool } from '../../src/runtime/worker-pool.js';
import { MODEL_DIR } from '../helpers/app.js';

const silent = { info() {}, warn() {}, error() {} };
const options = { provider: 'cpu' as const, deviceId: 0, intraOpThreads: 1, intraOpSpinning: false };

test('close() lets the runs in hand finish, then releases the sessions and ends the threads', async () => {
  const warnings: string[] = [];
  const pool = new WorkerPool([{ key: 'fwd', path: join(MODEL_DIR, 'realnvp-moons', 'forward.onnx') }], options, 2, { ...silent, warn: (_o, m) => void warnings.push(String(m)) });
  const reports = await pool.start();
  assert.equal(reports.fwd.ok, true);
  const n = 4096;
  const runs = Array.from({ length: 16 }, () => pool.run('fwd', { x: { dims: [n, 2], data: new Float32Array(2 * n).fill(0.25) } }));
  await pool.close(); // while the runs above are queued or running
  const results = await Promise.allSettled(runs);
  assert.deepEqual(results.map((r) => r.status), Array(16).fill('fulfilled'), 'a hard terminate would have failed them (or aborted the process)');
  for (const r of results) if (r.status === 'fulfilled') assert.equal(r.value.outputs.logDet.data.length, n);
  assert.deepEqual(warnings, [], 'every thread closed on its own, without the terminate() fallback');
  await assert.rejects(pool.run('fwd', { x: { dims: [1, 2], data: new Float32Array(2) } }), /no live inference thread/);
});
