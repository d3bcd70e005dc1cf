// A pool of inference threads, each holding every session. Work goes to the least-loaded live
// thread. A thread that dies fails only the runs it held, and is replaced (sessions reloaded).
import { Worker } from 'node:worker_threads';
import type { TensorData } from '../tensor/tensor.js';
import type { SessionOptions } from './session.js';
import type { SessionReport, SessionSpec, WorkerRequest, WorkerResponse } from './protocol.js';

export interface PoolLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface RunResult {
  outputs: Record<string, TensorData>;
  ms: number;
}

/** The thread running this work died; the work may be retried by the caller. */
export class WorkerCrashedError extends Error {}

interface Pending {
  resolve: (r: RunResult) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
  ready: Promise<Record<string, SessionReport>>;
  alive: boolean;
  dead: boolean;
}

const WORKER_URL = new URL('./worker-boot.mjs', import.meta.url);

export class WorkerPool {
  private slots: Slot[] = [];
  private nextId = 1;
  private closing = false;
  /** Number of threads replaced after a crash (exposed for metrics and tests). */
  restarts = 0;

  constructor(
    private readonly specs: SessionSpec[],
    private readonly options: SessionOptions,
    private readonly size: number,
    private readonly log: PoolLogger,
  ) {}

  /** Start every thread; resolves with the session reports of the first. */
  async start(): Promise<Record<string, SessionReport>> {
    for (let i = 0; i < this.size; i++) this.slots.push(this.spawn(i));
    const reports = await Promise.all(this.slots.map((s) => s.ready));
    return reports[0];
  }

  get threads(): number {
    return this.slots.length;
  }

  run(key: string, feeds: Record<string, TensorData>): Promise<RunResult> {
    const live = this.slots.filter((s) => s.alive);
    if (this.closing || live.length === 0) return Promise.reject(new WorkerCrashedError('no live inference thread'));
    const slot = live.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    const id = this.nextId++;
    return new Promise<RunResult>((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      slot.worker.postMessage({ type: 'run', id, key, feeds } satisfies WorkerRequest);
    });
  }

  /** Kill one thread as a crash would (fault-injection for tests and drills). */
  async killThread(index = 0): Promise<void> {
    await this.slots[index]?.worker.terminate();
  }

  /** Let every thread finish its runs and release its sessions, then exit; terminate() only as a
   *  fallback (a hard terminate during a run aborts the process). */
  async close(graceMs = 10_000): Promise<void> {
    this.closing = true;
    await Promise.all(
      this.slots.map(async (s) => {
        if (s.dead) return;
        const exited = new Promise<void>((resolve) => s.worker.once('exit', () => resolve()));
        s.worker.postMessage({ type: 'close' } satisfies WorkerRequest);
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), graceMs)));
        if ((await Promise.race([exited, late])) === 'late') {
          this.log.warn({ thread: s.worker.threadId }, 'inference thread did not close in time; terminating it');
          await s.worker.terminate();
        }
        clearTimeout(timer);
      }),
    );
  }

  private spawn(index: number): Slot {
    const worker = new Worker(WORKER_URL, { name: `inference-${index}` });
    const pending = new Map<number, Pending>();
    let onReady!: (r: Record<string, SessionReport>) => void;
    let onFail!: (e: Error) => void;
    const ready = new Promise<Record<string, SessionReport>>((res, rej) => {
      onReady = res;
      onFail = rej;
    });
    const slot: Slot = { worker, pending, ready, alive: false, dead: false };

    worker.on('message', (m: WorkerResponse) => {
      if (m.type === 'ready') {
        slot.alive = true;
        onReady(m.reports);
        return;
      }
      const p = pending.get(m.id);
      if (!p) return;
      pending.delete(m.id);
      if (m.type === 'result') p.resolve({ outputs: m.outputs, ms: m.ms });
      else p.reject(new Error(m.error));
    });
    const died = (reason: string) => {
      // 'error' is followed by 'exit': handle the death once.
      if (slot.dead) return;
      slot.dead = true;
      const wasAlive = slot.alive;
      slot.alive = false;
      for (const p of pending.values()) p.reject(new WorkerCrashedError(`inference thread ${index} died: ${reason}`));
      pending.clear();
      if (this.closing) return;
      if (!wasAlive) {
        onFail(new Error(`inference thread ${index} failed to start: ${reason}`));
        return;
      }
      this.log.error({ thread: index, reason }, 'inference thread died; replacing it');
      this.restarts++;
      const replacement = this.spawn(index);
      this.slots[this.slots.indexOf(slot)] = replacement;
      replacement.ready.catch((err) => this.log.error({ thread: index, err: String(err) }, 'replacement inference thread failed to start'));
    };
    worker.on('error', (err) => died(err.message));
    worker.on('exit', (code) => died(`exit code ${code}`));
    worker.postMessage({ type: 'init', sessions: this.specs, options: this.options } satisfies WorkerRequest);
    return slot;
  }
}
