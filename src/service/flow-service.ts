// The service: loads the registry, starts the inference workers, warms every model up, and
// answers encode / decode / sample / likelihood in terms of FlowModel. Knows nothing of HTTP.
// It also says whether it can serve (health()): a model is servable only while some inference
// worker holding its sessions is live.
import { availableParallelism } from 'node:os';
import type { Config } from '../config/config.js';
import { CancelledError, InferenceError, InvalidInputError, ModelNotFoundError, ModelUnavailableError, NotReadyError } from '../errors.js';
import { losslessJpegLs } from '../imaging/image-codec.js';
import type { Provider } from '../runtime/session.js';
import { WorkerCrashedError, WorkerPool, WorkerStartError, type PoolLogger, type PoolStatus } from '../runtime/worker-pool.js';
import type { SessionReport, SessionSpec } from '../runtime/protocol.js';
import type { TensorData } from '../tensor/tensor.js';
import { Batcher, InflightSlots } from './batcher.js';
import { FlowModel } from './flow-model.js';
import { programFor } from './programs/index.js';
import { ProgramError, type Cost, type FlowProgram, type LoopContext, type LoopCost } from './programs/types.js';
import { checkCount, type DataRows } from './inputs.js';
import * as ops from './operations.js';
import { codeBits, type LikelihoodOptions, type OutputForm } from './operations.js';
import type { InterpolationMethod } from '../flow/interpolate.js';
import type { Metrics } from './metrics.js';
import { loadPackages, type ModelPackage } from './registry.js';

const WARM_UP_TIMEOUT_MS = 120_000;
/** Rows sampled and encoded at warm-up, to exercise every graph and measure the adaptive loops. */
const WARM_UP_ROWS = 16;

export type ModelStatus = 'loading' | 'ready' | 'unavailable';

export interface ModelState {
  name: string;
  status: ModelStatus;
  reason?: string;
  provider?: Provider;
  pkg?: ModelPackage;
  /** What each direction costs (GET /models): the program's passes, with solver work measured at warm-up. */
  cost?: ModelCost;
}

export interface DirectionCost extends LoopCost {
  /** Mean per row at warm-up: dynamics evaluations (ODE) or root-finding iterations (planar). */
  measured?: { evaluations?: number; iterations?: number; rows: number; temperature: number };
}
export type ModelCost = { forward: DirectionCost; inverse: DirectionCost };

/** What the probes answer (GET /healthz, /readyz). */
export interface ServiceHealth {
  /** Liveness: false only when startup finished and no worker can be started (restarts keep failing). */
  live: boolean;
  status: 'loading' | 'ready' | 'restarting' | 'failed' | 'stopped';
  /** Why not live or not ready (public: short, no paths). */
  reason?: string;
  models: Record<string, { status: ModelStatus; reason?: string }>;
}

export type { ScoredLikelihood } from './operations.js';

export class FlowService {
  private pool: WorkerPool | null = null;
  private models = new Map<string, FlowModel>();
  private batchers: Batcher[] = [];
  readonly states = new Map<string, ModelState>();
  private readyPromise: Promise<void> | null = null;
  state: 'starting' | 'ready' | 'failed' | 'stopped' = 'starting';
  /** Why nothing can be served, when state is 'failed'. Public: names MODEL_DIR, never its path (the log line has it). */
  failureReason = '';
  defaultModel = '';
  private costs = new Map<string, ModelCost>();
  /**
   * Running batches across every graph of every model: two per inference worker, so that the next
   * batch waits in its batcher (merging with later calls) while one runs, rather than queueing call
   * by call in the worker. A MAF's 8 layer graphs used to keep 16 small calls in flight.
   */
  private readonly slots: InflightSlots;
  /** MODEL_DIR entries that are not packages (no flow.json). */
  private skipped: string[] = [];

  constructor(
    private readonly config: Config,
    private readonly metrics: Metrics,
    private readonly log: PoolLogger,
  ) {
    this.slots = new InflightSlots(2 * config.workerThreads);
  }

