// Raw ONNX Runtime limit: in-process onnxruntime-node session.run on a model's FORWARD graph (the
// /likelihood direction), on real test images at pixel centres (k + 0.5)/256, preprocessed as the
// service does (src/flow/preprocess.ts), with Glow's W matrices built from lu.json as the service
// builds them (loadPackage → programFor(pkg).constFeeds: src/flow/lu.ts). No HTTP, no IPC, no
// batching: the ceiling the service is measured against. Sessions are made from the package's
// verified bytes (external data in memory), as src/runtime/session.ts makes them.
//
// Sweeps session options (intra/inter-op threads, execution mode, optimization level, CPU memory
// arena, session.intra_op.allow_spinning) and reports samples/s per batch size, the median of
// RAW_RUNS timed runs of RAW_SECONDS each. With --profile, writes ORT's per-op profile for a few
// options and prints the time per op type (which ops take the time, which do not parallelise).
//
//   npx tsx tools/raw-ort.ts                                    # the full sweep, both models
//   RAW_MODELS=glow-fashion RAW_CONFIGS=intra1,intra2 RAW_BATCHES=64 npx tsx tools/raw-ort.ts
//   npx tsx tools/raw-ort.ts --profile                          # per-op profile at batch 64
//   npx tsx tools/raw-ort.ts --json out.json                    # also write the results as JSON
//   npx tsx tools/raw-ort.ts --threads                          # OS threads each option set adds (intra 0 → ?)
//   npx tsx tools/raw-ort.ts --quiet                            # JSON on stdout only (tools/bench-serving.ts)
// The machine may be shared: cells are measured interleaved, each run waits for a quiet moment and is
// repeated when other processes used more than RAW_FOREIGN_LIMIT (0.15) cores meanwhile (RAW_RETRIES, 4).
// env: RAW_SECONDS (2), RAW_RUNS (3), RAW_MODELS (glow-fashion,realnvp-mnist), RAW_BATCHES (1,8,64,256),
//      RAW_CONFIGS (names below; default all), RAW_SWEEP_BATCHES (batches for the non-key configs: 64),
//      RAW_PROFILE_CONFIGS, RAW_PROFILE_BATCHES, RAW_PROFILE_ITERATIONS, RAW_KEEP_PROFILE (folder for ORT's profile JSON).
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { preprocessing } from '../src/flow/preprocess.js';
import { loadPackage } from '../src/service/registry.js';
import { programFor } from '../src/service/programs/index.js';
import { datasetImages, toDataRows } from './lib/datasets.js';

/** BENCH_PROVIDER=cuda: the CUDA execution provider (where it is installed), as the service would use it. */
const PROVIDER = process.env.BENCH_PROVIDER === 'cuda' ? 'cuda' : 'cpu';
const ROOT = new URL('..', import.meta.url).pathname;
const MODEL_DIR = process.env.MODEL_DIR ?? join(ROOT, 'models');

export interface RawConfig {
  name: string;
  /** Shown in the table. */
  what: string;
  options: ort.InferenceSession.SessionOptions;
  /** Measured at every batch size (the others at RAW_SWEEP_BATCHES only). */
  key?: boolean;
  /** Sessions run at once, one loop each (default 1): two inference workers instead of intra-op threads. */
  concurrent?: number;
}

const spin = (on: boolean) => ({ session: { intra_op: { allow_spinning: on ? '1' : '0' } } });

