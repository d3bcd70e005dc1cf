// The real process, as users and orchestrators run it: `npm start` or node alone, signalled the way a
// terminal (Ctrl-C → SIGINT to the process group), Kubernetes (SIGTERM) or a process supervisor
// (SIGTERM to one pid) does. Shutdown drains (src/http/lifecycle.ts): readiness 503 at once, still
// serving for SHUTDOWN_DELAY_MS, then no new connections, in-flight requests finish, exit 0.
import { after, test } from 'node:test';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { killGroup, startServer, tempModelDirs, type ServerProcess } from './helpers/server-process.js';

const models = tempModelDirs();

type Outcome = 'ok' | 'not-ready' | 'refused' | 'dropped';

/** One request's fate: a connection refused before anything was sent is not a dropped request. */
async function outcome(base: string, body: unknown): Promise<{ kind: Outcome; detail: string }> {
  try {
    const r = await fetch(`${base}/sample`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const json = (await r.json()) as { outputs?: number[][]; error?: { code: string } };
    if (r.status === 200 && json.outputs?.length === (body as { count: number }).count) return { kind: 'ok', detail: '200' };
    if (r.status === 503 && json.error?.code === 'NOT_READY' && r.headers.get('connection') === 'close') return { kind: 'not-ready', detail: '503' };
    return { kind: 'dropped', detail: `${r.status} ${JSON.stringify(json).slice(0, 200)}` };
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    if (cause?.code === 'ECONNREFUSED') return { kind: 'refused', detail: 'ECONNREFUSED' };
    return { kind: 'dropped', detail: `${cause?.code ?? ''} ${cause?.message ?? (err as Error).message}` };
  }
}

/**
 * `clients` loops of back-to-back requests until each gets a refusal; `signal` is called once
 * requests are in flight. Returns every outcome and how many requests were in flight at the signal.
 */
async function underLoad(server: ServerProcess, clients: number, body: unknown, signal: () => void) {
  const outcomes: { kind: Outcome; detail: string }[] = [];
  let inFlight = 0;
  let atSignal = -1;
  let started = 0;
  const loop = async () => {
    for (;;) {
      inFlight++;
      started++;
      const o = await outcome(server.base, body);
      inFlight--;
      outcomes.push(o);
      if (o.kind !== 'ok') return;
    }
  };
  const loops = Array.from({ length: clients }, loop);
  while (started < clients * 3) await new Promise((r) => setTimeout(r, 5));
  atSignal = inFlight;
  signal();
  await Promise.all(loops);
  return { outcomes, atSignal, count: (k: Outcome) => outcomes.filter((o) => o.kind === k).length };
}

const NICE_SAMPLE = { model: 'nice-mnist', count: 16, format: 'array' };

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  test(`FAULT - ${signal} to the \`npm start\` process group (what ${signal === 'SIGINT' ? 'Ctrl-C' : 'kill -- -PGID'} does) drops no in-flight request, exit 0`, { timeout: 90_000 }, async (t) => {
    const server = await startServer({ via: 'npm', env: { MODEL_DIR: await models('nice-mnist'), SHUTDOWN_DELAY_MS: '500' } });
    t.after(() => killGroup(server));
    const run = await underLoad(server, 32, NICE_SAMPLE, () => server.signalGroup(signal));
    const [code] = await server.exited;
    const dropped = run.outcomes.filter((o) => o.kind === 'dropped');
    assert.deepEqual(dropped, [], `dropped ${dropped.length} requests (${run.atSignal} in flight at the signal)`);
    assert.ok(run.atSignal >= 16, `only ${run.atSignal} requests were in flight at the signal`);
    assert.ok(run.count('ok') >= run.atSignal, 'every request in flight at the signal was served');
    assert.equal(code, 0, server.log().slice(-2000));
    const log = server.log();
    assert.match(log, /draining: \/readyz answers 503/);
    assert.match(log, /"msg":"shut down"/);
    // npm usually relays the signal the group already delivered; a second one joins the first
    // drain (asserted on its own in 'repeated SIGTERM and SIGINT during a drain count as one')
    assert.doesNotMatch(log, /"level":50/, 'no error logged');
    await assert.rejects(fetch(`${server.base}/healthz`), 'the port is closed: no orphaned server');
  });
}