  /** Start loading (idempotent); resolves when every loadable model is warm. */
  start(): Promise<void> {
    this.readyPromise ??= this.load().then(
      () => {
        this.state = this.models.size > 0 ? 'ready' : 'failed';
        if (this.models.size > 0) return;
        const refused = [...this.states.values()].map((s) => `${s.name}: ${s.reason ?? s.status}`);
        this.failureReason = refused.length
          ? `no model could be loaded from MODEL_DIR (${refused.join('; ')})`
          : `MODEL_DIR holds no model package (a sub-folder with a flow.json)${this.skipped.length ? `; skipped: ${this.skipped.slice(0, 8).join(', ')}${this.skipped.length > 8 ? ', …' : ''}` : ''}`;
        this.log.error({ modelDir: this.config.modelDir }, this.failureReason);
      },
      (err) => {
        this.state = 'failed';
        const code = (err as NodeJS.ErrnoException).code;
        this.failureReason =
          code === 'ENOENT' ? 'MODEL_DIR does not exist'
          : code === 'ENOTDIR' ? 'MODEL_DIR is not a folder'
          : code === 'EACCES' ? 'MODEL_DIR cannot be read (permission denied)'
          : err instanceof WorkerStartError ? 'no inference worker could start (see the log)'
          : 'model loading failed (see the log)';
        this.log.error({ err: String(err), modelDir: this.config.modelDir }, this.failureReason);
      },
    );
    return this.readyPromise;
  }

  whenReady(): Promise<void> {
    return this.start();
  }

  get restarts(): number {
    return this.pool?.restarts ?? 0;
  }

  /** Fault injection: kill an inference worker as a crash would (SIGKILL a process, terminate a thread). */
  killWorker(index = 0): Promise<void> {
    return this.pool?.killWorker(index) ?? Promise.resolve();
  }

  /** Fault injection: the next `count` worker starts fail (Infinity: all of them, 0: none). */
  injectStartFaults(count: number): void {
    this.pool?.injectStartFaults(count);
  }

  /**
   * Liveness and readiness. Not live means: startup finished, no inference worker is live, and
   * every worker failed its last 3 start attempts in a row (about 1 s of backoff plus three starts
   * at the least), so restarting the process is the remaining remedy. Loading, a refused package
   * and a replacement that starts at its first or second attempt all stay live.
   */
  health(): ServiceHealth {
    const pool = this.pool?.status();
    const models: ServiceHealth['models'] = {};
    for (const s of this.describe()) models[s.name] = { status: s.status, ...(s.reason ? { reason: s.reason } : {}) };
    const servable = !!pool && pool.live > 0;
    if (this.state === 'ready' && !servable) {
      const live = !pool?.failing;
      const reason = live ? workersReason(pool) : `no inference worker can start: ${Math.min(...(pool?.failedStarts ?? [0]))} attempts in a row failed`;
      return { live, status: 'restarting', reason, models };
    }
    const status = this.state === 'starting' ? 'loading' : this.state;
    return { live: true, status, ...(status === 'failed' ? { reason: this.failureReason } : {}), models };
  }

  /** Answer all queued and running work with `err` (the shutdown deadline); returns how many requests. */
  abort(err: Error): number {
    return this.batchers.reduce((n, b) => n + b.abort(err), 0);
  }

  async close(): Promise<void> {
    this.state = 'stopped';
    await this.pool?.close();
  }

  /** `reason` is public (responses, /readyz); `detail` (ORT's message, paths) goes to the log, once. */
  private refuse(name: string, reason: string, pkg?: ModelPackage, detail?: string): void {
    this.states.set(name, { name, status: 'unavailable', reason, pkg });
    this.log.error({ model: name, reason, ...(detail ? { detail } : {}) }, `model ${name} refused: ${reason}`);
  }

