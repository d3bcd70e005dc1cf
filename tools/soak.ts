// Soak test (not CI): SOAK_SECONDS (default 600) at saturation on the shipped models, mixed routes.
// Records every non-2xx status, RSS and V8 heap used every 5 s (growth after a warm-up minute), the event-loop
// delay the server itself reports (nodejs_eventloop_lag_max_seconds per scrape), and the server's
// exit code after SIGTERM at the end.
//   SOAK_SECONDS=600 SOAK_CONNECTIONS=64 npm run soak
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import autocannon from 'autocannon';

const ROOT = new URL('..', import.meta.url).pathname;
const SECONDS = Number(process.env.SOAK_SECONDS ?? 600);
const CONNECTIONS = Number(process.env.SOAK_CONNECTIONS ?? 64);
const PORT = Number(process.env.SOAK_PORT ?? 18080);
const base = `http://127.0.0.1:${PORT}`;

const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
  cwd: ROOT,
  env: { ...process.env, HOST: '127.0.0.1', PORT: String(PORT), LOG_LEVEL: 'warn', EXECUTION_PROVIDER: 'cpu' },
  stdio: ['ignore', 'inherit', 'inherit'],
});
for (let i = 0; ; i++) {
  const r = await fetch(`${base}/readyz`).catch(() => null);
  if (r?.status === 200) break;
  if (i > 600) throw new Error('server did not become ready');
  await new Promise((r) => setTimeout(r, 100));
}
const models = ((await (await fetch(`${base}/models`)).json()) as { models: { name: string; dataKind: string }[] }).models;
const requests = models.flatMap((m) => {
  const ref = JSON.parse(readFileSync(join(ROOT, 'models', m.name, 'reference.json'), 'utf8')) as { inputs: number[][] };
  return [
    { method: 'POST' as const, path: '/likelihood', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: m.name, inputs: ref.inputs.slice(0, 2) }) },
    { method: 'POST' as const, path: '/sample', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: m.name, count: 2, seed: 7 }) },
    { method: 'POST' as const, path: '/encode', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: m.name, inputs: ref.inputs.slice(0, 1) }) },
  ];
});

const rssMiB = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
const samples: { t: number; rss: number; heap: number; lagMax: number }[] = [];
const started = Date.now();
const sampler = setInterval(async () => {
  const text = await (await fetch(`${base}/metrics`)).text().catch(() => '');
  const lag = Number(/^nodejs_eventloop_lag_max_seconds (\S+)/m.exec(text)?.[1] ?? NaN);
  const heap = Number(/^nodejs_heap_size_used_bytes (\S+)/m.exec(text)?.[1] ?? NaN) / 2 ** 20;
  samples.push({ t: (Date.now() - started) / 1000, rss: rssMiB(), heap, lagMax: lag * 1000 });
}, 5000);

const statuses: Record<string, number> = {};
const result = await autocannon({ url: base, connections: CONNECTIONS, duration: SECONDS, requests });
result.statusCodeStats && Object.entries(result.statusCodeStats).forEach(([k, v]) => (statuses[k] = (v as { count: number }).count));
clearInterval(sampler);
const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
child.kill('SIGTERM');
const serverExit = await exited; // graceful shutdown right after saturation: must be exit code 0

// The first minute (or first scrape, for short runs) holds start-up: module loading and warm-up.
const warmUp = SECONDS >= 120 ? 60 : 6;
const afterWarm = samples.filter((s) => s.t >= warmUp);
const rss0 = afterWarm[0]?.rss ?? samples[0]?.rss;
const rssEnd = samples.at(-1)?.rss ?? NaN;
const maxLag = Math.max(...afterWarm.map((s) => s.lagMax).filter(Number.isFinite));
console.log(JSON.stringify({ seconds: SECONDS, connections: CONNECTIONS, requests: result.requests.total, reqPerSec: result.requests.average, latencyP50: result.latency.p50, latencyP99: result.latency.p99, statuses, errors: result.errors, timeouts: result.timeouts, rssAfterWarmupMiB: rss0, rssEndMiB: rssEnd, rssGrowthPct: ((rssEnd - rss0) / rss0) * 100, maxEventLoopLagMs: maxLag, serverExit, rssSeries: samples.map((s) => Math.round(s.rss)), heapUsedSeries: samples.map((s) => Math.round(s.heap)) }, null, 1));
