// Dynamic batching (Triton semantics) for one graph of one model: concurrent requests are merged
// into one inference of at most maxBatchSize samples, waiting at most maxQueueDelayMs for more.
// A batch is formed only when an inference slot is free, so a busy model batches more. Rows are
// split back exactly; a request's answer never depends on its batch-mates (each row is independent
// in every graph). Past maxQueueSize queued samples a request is shed (429); past its deadline it
// is answered 504 and dropped from the queue, never run late; when its client is gone (its signal
// aborts) it is dropped from the queue too, so a loop's queued work never runs for nobody.
import { CancelledError, OverloadedError, TimeoutError } from '../errors.js';
import { concatRows, sliceRows, type TensorData } from '../tensor/tensor.js';

export interface BatcherOptions {
  model: string;
  /** The graph this batcher feeds (metrics label, messages). */
  graph: string;
  maxBatchSize: number;
  maxQueueDelayMs: number;
  /** false: each request runs as its own inference (no merging, no waiting). */
  merge: boolean;
  maxQueueSize: number;
  timeoutMs: number;
  /** Batches of this batcher running at once (when no shared `slots` are given). */
  maxInflight: number;
  /**
   * Running batches shared with other batchers (every graph of every model feeding the same
   * inference workers): calls then wait in their batchers, where they merge, rather than queue
   * one by one in the workers, where they cannot.
   */
  slots?: InflightSlots;
  /** Feeds shared by every batch (e.g. the LU matrices). */
  /** Inputs added to every batch (tests; the service sends its fixed inputs to the workers once instead). */
  constFeeds?: Record<string, TensorData>;
  run(feeds: Record<string, TensorData>, rows: number): Promise<Record<string, TensorData>>;
  onShed?(): void;
  onTimeout?(): void;
  onDispatch?(rows: number, waitsMs: number[]): void;
}

/** A request's deadline (performance.now() ms) and cancellation signal, carried into every call it makes. */
export interface CallContext {
  deadline?: number;
  signal?: AbortSignal;
}

interface Item {
  rows: number;
  feeds: Record<string, TensorData>;
  enqueuedAt: number;
  resolve(out: Record<string, TensorData>): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
  done: boolean;
}

/** A budget of running batches shared by batchers; a freed slot goes to the batchers waiting, in turn. */
export class InflightSlots {
  private used = 0;
  private waiting: Batcher[] = [];
  constructor(readonly limit: number) {}

  tryAcquire(): boolean {
    if (this.used >= this.limit) return false;
    this.used++;
    return true;
  }

  /** Batcher b has work and no slot: wake it when one frees. */
  wait(b: Batcher): void {
    if (!this.waiting.includes(b)) this.waiting.push(b);
  }

  release(): void {
    this.used--;
    // round robin: the longest-waiting batcher first, each gets one chance per release
    const turn = this.waiting;
    this.waiting = [];
    for (const b of turn) b.wake();
  }
}

export class Batcher {
  private queue: Item[] = [];
  /** Items of the batches being run, so abort() can answer them. */
  private running = new Set<Item>();
  private readonly slots: InflightSlots;
  private flushTimer: NodeJS.Timeout | null = null;
  queuedRows = 0;

  constructor(private readonly o: BatcherOptions) {
    this.slots = o.slots ?? new InflightSlots(o.maxInflight);
  }

  /** A shared slot was freed: try to dispatch. */
  wake(): void {
    this.schedule();
  }

  /**
   * Run `rows` samples; requests larger than a batch are split into batch-sized chunks. `ctx` is a
   * timeout in ms from now, or the request's deadline and signal (the default: TIMEOUT from now).
   */
  async submit(feeds: Record<string, TensorData>, rows: number, ctx: number | CallContext = this.o.timeoutMs): Promise<Record<string, TensorData>> {
    const call: Required<Pick<CallContext, 'deadline'>> & CallContext = typeof ctx === 'number' ? { deadline: performance.now() + ctx } : { ...ctx, deadline: ctx.deadline ?? performance.now() + this.o.timeoutMs };
    if (call.signal?.aborted) throw call.signal.reason ?? new CancelledError();
    // A deadline already past (a short client timeout, or a loop that used its time up) never runs.
    if (call.deadline <= performance.now()) {
      this.o.onTimeout?.();
      throw new TimeoutError(this.o.model, this.o.timeoutMs);
    }
    const max = this.o.maxBatchSize;
    if (rows <= max) return this.enqueue(feeds, rows, call);
    if (this.queuedRows + rows > this.o.maxQueueSize) return this.shed();
    const chunks: Promise<Record<string, TensorData>>[] = [];
    for (let start = 0; start < rows; start += max) {
      const count = Math.min(max, rows - start);
      const part: Record<string, TensorData> = {};
      for (const [k, t] of Object.entries(feeds)) part[k] = sliceRows(t, start, count);
      chunks.push(this.enqueue(part, count, call));
    }
    const results = await Promise.all(chunks);
    const out: Record<string, TensorData> = {};
    for (const k of Object.keys(results[0])) out[k] = concatRows(results.map((r) => r[k]));
    return out;
  }