  private async load(): Promise<void> {
    const { loaded, refused, skipped, single } = await loadPackages(this.config.modelDir, this.config.modelName);
    if (this.config.modelName && !single)
      this.log.warn({ modelName: this.config.modelName }, 'MODEL_NAME (--model_name) ignored: it names the package when MODEL_DIR is itself one package (flow.json at its root); this MODEL_DIR holds package folders, served under their folder names');
    this.skipped = skipped.map((s) => s.name);
    // Not an error (a MODEL_DIR may hold other folders), but an operator who expected a model there must see why.
    for (const s of skipped) this.log.info({ model: s.name, dir: s.dir }, `MODEL_DIR entry ${s.name} skipped: ${s.reason}`);
    for (const r of refused) this.refuse(r.name, r.reason, undefined, r.detail && `${r.dir}: ${r.detail}`);
    // Each family's program first: a package its program cannot run is refused before any session.
    const programs = new Map<string, FlowProgram>();
    for (const p of loaded) {
      try {
        programs.set(p.name, programFor(p));
        this.states.set(p.name, { name: p.name, status: 'loading', pkg: p });
      } catch (err) {
        if (!(err instanceof ProgramError)) throw err;
        this.refuse(p.name, err.message, p);
      }
    }
    const runnable = loaded.filter((p) => programs.has(p.name));
    if (runnable.length === 0) return;

    this.pool = new WorkerPool(
      runnable.flatMap((p) => sessionSpecs(p, programs.get(p.name)!)),
      { provider: this.config.executionProvider, deviceId: this.config.cudaDeviceId, intraOpThreads: intraOpThreadsFor(this.config), intraOpSpinning: this.config.intraOpSpinning },
      this.config.workerThreads,
      this.log,
      { isolation: this.config.inferenceIsolation, onChange: () => this.workersChanged() },
    );
    let reports: Record<string, SessionReport>;
    try {
      reports = await this.pool.start();
    } catch (err) {
      for (const p of runnable) this.refuse(p.name, 'inference workers could not start', p);
      throw err;
    }

    for (const pkg of runnable) {
      const program = programs.get(pkg.name)!;
      const sessions = program.graphs.map((g) => reports[`${pkg.name}/${g.name}`]);
      const problem = sessionProblem(program, sessions);
      if (problem) {
        this.refuse(pkg.name, problem.reason, pkg, problem.detail);
        continue;
      }
      const ok = sessions.filter((r): r is Extract<SessionReport, { ok: true }> => r.ok);
      const provider = ok.every((r) => r.provider === 'cuda') ? 'cuda' : 'cpu';
      const fallback = ok.find((r) => r.fallbackReason)?.fallbackReason;
      // Not installed (session.ts CUDA_NOT_INSTALLED; the main process never loads ORT to import it) is a plain CPU start: info. Installed but failing needs action: warn.
      if (fallback) this.log[fallback.startsWith('CUDA execution provider libraries are not installed') ? 'info' : 'warn']({ model: pkg.name, reason: fallback }, `CUDA execution provider unavailable for ${pkg.name}; falling back to CPU`);
      const batchers = new Map(program.graphs.map((g) => [g.name, this.batcher(pkg, g.name)]));
      const model = new FlowModel(pkg, provider, program, batchers);
      let cost: ModelCost;
      try {
        cost = await this.warmUp(model);
      } catch (err) {
        const cause = (err as Error).cause;
        this.refuse(pkg.name, 'warm-up failed', pkg, `${(err as Error).message}${cause ? `: ${cause instanceof Error ? cause.message : String(cause)}` : ''}`);
        continue;
      }
      this.models.set(pkg.name, model);
      this.costs.set(pkg.name, cost);
      this.states.set(pkg.name, { name: pkg.name, status: 'ready', provider, pkg, cost });
      this.log.info({ model: pkg.name, family: pkg.manifest.family, provider }, `model ${pkg.name} ready`);
    }
    const names = [...this.models.keys()];
    this.defaultModel = this.config.defaultModel || (names.includes('glow-fashion') ? 'glow-fashion' : names[0] ?? '');
    this.workersChanged();
  }

  /** A worker came up, died or failed to start: served models follow whether any worker is live. */
  private workersChanged(): void {
    const pool = this.pool?.status();
    if (!pool || pool.closing) return;
    const reason = pool.live > 0 ? undefined : workersReason(pool);
    for (const [name, model] of this.models) {
      const pkg = this.states.get(name)?.pkg;
      const cost = this.costs.get(name);
      this.states.set(name, reason ? { name, status: 'unavailable', reason, provider: model.provider, pkg, cost } : { name, status: 'ready', provider: model.provider, pkg, cost });
    }
    this.updateInfoMetric();
  }

