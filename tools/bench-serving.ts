// Serving benchmark with the load generator OUTSIDE the measured process: the service runs as its
// own process tree (`node --import tsx src/server.ts`, inference in its child processes), the load
// comes from `wrk` in its own process (Lua: tools/lib/wrk/post-bodies.lua POSTs prebuilt bodies
// read from files), /healthz is probed every 20 ms from a third process (tools/lib/health-probe.mjs),
// and the harness itself only samples /proc (RSS of the whole service tree every 100 ms, CPU at the
// start and end of each run). Each point runs BENCH_RUNS times; medians are reported.
//
// Points (likelihood direction): per model and input format, 64-sample requests at concurrency 4
// and single-sample requests at concurrency 1, 8, 64, 128. Formats: native JSON, PNG base64 (JSON),
// PNG multipart, native binary float32, KServe v2 JSON, v2 binary (binary-data extension). A format
// the service refuses with a 4xx on its pre-flight request is reported "unavailable", not run.
// Every run counts non-2xx answers (wrk's status errors) and transport errors; a point with any is
// flagged. Ratios are to raw ONNX Runtime at batch 64 with the best session options, measured in
// the same run (tools/raw-ort.ts in a child process, before the service starts).
//
// The peer: tools/peer/fastapi_peer.py (FastAPI + PyTorch eager, same weights, checked against
// reference.json at start and against the service's answers here) under uvicorn with 1 and 2
// workers, with glibc's default malloc and a tuned one.
//
// Writes bench/serving-<date>.md and bench/serving-<date>.json.
//   npx tsx tools/bench-serving.ts
//   BENCH_SECONDS=5 BENCH_RUNS=3 BENCH_MODELS=glow-fashion,realnvp-mnist BENCH_POINTS='json,png-b64' npx tsx tools/bench-serving.ts
// env: BENCH_SECONDS (5), BENCH_RUNS (3), BENCH_MODELS, BENCH_POINTS (comma list of regular
//      expressions matched against point ids such as "glow-fashion/json/1x64", "peer/glow-fashion/json/64x4";
//      default: all), BENCH_PEER (true), BENCH_PEER_CONFIGS (w1,w2,w1-malloc,w2-malloc),
//      BENCH_RAW_CONFIGS (raw-ort.ts option sets for the ratio; the best is used), BENCH_RAW_SECONDS (3),
//      BENCH_SERVICE_ENV (extra service env, "K=V,K=V"), BENCH_OUT (output folder, bench/), BENCH_TAG (file name suffix),
//      BENCH_PROVIDER (cpu | cuda: raw ORT and the service on that execution provider),
//      BENCH_FOREIGN_LIMIT (25: % of a core of other processes' load above which a run is repeated), BENCH_RETRIES (2).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const ROOT = new URL('..', import.meta.url).pathname;
const LUA = join(ROOT, 'tools/lib/wrk/post-bodies.lua');
const PROBE = join(ROOT, 'tools/lib/health-probe.mjs');
const PYTHON = '/usr/bin/python3';

// ---- pure helpers (test/tools/bench-serving.test.ts) ---------------------------------------------

export const median = (xs: readonly number[]): number => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Nearest-rank percentile (p in [0, 100]) of unsorted values; NaN when empty. */
export const percentile = (xs: readonly number[], p: number): number => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * s.length);
  return s[Math.min(s.length - 1, Math.max(0, rank - 1))];
};

export interface WrkResult {
  requests: number;
  durationUs: number;
  bytes: number;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  latencyMs: { p50: number; p90: number; p99: number; max: number; mean: number };
}

/** The JSON line the Lua done() hook prints ("WRK_JSON {...}"), or null when it is missing. */
export function parseWrk(stdout: string): WrkResult | null {
  const line = stdout.split('\n').find((l) => l.startsWith('WRK_JSON '));
  if (!line) return null;
  try {
    return JSON.parse(line.slice('WRK_JSON '.length)) as WrkResult;
  } catch {
    return null;
  }
}

export interface TimeResult {
  userS: number;
  sysS: number;
  elapsedS: number;
  maxRssKb: number;
}

/** The `/usr/bin/time -f 'WRKTIME %U %S %e %M'` line, or null. */
export function parseTime(stderr: string): TimeResult | null {
  const m = /WRKTIME (\d+(?:\.\d+)?) (\d+(?:\.\d+)?) (\d+(?:\.\d+)?) (\d+)/.exec(stderr);
  return m ? { userS: Number(m[1]), sysS: Number(m[2]), elapsedS: Number(m[3]), maxRssKb: Number(m[4]) } : null;
}

/** CPU of a process as a percentage of one core over its run. */
export const cpuPercent = (t: TimeResult): number => (t.elapsedS > 0 ? (100 * (t.userS + t.sysS)) / t.elapsedS : NaN);

/** /proc/<pid>/stat: the process name may hold spaces and parentheses, so fields count from the last ')'. */
export function parseStat(text: string): { ppid: number; utime: number; stime: number } {
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state): ppid is field 4, utime 14, stime 15
  return { ppid: Number(rest[1]), utime: Number(rest[11]), stime: Number(rest[12]) };
}

/** VmRSS in kB from /proc/<pid>/status text (0 when absent: a zombie). */
export const parseVmRssKb = (status: string): number => Number(/VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1] ?? 0);

