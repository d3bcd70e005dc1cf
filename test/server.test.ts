// The real process: `node --import tsx src/server.ts` honours HOST/PORT, and on SIGTERM stops
// accepting, finishes every in-flight request, then exits 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { MODEL_DIR } from './helpers/app.js';

test('SIGTERM under load: every accepted request completes, then exit code 0', { timeout: 120_000 }, async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: new URL('..', import.meta.url).pathname,
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', MODEL_DIR, LOG_LEVEL: 'info', INTRA_OP_THREADS: '1', MAX_BATCH_SIZE: '16' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      log += d.toString();
      const m = /Server listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(log);
      if (m) resolve(Number(m[1]));
    });
    child.stderr.on('data', (d: Buffer) => (log += d.toString()));
    child.on('exit', (code) => reject(new Error(`server exited early (${code}): ${log}`)));
  });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    const r = await fetch(`${base}/readyz`).catch(() => null);
    if (r?.status === 200) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const models = (await (await fetch(`${base}/models`)).json()) as { models: { name: string; dataKind: string }[] };
  const heavy = models.models.find((m) => m.dataKind === 'image') ?? models.models[0];

  const requests = Array.from({ length: 24 }, (_, i) =>
    fetch(`${base}/sample`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: heavy.name, count: 32, seed: i, format: 'array' }) }).then(
      async (r) => ({ status: r.status, body: (await r.json()) as { outputs?: number[][] }, at: performance.now() }),
    ),
  );
  await new Promise((r) => setTimeout(r, 150)); // let the server accept them
  const exited = once(child, 'exit');
  const killedAt = performance.now();
  child.kill('SIGTERM');
  const results = await Promise.all(requests);
  const [code] = await exited;
  for (const r of results) {
    assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 200));
    assert.equal(r.body.outputs?.length, 32);
  }
  assert.ok(results.some((r) => r.at > killedAt), 'some requests were still in flight at SIGTERM');
  assert.equal(code, 0, log.slice(-2000));
  assert.match(log, /closing: no new connections, finishing in-flight requests/);
  await assert.rejects(fetch(`${base}/healthz`), 'no longer accepting');
});