  private updateInfoMetric(): void {
    this.metrics.modelInfo.reset();
    for (const s of this.states.values())
      this.metrics.modelInfo.set({ model: s.name, family: s.pkg?.manifest.family ?? 'unknown', provider: s.provider ?? 'none', status: s.status }, 1);
  }

  private batcher(pkg: ModelPackage, graph: string): Batcher {
    const labels = { model: pkg.name, graph };
    const key = `${pkg.name}/${graph}`;
    const c = this.config;
    const depth = this.metrics.queueDepth.labels(labels);
    const batcher: Batcher = new Batcher({
      model: pkg.name,
      graph,
      maxBatchSize: c.maxBatchSize,
      maxQueueDelayMs: c.maxQueueDelayMs,
      merge: c.dynamicBatching,
      maxQueueSize: c.maxQueueSize,
      timeoutMs: c.requestTimeoutMs,
      // Two batches per thread: the next batch forms and waits in the thread's queue while one
      // runs, so the thread never idles while the event loop answers the previous batch.
      maxInflight: 2 * c.workerThreads,
      slots: this.slots,
      run: async (feeds: Record<string, TensorData>, rows: number) => {
        depth.set(batcher.queuedRows);
        this.metrics.batchSize.observe(labels, rows);
        try {
          const { outputs, ms } = await this.pool!.run(key, feeds);
          this.metrics.inferenceDuration.observe(labels, ms / 1000);
          return outputs;
        } catch (err) {
          // After close only work whose client already left can get here (Fastify finished every
          // open request first): nothing failed that anyone waits for.
          if (this.state === 'stopped') throw new NotReadyError('shutting down: not accepting new requests');
          if (err instanceof WorkerCrashedError) {
            // The pool logs the crash itself (once per interval); this says which work it cost.
            this.log.warn({ model: pkg.name, graph, rows, err: err.message }, 'inference lost with its worker');
            throw new ModelUnavailableError(pkg.name, 'restarting: inference worker crashed');
          }
          this.log.error({ model: pkg.name, graph, rows, err: (err as Error).message }, 'inference failed');
          throw new InferenceError(pkg.name, err);
        }
      },
      onShed: () => this.metrics.shed.inc(labels),
      onTimeout: () => this.metrics.timedOut.inc(labels),
      onDispatch: (_rows, waits) => {
        for (const w of waits) this.metrics.queueWait.observe(labels, w / 1000);
        depth.set(batcher.queuedRows);
      },
    });
    this.batchers.push(batcher);
    return batcher;
  }

  /**
   * Runs both directions once (sessions warm, every graph exercised) on seeded samples at the
   * default temperature, and measures what the adaptive loops cost on them (GET /models: cost).
   */
  private async warmUp(model: FlowModel): Promise<ModelCost> {
    // Warm-up is not a request: it gets a generous deadline of its own.
    const ctx = () => ({ deadline: performance.now() + WARM_UP_TIMEOUT_MS });
    // within MAX_QUEUE_SIZE: a small queue must not refuse its own warm-up
    const rows = Math.min(WARM_UP_ROWS, this.config.maxQueueSize);
    const temperature = model.manifest.defaultTemperature;
    const sampled = await model.sample(rows, temperature, 0x5eed, ctx());
    const encoded = await model.encode(sampled.outputs, rows, ctx());
    // Compiles the JPEG-LS WebAssembly module now rather than on the first scored request.
    if (model.scores.includes('complexityJpegLs')) await codeBits([new Uint8Array(model.dim)], model, losslessJpegLs);
    const declared = model.program.cost();
    const measure = (c: Cost) => {
      const mean = (a?: Int32Array) => (a && a.length ? a.reduce((x, y) => x + y, 0) / a.length : undefined);
      const evaluations = mean(c.evaluations);
      const iterations = mean(c.iterations);
      return evaluations === undefined && iterations === undefined ? undefined : { ...(evaluations !== undefined ? { evaluations } : {}), ...(iterations !== undefined ? { iterations } : {}), rows, temperature };
    };
    const forward = measure(encoded.cost);
    const inverse = measure(sampled.cost);
    return { forward: { ...declared.forward, ...(forward ? { measured: forward } : {}) }, inverse: { ...declared.inverse, ...(inverse ? { measured: inverse } : {}) } };
  }

