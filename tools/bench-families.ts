// Families benchmark (`npm run bench:families`): the flow families that
// run as multi-pass programs (MAF sampling, IAF density, FFJORD both directions, planar density),
// served over HTTP to 1, 8 and 64 concurrent clients, each with one single-row request in flight
// (/sample count 1, /likelihood one input, scores []), against the SAME program loop run
// in-process on raw ONNX Runtime at batch 64: programFor(loadPackage(…)) driven by a GraphRunner
// that calls InferenceSession.run directly on sessions made from the package bytes with the
// service's session options. The service reports its own batching on /metrics; the table shows
// the mean rows per graph call and how busy the inference worker was, which is where a gap lies.
// Packages that are not in MODEL_DIR (or not loadable yet) are skipped with a note.
// Writes bench/families-<date>.md.
//   [BENCH_SECONDS=5] [BENCH_FAMILIES_CONCURRENCY=1,8,64] [MODEL_DIR=models] npx tsx tools/bench-families.ts
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import autocannon from 'autocannon';
import * as ort from 'onnxruntime-node';
import { loadConfig } from '../src/config/config.js';
import { preprocessing } from '../src/flow/preprocess.js';
import { logStandardNormal, sampleStandardNormal } from '../src/flow/prior.js';
import { Rng } from '../src/flow/random.js';
import { createSession } from '../src/runtime/session.js';
import { programFor, type FlowProgram } from '../src/service/programs/index.js';
import type { GraphRunner } from '../src/service/programs/types.js';
import { FlowService } from '../src/service/flow-service.js';
import { createMetrics } from '../src/service/metrics.js';
import { loadPackage, type ModelPackage } from '../src/service/registry.js';
import type { TensorData } from '../src/tensor/tensor.js';

const ROOT = new URL('..', import.meta.url).pathname;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONCURRENCY = (process.env.BENCH_FAMILIES_CONCURRENCY ?? '1,8,64').split(',').map(Number);
const BATCH = 64;
const MODEL_DIR = resolve(process.env.MODEL_DIR ?? join(ROOT, 'models'));

type Route = 'sample' | 'likelihood';
export interface Workload {
  model: string;
  route: Route;
  what: string;
}
const WORKLOADS: Workload[] = [
  { model: 'maf-checker', route: 'sample', what: 'MAF sampling' },
  { model: 'maf-digits', route: 'sample', what: 'MAF sampling' },
  { model: 'iaf-checker', route: 'likelihood', what: 'IAF density' },
  { model: 'ffjord-checker', route: 'sample', what: 'FFJORD sampling' },
  { model: 'ffjord-checker', route: 'likelihood', what: 'FFJORD density' },
  { model: 'planar-checker', route: 'likelihood', what: 'planar density' },
];

/** Uniform on the 8 black squares of the 4×4 board on [−2, 2]² (scripts/flow_data.py checkerboard). */
export function checkerboard(n: number, rng: Rng): Float64Array {
  const out = new Float64Array(2 * n);
  for (let i = 0; i < n; ) {
    const x = -2 + 4 * rng.nextOpen01(), y = -2 + 4 * rng.nextOpen01();
    if ((((Math.floor(x) + Math.floor(y)) % 2) + 2) % 2 !== 0) continue;
    out[2 * i] = x;
    out[2 * i + 1] = y;
    i++;
  }
  return out;
}

/** Density inputs: the training distribution for checkerboard models, else the package's reference inputs. */
export function inputPool(pkg: ModelPackage, n: number): Float64Array {
  const d = pkg.manifest.latent.size;
  if (pkg.manifest.training.dataset === 'checkerboard' && d === 2) return checkerboard(n, new Rng(7));
  const ref = JSON.parse(readFileSync(join(pkg.dir, 'reference.json'), 'utf8')) as { inputs: number[][] };
  const out = new Float64Array(n * d);
  for (let i = 0; i < n; i++) out.set(ref.inputs[i % ref.inputs.length], i * d);
  return out;
}

interface Raw {
  rowsPerSec: number;
  /** Graph calls per 64-row loop. */
  callsPerLoop: number;
  /** Fraction of the loop's wall time spent inside session.run. */
  ortShare: number;
}

