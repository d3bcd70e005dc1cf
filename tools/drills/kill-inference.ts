// Drill (not CI): kill an inference worker DRILL_KILLS times (default 20) while the server is under
// steady load, and report what clients saw.
//   INFERENCE_ISOLATION=process npm run drill:kill     # the default design
//   INFERENCE_ISOLATION=thread npm run drill:kill      # the worker-thread design, for comparison
//   (DRILL_KILLS=20 DRILL_CLIENTS=8 DRILL_GAP_MS=1000)
// process: starts the real server (`node --import tsx src/server.ts`, PORT=0), reads each worker's
//          pid from its "inference worker ready" log line and SIGKILLs it from outside.
// thread:  a thread cannot be killed from outside its process, so the server is this file with
//          --serve (the same buildApp() and config as src/server.ts, plus a stdin line "kill" that
//          calls the pool's killWorker(): Worker.terminate(), as a crash would).
// Reported: server process crashes (goal 0; a crashed server is restarted and the drill goes on),
// responses by status, 5xx other than 503 MODEL_UNAVAILABLE (goal 0), connection errors, and the
// time from each kill until the replacement is ready (flowserve_worker_restarts went up and
// /readyz answers 200): median and max.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const ROOT = new URL('../..', import.meta.url).pathname;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

if (process.argv.includes('--serve')) {
  // The thread-mode server: src/server.ts's app without its signal handling, plus a kill switch.
  const { buildApp } = await import('../../src/app.js');
  const { loadConfig } = await import('../../src/config/config.js');
  const config = loadConfig(process.env);
  const app = await buildApp(config);
  await app.listen({ host: config.host, port: config.port });
  createInterface({ input: process.stdin }).on('line', (line) => {
    if (line.trim() === 'kill') void app.flowserve.killWorker(0);
  });
} else {
  await drill();
}

interface Server {
  child: ChildProcess;
  base: string;
  log: () => string;
  /** What it wrote to stderr (a native abort's last words). */
  stderr: () => string;
  /** null while running; how it ended otherwise. */
  ended: string | null;
}

