// A pool of inference workers (child processes or worker threads: src/runtime/transport.ts), each
// holding every session. Work goes to the least-loaded live worker. A worker that dies fails only
// the runs it held and is replaced from the same verified bytes it was started with (never from
// disk). A replacement whose start fails is retried with exponential backoff, for as long as the
// pool is open; one whose sessions differ from the original's counts as a failed start.
import type { TensorData } from '../tensor/tensor.js';
import type { IoMeta, SessionOptions } from './session.js';
import type { SessionReport, SessionSpec, StartFault, WorkerRequest, WorkerResponse } from './protocol.js';
import { LogLimiter } from '../log-limiter.js';
import { spawnWorker, type Isolation, type WorkerHandle } from './transport.js';

export type { Isolation } from './transport.js';

export interface PoolLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface RunResult {
  outputs: Record<string, TensorData>;
  ms: number;
}

/** The worker running this work died (or none is live); the work may be retried by the caller. */
export class WorkerCrashedError extends Error {}

/** No worker of a new pool could start: nothing to serve with. */
export class WorkerStartError extends Error {}

export interface PoolOptions {
  isolation: Isolation;
  /** Delay before the second start attempt; doubles with each failure, up to maxBackoffMs. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** A start that has not reported ready by then is killed and counts as failed. */
  startTimeoutMs?: number;
  /** A worker that keeps failing (to start, or after starting) is logged at most once per interval. */
  logIntervalMs?: number;
  /** With no worker live, the pool is `failing` once every worker failed this many starts in a row. */
  failingAfter?: number;
  /** Called whenever a worker becomes live, dies or fails a start (readiness follows it). */
  onChange?: () => void;
}

export interface PoolStatus {
  size: number;
  live: number;
  /** Workers replaced after a crash (counted when the replacement is live). */
  restarts: number;
  /** Failed starts in a row, per worker (0 once it is live). */
  failedStarts: number[];
  /** Some worker died since it last served and is being replaced. */
  restarting: boolean;
  /** No worker is live and every worker failed its last `failingAfter` starts: restarts keep failing. */
  failing: boolean;
  closing: boolean;
}

interface Pending {
  resolve: (r: RunResult) => void;
  reject: (e: Error) => void;
}

type SlotState = 'starting' | 'live' | 'waiting' | 'closed';

interface Slot {
  index: number;
  state: SlotState;
  handle: WorkerHandle | null;
  pending: Map<number, Pending>;
  /** The start in progress: true once live, false when it failed. */
  started: Promise<boolean>;
  failures: number;
  /** It died after serving and has not served since (a replacement, not a first start). */
  replacing: boolean;
  retry?: NodeJS.Timeout;
}

const DEFAULTS = { backoffMs: 250, maxBackoffMs: 30_000, startTimeoutMs: 120_000, logIntervalMs: 30_000, failingAfter: 3 };

/** How a start's session reports differ from the original ones; null when they match. */
export function reportMismatch(original: Record<string, SessionReport>, now: Record<string, SessionReport>): string | null {
  const io = (l: IoMeta[]) => JSON.stringify(l.map((m) => [m.name, m.shape]));
  for (const key of new Set([...Object.keys(original), ...Object.keys(now)])) {
    const a = original[key];
    const b = now[key];
    if (!a || !b) return `${key}: ${a ? 'missing' : 'not in the original'}`;
    if (a.ok !== b.ok) return `${key}: ${a.ok ? 'no longer loads' : 'loads now but did not'}`;
    if (!a.ok || !b.ok) continue;
    // The provider too: GET /models and the metrics report the original's.
    if (a.provider !== b.provider) return `${key}: provider ${b.provider}, was ${a.provider}`;
    if (io(a.inputs) !== io(b.inputs)) return `${key}: inputs ${io(b.inputs)}, were ${io(a.inputs)}`;
    if (io(a.outputs) !== io(b.outputs)) return `${key}: outputs ${io(b.outputs)}, were ${io(a.outputs)}`;
  }
  return null;
}

export class WorkerPool {
  private slots: Slot[] = [];
  private nextId = 1;
  private closing = false;
  /** The session reports of the first start: every later start must match them. */
  private reference: Record<string, SessionReport> | null = null;
  private startFaults = 0;
  private readonly opts: Required<Omit<PoolOptions, 'onChange'>> & Pick<PoolOptions, 'onChange'>;
  private readonly logLimiter: LogLimiter;
  /** Workers replaced after a crash (exposed for metrics and tests). */
  restarts = 0;