/** The program's loop at batch 64, in-process, on raw ORT sessions (the service's session options). */
export async function rawLoop(pkg: ModelPackage, program: FlowProgram, route: Route, pool: Float64Array): Promise<Raw> {
  const cfg = loadConfig(process.env);
  const externalData = pkg.bytes.weights && pkg.manifest.graphs.weights ? [{ path: pkg.manifest.graphs.weights, data: pkg.bytes.weights }] : undefined;
  const sessions = new Map<string, ort.InferenceSession>();
  for (const g of program.graphs) {
    const loaded = await createSession({ graph: pkg.bytes.graphs[g.name], ...(externalData ? { externalData } : {}) }, { provider: 'cpu', deviceId: 0, intraOpThreads: cfg.intraOpThreads, intraOpSpinning: cfg.intraOpSpinning });
    sessions.set(g.name, loaded.session);
  }
  let calls = 0;
  let ortMs = 0;
  const run: GraphRunner = async (graph, feeds) => {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries({ ...program.constFeeds(graph), ...feeds })) ortFeeds[name] = new ort.Tensor('float32', t.data, t.dims);
    const t0 = performance.now();
    const out = await sessions.get(graph)!.run(ortFeeds);
    ortMs += performance.now() - t0;
    calls++;
    const res: Record<string, TensorData> = {};
    for (const [name, t] of Object.entries(out)) res[name] = { dims: [...t.dims], data: t.data as Float32Array };
    return res;
  };
  const d = pkg.manifest.latent.size;
  const pre = preprocessing(pkg.manifest.preprocessing.transform, d);
  const rng = new Rng(11);
  const poolRows = pool.length / d;
  let offset = 0;
  // what one request does, minus HTTP and batching: the prior, the preprocessing and the program
  const once = async () => {
    if (route === 'sample') {
      const eps = sampleStandardNormal(rng, BATCH, d, pkg.manifest.defaultTemperature);
      const out = await program.inverse(eps, BATCH, run, {});
      const back = pre.inverse(out.values, BATCH);
      const lp = logStandardNormal(eps, BATCH, d);
      for (let i = 0; i < BATCH; i++) lp[i] -= out.logDet[i] + back.logDet[i];
    } else {
      const x = new Float64Array(BATCH * d);
      for (let i = 0; i < BATCH; i++, offset = (offset + 1) % poolRows) x.set(pool.subarray(offset * d, (offset + 1) * d), i * d);
      const y = pre.forward(x, BATCH);
      const out = await program.forward(y.values, BATCH, run, {});
      const lp = logStandardNormal(out.values, BATCH, d);
      for (let i = 0; i < BATCH; i++) lp[i] += out.logDet[i] + y.logDet[i];
    }
  };
  for (let i = 0; i < 3; i++) await once();
  calls = 0;
  ortMs = 0;
  let loops = 0;
  const start = performance.now();
  while (performance.now() - start < SECONDS * 1000) {
    await once();
    loops++;
  }
  const ms = performance.now() - start;
  for (const s of sessions.values()) await s.release();
  return { rowsPerSec: (loops * BATCH) / (ms / 1000), callsPerLoop: calls / loops, ortShare: ortMs / ms };
}

/**
 * The service's own code path without HTTP: a FlowService in this process (its batchers, its
 * inference process) driven by `callers` concurrent single-row requests. Between this and the
 * HTTP figure lies HTTP and JSON; between this and raw lie batching and the per-call IPC.
 */
async function inProcessService(service: FlowService, w: Workload, pool: Float64Array, d: number, callers: number): Promise<number> {
  const model = service.resolve(w.model);
  const poolRows = pool.length / d;
  let k = 0, done = 0;
  const end = performance.now() + SECONDS * 1000;
  const caller = async () => {
    while (performance.now() < end) {
      const i = k++;
      if (w.route === 'sample') await service.sample(model, { count: 1, seed: i });
      else await service.likelihood(model, pool.slice((i % poolRows) * d, ((i % poolRows) + 1) * d), 1, { scores: [] });
      done++;
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: callers }, caller));
  return done / ((performance.now() - start) / 1000);
}