/** The option sets swept. `service` is what src/runtime/session.ts builds with the config defaults. */
export const CONFIGS: RawConfig[] = [
  { name: 'ort-default', what: 'ORT defaults (intra 0 = one thread per core, spinning on)', options: { graphOptimizationLevel: 'all' }, key: true },
  { name: 'service', what: 'service today: intra 0, spinning off', options: { graphOptimizationLevel: 'all', extra: spin(false) }, key: true },
  { name: 'intra1', what: 'intra 1', options: { graphOptimizationLevel: 'all', intraOpNumThreads: 1, extra: spin(false) }, key: true },
  { name: 'intra2-spin0', what: 'intra 2, spinning off', options: { graphOptimizationLevel: 'all', intraOpNumThreads: 2, extra: spin(false) }, key: true },
  { name: 'intra2-spin1', what: 'intra 2, spinning on', options: { graphOptimizationLevel: 'all', intraOpNumThreads: 2, extra: spin(true) }, key: true },
  { name: 'intra2-parallel', what: 'intra 2, parallel execution, inter 2, spinning off', options: { graphOptimizationLevel: 'all', intraOpNumThreads: 2, interOpNumThreads: 2, executionMode: 'parallel', extra: spin(false) } },
  { name: 'intra1-parallel', what: 'intra 1, parallel execution, inter 2, spinning off', options: { graphOptimizationLevel: 'all', intraOpNumThreads: 1, interOpNumThreads: 2, executionMode: 'parallel', extra: spin(false) } },
  { name: 'intra2-opt-extended', what: 'intra 2, spinning off, optimization extended', options: { graphOptimizationLevel: 'extended', intraOpNumThreads: 2, extra: spin(false) } },
  { name: 'intra2-opt-basic', what: 'intra 2, spinning off, optimization basic', options: { graphOptimizationLevel: 'basic', intraOpNumThreads: 2, extra: spin(false) } },
  { name: 'intra2-opt-disabled', what: 'intra 2, spinning off, optimization disabled', options: { graphOptimizationLevel: 'disabled', intraOpNumThreads: 2, extra: spin(false) } },
  { name: 'intra2-noarena', what: 'intra 2, spinning off, CPU memory arena off', options: { graphOptimizationLevel: 'all', intraOpNumThreads: 2, enableCpuMemArena: false, extra: spin(false) } },
  { name: 'intra1-x2', what: 'intra 1, spinning off, 2 sessions running at once (two workers, one core each)', options: { graphOptimizationLevel: 'all', intraOpNumThreads: 1, extra: spin(false) }, concurrent: 2 },
  { name: 'intra1-opt-basic', what: 'intra 1, optimization basic', options: { graphOptimizationLevel: 'basic', intraOpNumThreads: 1, extra: spin(false) } },
];

export interface ModelInputs {
  name: string;
  graph: Uint8Array;
  externalData?: { path: string; data: Uint8Array }[];
  /** Glow's W matrices (float32, from lu.json), empty for RealNVP. */
  constFeeds: Record<string, ort.Tensor>;
  /** Model-input-space rows (preprocessed), float32, count × d. */
  y: Float32Array;
  count: number;
  dims: number[];
}

/** The model's forward graph with real test images (its training data set's test split). */
export async function modelInputs(name: string, count = 256): Promise<ModelInputs> {
  const pkg = await loadPackage(join(MODEL_DIR, name), name);
  const program = programFor(pkg);
  const constFeeds: Record<string, ort.Tensor> = {};
  for (const [k, t] of Object.entries(program.constFeeds('forward'))) constFeeds[k] = new ort.Tensor('float32', Float32Array.from(t.data), t.dims);
  const x = toDataRows(datasetImages(pkg.manifest.training.dataset, 'test', 0, count));
  const d = pkg.manifest.latent.size;
  const pre = preprocessing(pkg.manifest.preprocessing.transform, d).forward(x, count);
  const weights = pkg.bytes.weights && pkg.manifest.graphs.weights ? [{ path: pkg.manifest.graphs.weights, data: pkg.bytes.weights }] : undefined;
  return { name, graph: pkg.bytes.graphs.forward, ...(weights ? { externalData: weights } : {}), constFeeds, y: Float32Array.from(pre.values), count, dims: pkg.manifest.data.shape };
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** CPU seconds (user + system) this process has used so far. */
const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** Busy CPU seconds of the whole machine so far (/proc/stat, all but idle and iowait; USER_HZ = 100). */
export const systemBusySeconds = (): number => {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0); // user nice system idle iowait irq softirq steal
  return (total - f[3] - f[4]) / 100;
};

export interface RawRun {
  samplesPerSec: number;
  /** CPU cores busy on average while running (process CPU time / wall time). */
  cores: number;
  /** Cores used by OTHER processes meanwhile (machine busy − this process): noise from outside. */
  foreign: number;
}

/**
 * Waits (up to maxMs) for a 500 ms window in which other processes use less than `cores` of CPU: the
 * machine may be shared, and a run that starts under load is usually thrown away anyway.
 */
export async function quiet(cores: number, maxMs: number): Promise<number> {
  const start = performance.now();
  for (;;) {
    const b0 = systemBusySeconds(), c0 = cpuSeconds(), t0 = performance.now();
    await new Promise((res) => setTimeout(res, 500));
    const foreign = (systemBusySeconds() - b0 - (cpuSeconds() - c0)) / ((performance.now() - t0) / 1000);
    if (foreign < cores || performance.now() - start > maxMs) return foreign;
  }
}