  constructor(
    private readonly specs: SessionSpec[],
    private readonly options: SessionOptions,
    private readonly size: number,
    private readonly log: PoolLogger,
    opts: PoolOptions,
  ) {
    this.opts = { ...DEFAULTS, ...opts };
    this.logLimiter = new LogLimiter(this.opts.logIntervalMs);
  }

  get isolation(): Isolation {
    return this.opts.isolation;
  }

  /**
   * Start every worker; resolves with the session reports once each has started or failed once.
   * Rejects (WorkerStartError) when none could start; a worker that failed while another started
   * is retried like a replacement.
   */
  async start(): Promise<Record<string, SessionReport>> {
    for (let i = 0; i < this.size; i++) {
      const slot: Slot = { index: i, state: 'starting', handle: null, pending: new Map(), started: Promise.resolve(false), failures: 0, replacing: false };
      this.slots.push(slot);
      this.launch(slot);
    }
    await Promise.all(this.slots.map((s) => s.started));
    if (this.reference) return this.reference;
    await this.close();
    throw new WorkerStartError(`no inference worker could start (${this.size} tried; see the log)`);
  }

  status(): PoolStatus {
    const live = this.slots.filter((s) => s.state === 'live').length;
    return {
      size: this.slots.length,
      live,
      restarts: this.restarts,
      failedStarts: this.slots.map((s) => s.failures),
      restarting: this.slots.some((s) => s.replacing),
      failing: !this.closing && live === 0 && this.slots.length > 0 && this.slots.every((s) => s.failures >= this.opts.failingAfter),
      closing: this.closing,
    };
  }

  run(key: string, feeds: Record<string, TensorData>): Promise<RunResult> {
    const live = this.slots.filter((s) => s.state === 'live');
    if (this.closing || live.length === 0) return Promise.reject(new WorkerCrashedError('no live inference worker'));
    const slot = live.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    const id = this.nextId++;
    return new Promise<RunResult>((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      slot.handle!.send({ type: 'run', id, key, feeds } satisfies WorkerRequest);
    });
  }

  /** Kill one worker as a crash would: SIGKILL (process) or terminate() (thread). Fault injection
   *  for tests and drills; resolves once the pool has seen it die. */
  async killWorker(index = 0): Promise<void> {
    const slot = this.slots[index];
    const handle = slot?.handle;
    if (!handle || slot.state === 'closed') return;
    handle.kill();
    await handle.exited;
  }

  /** Fault injection: the next `count` worker starts exit during init (Infinity: every one, 0: none). */
  injectStartFaults(count: number): void {
    this.startFaults = count;
  }

  /** Let every worker finish its runs and release its sessions, then exit; a kill only as a
   *  fallback (ending a thread hard during a run aborts the process). */
  async close(graceMs = 10_000): Promise<void> {
    this.closing = true;
    await Promise.all(
      this.slots.map(async (s) => {
        clearTimeout(s.retry);
        // A thread cannot be ended safely while ORT creates its sessions: let the start finish.
        if (s.state === 'starting') await Promise.race([s.started, sleep(graceMs)]);
        const handle = s.handle;
        if (s.state === 'live' && handle) {
          handle.send({ type: 'close' } satisfies WorkerRequest);
          if ((await Promise.race([handle.exited, sleep(graceMs).then(() => 'late' as const)])) === 'late') {
            this.log.warn({ worker: s.index, workerId: handle.id }, 'inference worker did not close in time; killing it');
            handle.kill();
            await handle.exited;
          }
        } else if (handle && s.state === 'starting') {
          handle.kill();
          await handle.exited;
        }
        s.state = 'closed';
      }),
    );
  }