test('FAULT - SIGTERM to the npm process alone stops the server behind it (no orphan holding the port)', { timeout: 60_000 }, async (t) => {
  const server = await startServer({ via: 'npm', env: { MODEL_DIR: await models('realnvp-moons'), SHUTDOWN_DELAY_MS: '200' } });
  t.after(() => killGroup(server));
  server.child.kill('SIGTERM');
  const [code] = await server.exited;
  assert.equal(code, 0, server.log().slice(-2000));
  await assert.rejects(fetch(`${server.base}/healthz`), 'nothing listens any more');
  assert.throws(() => process.kill(-server.child.pid!, 0), { code: 'ESRCH' }, 'no process of the group is left');
});

test('FAULT - SIGTERM to node under load: every accepted request completes, readiness 503 first, exit 0', { timeout: 90_000 }, async (t) => {
  const server = await startServer({ via: 'node', env: { MODEL_DIR: await models('glow-fashion'), SHUTDOWN_DELAY_MS: '1000', MAX_BATCH_SIZE: '16' } });
  t.after(() => killGroup(server));
  let readyzDuringDelay: number | undefined;
  let servedDuringDelay: number | undefined;
  const run = await underLoad(server, 8, { model: 'glow-fashion', count: 64, seed: 1, format: 'array' }, () => {
    server.child.kill('SIGTERM');
    // both asked right after the signal: readiness fails at once, while requests are still served
    setTimeout(async () => {
      readyzDuringDelay = (await fetch(`${server.base}/readyz`)).status;
      servedDuringDelay = (await fetch(`${server.base}/sample`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'glow-fashion', count: 1 }) })).status;
    }, 100);
  });
  const [code] = await server.exited;
  assert.deepEqual(run.outcomes.filter((o) => o.kind === 'dropped'), []);
  assert.equal(readyzDuringDelay, 503);
  assert.equal(servedDuringDelay, 200, 'requests keep being served during SHUTDOWN_DELAY_MS');
  assert.equal(code, 0, server.log().slice(-2000));
});

test('FAULT - repeated SIGTERM and SIGINT during a drain count as one (no early exit)', { timeout: 60_000 }, async (t) => {
  const server = await startServer({ via: 'node', env: { MODEL_DIR: await models('realnvp-moons'), SHUTDOWN_DELAY_MS: '1500' } });
  t.after(() => killGroup(server));
  const signalledAt = performance.now();
  server.child.kill('SIGTERM');
  for (const s of ['SIGTERM', 'SIGINT', 'SIGTERM'] as const) {
    await new Promise((r) => setTimeout(r, 100));
    server.child.kill(s);
  }
  const stillServing = await fetch(`${server.base}/readyz`);
  assert.equal(stillServing.status, 503, 'alive and draining after four signals');
  const [code] = await server.exited;
  assert.equal(code, 0);
  assert.ok(performance.now() - signalledAt >= 1500, 'the drain ran its delay in full');
  assert.equal(server.log().match(/already shutting down; signal ignored/g)?.length, 3);
});

/** Read one HTTP/1.1 response (headers and a Content-Length body) from a raw socket. */
function readResponse(socket: Socket): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString();
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const [statusLine, ...lines] = buf.slice(0, end).split('\r\n');
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      const body = buf.slice(end + 4);
      if (body.length < Number(headers['content-length'] ?? 0)) return;
      socket.off('data', onData);
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body });
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.once('close', () => reject(new Error(`connection closed before a full response (read: ${JSON.stringify(buf.slice(0, 200))})`)));
  });
}

