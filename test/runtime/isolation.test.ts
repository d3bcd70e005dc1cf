// The real server (`node --import tsx src/server.ts`, INFERENCE_ISOLATION=process by default) under
// load while its inference worker processes are SIGKILLed from outside, as the OOM killer or a
// native abort would end them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { MODEL_DIR } from '../helpers/app.js';
import { killGroup, modelDirWith, startServer } from '../helpers/server-process.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const KILLS = 4;

test('FAULT - killing an inference worker under load never takes the server down', { timeout: 120_000 }, async (t) => {
  const dir = await modelDirWith(['realnvp-moons', 'glow-fashion']);
  t.after(() => rm(dir, { recursive: true, force: true }));
  const server = await startServer({ via: 'node', env: { MODEL_DIR: dir, SHUTDOWN_DELAY_MS: '0' } });
  t.after(() => killGroup(server));
  const workerPids = () => [...server.log().matchAll(/"workerPid":(\d+)[^\n]*"msg":"inference worker ready"/g)].map((m) => Number(m[1]));
  const parentOf = (pid: number) => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[1]);

  const ref = async (name: string) => JSON.parse(await readFile(join(MODEL_DIR, name, 'reference.json'), 'utf8')).inputs as number[][];
  const bodies: [string, unknown][] = [
    ['/likelihood', { model: 'realnvp-moons', inputs: await ref('realnvp-moons') }],
    ['/sample', { model: 'realnvp-moons', count: 32, seed: 1 }],
    ['/likelihood', { model: 'glow-fashion', inputs: (await ref('glow-fashion')).slice(0, 4), scores: ['nll'] }],
    ['/sample', { model: 'glow-fashion', count: 4, seed: 2, format: 'array' }],
  ];
  type Outcome = { status: number; code?: string; at: number };
  const outcomes: Outcome[] = [];
  let stop = false;
  const client = async (k: number) => {
    for (let i = k; !stop; i++) {
      const [url, body] = bodies[i % bodies.length];
      try {
        const r = await fetch(server.base + url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
        const json = (await r.json()) as { error?: { code: string } };
        outcomes.push({ status: r.status, code: json.error?.code, at: performance.now() });
      } catch {
        outcomes.push({ status: 0, at: performance.now() });
      }
      if (outcomes.at(-1)!.status !== 200) await sleep(20); // no hot loop on fast 503s
    }
  };
  const clients = Array.from({ length: 6 }, (_, k) => client(k));
  t.after(() => void (stop = true)); // a failed assertion must not leave the clients running

  let lastKill = 0;
  for (let kill = 0; kill < KILLS; kill++) {
    await sleep(400); // steady load on the live worker
    const pids = workerPids();
    const pid = pids.at(-1)!;
    assert.equal(parentOf(pid), server.child.pid, 'the worker is a child process of the server');
    process.kill(pid, 'SIGKILL');
    lastKill = performance.now();
    for (;;) {
      if (workerPids().length > pids.length && (await fetch(`${server.base}/readyz`)).status === 200) break;
      assert.ok(performance.now() - lastKill < 30_000, `no replacement after kill ${kill + 1}: ${server.log().slice(-2000)}`);
      await sleep(25);
    }
  }
  await sleep(400);
  stop = true;
  await Promise.all(clients);

  assert.equal(server.child.exitCode, null, 'the server is still running');
  assert.equal(server.child.signalCode, null);
  const bad = outcomes.filter((o) => !(o.status === 200 || (o.status === 503 && o.code === 'MODEL_UNAVAILABLE')));
  assert.deepEqual(bad, [], 'every answer is 200 or 503 MODEL_UNAVAILABLE (no connection lost, no 500)');
  assert.ok(outcomes.some((o) => o.status === 200 && o.at > lastKill), 'served again after the last kill');
  assert.equal(workerPids().length, KILLS + 1);
  assert.equal((await fetch(`${server.base}/healthz`)).status, 200);
  const metrics = await (await fetch(`${server.base}/metrics`)).text();
  assert.match(metrics, new RegExp(`^flowserve_worker_restarts ${KILLS}$`, 'm'));

  // The workers close with the server: exit code 0 after SIGTERM, no worker left behind.
  const live = workerPids().at(-1)!;
  server.child.kill('SIGTERM');
  const [code] = await server.exited;
  assert.equal(code, 0, server.log().slice(-2000));
  assert.throws(() => process.kill(live, 0), /ESRCH/, 'the last worker exited too');
});