/** Loopback TCP ports `pid` listens on: its socket inodes matched against /proc/<pid>/net/tcp. */
export function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  for (const f of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${f}`));
      if (m) inodes.add(m[1]);
    } catch {
      /* closed meanwhile */
    }
  }
  return readFileSync(`/proc/${pid}/net/tcp`, 'utf8')
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((c) => c[3] === '0A' && c[1]?.startsWith('0100007F') && inodes.has(c[9]))
    .map((c) => parseInt(c[1].split(':')[1], 16));
}

export interface Server {
  child: ChildProcess;
  base: string;
  /** What the server wrote (stdout and stderr). */
  output(): string;
  /** The exit code or signal once it exited, else null. */
  exit(): string | null;
}

export async function startServer(modelDir: string, env: Record<string, string>): Promise<Server> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: ROOT,
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'warn', MODEL_DIR: modelDir, EXECUTION_PROVIDER: 'cpu', MAX_QUEUE_SIZE: '100000', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let exit: string | null = null;
  child.stderr!.on('data', (d) => (out += d));
  child.stdout!.on('data', (d) => (out += d));
  child.on('exit', (code, signal) => (exit = signal ?? String(code)));
  const port = await new Promise<number>((resolvePort, reject) => {
    const t = setInterval(async () => {
      // the port is in the listening log line, which LOG_LEVEL=warn hides: ask the OS instead. Only
      // sockets this child holds (by inode): /proc/<pid>/net/tcp lists the whole network namespace,
      // other servers on the machine included.
      try {
        for (const p of listeningPorts(child.pid!)) {
          const r = await fetch(`http://127.0.0.1:${p}/readyz`).catch(() => null);
          if (r?.status === 200) {
            clearInterval(t);
            resolvePort(p);
            return;
          }
        }
      } catch {
        /* not up yet */
      }
    }, 200);
    child.on('exit', (c) => {
      clearInterval(t);
      reject(new Error(`server exited ${c}: ${out}`));
    });
  });
  return { child, base: `http://127.0.0.1:${port}`, output: () => out, exit: () => exit };
}

/** Sum and count of a histogram on /metrics, over the series of one model (every graph). */
async function histogram(base: string, name: string, model: string): Promise<{ sum: number; count: number }> {
  const text = await (await fetch(`${base}/metrics`)).text();
  let sum = 0, count = 0;
  for (const line of text.split('\n')) {
    if (!line.includes(`model="${model}"`)) continue;
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (line.startsWith(`${name}_sum{`)) sum += v;
    else if (line.startsWith(`${name}_count{`)) count += v;
  }
  return { sum, count };
}

interface Point {
  concurrency: number;
  rowsPerSec: number;
  p50: number;
  p99: number;
  errors: number;
  /** Mean rows per graph call (after dynamic batching). */
  meanBatch: number;
  /** Graph calls (batches) per second reaching the inference worker. */
  callsPerSec: number;
  /** Requests answered within the window. */
  done: number;
  /**
   * Rows of work per second, from the rows the graphs ran divided by the program's passes per row
   * (programs with a fixed pass count): counts requests still in flight when the window closes, for
   * loops longer than the window (MAF sampling of 64-D digits is 512 passes).
   */
  workRowsPerSec: number;
  /** Fraction of wall time the inference worker spent in ORT run. */
  workerBusy: number;
}

export async function load(base: string, w: Workload, pool: Float64Array, d: number, concurrency: number, passes: number | undefined): Promise<Point> {
  let k = 0;
  const poolRows = pool.length / d;
  const body = () => {
    k++;
    if (w.route === 'sample') return JSON.stringify({ model: w.model, count: 1, seed: k, format: 'array' });
    const i = k % poolRows;
    return JSON.stringify({ model: w.model, inputs: [Array.from(pool.subarray(i * d, (i + 1) * d))], scores: [] });
  };
  const b0 = await histogram(base, 'flowserve_inference_batch_size', w.model);
  const t0 = await histogram(base, 'flowserve_inference_duration_seconds', w.model);
  const result = await autocannon({
    url: base + '/' + w.route,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    connections: concurrency,
    duration: SECONDS,
    pipelining: 1,
    requests: [{ setupRequest: (req) => ({ ...req, body: body() }) }],
  });
  const b1 = await histogram(base, 'flowserve_inference_batch_size', w.model);
  const t1 = await histogram(base, 'flowserve_inference_duration_seconds', w.model);
  const calls = b1.count - b0.count;
  const ok = result['2xx'];
  return {
    concurrency,
    rowsPerSec: ok / SECONDS,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.non2xx + result.errors + result.timeouts,
    meanBatch: calls > 0 ? (b1.sum - b0.sum) / calls : NaN,
    callsPerSec: calls / SECONDS,
    done: ok,
    workRowsPerSec: passes ? (b1.sum - b0.sum) / passes / SECONDS : NaN,
    workerBusy: (t1.sum - t0.sum) / SECONDS,
  };
}

/**
 * Runs the section: prints each line, hands it to `outer` too (bench.ts puts the section into its
 * own results file) and writes bench/families-<date>.md.
 */