/** Whether a point id is selected by BENCH_POINTS (comma list of regular expressions; empty = all). */
export function selected(id: string, patterns: string | undefined): boolean {
  const list = (patterns ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  return list.length === 0 || list.some((p) => new RegExp(p).test(id));
}

/** multipart/form-data: field `model`, then each PNG as a file in field `images`. */
export function multipartBody(model: string, pngs: readonly Buffer[], boundary: string): Buffer {
  const parts: Buffer[] = [Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\n${model}\r\n`)];
  pngs.forEach((png, i) => {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="images"; filename="${i}.png"\r\nContent-Type: image/png\r\n\r\n`), png, Buffer.from('\r\n'));
  });
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(parts);
}

/** float32 little-endian bytes, row-major. */
export function float32Le(values: ArrayLike<number>): Buffer {
  const buf = Buffer.alloc(values.length * 4);
  for (let i = 0; i < values.length; i++) buf.writeFloatLE(values[i], i * 4);
  return buf;
}

/** KServe v2 binary-data request: JSON header, then the raw tensor; the header's length goes in Inference-Header-Content-Length. */
export function v2BinaryBody(n: number, shape: readonly number[], values: ArrayLike<number>): { body: Buffer; headerLength: number } {
  const header = Buffer.from(
    JSON.stringify({
      inputs: [{ name: 'x', shape: [n, ...shape], datatype: 'FP32', parameters: { binary_data_size: values.length * 4 } }],
      parameters: { binary_data_output: true },
    }),
  );
  return { body: Buffer.concat([header, float32Le(values)]), headerLength: header.length };
}

/** Pixel centres (k + 0.5)/256 of 8-bit images, flat. */
export const pixelCentres = (images: readonly Uint8Array[]): number[] => images.flatMap((img) => Array.from(img, (k) => (k + 0.5) / 256));

/** The processes of a tree, from /proc/<pid>/task/<tid>/children (root first). */
export function processTree(root: number, readChildren: (pid: number) => number[]): number[] {
  const out: number[] = [];
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop()!;
    if (out.includes(pid)) continue;
    out.push(pid);
    stack.push(...readChildren(pid));
  }
  return out;
}

// ---- /proc ---------------------------------------------------------------------------------------

const readText = (path: string): string | null => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
};

function childrenOf(pid: number): number[] {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  return tasks.flatMap((t) => (readText(`/proc/${pid}/task/${t}/children`) ?? '').trim().split(/\s+/).filter(Boolean).map(Number));
}

const treeOf = (pid: number) => processTree(pid, childrenOf);
const treeRssMiB = (pid: number) => treeOf(pid).reduce((s, p) => s + parseVmRssKb(readText(`/proc/${p}/status`) ?? ''), 0) / 1024;
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK']).stdout?.toString().trim() || 100);
/** CPU seconds per process of the tree (user + system). */
function treeCpu(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const p of treeOf(pid)) {
    const text = readText(`/proc/${p}/stat`);
    if (!text) continue;
    const s = parseStat(text);
    out.set(p, (s.utime + s.stime) / CLK_TCK);
  }
  return out;
}
/** Busy CPU seconds of the whole machine (/proc/stat: all but idle and iowait, steal included). */
export function parseProcStatBusy(text: string, hz: number): number {
  const f = text.split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0); // user nice system idle iowait irq softirq steal
  return (total - f[3] - f[4]) / hz;
}
const machineBusy = () => parseProcStatBusy(readText('/proc/stat') ?? 'cpu 0 0 0 0 0', CLK_TCK);
const ownCpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
/** CPU seconds of one process (0 when gone). */
const pidCpu = (pid: number) => {
  const text = readText(`/proc/${pid}/stat`);
  if (!text) return 0;
  const s = parseStat(text);
  return (s.utime + s.stime) / CLK_TCK;
};
/** CPU seconds the tree used between two samples (processes in both; new ones from zero). */
const cpuBetween = (a: Map<number, number>, b: Map<number, number>) => [...b.entries()].reduce((s, [p, v]) => s + v - (a.get(p) ?? 0), 0);

// ---- processes -----------------------------------------------------------------------------------

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

interface Target {
  label: string;
  base: string;
  child: ChildProcess;
  log: () => string;
}

async function spawnTarget(label: string, cmd: string, args: string[], env: Record<string, string>, port: number): Promise<Target> {
  const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let log = '';
  child.stdout!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-20000)));
  child.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-20000)));
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`${label} exited (${child.exitCode}): ${log.slice(-3000)}`);
    const r = await fetch(`${base}/readyz`).catch(() => null);
    if (r?.status === 200) break;
    if (i > 1800) throw new Error(`${label} not ready after 180 s: ${log.slice(-3000)}`);
    await sleep(100);
  }
  return { label, base, child, log: () => log };
}

