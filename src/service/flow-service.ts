// The service: loads the registry, starts the inference threads, warms every model up, and
// answers encode / decode / sample / likelihood in terms of FlowModel. Knows nothing of HTTP.
import type { Config } from '../config/config.js';
import { InferenceError, InvalidInputError, ModelNotFoundError, ModelUnavailableError, NotReadyError } from '../errors.js';
import { IMAGE_SCORES, batchTypicality, complexityScore, normalizeScore, twoPartCodeBits, typicality, type BatchTypicality, type ScoreName } from '../flow/anomaly.js';
import { dataToPixels } from '../flow/quantize.js';
import { Rng } from '../flow/random.js';
import { losslessJpegLs, losslessPng } from '../imaging/image-codec.js';
import type { Provider } from '../runtime/session.js';
import { WorkerCrashedError, WorkerPool, type PoolLogger } from '../runtime/worker-pool.js';
import type { SessionReport } from '../runtime/protocol.js';
import type { TensorData } from '../tensor/tensor.js';
import { Batcher } from './batcher.js';
import { FlowModel, type Likelihood } from './flow-model.js';
import type { Metrics } from './metrics.js';
import { loadPackages, type ModelPackage } from './registry.js';

const WARM_UP_TIMEOUT_MS = 120_000;

export type ModelStatus = 'loading' | 'ready' | 'unavailable';
export type Direction = 'forward' | 'inverse';

export interface ModelState {
  name: string;
  status: ModelStatus;
  reason?: string;
  provider?: Provider;
  pkg?: ModelPackage;
}

export interface ScoredLikelihood extends Likelihood {
  scores: Record<ScoreName, number | null>;
  anomalyScore: number | null;
  isAnomaly: boolean | null;
}

export class FlowService {
  private pool: WorkerPool | null = null;
  private models = new Map<string, FlowModel>();
  private batchers: Batcher[] = [];
  readonly states = new Map<string, ModelState>();
  private readyPromise: Promise<void> | null = null;
  state: 'starting' | 'ready' | 'failed' | 'stopped' = 'starting';
  /** Why nothing can be served, when state is 'failed' (public: no paths beyond MODEL_DIR as configured). */
  failureReason = '';
  defaultModel = '';

  constructor(
    private readonly config: Config,
    private readonly metrics: Metrics,
    private readonly log: PoolLogger,
  ) {}