/** A run with more than this many cores of foreign load is repeated (up to RAW_RETRIES times). */
const FOREIGN_LIMIT = Number(process.env.RAW_FOREIGN_LIMIT ?? 0.15);
const RETRIES = Number(process.env.RAW_RETRIES ?? 4);

/** samples/s of session.run at `batch` rows, one timed run of `seconds` (after 3 warm-up runs). */
async function timeRun(sessionOrSessions: ort.InferenceSession | ort.InferenceSession[], m: ModelInputs, batch: number, seconds: number): Promise<RawRun> {
  const sessions = Array.isArray(sessionOrSessions) ? sessionOrSessions : [sessionOrSessions];
  const session = sessions[0];
  const d = m.y.length / m.count;
  // distinct rows per call where the pool allows (batch ≤ count), cycling through the pool
  const feedsFor = (k: number) => {
    const data = new Float32Array(batch * d);
    for (let i = 0; i < batch; i++) {
      const r = (k * batch + i) % m.count;
      data.set(m.y.subarray(r * d, (r + 1) * d), i * d);
    }
    return { x: new ort.Tensor('float32', data, [batch, ...m.dims]), ...m.constFeeds };
  };
  const pool = Array.from({ length: 4 }, (_, k) => feedsFor(k));
  for (let i = 0; i < 3; i++) await session.run(pool[i % pool.length]);
  let runs = 0;
  const cpu0 = cpuSeconds();
  const busy0 = systemBusySeconds();
  const start = performance.now();
  // one loop per session, all at once (several sessions = several requests in flight; calls on ONE
  // session are serialized by onnxruntime-node: two loops on one session measured 1.00 cores)
  await Promise.all(
    sessions.map(async (s) => {
      while (performance.now() - start < seconds * 1000) {
        await s.run(pool[runs % pool.length]);
        runs++;
      }
    }),
  );
  const wall = (performance.now() - start) / 1000;
  const own = cpuSeconds() - cpu0;
  return { samplesPerSec: (runs * batch) / wall, cores: own / wall, foreign: Math.max(0, (systemBusySeconds() - busy0 - own) / wall) };
}

export interface RawResult {
  model: string;
  config: string;
  batch: number;
  runs: RawRun[];
  /** Runs thrown away for foreign load. */
  retries: number;
  samplesPerSec: number;
  cores: number;
  /** The largest foreign load (cores) among the kept runs. */
  foreign: number;
}

/**
 * Every (option set, batch) cell of one model, INTERLEAVED: round r runs each cell once, so slow
 * drifts in the machine's load (it may be shared) spread over all cells instead of biasing the last
 * ones. A run with foreign load above RAW_FOREIGN_LIMIT is repeated (up to RAW_RETRIES per cell).
 */
export async function measureAll(m: ModelInputs, cells: { cfg: RawConfig; batch: number }[], seconds: number, runs: number): Promise<RawResult[]> {
  const sessions = new Map<string, ort.InferenceSession[]>();
  for (const { cfg } of cells)
    if (!sessions.has(cfg.name))
      sessions.set(cfg.name, await Promise.all(Array.from({ length: cfg.concurrent ?? 1 }, () => ort.InferenceSession.create(m.graph, { ...cfg.options, ...(m.externalData ? { externalData: m.externalData } : {}), executionProviders: [PROVIDER] }))));
  const kept = cells.map(() => [] as RawRun[]);
  const retries = cells.map(() => 0);
  try {
    for (let r = 0; r < runs; r++)
      for (const [i, { cfg, batch }] of cells.entries()) {
        for (;;) {
          await quiet(FOREIGN_LIMIT, Number(process.env.RAW_QUIET_WAIT_MS ?? 60_000)); // also lets the previous session's spinning threads go to sleep
          const run = await timeRun(sessions.get(cfg.name)!, m, batch, seconds);
          if (run.foreign > FOREIGN_LIMIT && retries[i] < RETRIES) {
            retries[i]++;
            await new Promise((res) => setTimeout(res, 1000));
            continue;
          }
          kept[i].push(run);
          break;
        }
      }
  } finally {
    for (const list of sessions.values()) for (const s of list) await s.release();
  }
  return cells.map(({ cfg, batch }, i) => {
    const rs = kept[i];
    return { model: m.name, config: cfg.name, batch, runs: rs, retries: retries[i], samplesPerSec: median(rs.map((x) => x.samplesPerSec)), cores: median(rs.map((x) => x.cores)), foreign: Math.max(...rs.map((x) => x.foreign)) };
  });
}

// ---- profiling ---------------------------------------------------------------------------------