  /** Answer every queued and running request with `err` (shutdown deadline); late results are dropped. */
  abort(err: Error): number {
    const items = [...this.queue, ...this.running];
    this.queue = [];
    this.queuedRows = 0;
    this.running.clear();
    for (const item of items) settle(item, () => item.reject(err));
    return items.length;
  }

  private shed(): never {
    this.o.onShed?.();
    throw new OverloadedError(this.o.model, this.o.graph, this.o.maxQueueSize);
  }

  private enqueue(feeds: Record<string, TensorData>, rows: number, call: CallContext & { deadline: number }): Promise<Record<string, TensorData>> {
    if (this.queuedRows + rows > this.o.maxQueueSize) this.shed();
    return new Promise((resolve, reject) => {
      /** Leave the queue (not a running batch: its result is simply dropped) and answer with `err`. */
      const drop = (err: Error) => {
        if (item.done) return;
        item.done = true;
        clearTimeout(item.timer);
        call.signal?.removeEventListener('abort', onAbort);
        const i = this.queue.indexOf(item);
        if (i >= 0) {
          this.queue.splice(i, 1);
          this.queuedRows -= item.rows;
        }
        reject(err);
      };
      const onAbort = () => drop(call.signal?.reason instanceof Error ? call.signal.reason : new CancelledError());
      const item: Item = {
        rows,
        feeds,
        enqueuedAt: performance.now(),
        resolve: (out) => {
          call.signal?.removeEventListener('abort', onAbort);
          resolve(out);
        },
        reject: (err) => {
          call.signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
        done: false,
        timer: setTimeout(() => {
          if (item.done) return;
          this.o.onTimeout?.();
          drop(new TimeoutError(this.o.model, this.o.timeoutMs));
        }, Math.max(0, call.deadline - performance.now())),
      };
      call.signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(item);
      this.queuedRows += rows;
      this.schedule();
    });
  }

  private schedule(): void {
    while (this.queue.length > 0) {
      const waited = performance.now() - this.queue[0].enqueuedAt;
      if (this.o.merge && this.queuedRows < this.o.maxBatchSize && waited < this.o.maxQueueDelayMs) {
        if (!this.flushTimer)
          this.flushTimer = setTimeout(() => {
            this.flushTimer = null;
            this.schedule();
          }, Math.max(0, this.o.maxQueueDelayMs - waited));
        return;
      }
      if (!this.slots.tryAcquire()) {
        this.slots.wait(this);
        return;
      }
      this.dispatch();
    }
  }

  private dispatch(): void {
    const batch: Item[] = [];
    let rows = 0;
    while (this.queue.length > 0 && (batch.length === 0 || (this.o.merge && rows + this.queue[0].rows <= this.o.maxBatchSize))) {
      const item = this.queue.shift()!;
      this.queuedRows -= item.rows;
      batch.push(item);
      rows += item.rows;
    }
    const now = performance.now();
    this.o.onDispatch?.(rows, batch.map((i) => now - i.enqueuedAt));
    const feeds: Record<string, TensorData> = { ...this.o.constFeeds };
    for (const name of Object.keys(batch[0].feeds)) feeds[name] = concatRows(batch.map((i) => i.feeds[name]));
    for (const item of batch) this.running.add(item);
    this.o
      .run(feeds, rows)
      .then(
        (outputs) => {
          let start = 0;
          for (const item of batch) {
            const mine: Record<string, TensorData> = {};
            for (const [k, t] of Object.entries(outputs)) mine[k] = sliceRows(t, start, item.rows);
            start += item.rows;
            settle(item, () => item.resolve(mine));
          }
        },
        (err: Error) => {
          for (const item of batch) settle(item, () => item.reject(err));
        },
      )
      .finally(() => {
        for (const item of batch) this.running.delete(item);
        this.slots.release();
        this.schedule();
      });
  }
}

function settle(item: Item, fn: () => void): void {
  if (item.done) return;
  item.done = true;
  clearTimeout(item.timer);
  fn();
}