  /** Start loading (idempotent); resolves when every loadable model is warm. */
  start(): Promise<void> {
    this.readyPromise ??= this.load().then(
      () => {
        this.state = this.models.size > 0 ? 'ready' : 'failed';
        if (this.models.size > 0) return;
        const refused = [...this.states.values()].map((s) => `${s.name}: ${s.reason ?? s.status}`);
        this.failureReason = refused.length
          ? `no model could be loaded from MODEL_DIR=${this.config.modelDir} (${refused.join('; ')})`
          : `MODEL_DIR=${this.config.modelDir} holds no model package (a sub-folder with a flow.json)`;
        this.log.error({ modelDir: this.config.modelDir }, this.failureReason);
      },
      (err) => {
        this.state = 'failed';
        const code = (err as NodeJS.ErrnoException).code;
        this.failureReason =
          code === 'ENOENT' ? `MODEL_DIR=${this.config.modelDir} does not exist`
          : code === 'ENOTDIR' ? `MODEL_DIR=${this.config.modelDir} is not a folder`
          : code === 'EACCES' ? `MODEL_DIR=${this.config.modelDir} cannot be read (permission denied)`
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

  /** Fault injection: kill an inference thread as a crash would. */
  killThread(index = 0): Promise<void> {
    return this.pool?.killThread(index) ?? Promise.resolve();
  }

  /** Answer all queued and running work with `err` (the shutdown deadline); returns how many requests. */
  abort(err: Error): number {
    return this.batchers.reduce((n, b) => n + b.abort(err), 0);
  }

  async close(): Promise<void> {
    this.state = 'stopped';
    await this.pool?.close();
  }

  private refuse(name: string, reason: string, pkg?: ModelPackage): void {
    this.states.set(name, { name, status: 'unavailable', reason, pkg });
    this.log.error({ model: name, reason }, `model ${name} refused: ${reason}`);
  }

  private async load(): Promise<void> {
    const { loaded, refused } = await loadPackages(this.config.modelDir);
    for (const r of refused) this.refuse(r.name, r.reason);
    for (const p of loaded) this.states.set(p.name, { name: p.name, status: 'loading', pkg: p });
    if (loaded.length === 0) return;

    const specs = loaded.flatMap((p) => [
      { key: `${p.name}/forward`, path: `${p.dir}/${p.manifest.graphs.forward}` },
      { key: `${p.name}/inverse`, path: `${p.dir}/${p.manifest.graphs.inverse}` },
    ]);
    this.pool = new WorkerPool(
      specs,
      { provider: this.config.executionProvider, deviceId: this.config.cudaDeviceId, intraOpThreads: this.config.intraOpThreads, intraOpSpinning: this.config.intraOpSpinning },
      this.config.workerThreads,
      this.log,
    );
    const reports = await this.pool.start();

    for (const pkg of loaded) {
      const fwd = reports[`${pkg.name}/forward`];
      const inv = reports[`${pkg.name}/inverse`];
      const problem = sessionProblem(pkg, fwd, inv);
      if (problem) {
        this.refuse(pkg.name, problem, pkg);
        continue;
      }
      const provider = fwd.ok && inv.ok && fwd.provider === 'cuda' && inv.provider === 'cuda' ? 'cuda' : 'cpu';
      const fallback = fwd.ok && fwd.fallbackReason;
      if (fallback) this.log.warn({ model: pkg.name, reason: fallback }, `CUDA execution provider unavailable for ${pkg.name}; falling back to CPU`);
      const model = new FlowModel(pkg, provider, this.batcher(pkg, 'forward'), this.batcher(pkg, 'inverse'));
      try {
        await this.warmUp(model);
      } catch (err) {
        this.refuse(pkg.name, `warm-up failed: ${(err as Error).message}`, pkg);
        continue;
      }
      this.models.set(pkg.name, model);
      this.states.set(pkg.name, { name: pkg.name, status: 'ready', provider, pkg });
      this.log.info({ model: pkg.name, family: pkg.manifest.family, provider }, `model ${pkg.name} ready`);
    }
    const names = [...this.models.keys()];
    this.defaultModel = this.config.defaultModel || (names.includes('glow-fashion') ? 'glow-fashion' : names[0] ?? '');
    this.updateInfoMetric();
  }

  private updateInfoMetric(): void {
    this.metrics.modelInfo.reset();
    for (const s of this.states.values())
      this.metrics.modelInfo.set({ model: s.name, family: s.pkg?.manifest.family ?? 'unknown', provider: s.provider ?? 'none', status: s.status }, 1);
  }

  private batcher(pkg: ModelPackage, direction: Direction): Batcher {
    const labels = { model: pkg.name, direction };
    const key = `${pkg.name}/${direction}`;
    const c = this.config;
    const depth = this.metrics.queueDepth.labels(labels);
    const batcher: Batcher = new Batcher({
      model: pkg.name,
      direction,
      maxBatchSize: c.maxBatchSize,
      maxQueueDelayMs: c.maxQueueDelayMs,
      merge: c.dynamicBatching,
      maxQueueSize: c.maxQueueSize,
      timeoutMs: c.requestTimeoutMs,
      // Two batches per thread: the next batch forms and waits in the thread's queue while one
      // runs, so the thread never idles while the event loop answers the previous batch.
      maxInflight: 2 * c.workerThreads,
      constFeeds: FlowModel.luFeeds(pkg.lu, direction),
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
          this.log.error({ model: pkg.name, direction, rows, err: (err as Error).message }, 'inference failed');
          if (err instanceof WorkerCrashedError) throw new ModelUnavailableError(pkg.name, 'its inference thread crashed; retry');
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

  private async warmUp(model: FlowModel): Promise<void> {
    const range = model.manifest.data.range;
    const mid = range ? (range[0] + range[1]) / 2 : 0;
    // Warm-up is not a request: it gets a generous deadline of its own.
    await model.encode(new Float64Array(model.dim).fill(mid), 1, WARM_UP_TIMEOUT_MS);
    await model.decode(new Float64Array(model.dim), 1, WARM_UP_TIMEOUT_MS);
    // Compiles the JPEG-LS WebAssembly module now rather than on the first scored request.
    if (model.scores.includes('complexityJpegLs')) await codeBits([new Uint8Array(model.dim)], model, losslessJpegLs);
  }

  /** The served model for a request: 503 while starting, 404 unknown, 503 refused. */
  resolve(name?: string): FlowModel {
    const wanted = name ?? this.defaultModel;
    const model = this.models.get(wanted);
    if (model) return model;
    const st = this.states.get(wanted);
    if (this.state === 'starting' && (!st || st.status === 'loading')) throw new NotReadyError('models are still loading');
    if (st) throw new ModelUnavailableError(wanted, st.reason ?? st.status);
    throw new ModelNotFoundError(wanted, [...this.states.keys()]);
  }

  /**
   * Likelihood plus anomaly scores (docs/anomaly.md). `scores` picks which to compute (default: all
   * the model has); the others are null. anomalyScore needs the model's default score among them.
   */
  async likelihood(model: FlowModel, x: Float64Array, n: number, opts: { scores?: readonly ScoreName[] } = {}): Promise<ScoredLikelihood[]> {
    const available = model.scores;
    const wanted = new Set(opts.scores ?? available);
    for (const s of wanted)
      if (!available.includes(s))
        throw new InvalidInputError('scores', `model ${model.name} has no '${s}' score (${IMAGE_SCORES.includes(s) ? 'it needs an 8-bit image model' : 'it needs calibration statistics'}); it has: ${available.join(', ')}`, { allowed: available });
    // The image code lengths are computed on the event loop while the flow runs on the inference thread.
    const images = IMAGE_SCORES.some((s) => wanted.has(s)) ? toPixels(x, n, model) : [];
    const rawBits = model.dim * 8;
    const [results, png, jpegLs] = await Promise.all([
      model.likelihood(x, n),
      wanted.has('complexity') ? codeBits(images, model, losslessPng) : null,
      wanted.has('complexityJpegLs') ? codeBits(images, model, losslessJpegLs).then((bits) => bits.map((b) => twoPartCodeBits(b, rawBits))) : null,
    ]);
    const cal = model.manifest.calibration;
    const nllStats = cal?.scores.nll;
    const stats = cal?.scores[cal.defaultScore];
    return results.map((r, i) => {
      const nll = -r.logLikelihood;
      const scores: Record<ScoreName, number | null> = {
        nll: wanted.has('nll') ? nll : null,
        typicality: wanted.has('typicality') && nllStats ? typicality(nll, nllStats) : null,
        complexity: png ? complexityScore(r.bitsPerDim, model.dim, png[i]) : null,
        complexityJpegLs: jpegLs ? complexityScore(r.bitsPerDim, model.dim, jpegLs[i]) : null,
      };
      const chosen = cal ? scores[cal.defaultScore as ScoreName] ?? null : null;
      if (chosen === null || !stats) return { ...r, scores, anomalyScore: null, isAnomaly: null };
      return { ...r, scores, anomalyScore: normalizeScore(chosen, stats), isAnomaly: chosen > stats.threshold };
    });
  }

  /** Public description of every known model (GET /models). */
  describe(): ModelState[] {
    return [...this.states.values()];
  }
}

type LosslessCodec = (images: readonly Uint8Array[], channels: number, height: number, width: number) => Promise<Uint8Array[]>;

/** The inputs as 8-bit images (CHW), the form the image codes compress. */
function toPixels(x: Float64Array, n: number, model: FlowModel): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => dataToPixels(x.subarray(i * model.dim, (i + 1) * model.dim), 8) as Uint8Array);
}

/** L(x) in bits: the length of each 8-bit image under a lossless image code. */
async function codeBits(images: Uint8Array[], model: FlowModel, codec: LosslessCodec): Promise<number[]> {
  const [c, h, w] = model.manifest.data.shape;
  return (await codec(images, c, h, w)).map((code) => 8 * code.length);
}

/** Batch typicality test against the held-out NLL distribution, seeded so answers repeat. */
export function batchTest(model: FlowModel, results: ScoredLikelihood[]): BatchTypicality | null {
  const cal = model.manifest.calibration;
  if (!cal?.nllQuantiles || !cal.scores.nll) return null;
  const rng = new Rng(0x5eed ^ results.length);
  return batchTypicality(results.map((r) => -r.logLikelihood), cal.scores.nll.mean, cal.nllQuantiles, cal.targetFalsePositiveRate, () => rng.nextOpen01());
}

function sessionProblem(pkg: ModelPackage, fwd?: SessionReport, inv?: SessionReport): string | null {
  if (!fwd || !fwd.ok) return `forward graph could not be loaded: ${fwd && !fwd.ok ? fwd.error : 'no report'}`;
  if (!inv || !inv.ok) return `inverse graph could not be loaded: ${inv && !inv.ok ? inv.error : 'no report'}`;
  const parts = pkg.manifest.latent.parts.map((p) => p.name);
  const same = (a: string[], b: string[]) => a.length === b.length && a.every((x) => b.includes(x));
  const fwdIn = ['x', ...pkg.lu.map((l) => l.forwardInput)];
  const invIn = [...parts, ...pkg.lu.map((l) => l.inverseInput)];
  if (!same(fwd.inputs.map((i) => i.name), fwdIn)) return `forward graph inputs [${fwd.inputs.map((i) => i.name)}] should be [${fwdIn}]`;
  if (!same(inv.inputs.map((i) => i.name), invIn)) return `inverse graph inputs [${inv.inputs.map((i) => i.name)}] should be [${invIn}]`;
  const fwdOut = fwd.outputs.map((o) => o.name);
  const invOut = inv.outputs.map((o) => o.name);
  for (const need of [...parts, 'logDet']) if (!fwdOut.includes(need)) return `forward graph has no output '${need}'`;
  for (const need of ['x', 'logDet']) if (!invOut.includes(need)) return `inverse graph has no output '${need}'`;
  return null;
}