  private launch(slot: Slot): void {
    const handle = spawnWorker(this.isolation, `inference-${slot.index}`);
    const pending = new Map<number, Pending>();
    Object.assign(slot, { handle, pending, state: 'starting' satisfies SlotState });
    let phase: 'starting' | 'live' | 'over' = 'starting';
    let settle!: (live: boolean) => void;
    slot.started = new Promise<boolean>((resolve) => (settle = resolve));

    const failStart = (why: string, ended: 'kill' | 'close' = 'kill') => {
      if (phase !== 'starting') return;
      phase = 'over';
      clearTimeout(timer);
      if (ended === 'kill') handle.kill();
      else {
        // It holds sessions: a thread must release them before it ends (see close()).
        handle.send({ type: 'close' } satisfies WorkerRequest);
        const late = setTimeout(() => handle.kill(), 10_000).unref();
        void handle.exited.then(() => clearTimeout(late));
      }
      this.startFailed(slot, why);
      settle(false);
    };
    const timer = setTimeout(() => failStart(`no ready report within ${this.opts.startTimeoutMs} ms`), this.opts.startTimeoutMs);

    handle.onOutput((stream, text) => this.log.warn({ worker: slot.index, workerId: handle.id, stream, text: text.slice(0, 2000) }, 'inference worker output'));
    handle.onMessage((m: WorkerResponse) => {
      if (m.type === 'ready') {
        const mismatch = this.reference && reportMismatch(this.reference, m.reports);
        if (mismatch) return failStart(`its sessions differ from the original: ${mismatch}`, 'close');
        if (phase !== 'starting') return;
        phase = 'live';
        clearTimeout(timer);
        this.reference ??= m.reports;
        this.becameLive(slot);
        settle(true);
        return;
      }
      const p = pending.get(m.id);
      if (!p) return;
      pending.delete(m.id);
      if (m.type === 'result') p.resolve({ outputs: m.outputs, ms: m.ms });
      else p.reject(new Error(m.error));
    });
    void handle.exited.then((how) => {
      for (const p of pending.values()) p.reject(new WorkerCrashedError(`inference worker ${slot.index} died: ${how}`));
      pending.clear();
      if (phase === 'starting') return failStart(`it ended during start (${how})`);
      if (phase === 'live') {
        phase = 'over';
        this.died(slot, handle, how);
      }
    });

    const fault: StartFault | undefined = this.startFaults > 0 ? 'exit-during-init' : undefined;
    if (fault) this.startFaults--;
    handle.send({ type: 'init', sessions: this.specs, options: this.options, ...(fault ? { fault } : {}) } satisfies WorkerRequest);
    this.opts.onChange?.();
  }

  private becameLive(slot: Slot): void {
    slot.state = 'live';
    // workerPid, not pid: pino already puts the server's own pid on every line.
    const fields = { worker: slot.index, [this.isolation === 'process' ? 'workerPid' : 'threadId']: slot.handle!.id, isolation: this.isolation };
    if (slot.replacing) {
      this.restarts++;
      this.log.info({ ...fields, failedStarts: slot.failures }, 'inference worker replaced');
    } else if (slot.failures > 0) this.log.info({ ...fields, failedStarts: slot.failures }, 'inference worker started after failed attempts');
    // Every start logs its pid: drills and operators find the workers from the log.
    this.log.info(fields, 'inference worker ready');
    slot.failures = 0;
    slot.replacing = false;
    this.logLimiter.forget(`start-${slot.index}`);
    this.opts.onChange?.();
  }

  private died(slot: Slot, handle: WorkerHandle, how: string): void {
    if (this.closing) {
      slot.state = 'closed';
      return;
    }
    slot.replacing = true;
    this.logLimiter.log(`died-${slot.index}`, (skipped) =>
      this.log.error({ worker: slot.index, workerId: handle.id, isolation: this.isolation, how, ...(skipped ? { alsoDiedSinceLastLog: skipped } : {}) }, 'inference worker died; replacing it'),
    );
    this.launch(slot);
  }

  private startFailed(slot: Slot, why: string): void {
    slot.failures++;
    if (this.closing) {
      slot.state = 'closed';
      return;
    }
    const delay = Math.min(this.opts.backoffMs * 2 ** (slot.failures - 1), this.opts.maxBackoffMs);
    // First failure in full, then at most one summary per interval.
    this.logLimiter.log(`start-${slot.index}`, (skipped) =>
      this.log.error(
        { worker: slot.index, isolation: this.isolation, reason: why, failedStarts: slot.failures, retryInMs: delay, ...(skipped ? { notLogged: skipped } : {}) },
        slot.failures === 1 ? 'inference worker failed to start; retrying with backoff' : 'inference worker still failing to start; retrying with backoff',
      ),
    );
    slot.state = 'waiting';
    slot.retry = setTimeout(() => {
      if (!this.closing) this.launch(slot);
    }, delay);
    this.opts.onChange?.();
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());
