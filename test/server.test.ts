// The real process: `node --import tsx src/server.ts` honours HOST/PORT, and on SIGTERM stops
// accepting, finishes every in-flight request, then exits 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { MODEL_DIR } from './helpers/app.js';

test('SIGTERM under load: every accepted request completes, then exit code 0', { timeout: 120_000 }, async (t) => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: new URL('..', import.meta.url).pathname,
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', MODEL_DIR, LOG_LEVEL: 'info', INTRA_OP_THREADS: '1', MAX_BATCH_SIZE: '16', MAX_QUEUE_SIZE: '100000' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => void (child.exitCode === null && child.kill('SIGKILL'))); // never leave a server behind a failed assertion
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

  const COUNT = 64;
  type Outcome = { status: number; code?: string; retryAfter?: string | null; outputs?: number[][]; at: number };
  const requests: Promise<Outcome>[] = Array.from({ length: 24 }, (_, i) =>
    fetch(`${base}/sample`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: heavy.name, count: COUNT, seed: i, format: 'array' }) }).then(
      async (r) => {
        const body = (await r.json()) as { outputs?: number[][]; error?: { code: string } };
        return { status: r.status, code: body.error?.code, retryAfter: r.headers.get('retry-after'), outputs: body.outputs, at: performance.now() };
      },
      () => ({ status: 0, at: performance.now() }), // connection refused: sent after the listener closed
    ),
  );
  // SIGTERM while at least 8 requests are inside the server (the scrape counts itself as in flight)
  let inFlightAtKill = 0;
  for (let i = 0; ; i++) {
    const text = await (await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    inFlightAtKill = Number(/^flowserve_http_requests_in_flight (\S+)$/m.exec(text)?.[1] ?? 0) - 1;
    if (inFlightAtKill >= 8) break;
    assert.ok(i < 2000, `only ${inFlightAtKill} requests in flight`);
    await new Promise((r) => setTimeout(r, 2));
  }
  const exited = once(child, 'exit');
  const killedAt = performance.now();
  child.kill('SIGTERM');
  const results = await Promise.all(requests);
  const [code] = await exited;
  // accepted before SIGTERM: served in full; arriving after: refused cleanly (our 503 with
  // Retry-After on an open connection, or no connection at all), never cut off or answered 5xx otherwise
  const served = results.filter((r) => r.status === 200);
  for (const r of served) assert.equal(r.outputs?.length, COUNT);
  for (const r of results.filter((r) => r.status !== 200)) {
    if (r.status === 0) continue;
    assert.equal(r.status, 503, JSON.stringify(r));
    assert.equal(r.code, 'NOT_READY');
    assert.equal(r.retryAfter, '1');
  }
  assert.ok(served.length >= inFlightAtKill, `${served.length} served < ${inFlightAtKill} in flight at SIGTERM`);
  assert.ok(served.some((r) => r.at > killedAt), 'some requests were still in flight at SIGTERM');
  assert.equal(code, 0, log.slice(-2000));
  assert.match(log, /closing: no new connections, finishing in-flight requests/);
  await assert.rejects(fetch(`${base}/healthz`), 'no longer accepting');
});