interface ProfileEvent {
  cat: string;
  name: string;
  dur: number;
  args?: { op_name?: string; thread_scheduling_stats?: unknown; provider?: string };
}

export interface OpTime {
  op: string;
  /** Mean µs per session.run. */
  us: number;
  share: number;
  nodes: number;
}

/** Runs `iterations` calls with ORT profiling on and returns the time per op type (per run). */
export async function profile(m: ModelInputs, cfg: RawConfig, batch: number, iterations: number): Promise<{ perRunUs: number; ops: OpTime[]; file: string; cores: number; foreign: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'raw-ort-profile-'));
  const session = await ort.InferenceSession.create(m.graph, {
    ...cfg.options,
    ...(m.externalData ? { externalData: m.externalData } : {}),
    executionProviders: [PROVIDER],
    enableProfiling: true,
    profileFilePrefix: join(dir, `${m.name}-${cfg.name}`),
  });
  const d = m.y.length / m.count;
  const data = new Float32Array(batch * d);
  for (let i = 0; i < batch; i++) data.set(m.y.subarray((i % m.count) * d, ((i % m.count) + 1) * d), i * d);
  const feeds = { x: new ort.Tensor('float32', data, [batch, ...m.dims]), ...m.constFeeds };
  await quiet(FOREIGN_LIMIT, 60_000);
  const b0 = systemBusySeconds(), c0 = cpuSeconds(), t0 = performance.now();
  for (let i = 0; i < iterations; i++) await session.run(feeds);
  const wall = (performance.now() - t0) / 1000, own = cpuSeconds() - c0;
  const cores = own / wall, foreign = Math.max(0, (systemBusySeconds() - b0 - own) / wall);
  session.endProfiling();
  await session.release();
  const file = readdirSync(dir).map((f) => join(dir, f)).find((f) => f.endsWith('.json'))!;
  const events = JSON.parse(readFileSync(file, 'utf8')) as ProfileEvent[];
  const perOp = new Map<string, { us: number; nodes: Set<string> }>();
  let modelRun = 0;
  for (const e of events) {
    if (e.cat === 'Session' && e.name === 'model_run') modelRun += e.dur;
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
    const op = e.args?.op_name ?? '?';
    const entry = perOp.get(op) ?? { us: 0, nodes: new Set<string>() };
    entry.us += e.dur;
    entry.nodes.add(e.name);
    perOp.set(op, entry);
  }
  const total = [...perOp.values()].reduce((s, v) => s + v.us, 0);
  const ops = [...perOp.entries()]
    .map(([op, v]) => ({ op, us: v.us / iterations, share: v.us / total, nodes: v.nodes.size }))
    .sort((a, b) => b.us - a.us);
  // RAW_KEEP_PROFILE=<folder>: keep ORT's profile JSON (chrome://tracing format) there
  const keepDir = process.env.RAW_KEEP_PROFILE;
  const kept = keepDir ? join(keepDir, `ort-profile-${m.name}-${cfg.name}-b${batch}.json`) : '';
  if (keepDir) writeFileSync(kept, JSON.stringify(events));
  rmSync(dir, { recursive: true, force: true });
  return { perRunUs: modelRun / iterations, ops, file: kept, cores, foreign };
}

// ---- main ----------------------------------------------------------------------------------------

const list = (v: string | undefined, def: string) => (v ?? def).split(',').map((s) => s.trim()).filter(Boolean);

