// Throughput benchmark (npm run bench): for each shipped model and direction, in one run on one
// machine: (1) raw onnxruntime-node in-process at the same batch sizes, (2) the service over HTTP at
// saturation with autocannon (concurrency sweep, single-sample and batched requests), (3) the service
// with dynamic batching disabled. Reports samples/s, p50/p99 latency, /healthz latency while
// saturated (probed from a separate process, every 20 ms) and peak RSS; writes bench/results-<date>.md.
// Then the flow-families section (tools/bench-families.ts: MAF/IAF/FFJORD/planar programs at 1, 8
// and 64 single-row clients vs the same loop on raw ORT at batch 64), also written to
// bench/families-<date>.md; BENCH_FAMILIES=false skips it.
//   BENCH_SECONDS=5 BENCH_MODELS=glow-fashion,nice-mnist BENCH_CONCURRENCY=1,8,64,128 [BENCH_PROVIDER=cuda] npm run bench
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import * as ort from 'onnxruntime-node';
import { runFamilies, startServer as startBenchServer } from './bench-families.js';

const ROOT = new URL('..', import.meta.url).pathname;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? '1,8,64,128').split(',').map(Number);
const BATCH = 64;
const MODEL_DIR = process.env.MODEL_DIR ?? join(ROOT, 'models');
// cpu (default) or cuda: the same provider for raw ORT and the service
const PROVIDER = process.env.BENCH_PROVIDER === 'cuda' ? 'cuda' : 'cpu';

interface Manifest {
  name: string;
  data: { shape: number[]; kind: string };
  latent: { parts: { name: string; shape: number[] }[] };
  lu: { file: string } | null;
  graphs: { forward: string; inverse: string };
}

const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};

/** (1) Raw ORT: session.run on a [batch, …] input, the limit for our overhead. */
async function rawOrt(dir: string, m: Manifest, direction: 'forward' | 'inverse', batch: number): Promise<number> {
  const session = await ort.InferenceSession.create(join(dir, direction === 'forward' ? m.graphs.forward : m.graphs.inverse), { executionProviders: [PROVIDER], graphOptimizationLevel: 'all' });
  const feeds: Record<string, ort.Tensor> = {};
  for (const meta of session.inputMetadata) {
    const shape = (meta.isTensor ? [...meta.shape] : []).map((d) => (typeof d === 'number' && d > 0 ? d : batch));
    const data = new Float32Array(prod(shape));
    if (shape.length === 2 && shape[0] === shape[1] && meta.name.toLowerCase().includes('w')) for (let i = 0; i < shape[0]; i++) data[i * shape[0] + i] = 1; // identity W
    else for (let i = 0; i < data.length; i++) data[i] = direction === 'forward' ? 0.5 * Math.random() : Math.random() - 0.5;
    feeds[meta.name] = new ort.Tensor('float32', data, shape);
  }
  for (let i = 0; i < 3; i++) await session.run(feeds);
  let runs = 0;
  const start = performance.now();
  while (performance.now() - start < SECONDS * 1000) {
    await session.run(feeds);
    runs++;
  }
  const rate = (runs * batch) / ((performance.now() - start) / 1000);
  await session.release();
  return rate;
}

/** The service as a child process on MODEL_DIR with this run's provider (tools/bench-families.ts startServer). */
const startServer = (env: Record<string, string>) => startBenchServer(MODEL_DIR, { EXECUTION_PROVIDER: PROVIDER, ...env });

const peakRss = (pid: number) => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

interface Point { label: string; concurrency: number; samplesPerReq: number; samplesPerSec: number; p50: number; p99: number; errors: number; healthP50: number; healthP99: number }

async function load(base: string, path: string, body: string, samplesPerReq: number, concurrency: number, label: string): Promise<Point> {
  const prober = spawn(process.execPath, [join(ROOT, 'tools/lib/health-probe.mjs'), base], { stdio: ['pipe', 'pipe', 'inherit'] });
  let probeOut = '';
  prober.stdout!.on('data', (d) => (probeOut += d));
  const probeDone = new Promise((r) => prober.on('exit', r));
  const result = await autocannon({ url: base + path, method: 'POST', headers: { 'content-type': 'application/json' }, body, connections: concurrency, duration: SECONDS, pipelining: 1 });
  prober.stdin!.end();
  await probeDone;
  const health = JSON.parse(probeOut || '[]') as number[];
  return {
    label,
    concurrency,
    samplesPerReq,
    samplesPerSec: (result.requests.total * samplesPerReq) / SECONDS,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.non2xx + result.errors + result.timeouts,
    healthP50: pct(health, 50),
    healthP99: pct(health, 99),
  };
}

function bodies(dir: string, m: Manifest) {
  const ref = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8')) as { inputs: number[][] };
  const rows = Array.from({ length: BATCH }, (_, i) => ref.inputs[i % ref.inputs.length]);
  return {
    likelihood: (n: number) => JSON.stringify({ model: m.name, inputs: rows.slice(0, n) }),
    sample: (n: number) => JSON.stringify({ model: m.name, count: n, seed: 1, format: 'array' }),
  };
}

