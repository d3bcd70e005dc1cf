// What process isolation costs against worker threads (not CI; docs/reliability.md, "Inference
// isolation: processes vs threads"). For each run and each INFERENCE_ISOLATION, a fresh real server
// (`node --import tsx src/server.ts`, all shipped models) and two loads on glow-fashion /likelihood
// with scores ["nll"] (the image codes left out, so the inference round trip is the larger part):
//   batch:  64 samples per request, 4 concurrent clients;
//   single: 1 sample per request, 64 concurrent clients (dynamic batching merges them).
// The load generator is the autocannon CLI in its own process. Reported per point: samples/s,
// p50/p99 latency, and the memory of the whole server process tree (server + inference worker
// processes): RSS summed, and PSS summed (shared pages counted once), idle after start and peak
// under load. Medians over the runs.
//   ISO_RUNS=3 ISO_SECONDS=10 npx tsx tools/drills/isolation-cost.ts
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const ROOT = new URL('../..', import.meta.url).pathname;
const RUNS = Number(process.env.ISO_RUNS ?? 3);
const SECONDS = Number(process.env.ISO_SECONDS ?? 10);
const MODEL = 'glow-fashion';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The server and every process below it. */
function tree(pid: number): number[] {
  const children = existsSync(`/proc/${pid}/task/${pid}/children`) ? readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number) : [];
  return [pid, ...children.flatMap(tree)];
}
function memory(pid: number): { rssMiB: number; pssMiB: number; processes: number } {
  let rss = 0;
  let pss = 0;
  const pids = tree(pid);
  for (const p of pids) {
    try {
      rss += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0);
      pss += Number(/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${p}/smaps_rollup`, 'utf8'))?.[1] ?? 0);
    } catch {
      /* gone */
    }
  }
  return { rssMiB: rss / 1024, pssMiB: pss / 1024, processes: pids.length };
}

async function startServer(isolation: string): Promise<{ child: ChildProcess; base: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: ROOT,
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', EXECUTION_PROVIDER: 'cpu', INFERENCE_ISOLATION: isolation, MAX_QUEUE_SIZE: '100000', SHUTDOWN_DELAY_MS: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  let base = '';
  for (let i = 0; !base; i++) {
    base = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(log)?.[1] ?? '';
    if (i > 3000 || child.exitCode !== null) throw new Error(`server did not start: ${log.slice(-2000)}`);
    await sleep(20);
  }
  while ((await fetch(`${base}/readyz`).catch(() => null))?.status !== 200) await sleep(50);
  return { child, base };
}

interface Point { samplesPerSec: number; p50: number; p99: number; non2xx: number; peakRssMiB: number; peakPssMiB: number }

async function load(pid: number, url: string, bodyFile: string, connections: number, samplesPerRequest: number): Promise<Point> {
  let peakRss = 0;
  let peakPss = 0;
  const sampler = setInterval(() => {
    const m = memory(pid);
    peakRss = Math.max(peakRss, m.rssMiB);
    peakPss = Math.max(peakPss, m.pssMiB);
  }, 250);
  const { stdout } = await promisify(execFile)(join(ROOT, 'node_modules/.bin/autocannon'), ['-j', '-n', '-c', String(connections), '-d', String(SECONDS), '-m', 'POST', '-H', 'content-type=application/json', '-i', bodyFile, url], { maxBuffer: 64 << 20 });
  clearInterval(sampler);
  const r = JSON.parse(stdout) as { requests: { total: number }; latency: { p50: number; p99: number }; non2xx: number; errors: number; duration: number };
  return { samplesPerSec: (r.requests.total * samplesPerRequest) / r.duration, p50: r.latency.p50, p99: r.latency.p99, non2xx: r.non2xx + r.errors, peakRssMiB: peakRss, peakPssMiB: peakPss };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return (s[(s.length - 1) >> 1] + s[s.length >> 1]) / 2;
};

const inputs = (JSON.parse(readFileSync(join(ROOT, 'models', MODEL, 'reference.json'), 'utf8')) as { inputs: number[][] }).inputs;
const dir = mkdtempSync(join(tmpdir(), 'flowserve-iso-'));
const bodies = {
  batch: join(dir, 'batch.json'),
  single: join(dir, 'single.json'),
};
writeFileSync(bodies.batch, JSON.stringify({ model: MODEL, scores: ['nll'], inputs: Array.from({ length: 64 }, (_, i) => inputs[i % inputs.length]) }));
writeFileSync(bodies.single, JSON.stringify({ model: MODEL, scores: ['nll'], inputs: [inputs[0]] }));

type Row = { idle: ReturnType<typeof memory>; batch: Point; single: Point };
const results: Record<string, Row[]> = { process: [], thread: [] };
for (let run = 1; run <= RUNS; run++) {
  // Alternate which design goes first, so drift on the machine hits both alike.
  for (const isolation of run % 2 ? ['process', 'thread'] : ['thread', 'process']) {
    const { child, base } = await startServer(isolation);
    await sleep(2000);
    const idle = memory(child.pid!);
    // A short warm-up at the batch point, not measured.
    await promisify(execFile)(join(ROOT, 'node_modules/.bin/autocannon'), ['-n', '-c', '4', '-d', '2', '-m', 'POST', '-H', 'content-type=application/json', '-i', bodies.batch, `${base}/likelihood`]);
    const batch = await load(child.pid!, `${base}/likelihood`, bodies.batch, 4, 64);
    const single = await load(child.pid!, `${base}/likelihood`, bodies.single, 64, 1);
    results[isolation].push({ idle, batch, single });
    console.error(`run ${run} ${isolation}: idle ${idle.processes} processes RSS ${idle.rssMiB.toFixed(0)} MiB PSS ${idle.pssMiB.toFixed(0)} MiB; batch ${batch.samplesPerSec.toFixed(0)} samples/s p50 ${batch.p50} p99 ${batch.p99} peak RSS ${batch.peakRssMiB.toFixed(0)}; single ${single.samplesPerSec.toFixed(0)} samples/s p50 ${single.p50} p99 ${single.p99} peak RSS ${single.peakRssMiB.toFixed(0)}; non-2xx ${batch.non2xx + single.non2xx}`);
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
}

console.log(`| design | 64-sample requests, 4 clients: samples/s | p50 / p99 ms | 1-sample requests, 64 clients: samples/s | p50 / p99 ms | processes | RSS idle / peak (MiB, summed) | PSS idle / peak (MiB) | non-2xx |`);
console.log('|---|---:|---|---:|---|---:|---|---|---:|');
for (const [isolation, rows] of Object.entries(results)) {
  const m = (f: (r: Row) => number) => median(rows.map(f));
  console.log(
    `| ${isolation} | ${m((r) => r.batch.samplesPerSec).toFixed(0)} | ${m((r) => r.batch.p50)} / ${m((r) => r.batch.p99)} | ${m((r) => r.single.samplesPerSec).toFixed(0)} | ${m((r) => r.single.p50)} / ${m((r) => r.single.p99)} | ${m((r) => r.idle.processes)} | ${m((r) => r.idle.rssMiB).toFixed(0)} / ${m((r) => Math.max(r.batch.peakRssMiB, r.single.peakRssMiB)).toFixed(0)} | ${m((r) => r.idle.pssMiB).toFixed(0)} / ${m((r) => Math.max(r.batch.peakPssMiB, r.single.peakPssMiB)).toFixed(0)} | ${rows.reduce((s, r) => s + r.batch.non2xx + r.single.non2xx, 0)} |`,
  );
}
console.log(JSON.stringify(results));