  /** The served model for a request: 503 while starting, 404 unknown, 503 refused. */
  resolve(name?: string): FlowModel {
    const wanted = name ?? this.defaultModel;
    // No name and no default: nothing loaded (yet), so say why rather than "model '' is not loaded".
    if (!wanted) throw new NotReadyError(this.state === 'starting' ? 'models are still loading' : `no model can be served: ${this.failureReason || 'none is loaded'}`);
    const model = this.models.get(wanted);
    const st = this.states.get(wanted);
    // No live worker (a replacement is starting): answer now rather than queue work nothing can run.
    if (model && st?.status === 'unavailable') throw new ModelUnavailableError(wanted, st.reason ?? st.status);
    if (model) return model;
    if (this.state === 'starting' && (!st || st.status === 'loading')) throw new NotReadyError('models are still loading');
    if (st) throw new ModelUnavailableError(wanted, st.reason ?? st.status);
    throw new ModelNotFoundError(wanted, [...this.states.keys()]);
  }

  // The operations (src/service/operations.ts), each answering with finished results. `ctx`
  // carries the request's deadline and cancellation signal into every loop (default: the
  // REQUEST_TIMEOUT_MS deadline from now, no signal).
  encode(model: FlowModel, x: DataRows, n: number, field: string, ctx: LoopContext = this.context()) {
    checkSolver(model, ctx);
    return this.counted(model, 'forward', ops.encode(model, x, n, field, ctx), ctx, 'encode', n);
  }

  decode(model: FlowModel, latents: DataRows, n: number, opts: { output?: OutputForm } = {}, ctx: LoopContext = this.context()) {
    checkSolver(model, ctx);
    return this.counted(model, 'inverse', ops.decode(model, latents, n, opts, ctx), ctx, 'decode', n);
  }

  sample(model: FlowModel, opts: { count: number; temperature?: number; seed?: number; output?: OutputForm }, ctx: LoopContext = this.context()) {
    checkCount('count', opts.count, this.config.maxSamplesPerRequest, 'MAX_SAMPLES_PER_REQUEST');
    checkSolver(model, ctx);
    return this.counted(model, 'inverse', ops.sample(model, opts, ctx), ctx, 'sample', opts.count);
  }

  likelihood(model: FlowModel, x: DataRows, n: number, opts: LikelihoodOptions = {}, ctx: LoopContext = this.context()) {
    checkSolver(model, ctx);
    return this.counted(model, 'forward', ops.likelihood(model, x, n, { maxRows: this.config.maxItemsPerRequest, ...opts }, ctx), ctx, 'likelihood', n);
  }

  /** Frames between two inputs or latents: encode (forward) the ends, then decode (inverse) the path. */
  async interpolate(model: FlowModel, ends: ops.InterpolationEnds, opts: { steps: number; method: InterpolationMethod; output?: OutputForm }, ctx: LoopContext = this.context()) {
    checkCount('steps', opts.steps, this.config.maxSamplesPerRequest, 'MAX_SAMPLES_PER_REQUEST');
    checkSolver(model, ctx);
    const done = await this.counted(model, 'inverse', ops.interpolate(model, ends, opts, ctx), ctx, 'interpolate', opts.steps);
    if (done.encodeCost) this.recordSolverWork(model, 'forward', done.encodeCost);
    return done;
  }

  /** A request's loop context: its deadline (REQUEST_TIMEOUT_MS from now) and, from the route, its signal. */
  context(signal?: AbortSignal, since = performance.now()): LoopContext {
    return { deadline: since + this.config.requestTimeoutMs, ...(signal ? { signal } : {}) };
  }

  /** Solver work per row (continuous and planar flows) into the metrics, and cancelled loops counted. */
  private async counted<T extends { cost: Cost }>(model: FlowModel, direction: 'forward' | 'inverse', work: Promise<T>, ctx: LoopContext | undefined, operation: string, rows: number): Promise<T> {
    try {
      const done = await work;
      if (ctx?.timing) ctx.timing.finished = performance.now();
      this.metrics.inferenceSamples.inc({ model: model.name, operation }, rows);
      this.recordSolverWork(model, direction, done.cost);
      return done;
    } catch (err) {
      if (err instanceof CancelledError) this.metrics.cancelled.inc({ model: model.name });
      throw err;
    }
  }