async function main() {
  const names = (process.env.BENCH_MODELS ?? 'realnvp-moons,nice-mnist,realnvp-mnist,glow-fashion').split(',');
  const lines: string[] = [];
  const log = (s: string) => {
    console.log(s);
    lines.push(s);
  };
  const started = new Date().toISOString();
  log(`# flowserve benchmark, ${started}`);
  log('');
  log(`Machine: ${cpus().length} × ${cpus()[0]?.model}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; node ${process.version}; onnxruntime-node ${ort.env.versions.node}; ${PROVIDER.toUpperCase()} execution provider.`);
  log(`Command: \`BENCH_SECONDS=${SECONDS} BENCH_CONCURRENCY=${CONCURRENCY.join(',')} BENCH_MODELS=${names.join(',')} npm run bench\`. Load generator: autocannon in the bench process; /healthz probed every 20 ms from a separate process; all on the same machine. Service: 1 inference thread, MAX_BATCH_SIZE=${BATCH}, MAX_QUEUE_DELAY_MS=0 (batches form while the inference thread is busy).`);
  log('');

  const servers = { batched: await startServer({ MAX_BATCH_SIZE: String(BATCH) }), naive: await startServer({ DYNAMIC_BATCHING: 'false', MAX_BATCH_SIZE: String(BATCH) }) };
  try {
    for (const name of names) {
      const dir = join(MODEL_DIR, name);
      const m = JSON.parse(readFileSync(join(dir, 'flow.json'), 'utf8')) as Manifest;
      const b = bodies(dir, m);
      for (const [route, direction] of [['likelihood', 'forward'], ['sample', 'inverse']] as const) {
        log(`## ${name} — /${route} (${direction} graph)`);
        log('');
        const raw1 = await rawOrt(dir, m, direction, 1);
        const raw64 = await rawOrt(dir, m, direction, BATCH);
        log(`Raw ONNX Runtime in-process: batch 1 ${raw1.toFixed(0)} samples/s, batch ${BATCH} ${raw64.toFixed(0)} samples/s.`);
        log('');
        log('| server | concurrency | samples/request | samples/s | vs raw ORT b64 | p50 ms | p99 ms | errors | /healthz p50 ms | /healthz p99 ms |');
        log('|---|---|---|---|---|---|---|---|---|---|');
        const points: Point[] = [];
        for (const [label, srv] of Object.entries(servers)) {
          for (const c of CONCURRENCY) {
            const p = await load(srv.base, `/${route}`, b[route](1), 1, c, label);
            points.push(p);
            log(`| ${label} | ${c} | 1 | ${p.samplesPerSec.toFixed(0)} | ${(p.samplesPerSec / raw64).toFixed(2)} | ${p.p50} | ${p.p99} | ${p.errors} | ${p.healthP50.toFixed(1)} | ${p.healthP99.toFixed(1)} |`);
          }
          for (const c of [1, 4]) {
            const p = await load(srv.base, `/${route}`, b[route](BATCH), BATCH, c, label);
            points.push(p);
            log(`| ${label} | ${c} | ${BATCH} | ${p.samplesPerSec.toFixed(0)} | ${(p.samplesPerSec / raw64).toFixed(2)} | ${p.p50} | ${p.p99} | ${p.errors} | ${p.healthP50.toFixed(1)} | ${p.healthP99.toFixed(1)} |`);
          }
        }
        const at64 = (label: string) => points.find((p) => p.label === label && p.concurrency === 64 && p.samplesPerReq === 1);
        const best = Math.max(...points.filter((p) => p.label === 'batched').map((p) => p.samplesPerSec));
        const bat = at64('batched'), nai = at64('naive');
        log('');
        log(`Saturation: best batched ${best.toFixed(0)} samples/s = **${(best / raw64).toFixed(2)} × raw ORT** at batch ${BATCH}. 64 single-sample clients: batching ${bat?.samplesPerSec.toFixed(0)} vs none ${nai?.samplesPerSec.toFixed(0)} samples/s = **${bat && nai ? (bat.samplesPerSec / nai.samplesPerSec).toFixed(1) : '?'} ×**. Worst /healthz p99 while saturated: ${Math.max(...points.map((p) => p.healthP99)).toFixed(1)} ms.`);
        log('');
      }
    }
    log(`Peak RSS: batched server ${peakRss(servers.batched.child.pid!).toFixed(0)} MiB, naive server ${peakRss(servers.naive.child.pid!).toFixed(0)} MiB.`);
  } finally {
    for (const s of Object.values(servers)) s.child.kill('SIGTERM');
  }
  if (process.env.BENCH_FAMILIES !== 'false') await runFamilies(log);
  mkdirSync(join(ROOT, 'bench'), { recursive: true });
  const file = join(ROOT, 'bench', `results-${started.slice(0, 10)}.md`);
  writeFileSync(file, lines.join('\n') + '\n');
  console.log(`wrote ${file}`);
}

await main();