async function stopTarget(t: Target): Promise<void> {
  if (t.child.exitCode !== null || t.child.signalCode !== null) return;
  const exited = new Promise((r) => t.child.once('exit', r));
  try {
    process.kill(-t.child.pid!, 'SIGTERM');
  } catch {
    return;
  }
  const timer = setTimeout(() => {
    try {
      process.kill(-t.child.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
  }, 30_000);
  await exited;
  clearTimeout(timer);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until the tree has at least `processes` processes and its RSS has stopped growing (3 samples within 1%; at most 60 s). */
async function settle(pid: number, processes: number): Promise<void> {
  let last = 0, stable = 0;
  for (let i = 0; i < 120 && stable < 3; i++) {
    await sleep(500);
    const rss = treeRssMiB(pid);
    stable = treeOf(pid).length >= processes && Math.abs(rss - last) < 0.01 * rss ? stable + 1 : 0;
    last = rss;
  }
}

function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

// ---- request plans -------------------------------------------------------------------------------

export type Format = 'json' | 'png-b64' | 'png-multipart' | 'binary' | 'v2-json' | 'v2-binary';
export const FORMATS: Format[] = ['json', 'png-b64', 'png-multipart', 'binary', 'v2-json', 'v2-binary'];

interface Plan {
  format: Format;
  n: number;
  /** The plan file wrk reads. */
  file: string;
  path: string;
  headers: Record<string, string>;
  bodies: Buffer[];
}

const BOUNDARY = 'flowservebench0123456789';

function writePlan(dir: string, id: string, path: string, headers: Record<string, string>, bodies: Buffer[]): string {
  const lines = [`P ${path}`, ...Object.entries(headers).map(([k, v]) => `H ${k}: ${v}`)];
  bodies.forEach((b, i) => {
    const f = join(dir, `${id}-${i}.body`);
    writeFileSync(f, b);
    lines.push(`B ${f}`);
  });
  const file = join(dir, `${id}.plan`);
  writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

/** Request bodies for one model, format and request size: `count` distinct bodies of real test images. */
function buildPlan(dir: string, model: string, shape: number[], format: Format, n: number, images: Uint8Array[], pngs: Buffer[], count: number): Plan {
  const bodies: Buffer[] = [];
  let path = '/likelihood';
  let headers: Record<string, string> = { 'Content-Type': 'application/json' };
  for (let b = 0; b < count; b++) {
    const idx = Array.from({ length: n }, (_, i) => (b * n + i) % images.length);
    const imgs = idx.map((i) => images[i]);
    const values = pixelCentres(imgs);
    const rows = imgs.map((img) => Array.from(img, (k) => (k + 0.5) / 256));
    switch (format) {
      case 'json':
        bodies.push(Buffer.from(JSON.stringify({ model, inputs: rows })));
        break;
      case 'png-b64':
        bodies.push(Buffer.from(JSON.stringify({ model, images: idx.map((i) => pngs[i].toString('base64')) })));
        break;
      case 'png-multipart':
        headers = { 'Content-Type': `multipart/form-data; boundary=${BOUNDARY}` };
        bodies.push(multipartBody(model, idx.map((i) => pngs[i]), BOUNDARY));
        break;
      case 'binary':
        path = `/likelihood?model=${model}&datatype=FP32`;
        headers = { 'Content-Type': 'application/octet-stream' };
        bodies.push(float32Le(values));
        break;
      case 'v2-json':
        path = `/v2/models/${model}/infer`;
        bodies.push(Buffer.from(JSON.stringify({ inputs: [{ name: 'x', shape: [n, ...shape], datatype: 'FP32', data: values }] })));
        break;
      case 'v2-binary': {
        path = `/v2/models/${model}/infer`;
        const v2 = v2BinaryBody(n, shape, values);
        headers = { 'Inference-Header-Content-Length': String(v2.headerLength) };
        bodies.push(v2.body);
        break;
      }
    }
  }
  const id = `${model}-${format}-n${n}`;
  return { format, n, file: writePlan(dir, id, path, headers, bodies), path, headers, bodies };
}

interface Preflight {
  status: number;
  ok: boolean;
  /** logLikelihood of the first row when the answer carries it (native formats), for cross-checks. */
  first?: number;
  note?: string;
}

async function preflight(base: string, plan: Plan): Promise<Preflight> {
  const r = await fetch(base + plan.path, { method: 'POST', headers: plan.headers, body: new Uint8Array(plan.bodies[0]) }).catch((err: Error) => ({ status: 0, err }) as const);
  if ('err' in r) return { status: 0, ok: false, note: `request failed: ${r.err.message}` };
  const buf = Buffer.from(await r.arrayBuffer());
  if (r.status !== 200) return { status: r.status, ok: false, note: buf.toString('utf8').slice(0, 160).replace(/\|/g, '/').replace(/\s+/g, ' ') };
  const text = buf.toString('latin1');
  try {
    if (plan.format.startsWith('v2')) {
      const headerLen = Number(r.headers.get('inference-header-content-length') ?? buf.length);
      const head = JSON.parse(buf.subarray(0, headerLen).toString('utf8')) as { outputs?: { name: string; datatype?: string; data?: number[]; parameters?: { binary_data_size?: number } }[] };
      const outs = head.outputs ?? [];
      const ll = outs.find((o) => /log.?likelihood|log_?prob/i.test(o.name)) ?? outs[0];
      let first: number | undefined = ll?.data?.[0];
      if (first === undefined && ll?.parameters?.binary_data_size) {
        // outputs in order after the header; find this one's offset
        let off = headerLen;
        for (const o of outs) {
          if (o === ll) break;
          off += o.parameters?.binary_data_size ?? 0;
        }
        first = ll.datatype === 'FP64' ? buf.readDoubleLE(off) : buf.readFloatLE(off);
      }
      return { status: 200, ok: true, ...(first !== undefined ? { first } : {}), note: `outputs ${outs.map((o) => o.name).join(', ')}` };
    }
    const body = JSON.parse(text) as { results?: { logLikelihood: number }[] };
    const results = body.results ?? [];
    if (results.length !== plan.n) return { status: 200, ok: false, note: `200 with ${results.length} results for ${plan.n} inputs` };
    return { status: 200, ok: true, first: results[0].logLikelihood };
  } catch (err) {
    return { status: 200, ok: true, note: `200, answer not parsed (${(err as Error).message.slice(0, 60)})` };
  }
}

// ---- one run -------------------------------------------------------------------------------------

export interface RunResult {
  samplesPerSec: number;
  requests: number;
  p50: number;
  p99: number;
  healthP50: number;
  healthP99: number;
  healthProbes: number;
  peakRssMiB: number;
  wrkCpuPct: number;
  serverCpuPct: number;
  /** The service's main process alone (HTTP, parsing, batching, TypeScript glue; not the inference children): CPU µs per sample. */
  mainUsPerSample: number;
  /** CPU of processes that are not part of this benchmark (% of one core): noise from outside. */
  otherCpuPct: number;
  non2xx: number;
  transportErrors: number;
}

/** A run with more other-process load than this (% of one core) is repeated, up to BENCH_RETRIES times. */
const FOREIGN_LIMIT = Number(process.env.BENCH_FOREIGN_LIMIT ?? 25);
const RETRIES = Number(process.env.BENCH_RETRIES ?? 2);

/**
 * Waits (up to maxMs) for a 500 ms window in which the machine, less this harness, is under `pct`%
 * of one core busy (the server is idle between runs): the machine may be shared.
 */
async function quiet(pct: number, maxMs: number): Promise<void> {
  const start = performance.now();
  for (;;) {
    const b0 = machineBusy(), o0 = ownCpu(), t0 = performance.now();
    await sleep(500);
    const load = (100 * (machineBusy() - b0 - (ownCpu() - o0))) / ((performance.now() - t0) / 1000);
    if (load < pct || performance.now() - start > maxMs) return;
  }
}

async function runOnce(target: Target, plan: Plan, concurrency: number, seconds: number): Promise<RunResult> {
  await quiet(FOREIGN_LIMIT, Number(process.env.BENCH_QUIET_WAIT_MS ?? 30_000));
  const pid = target.child.pid!;
  const prober = spawn(process.execPath, [PROBE, target.base], { stdio: ['pipe', 'pipe', 'inherit'] });
  let probeOut = '';
  prober.stdout!.on('data', (d: Buffer) => (probeOut += d.toString()));
  const probeDone = new Promise((r) => prober.on('exit', r));
  let peak = treeRssMiB(pid);
  const sampler = setInterval(() => (peak = Math.max(peak, treeRssMiB(pid))), 100);
  const cpu0 = treeCpu(pid);
  const busy0 = machineBusy();
  const own0 = ownCpu();
  const t0 = performance.now();
  const threads = 1;
  const wrk = await run('/usr/bin/time', ['-f', 'WRKTIME %U %S %e %M', 'wrk', `-t${threads}`, `-c${concurrency}`, `-d${seconds}s`, '--timeout', '30s', '-s', LUA, target.base], { WRK_PLAN: plan.file });
  const wall = (performance.now() - t0) / 1000;
  const cpu1 = treeCpu(pid);
  const busy1 = machineBusy();
  const own1 = ownCpu();
  const proberCpu = pidCpu(prober.pid!);
  clearInterval(sampler);
  peak = Math.max(peak, treeRssMiB(pid));
  prober.stdin!.end();
  await probeDone;
  const w = parseWrk(wrk.stdout);
  const t = parseTime(wrk.stderr);
  const serverCpu = cpuBetween(cpu0, cpu1);
  const wrkCpu = t ? t.userS + t.sysS : 0;
  const other = busy1 - busy0 - serverCpu - wrkCpu - proberCpu - (own1 - own0);
  if (!w) throw new Error(`wrk gave no result (exit ${wrk.code}): ${wrk.stdout.slice(-500)} ${wrk.stderr.slice(-500)}`);
  const health = JSON.parse(probeOut || '[]') as number[];
  return {
    samplesPerSec: (w.requests * plan.n) / (w.durationUs / 1e6),
    requests: w.requests,
    // wrk reports 0 ms percentiles when no request completed within the run
    p50: w.requests > 0 ? w.latencyMs.p50 : NaN,
    p99: w.requests > 0 ? w.latencyMs.p99 : NaN,
    healthP50: percentile(health, 50),
    healthP99: percentile(health, 99),
    healthProbes: health.length,
    peakRssMiB: peak,
    wrkCpuPct: t ? cpuPercent(t) : NaN,
    serverCpuPct: (100 * serverCpu) / wall,
    mainUsPerSample: w.requests > 0 ? (1e6 * ((cpu1.get(pid) ?? 0) - (cpu0.get(pid) ?? 0))) / (w.requests * plan.n) : NaN,
    otherCpuPct: Math.max(0, (100 * other) / wall),
    non2xx: w.errors.status,
    transportErrors: w.errors.connect + w.errors.read + w.errors.write + w.errors.timeout,
  };
}

export interface PointResult {
  id: string;
  server: string;
  model: string;
  format: Format;
  samplesPerRequest: number;
  concurrency: number;
  status: 'ok' | 'flagged' | 'unavailable';
  preflight: Preflight;
  runs: RunResult[];
  /** Medians over runs (peak RSS: the largest; error counts: summed). */
  samplesPerSec: number;
  ratioToRaw: number;
  p50: number;
  p99: number;
  healthP99: number;
  peakRssMiB: number;
  wrkCpuPct: number;
  serverCpuPct: number;
  mainUsPerSample: number;
  otherCpuPct: number;
  /** Runs repeated because other processes loaded the machine. */
  retries: number;
  non2xx: number;
  transportErrors: number;
}

export function summarize(runs: RunResult[], raw: number): Pick<PointResult, 'samplesPerSec' | 'ratioToRaw' | 'p50' | 'p99' | 'healthP99' | 'peakRssMiB' | 'wrkCpuPct' | 'serverCpuPct' | 'mainUsPerSample' | 'otherCpuPct' | 'non2xx' | 'transportErrors'> {
  const med = (f: (r: RunResult) => number) => median(runs.map(f));
  const sps = med((r) => r.samplesPerSec);
  return {
    samplesPerSec: sps,
    ratioToRaw: sps / raw,
    p50: med((r) => r.p50),
    p99: med((r) => r.p99),
    healthP99: med((r) => r.healthP99),
    peakRssMiB: Math.max(...runs.map((r) => r.peakRssMiB)),
    wrkCpuPct: med((r) => r.wrkCpuPct),
    serverCpuPct: med((r) => r.serverCpuPct),
    mainUsPerSample: med((r) => r.mainUsPerSample),
    otherCpuPct: runs.length ? Math.max(...runs.map((r) => r.otherCpuPct)) : NaN,
    non2xx: runs.reduce((s, r) => s + r.non2xx, 0),
    transportErrors: runs.reduce((s, r) => s + r.transportErrors, 0),
  };
}

// ---- main ----------------------------------------------------------------------------------------

const fmt = (v: number, digits = 0) => (Number.isFinite(v) ? v.toFixed(digits) : '–');

function versions(): Record<string, string> {
  const py = spawnSync(PYTHON, ['-c', 'import torch, fastapi, uvicorn, pydantic, numpy, onnx\ntry:\n import PIL; pil = PIL.__version__\nexcept ImportError: pil = "not installed"\nprint(f"{torch.__version__} {fastapi.__version__} {uvicorn.__version__} {pydantic.VERSION} {numpy.__version__} {onnx.__version__} {pil}")']);
  const [torch, fastapi, uvicorn, pydantic, numpy, onnx, pil] = py.stdout.toString().trim().split(' ');
  const ortNode = (JSON.parse(readFileSync(join(ROOT, 'node_modules/onnxruntime-node/package.json'), 'utf8')) as { version: string }).version;
  const wrk = spawnSync('wrk', ['-v']).stdout.toString().split('\n')[0].trim();
  return { node: process.version, 'onnxruntime-node': ortNode, wrk, torch, fastapi, uvicorn, pydantic, numpy, onnx, pil, python: spawnSync(PYTHON, ['--version']).stdout.toString().trim() };
}

async function main() {
  const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
  const RUNS = Number(process.env.BENCH_RUNS ?? 3);
  const MODELS = (process.env.BENCH_MODELS ?? 'glow-fashion,realnvp-mnist').split(',').filter(Boolean);
  const POINTS = process.env.BENCH_POINTS;
  const PEER = process.env.BENCH_PEER !== 'false';
  const PEER_CONFIGS = (process.env.BENCH_PEER_CONFIGS ?? 'w1,w2,w1-malloc,w2-malloc').split(',').filter(Boolean);
  const RAW_CONFIGS = process.env.BENCH_RAW_CONFIGS ?? 'intra1,intra2-spin0,intra2-spin1';
  const OUT = process.env.BENCH_OUT ?? join(ROOT, 'bench');
  const SERVICE_ENV = Object.fromEntries((process.env.BENCH_SERVICE_ENV ?? '').split(',').filter(Boolean).map((kv) => kv.split('=') as [string, string]));
  const say = (s: string) => process.stderr.write(`[bench-serving ${new Date().toISOString().slice(11, 19)}] ${s}\n`);

  // heavy imports only here, so that the unit tests import the helpers alone
  const { datasetImages } = await import('./lib/datasets.js');
  const { encodePng } = await import('../src/imaging/image-codec.js');

  const started = new Date();
  const command = [
    ...['BENCH_SECONDS', 'BENCH_RUNS', 'BENCH_MODELS', 'BENCH_POINTS', 'BENCH_PEER', 'BENCH_PEER_CONFIGS', 'BENCH_RAW_CONFIGS', 'BENCH_RAW_SECONDS', 'BENCH_SERVICE_ENV', 'BENCH_TAG'].filter((k) => process.env[k] !== undefined).map((k) => `${k}=${JSON.stringify(process.env[k])}`),
    'npx tsx tools/bench-serving.ts',
  ].join(' ');
  const git = {
    head: spawnSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT }).stdout.toString().trim(),
    dirtySrcFiles: spawnSync('git', ['status', '--short', 'src'], { cwd: ROOT }).stdout.toString().split('\n').filter(Boolean).length,
  };
  const machine = { cpu: cpus()[0]?.model ?? '?', cores: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), loadavgAtStart: loadavg().map((l) => Number(l.toFixed(2))) };
  const vers = versions();
  say(`${machine.cores} × ${machine.cpu}; git ${git.head.slice(0, 12)} (+${git.dirtySrcFiles} changed files in src/); ${SECONDS} s × ${RUNS} runs per point`);

  // ---- raw ORT (same run, before anything else starts) ----
  say(`raw ONNX Runtime, batch 64, options ${RAW_CONFIGS}`);
  const rawOut = await run(process.execPath, ['--import', 'tsx', join(ROOT, 'tools/raw-ort.ts'), '--quiet'], {
    RAW_MODELS: MODELS.join(','),
    RAW_CONFIGS,
    RAW_BATCHES: '64',
    RAW_SWEEP_BATCHES: '64',
    RAW_SECONDS: process.env.BENCH_RAW_SECONDS ?? '3',
    RAW_RUNS: String(RUNS),
  });
  if (rawOut.code !== 0) throw new Error(`tools/raw-ort.ts failed: ${rawOut.stderr.slice(-2000)}`);
  const rawDoc = JSON.parse(rawOut.stdout) as { results: { model: string; config: string; batch: number; samplesPerSec: number; cores: number }[] };
  const raw: Record<string, { best: number; config: string; all: Record<string, number> }> = {};
  for (const m of MODELS) {
    const rs = rawDoc.results.filter((r) => r.model === m && r.batch === 64);
    const best = rs.reduce((a, b) => (b.samplesPerSec > a.samplesPerSec ? b : a));
    raw[m] = { best: best.samplesPerSec, config: best.config, all: Object.fromEntries(rs.map((r) => [r.config, r.samplesPerSec])) };
    say(`  ${m}: ${Object.entries(raw[m].all).map(([c, v]) => `${c} ${v.toFixed(0)}`).join(', ')} → best ${best.config}`);
  }

  // ---- request bodies from real test images ----
  const work = mkdtempSync(join(tmpdir(), 'bench-serving-'));
  const modelDir = join(work, 'models');
  mkdirSync(modelDir);
  const plans = new Map<string, Plan>();
  const shapes: Record<string, number[]> = {};
  for (const m of MODELS) {
    cpSync(join(ROOT, 'models', m), join(modelDir, m), { recursive: true });
    const manifest = JSON.parse(readFileSync(join(ROOT, 'models', m, 'flow.json'), 'utf8')) as { data: { shape: number[] }; training: { dataset: string } };
    const shape = manifest.data.shape;
    shapes[m] = shape;
    const images = datasetImages(manifest.training.dataset, 'test', 0, 256);
    const pngs = await Promise.all(images.map((img) => encodePng(img, shape[0], shape[1], shape[2])));
    for (const format of FORMATS)
      for (const [n, count] of [[1, 64], [64, 4]] as const) plans.set(`${m}/${format}/${n}`, buildPlan(work, m, shape, format, n, images, pngs, count));
  }

  const points: PointResult[] = [];
  const pointsFor = (n: number) => (n === 64 ? [4] : [1, 8, 64, 128]);
  const runPoint = async (target: Target, server: string, m: string, format: Format, n: number, c: number, pre: Preflight) => {
    const id = `${server === 'flowserve' ? '' : 'peer/' + server + '/'}${m}/${format}/${n}x${c}`;
    const plan = plans.get(`${m}/${format}/${n}`)!;
    const base = { id, server, model: m, format, samplesPerRequest: n, concurrency: c, preflight: pre };
    if (!pre.ok) {
      const p: PointResult = { ...base, status: 'unavailable', runs: [], retries: 0, ...summarize([], raw[m].best), peakRssMiB: NaN };
      points.push(p);
      say(`${id}: unavailable (${pre.status} ${pre.note ?? ''})`);
      return;
    }
    const runs: RunResult[] = [];
    let retries = 0;
    for (let r = 0; r < RUNS; r++) {
      const one = await runOnce(target, plan, c, SECONDS);
      await sleep(300);
      if (one.otherCpuPct > FOREIGN_LIMIT && retries < RETRIES) {
        retries++;
        r--;
        say(`  ${id}: other processes used ${fmt(one.otherCpuPct)}% of a core during the run: repeating it`);
        await sleep(2000);
        continue;
      }
      runs.push(one);
    }
    const s = summarize(runs, raw[m].best);
    const p: PointResult = { ...base, status: s.non2xx + s.transportErrors > 0 ? 'flagged' : 'ok', runs, retries, ...s };
    points.push(p);
    say(`${id}: ${fmt(s.samplesPerSec)} samples/s (${fmt(s.ratioToRaw, 2)} × raw), p50 ${fmt(s.p50, 1)} p99 ${fmt(s.p99, 1)} ms, healthz p99 ${fmt(s.healthP99, 1)} ms, RSS ${fmt(s.peakRssMiB)} MiB, wrk ${fmt(s.wrkCpuPct)}%, server ${fmt(s.serverCpuPct)}% (main ${fmt(s.mainUsPerSample)} µs/sample), other ${fmt(s.otherCpuPct)}%${p.status === 'flagged' ? `, FLAGGED ${s.non2xx} non-2xx ${s.transportErrors} transport errors` : ''}`);
  };

  // ---- the service ----
  const serviceEnv: Record<string, string> = { HOST: '127.0.0.1', LOG_LEVEL: 'warn', MODEL_DIR: modelDir, EXECUTION_PROVIDER: process.env.BENCH_PROVIDER === 'cuda' ? 'cuda' : 'cpu', SHUTDOWN_DELAY_MS: '0', ...SERVICE_ENV };
  const crossCheck: Record<string, Record<string, number | undefined>> = {};
  const wantService = MODELS.some((m) => FORMATS.some((f) => [1, 64].some((n) => pointsFor(n).some((c) => selected(`${m}/${f}/${n}x${c}`, POINTS)))));
  if (wantService) {
    const port = await freePort();
    say(`starting the service on ${port}`);
    const svc = await spawnTarget('flowserve', process.execPath, ['--import', 'tsx', 'src/server.ts'], { ...serviceEnv, PORT: String(port) }, port);
    try {
      for (const m of MODELS) {
        crossCheck[m] = {};
        for (const format of FORMATS)
          for (const n of [64, 1]) {
            const cs = pointsFor(n).filter((c) => selected(`${m}/${format}/${n}x${c}`, POINTS));
            if (cs.length === 0) continue;
            const pre = await preflight(svc.base, plans.get(`${m}/${format}/${n}`)!);
            if (n === 64) crossCheck[m][format] = pre.first;
            for (const c of cs) await runPoint(svc, 'flowserve', m, format, n, c, pre);
          }
      }
    } finally {
      await stopTarget(svc);
    }
  }

  // ---- the peer ----
  const peerChecks: Record<string, unknown> = {};
  if (PEER) {
    for (const cfg of PEER_CONFIGS) {
      const workers = cfg.startsWith('w2') ? 2 : 1;
      const tuned = cfg.includes('malloc');
      // PNG base64 only without the malloc tuning (to keep the run short; BENCH_POINTS can select it anyway)
      const peerPoints = ([['json', 64, 4], ['json', 1, 64], ['png-b64', 64, 4]] as const).filter(([f]) => f === 'json' || !tuned || POINTS);
      const wanted = MODELS.flatMap((m) => peerPoints.map(([f, n, c]) => `peer/${cfg}/${m}/${f}/${n}x${c}`)).filter((id) => selected(id, POINTS));
      if (wanted.length === 0) continue;
      const port = await freePort();
      const env: Record<string, string> = { WEB_CONCURRENCY: String(workers), PEER_MODELS: MODELS.join(','), MODEL_DIR: join(ROOT, 'models'), ...(tuned ? { GLIBC_TUNABLES: 'glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824' } : {}) };
      say(`starting the peer ${cfg} (${workers} worker${workers > 1 ? 's' : ''}${tuned ? ', tuned malloc' : ''}) on ${port}`);
      const peer = await spawnTarget(`peer ${cfg}`, PYTHON, ['-m', 'uvicorn', '--app-dir', 'tools/peer', 'fastapi_peer:app', '--host', '127.0.0.1', '--port', String(port), '--workers', String(workers), '--log-level', 'warning'], env, port);
      try {
        // with 2 workers the first one answers /readyz before the second has loaded: wait for the tree to settle
        await settle(peer.child.pid!, workers > 1 ? workers + 1 : 1);
        const ready = (await (await fetch(`${peer.base}/readyz`)).json()) as { checks: unknown; threads: number };
        peerChecks[cfg] = ready;
        for (const m of MODELS) {
          for (const [format, n, c] of peerPoints) {
            if (!selected(`peer/${cfg}/${m}/${format}/${n}x${c}`, POINTS)) continue;
            const pre = await preflight(peer.base, plans.get(`${m}/${format}/${n}`)!);
            if (n === 64) (crossCheck[`peer/${cfg}/${m}`] ??= {})[format] = pre.first;
            await runPoint(peer, cfg, m, format, n, c, pre);
          }
        }
      } finally {
        await stopTarget(peer);
      }
    }
  }
  rmSync(work, { recursive: true, force: true });

  // ---- report ----
  mkdirSync(OUT, { recursive: true });
  const date = started.toISOString().slice(0, 10);
  const lines: string[] = [];
  const log = (s = '') => lines.push(s);
  log(`# flowserve serving benchmark, ${started.toISOString()}`);
  log();
  log(`Machine: ${machine.cores} × ${machine.cpu}, ${machine.memoryGiB} GiB; load average at start ${machine.loadavgAtStart.join(', ')}.`);
  log(`Versions: ${Object.entries(vers).map(([k, v]) => `${k} ${v}`).join('; ')}.`);
  log(`Code: git ${git.head} with ${git.dirtySrcFiles} changed files under src/ (\`git status --short src | wc -l\`; other sessions edit src/ concurrently).`);
  log(`Command: \`${command}\` (${SECONDS} s per run, ${RUNS} runs per point, medians; peak RSS is the largest of the runs; non-2xx and transport errors are summed over the runs).`);
  log();
  log(`Method: the service runs alone as \`node --import tsx src/server.ts\` (${Object.entries(serviceEnv).filter(([k]) => k !== 'MODEL_DIR').map(([k, v]) => `${k}=${v}`).join(' ')}, MODEL_DIR = copies of ${MODELS.join(', ')}; every other setting its default). Load: \`wrk -t1 -cC -dS --timeout 30s\` in its own process, POSTing prebuilt bodies of real test images (pixel centres (k + 0.5)/256; Fashion-MNIST for glow-fashion, MNIST for realnvp-mnist; 64 distinct single-sample bodies, 4 distinct 64-sample bodies) through tools/lib/wrk/post-bodies.lua; wrk CPU from /usr/bin/time (% of one core). /healthz: GET every 20 ms from a separate node process. Peak RSS: sum of VmRSS over the server's process tree (inference children included), sampled every 100 ms. Server CPU: utime + stime of the tree over the run (% of one core; 200% = both cores). Other CPU: the machine's busy time (/proc/stat) minus the server, wrk, the prober and this harness: other processes' load (the machine is shared); a run with more than ${FOREIGN_LIMIT}% is repeated (up to ${RETRIES} times per point) and the largest kept value is shown. Raw ORT: tools/raw-ort.ts, in-process session.run on the forward graph at batch 64, same images, Glow's W from lu.json, best of the option sets ${RAW_CONFIGS}, measured in this run before the servers started.`);
  log();
  for (const m of MODELS) {
    log(`## ${m} — likelihood (forward graph)`);
    log();
    log(`Raw ONNX Runtime, batch 64: ${Object.entries(raw[m].all).map(([c, v]) => `${c} ${fmt(v)}`).join(', ')} samples/s; ratios below are to the best, **${fmt(raw[m].best)} samples/s (${raw[m].config})**.`);
    log();
    log('| server | point | samples/s | × raw ORT b64 | p50 ms | p99 ms | /healthz p99 ms | peak RSS MiB | wrk CPU % | server CPU % | main process µs/sample | other CPU % | non-2xx | notes |');
    log('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|');
    for (const p of points.filter((q) => q.model === m)) {
      const point = `${p.format}, ${p.samplesPerRequest}/req × c${p.concurrency}`;
      const server = p.server === 'flowserve' ? 'flowserve' : `peer ${p.server}`;
      if (p.status === 'unavailable') {
        log(`| ${server} | ${point} | unavailable | | | | | | | | | | | ${p.preflight.status}: ${p.preflight.note ?? ''} |`);
        continue;
      }
      const notes = [
        p.status === 'flagged' ? `**FLAGGED**: ${p.non2xx} non-2xx, ${p.transportErrors} transport errors` : '',
        p.otherCpuPct > FOREIGN_LIMIT ? `noisy: other processes used up to ${fmt(p.otherCpuPct)}% of a core` : '',
        p.retries ? `${p.retries} run(s) repeated for outside load` : '',
        p.preflight.note ?? '',
      ].filter(Boolean).join('; ');
      log(`| ${server} | ${point} | ${fmt(p.samplesPerSec)} | ${fmt(p.ratioToRaw, 2)} | ${fmt(p.p50, 1)} | ${fmt(p.p99, 1)} | ${fmt(p.healthP99, 1)} | ${fmt(p.peakRssMiB)} | ${fmt(p.wrkCpuPct)} | ${fmt(p.serverCpuPct)} | ${fmt(p.mainUsPerSample)} | ${fmt(p.otherCpuPct)} | ${p.non2xx + p.transportErrors} | ${notes} |`);
    }
    log();
    const checks = Object.entries(crossCheck).filter(([k]) => k === m || k.endsWith(`/${m}`));
    const vals = checks.flatMap(([k, v]) => Object.entries(v).filter(([, x]) => x !== undefined).map(([f, x]) => `${k === m ? 'flowserve' : k.split('/')[1]} ${f} ${(x as number).toFixed(4)}`));
    if (vals.length) log(`Cross-check, log-likelihood of the first image of the 64-sample body: ${vals.join('; ')}.`);
    log();
  }
  if (PEER) {
    log(`Peer (tools/peer/fastapi_peer.py): FastAPI + PyTorch eager under uvicorn (h11, no uvloop/httptools installed), pydantic request model, plain \`def\` handler (FastAPI's thread pool), torch.inference_mode, no cross-request batching; torch.set_num_threads(cores / workers): 2 threads with 1 worker, 1 thread per worker with 2. "malloc" = GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824. Weights from the ONNX initializers; start-up check against reference.json: ${JSON.stringify(Object.values(peerChecks)[0] ?? {})}.`);
    log();
  }
  const tag = process.env.BENCH_TAG ? `-${process.env.BENCH_TAG}` : '';
  const md = join(OUT, `serving-${date}${tag}.md`);
  writeFileSync(md, lines.join('\n') + '\n');
  writeFileSync(join(OUT, `serving-${date}${tag}.json`), JSON.stringify({ started: started.toISOString(), command, machine, versions: vers, git, seconds: SECONDS, runs: RUNS, serviceEnv: { ...serviceEnv, MODEL_DIR: undefined }, raw, rawResults: rawDoc.results, crossCheck, peerChecks, points }, null, 1));
  say(`wrote ${md}`);
  process.stdout.write(lines.join('\n') + '\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