async function drill(): Promise<void> {
  const isolation = process.env.INFERENCE_ISOLATION === 'thread' ? 'thread' : 'process';
  const KILLS = Number(process.env.DRILL_KILLS ?? 20);
  const CLIENTS = Number(process.env.DRILL_CLIENTS ?? 8);
  const GAP_MS = Number(process.env.DRILL_GAP_MS ?? 1000);
  const modelDir = process.env.MODEL_DIR ?? join(ROOT, 'models');

  async function startServer(): Promise<Server> {
    const args = isolation === 'process' ? ['--import', 'tsx', 'src/server.ts'] : ['--import', 'tsx', 'tools/drills/kill-inference.ts', '--serve'];
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      env: { ...process.env, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', MODEL_DIR: modelDir, INFERENCE_ISOLATION: isolation, EXECUTION_PROVIDER: process.env.EXECUTION_PROVIDER ?? 'cpu', SHUTDOWN_DELAY_MS: '0' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let log = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr!.on('data', (d: Buffer) => {
      log += d.toString();
      stderr += d.toString();
    });
    const server: Server = { child, base: '', log: () => log, stderr: () => stderr, ended: null };
    child.once('exit', (code, signal) => (server.ended = signal ? `signal ${signal}` : `exit code ${code}`));
    for (;;) {
      const m = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(log);
      if (m) {
        server.base = m[1];
        break;
      }
      if (server.ended) throw new Error(`server ended at start (${server.ended}): ${log.slice(-2000)}`);
      await sleep(20);
    }
    for (let i = 0; (await fetch(`${server.base}/readyz`).catch(() => null))?.status !== 200; i++) {
      if (i > 1200 || server.ended) throw new Error(`server not ready: ${log.slice(-2000)}`);
      await sleep(50);
    }
    return server;
  }

  const restartsMetric = async (base: string) => Number(/^flowserve_worker_restarts (\S+)$/m.exec(await (await fetch(`${base}/metrics`)).text())?.[1] ?? NaN);
  const workerPid = (server: Server) => Number([...server.log().matchAll(/"workerPid":(\d+)[^\n]*"msg":"inference worker ready"/g)].at(-1)?.[1]);

  let server = await startServer();
  const models = ((await (await fetch(`${server.base}/models`)).json()) as { models: { name: string; status: string }[] }).models.filter((m) => m.status === 'ready');
  const bodies = models.flatMap((m, k) => {
    const inputs = (JSON.parse(readFileSync(join(modelDir, m.name, 'reference.json'), 'utf8')) as { inputs: number[][] }).inputs.slice(0, 4);
    return [
      ['/likelihood', JSON.stringify({ model: m.name, inputs })],
      ['/sample', JSON.stringify({ model: m.name, count: 4, seed: k, format: 'array' })],
    ] as const;
  });

  const responses: Record<string, number> = {};
  let stop = false;
  const client = async (k: number) => {
    for (let i = k; !stop; i++) {
      const srv = server;
      if (srv.ended) {
        await sleep(20);
        continue;
      }
      const [url, body] = bodies[i % bodies.length];
      let key: string;
      try {
        const r = await fetch(srv.base + url, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(30_000) });
        const json = (await r.json()) as { error?: { code: string } };
        key = `${r.status}${json.error ? ` ${json.error.code}` : ''}`;
      } catch {
        key = 'connection error';
      }
      responses[key] = (responses[key] ?? 0) + 1;
      // Like a client that honours Retry-After (shortened): a hot retry loop would only measure
      // how fast 503s are answered, and take the CPU the replacement needs to start.
      if (key !== '200') await sleep(100);
    }
  };
  const clients = Array.from({ length: CLIENTS }, (_, k) => client(k));

  const readyMs: number[] = [];
  const crashes: { kill: number; how: string; tail: string }[] = [];
  for (let kill = 1; kill <= KILLS; kill++) {
    await sleep(GAP_MS);
    const before = await restartsMetric(server.base);
    const killedAt = performance.now();
    if (isolation === 'process') process.kill(workerPid(server), 'SIGKILL');
    else server.child.stdin!.write('kill\n');
    let outcome = '';
    for (;;) {
      if (server.ended) {
        const tail = server.stderr().trim().split('\n').slice(-2).join(' | ');
        crashes.push({ kill, how: server.ended, tail });
        outcome = `SERVER CRASHED (${server.ended}) ${tail}`;
        server = await startServer();
        break;
      }
      const restarts = await restartsMetric(server.base).catch(() => NaN);
      if (restarts > before && (await fetch(`${server.base}/readyz`).catch(() => null))?.status === 200) {
        readyMs.push(performance.now() - killedAt);
        outcome = `ready again after ${readyMs.at(-1)!.toFixed(0)} ms`;
        break;
      }
      if (performance.now() - killedAt > 60_000) throw new Error(`kill ${kill}: not ready after 60 s: ${server.log().slice(-2000)}`);
      await sleep(10);
    }
    console.error(`kill ${kill}/${KILLS} (${isolation}): ${outcome}`);
  }
  await sleep(GAP_MS);
  stop = true;
  await Promise.all(clients);
  server.child.kill('SIGTERM');

  const sorted = [...readyMs].sort((a, b) => a - b);
  const median = sorted.length ? (sorted[(sorted.length - 1) >> 1] + sorted[sorted.length >> 1]) / 2 : NaN;
  const unexpected5xx = Object.entries(responses).filter(([k]) => /^5\d\d/.test(k) && k !== '503 MODEL_UNAVAILABLE').reduce((s, [, n]) => s + n, 0);
  console.log(
    JSON.stringify(
      {
        isolation,
        kills: KILLS,
        clients: CLIENTS,
        models: models.map((m) => m.name),
        serverCrashes: crashes.length,
        crashes,
        responses,
        unexpected5xx,
        connectionErrors: responses['connection error'] ?? 0,
        timeToReadyMs: { kills: readyMs.length, median: Math.round(median), max: Math.round(sorted.at(-1) ?? NaN) },
      },
      null,
      1,
    ),
  );
}