export async function runFamilies(outer?: (s: string) => void): Promise<string> {
  const lines: string[] = [];
  const log = (s: string) => {
    if (outer) outer(s);
    else console.log(s);
    lines.push(s);
  };
  const date = new Date().toISOString();
  try {
    await section(log, date);
  } finally {
    mkdirSync(join(ROOT, 'bench'), { recursive: true });
    const file = join(ROOT, 'bench', `families-${date.slice(0, 10)}.md`);
    writeFileSync(file, lines.join('\n') + '\n');
    console.log(`wrote ${file}`);
  }
  return join(ROOT, 'bench', `families-${date.slice(0, 10)}.md`);
}

async function section(log: (s: string) => void, date: string): Promise<void> {
  const present: { w: Workload; pkg: ModelPackage; program: FlowProgram }[] = [];
  const missing: string[] = [];
  const pkgs = new Map<string, { pkg: ModelPackage; program: FlowProgram } | string>();
  for (const w of WORKLOADS) {
    if (!pkgs.has(w.model)) {
      const dir = join(MODEL_DIR, w.model);
      if (!existsSync(join(dir, 'flow.json'))) pkgs.set(w.model, 'not in MODEL_DIR');
      else
        try {
          const pkg = await loadPackage(dir, w.model);
          pkgs.set(w.model, { pkg, program: programFor(pkg) });
        } catch (err) {
          pkgs.set(w.model, `not loadable: ${(err as Error).message}`);
        }
    }
    const p = pkgs.get(w.model)!;
    if (typeof p === 'string') missing.push(`${w.what} (${w.model}): skipped, ${p}`);
    else present.push({ w, ...p });
  }

  log(`## Flow families: multi-pass programs under concurrent single-row requests (${date})`);
  log('');
  log(`Machine: ${cpus().length} × ${cpus()[0]?.model}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} at start; node ${process.version}; onnxruntime-node ${ort.env.versions.node}; CPU execution provider. Command: \`BENCH_SECONDS=${SECONDS} BENCH_FAMILIES_CONCURRENCY=${CONCURRENCY.join(',')} npx tsx tools/bench-families.ts\` (or \`npm run bench:families\`).`);
  log('');
  log(`Each client keeps one request in flight: /sample with count 1, or /likelihood with one input and \`scores: []\`. Raw = the same program loop (prior, preprocessing, program.forward/inverse) in-process at batch ${BATCH} on ONNX Runtime sessions made from the package bytes with the service's session options, one loop at a time, for ${SECONDS} s. Service: src/server.ts with a MODEL_DIR of just these packages, MAX_BATCH_SIZE=${BATCH}, defaults otherwise (1 inference process, MAX_QUEUE_DELAY_MS=0). "answered" counts the requests answered in the window; "work rows/s" is the rows the graphs ran ÷ the program's passes per row (fixed-pass programs; it counts requests still in flight, for loops that outlast the window); "rows/call" is the mean rows per graph call after dynamic batching, "calls/s" the graph calls (batches) per second reaching the inference process, "worker busy" the summed time of its ORT runs over wall time (from /metrics; above 100 % when runs overlap). "In-process service" is the same FlowService without HTTP (its batchers and inference process, called from this process by 64 concurrent single-row callers). The load generator (autocannon) runs in this process on the same machine.`);
  log('');
  for (const m of missing) log(`- ${m}`);
  if (missing.length) log('');
  if (present.length === 0) return;

  const linkDir = mkdtempSync(join(tmpdir(), 'flowserve-bench-families-'));
  for (const name of new Set(present.map((p) => p.w.model))) symlinkSync(join(MODEL_DIR, name), join(linkDir, name), 'dir');
  const rows: { w: Workload; raw: number; at64?: Point; inProc?: number }[] = [];
  const started = performance.now();
  let server: Server | null = null;
  const crashes: string[] = [];
  try {
    server = await startServer(linkDir, { MAX_BATCH_SIZE: String(BATCH) });
    log(`Service start (load, sessions, warm-up): ${((performance.now() - started) / 1000).toFixed(1)} s.`);
    log('');
    for (const { w, pkg, program } of present) {
      const d = pkg.manifest.latent.size;
      const pool = inputPool(pkg, 4096);
      const raw = await rawLoop(pkg, program, w.route, pool);
      log(`### ${w.what}: ${w.model} /${w.route} (program.${w.route === 'sample' ? 'inverse' : 'forward'})`);
      log('');
      log(`Raw ORT in-process, batch ${BATCH}: **${raw.rowsPerSec.toFixed(0)} rows/s**, ${raw.callsPerLoop.toFixed(1)} graph calls per ${BATCH}-row loop, ${(100 * raw.ortShare).toFixed(0)} % of the time in session.run.`);
      log('');
      log('| clients | rows/s | vs raw b64 | p50 ms | p99 ms | answered | errors | work rows/s | rows/call | calls/s | worker busy |');
      log('|---|---|---|---|---|---|---|---|---|---|---|');
      const row: (typeof rows)[number] = { w, raw: raw.rowsPerSec };
      const cost = program.cost()[w.route === 'sample' ? 'inverse' : 'forward'];
      const passes = cost.kind === 'passes' && cost.passes ? cost.passes : undefined;
      for (const c of CONCURRENCY) {
        let p: Point;
        try {
          p = await load(server.base, w, pool, d, c, passes);
        } catch (err) {
          // the server died under this load: say so, keep its last words, and go on with a fresh one
          await new Promise((r) => setTimeout(r, 500));
          const code = server.exit();
          const tail = server.output().trim().split('\n').slice(-15).join('\n');
          log(`| ${c} | failed: ${code !== null ? `server exited (${code})` : (err as Error).message} | | | | | | | | | |`);
          crashes.push(`${w.model} /${w.route} at ${c} clients: ${code !== null ? `server exited (${code})` : (err as Error).message}\n\n\`\`\`\n${tail || '(no output)'}\n\`\`\``);
          server.child.kill('SIGKILL');
          server = await startServer(linkDir, { MAX_BATCH_SIZE: String(BATCH) });
          continue;
        }
        if (c === 64) row.at64 = p;
        const f = (v: number, digits = 0) => (Number.isFinite(v) ? v.toFixed(digits) : '—');
        log(`| ${c} | ${f(p.rowsPerSec)} | ${f(p.rowsPerSec / raw.rowsPerSec, 2)} | ${p.done ? p.p50 : '—'} | ${p.done ? p.p99 : '—'} | ${p.done} | ${p.errors} | ${f(p.workRowsPerSec)} | ${f(p.meanBatch, 1)} | ${f(p.callsPerSec)} | ${f(100 * p.workerBusy)} % |`);
      }
      log('');
      rows.push(row);
    }
  } finally {
    server?.child.kill('SIGTERM');
  }
  if (crashes.length) {
    log('### Server failures');
    log('');
    for (const c of crashes) log(`- ${c}`);
    log('');
  }
  // The same service without HTTP, for the attribution of the gap.
  if (process.env.BENCH_FAMILIES_IN_PROCESS !== 'false') {
    const service = new FlowService(loadConfig({}, { modelDir: linkDir, executionProvider: 'cpu', maxQueueSize: 100_000, maxBatchSize: BATCH }), createMetrics(), { info() {}, warn() {}, error: console.error });
    try {
      await service.start();
      for (const [i, { w, pkg }] of present.entries())
        rows[i].inProc = await inProcessService(service, w, inputPool(pkg, 4096), pkg.manifest.latent.size, 64).catch((err) => {
          console.error(`in-process ${w.model} /${w.route}: ${(err as Error).message}`);
          return NaN;
        });
    } finally {
      await service.close();
    }
  }
  rmSync(linkDir, { recursive: true, force: true });
  log(`### Summary: 64 concurrent single-row clients vs raw ORT at batch ${BATCH}`);
  log('');
  log('| workload | model | raw b64 rows/s | in-process service rows/s (no HTTP) | HTTP service rows/s | HTTP / raw | rows/call | worker busy |');
  log('|---|---|---|---|---|---|---|---|');
  let footnote = false;
  for (const r of rows) {
    const h = r.at64;
    // a window shorter than a few request latencies counts too few answers: use the work rate
    const short = !!h && h.done < 2 * 64 && Number.isFinite(h.workRowsPerSec);
    footnote ||= short;
    const rate = h ? (short ? h.workRowsPerSec : h.rowsPerSec) : NaN;
    const mark = short ? ' †' : '';
    log(`| ${r.w.what} (/${r.w.route}) | ${r.w.model} | ${r.raw.toFixed(0)} | ${r.inProc?.toFixed(0) ?? '—'} | ${h ? rate.toFixed(0) + mark : '—'} | **${h ? (rate / r.raw).toFixed(2) : '—'}**${mark} | ${h?.meanBatch.toFixed(1) ?? '—'} | ${h ? (100 * h.workerBusy).toFixed(0) + ' %' : '—'} |`);
  }
  log('');
  if (footnote) log(`† fewer than 128 answers in the ${SECONDS} s window (a request outlasts it): work rows/s (rows the graphs ran ÷ passes per row) instead of answered rows/s.`);
  log('');
  log(`Families section: ${((performance.now() - started) / 1000).toFixed(0)} s.`);
  log('');
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) await runFamilies();