async function main() {
  const seconds = Number(process.env.RAW_SECONDS ?? 2);
  const runs = Number(process.env.RAW_RUNS ?? 3);
  const models = list(process.env.RAW_MODELS, 'glow-fashion,realnvp-mnist');
  const batches = list(process.env.RAW_BATCHES, '1,8,64,256').map(Number);
  const sweepBatches = list(process.env.RAW_SWEEP_BATCHES, '64').map(Number);
  const wanted = list(process.env.RAW_CONFIGS, CONFIGS.map((c) => c.name).join(','));
  const configs = CONFIGS.filter((c) => wanted.includes(c.name));
  const jsonAt = process.argv.indexOf('--json');
  const jsonFile = jsonAt > 0 ? process.argv[jsonAt + 1] : undefined;
  const quiet = process.argv.includes('--quiet');
  const say = (s: string) => {
    if (!quiet) console.log(s);
  };
  say(`# raw ONNX Runtime (onnxruntime-node ${ort.env.versions.node}), forward graphs, ${cpus().length} × ${cpus()[0]?.model}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`);
  say(`median of ${runs} interleaved runs × ${seconds} s; samples/s (CPU cores used; runs with more than ${FOREIGN_LIMIT} cores of other processes' load are repeated up to ${RETRIES} times, and the load is shown when it stayed)`);
  if (process.argv.includes('--threads')) {
    // how many OS threads each option set adds to the process (ORT's intra-op pool; 0 = the caller thread only)
    const m = await modelInputs(models[0], 8);
    // a first session creates ORT's process-wide threads; count after it
    await (await ort.InferenceSession.create(m.graph, { intraOpNumThreads: 1, ...(m.externalData ? { externalData: m.externalData } : {}), executionProviders: [PROVIDER] })).release();
    for (const cfg of configs) {
      const before = readdirSync('/proc/self/task').length;
      const session = await ort.InferenceSession.create(m.graph, { ...cfg.options, ...(m.externalData ? { externalData: m.externalData } : {}), executionProviders: [PROVIDER] });
      say(`${cfg.name}: ${readdirSync('/proc/self/task').length - before} threads added`);
      await session.release();
    }
    return;
  }
  const results: RawResult[] = [];
  const profiles: Record<string, unknown>[] = [];
  for (const name of models) {
    const m = await modelInputs(name);
    if (process.argv.includes('--profile')) {
      // one table per model and batch: time per op type under each option set, side by side
      const cfgNames = list(process.env.RAW_PROFILE_CONFIGS, 'intra1,intra2-spin0');
      for (const batch of list(process.env.RAW_PROFILE_BATCHES, '64').map(Number)) {
        const got: { cfg: string; perRunUs: number; ops: OpTime[]; cores: number; foreign: number }[] = [];
        for (const cfgName of cfgNames) {
          const cfg = CONFIGS.find((c) => c.name === cfgName)!;
          const p = await profile(m, cfg, batch, Number(process.env.RAW_PROFILE_ITERATIONS ?? 30));
          profiles.push({ model: name, config: cfgName, batch, ...p });
          got.push({ cfg: cfgName, perRunUs: p.perRunUs, ops: p.ops, cores: p.cores, foreign: p.foreign });
        }
        say(`\n## profile ${name}, batch ${batch}: ms per session.run (model_run) ${got.map((g) => `${g.cfg} ${(g.perRunUs / 1000).toFixed(2)} (${g.cores.toFixed(2)} cores, foreign ${g.foreign.toFixed(2)})`).join(', ')}`);
        say(`| op | nodes | ${got.map((g) => `${g.cfg} ms`).join(' | ')} | ${got.length > 1 ? `${got[0].cfg} / ${got[got.length - 1].cfg}` : ''} |`);
        say(`|---|---|${got.map(() => '---').join('|')}|---|`);
        for (const o of got[0].ops.slice(0, 16)) {
          const t = got.map((g) => g.ops.find((x) => x.op === o.op)?.us ?? NaN);
          say(`| ${o.op} | ${o.nodes} | ${t.map((v) => (v / 1000).toFixed(3)).join(' | ')} | ${(t[0] / t[t.length - 1]).toFixed(2)} |`);
        }
      }
      continue;
    }
    say(`\n## ${name}\n`);
    say(`| options | ${batches.map((b) => `batch ${b}`).join(' | ')} |`);
    say(`|---|${batches.map(() => '---').join('|')}|`);
    const cells = configs.flatMap((cfg) => (cfg.key ? batches : batches.filter((b) => sweepBatches.includes(b))).map((batch) => ({ cfg, batch })));
    const all = await measureAll(m, cells, seconds, runs);
    results.push(...all);
    for (const cfg of configs) {
      const rs = all.filter((r) => r.config === cfg.name);
      const cell = (b: number) => {
        const r = rs.find((x) => x.batch === b);
        return r ? `${r.samplesPerSec.toFixed(0)} (${r.cores.toFixed(2)}${r.foreign > FOREIGN_LIMIT ? `, foreign ${r.foreign.toFixed(2)}` : ''})` : '';
      };
      say(`| ${cfg.name}: ${cfg.what} | ${batches.map(cell).join(' | ')} |`);
    }
  }
  const doc = { onnxruntime: ort.env.versions.node, cpu: cpus()[0]?.model, cores: cpus().length, seconds, runs, results, profiles };
  if (jsonFile) writeFileSync(jsonFile, JSON.stringify(doc, null, 1));
  if (quiet) process.stdout.write(JSON.stringify(doc));
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('raw-ort.ts')) await main();