test('FAULT - a request written on an idle keep-alive connection after the listener closed gets 503 + Connection: close, not a reset', { timeout: 60_000 }, async (t) => {
  const server = await startServer({ via: 'node', env: { MODEL_DIR: await models('realnvp-moons'), SHUTDOWN_DELAY_MS: '200', KEEP_ALIVE_TIMEOUT_MS: '20000' } });
  t.after(() => killGroup(server));
  const socket = connect(server.port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal((await readResponse(socket)).status, 200);
  server.child.kill('SIGTERM');
  // wait until new connections are refused: the listener is closed, the idle connection is not
  for (let i = 0; ; i++) {
    const refused = await new Promise<boolean>((resolve) => {
      const probe = connect(server.port, '127.0.0.1');
      probe.once('connect', () => (probe.destroy(), resolve(false)));
      probe.once('error', () => resolve(true));
    });
    if (refused) break;
    assert.ok(i < 20, 'listener still open after 8 s');
    // slower than the drain's quiet period (250 ms), or the probes themselves would hold it open
    await new Promise((r) => setTimeout(r, 400));
  }
  const body = JSON.stringify({ model: 'realnvp-moons', count: 2, seed: 1 });
  socket.write(`POST /sample HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  const res = await readResponse(socket);
  assert.equal(res.status, 503);
  assert.equal(res.headers.connection, 'close');
  assert.equal(res.headers['retry-after'], '1');
  assert.equal(JSON.parse(res.body).error.code, 'NOT_READY');
  socket.destroy();
  const [code] = await server.exited;
  assert.equal(code, 0);
});

test('FAULT - work still running at SHUTDOWN_TIMEOUT_MS is answered 503, and the process still exits 0 within the budget', { timeout: 90_000 }, async (t) => {
  // one sample per batch: 8 requests of 256 samples keep the model busy for seconds
  const server = await startServer({ via: 'node', env: { MODEL_DIR: await models('glow-fashion'), SHUTDOWN_DELAY_MS: '0', SHUTDOWN_TIMEOUT_MS: '1000', MAX_BATCH_SIZE: '1', MAX_QUEUE_SIZE: '100000' } });
  t.after(() => killGroup(server));
  const requests = Array.from({ length: 8 }, (_, i) => outcome(server.base, { model: 'glow-fashion', count: 256, seed: i, format: 'array' }));
  await new Promise((r) => setTimeout(r, 300));
  const signalledAt = performance.now();
  server.child.kill('SIGTERM');
  const results = await Promise.all(requests);
  const [code] = await server.exited;
  const elapsed = performance.now() - signalledAt;
  assert.deepEqual(results.filter((o) => o.kind === 'dropped'), [], 'cut off with a 503, never reset');
  assert.ok(results.some((o) => o.kind === 'not-ready'), `expected some 503s: ${JSON.stringify(results)}`);
  assert.equal(code, 0, server.log().slice(-2000));
  // 1 s drain budget + 1 s to flush the 503s + app close: far inside Kubernetes' 30 s
  assert.ok(elapsed < 6000, `exit took ${Math.round(elapsed)} ms`);
  assert.match(server.log(), /shutdown deadline reached/);
});

/** Start node alone and wait for it to exit on its own; returns the exit code and the log. */
async function runToExit(env: Record<string, string>): Promise<{ code: number | null; log: string }> {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: new URL('..', import.meta.url).pathname,
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', EXECUTION_PROVIDER: 'cpu', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, log };
}

test('BAD CALL - a configuration that cannot work is refused at start (exit 2), naming the variables', { timeout: 60_000 }, async () => {
  const { code, log } = await runToExit({ MAX_QUEUE_SIZE: '8' });
  assert.equal(code, 2);
  assert.match(log, /MAX_QUEUE_SIZE=8 is smaller than one allowed request \(MAX_ITEMS_PER_REQUEST=256/);
});

test('FAULT - a missing MODEL_DIR is refused at start (exit 1), naming it', { timeout: 60_000 }, async () => {
  const { code, log } = await runToExit({ MODEL_DIR: '/nonexistent/flowserve-models' });
  assert.equal(code, 1, log.slice(-2000));
  assert.match(log, /refusing to start: MODEL_DIR does not exist \(MODEL_DIR=\/nonexistent\/flowserve-models; set ALLOW_NO_MODELS=true to run anyway\)/);
});

test('FAULT - a MODEL_DIR with nothing loadable is refused at start (exit 1), with each package\'s reason', { timeout: 60_000 }, async () => {
  const dir = await models('realnvp-moons');
  const { writeFile } = await import('node:fs/promises');
  await writeFile(`${dir}/realnvp-moons/weights.bin`, 'tampered');
  const { code, log } = await runToExit({ MODEL_DIR: dir });
  assert.equal(code, 1, log.slice(-2000));
  assert.match(log, /refusing to start: no model could be loaded from MODEL_DIR \(realnvp-moons: weights\.bin sha256 mismatch/);
});

test('FAULT - ALLOW_NO_MODELS=true runs with nothing to serve, and readiness and requests say why', { timeout: 60_000 }, async (t) => {
  const server = await startServer({ via: 'node', env: { MODEL_DIR: '/nonexistent/flowserve-models', ALLOW_NO_MODELS: 'true', SHUTDOWN_DELAY_MS: '0' }, waitReady: false });
  t.after(() => killGroup(server));
  let readyz: { status: string; reason?: string } | undefined;
  for (let i = 0; i < 100 && readyz?.status !== 'failed'; i++) {
    readyz = (await (await fetch(`${server.base}/readyz`)).json()) as typeof readyz;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.deepEqual(readyz, { status: 'failed', reason: 'MODEL_DIR does not exist', models: {} });
  assert.equal((await fetch(`${server.base}/healthz`)).status, 200, 'explicitly allowed: alive, not ready');
  const res = await fetch(`${server.base}/sample`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"count": 1}' });
  assert.equal(res.status, 503);
  assert.match(((await res.json()) as { error: { message: string } }).error.message, /no model can be served: MODEL_DIR does not exist/);
  server.child.kill('SIGTERM');
  assert.equal((await server.exited)[0], 0);
});

test('KServe\'s runtime flags (--model_name, --http_port, --model_dir, --grpc_port, …) start the server: the ones that mean a setting are used, the rest logged and ignored', { timeout: 90_000 }, async (t) => {
  const dir = await models('realnvp-moons');
  const server = await startServer({
    via: 'npm',
    env: { SHUTDOWN_DELAY_MS: '0', PORT: '1' },
    // --http_port=0 must win over PORT=1 (a privileged port the test could not bind)
    args: ['--model_name=flow-moons', '--model_dir', dir, '--http_port=0', '--grpc_port=8081', '--enable_docs_url'],
  });
  t.after(() => killGroup(server));
  assert.equal((await fetch(`${server.base}/v2/health/ready`)).status, 200);
  const listed = (await (await fetch(`${server.base}/models`)).json()) as { models: { name: string }[] };
  assert.deepEqual(listed.models.map((m) => m.name), ['realnvp-moons'], 'MODEL_DIR came from --model_dir');
  assert.match(server.log(), /command-line flags ignored/);
  assert.match(server.log(), /--grpc_port=8081/);
  // a folder of packages keeps its folder names: --model_name is reported, not applied
  assert.match(server.log(), /MODEL_NAME \(--model_name\) ignored/);
  server.child.kill('SIGTERM');
  await server.exited;
});

test('KServe\'s layout: --model_dir naming one package (flow.json at its root, as the storage initializer leaves /mnt/models) serves it as --model_name, over both protocols', { timeout: 90_000 }, async (t) => {
  const dir = await models('realnvp-moons');
  const server = await startServer({ via: 'node', env: { SHUTDOWN_DELAY_MS: '0' }, args: ['--model_name=flow-moons', `--model_dir=${join(dir, 'realnvp-moons')}`, '--http_port=0'] });
  t.after(() => killGroup(server));
  const listed = (await (await fetch(`${server.base}/models`)).json()) as { defaultModel: string; models: { name: string; status: string }[] };
  assert.deepEqual(listed.models.map((m) => [m.name, m.status]), [['flow-moons', 'ready']]);
  assert.equal(listed.defaultModel, 'flow-moons');
  assert.equal((await fetch(`${server.base}/v2/models/flow-moons/ready`)).status, 200);
  const infer = await fetch(`${server.base}/v2/models/flow-moons/infer`, { method: 'POST', body: JSON.stringify({ inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP32', data: [0.5, -0.3] }] }) });
  assert.equal(infer.status, 200);
  const body = (await infer.json()) as { model_name: string; outputs: { name: string; data: number[] }[] };
  assert.equal(body.model_name, 'flow-moons');
  assert.ok(Number.isFinite(body.outputs.find((o) => o.name === 'logLikelihood')!.data[0]));
  assert.doesNotMatch(server.log(), /MODEL_NAME \(--model_name\) ignored/);
  server.child.kill('SIGTERM');
  assert.equal((await server.exited)[0], 0);
});