  private recordSolverWork(model: FlowModel, direction: 'forward' | 'inverse', cost: Cost): void {
    const labels = { model: model.name, direction };
    for (const v of cost.evaluations ?? []) this.metrics.solverEvaluations.observe(labels, v);
    for (const v of cost.iterations ?? []) this.metrics.solverIterations.observe(labels, v);
  }

  /** Public description of every known model (GET /models). */
  describe(): ModelState[] {
    return [...this.states.values()];
  }
}

/** The verified bytes of every graph of a package; the weights file is one shared buffer (sent once per worker). */
function sessionSpecs(p: ModelPackage, program: FlowProgram): SessionSpec[] {
  const externalData = p.bytes.weights && p.manifest.graphs.weights ? [{ path: p.manifest.graphs.weights, data: p.bytes.weights }] : undefined;
  return Object.entries(p.bytes.graphs).map(([graph, bytes]) => {
    // the program's fixed inputs (Glow's W, W⁻¹) live in the worker, not in every batch
    const constFeeds = program.graphs.some((g) => g.name === graph) ? program.constFeeds(graph) : {};
    return { key: `${p.name}/${graph}`, graph: bytes, ...(externalData ? { externalData } : {}), ...(Object.keys(constFeeds).length ? { constFeeds } : {}) };
  });
}

/** ODE tolerances are for continuous flows only: refused by name elsewhere rather than ignored. */
function checkSolver(model: FlowModel, ctx: LoopContext): void {
  if (!ctx.solver || model.manifest.program?.kind === 'ode') return;
  throw new InvalidInputError(ctx.solver.atol !== undefined ? 'atol' : 'rtol', `is only for continuous flows (family ffjord); model ${model.name} is ${model.manifest.family}`);
}

/**
 * INTRA_OP_THREADS=0 means the cores shared out between the inference workers. onnxruntime-node's
 * own default (intraOpNumThreads unset) gave ONE intra-op thread on the 2-core VM, so a batch ran on
 * one core: glow-fashion batch 64 went from ~2200 to ~3300-3500 samples/s with 2 threads
 * (bench/raw-ort-2026-11-25.md).
 */
export function intraOpThreadsFor(c: Pick<Config, 'intraOpThreads' | 'workerThreads'>, cores = availableParallelism()): number {
  return c.intraOpThreads > 0 ? c.intraOpThreads : Math.max(1, Math.floor(cores / c.workerThreads));
}

/** Why no model can be served while no worker is live (public). */
function workersReason(pool?: PoolStatus): string {
  if (!pool) return 'no inference worker';
  const failed = Math.max(0, ...pool.failedStarts);
  const cause = pool.restarting ? 'inference worker crashed' : 'inference worker not started';
  return failed > 0 ? `restarting: ${cause}; ${failed} restart attempt${failed === 1 ? '' : 's'} failed` : `restarting: ${cause}`;
}

/** A public reason (short, no ORT message, paths or tensor names) and the detail for the log. */
function sessionProblem(program: FlowProgram, reports: (SessionReport | undefined)[]): { reason: string; detail: string } | null {
  const same = (a: string[], b: string[]) => a.length === b.length && a.every((x) => b.includes(x));
  for (const [k, spec] of program.graphs.entries()) {
    const r = reports[k];
    if (!r || !r.ok) return { reason: `graph '${spec.name}' could not be loaded`, detail: r && !r.ok ? r.error : 'no session (not in graphs?)' };
    if (!same(r.inputs.map((i) => i.name), spec.inputs)) return { reason: `graph '${spec.name}' inputs do not match the family's program`, detail: `[${r.inputs.map((i) => i.name)}] should be [${spec.inputs}]` };
    const outs = r.outputs.map((o) => o.name);
    for (const need of spec.outputs) if (!outs.includes(need)) return { reason: `graph '${spec.name}' outputs do not match the family's program`, detail: `no output '${need}'` };
  }
  return null;
}
