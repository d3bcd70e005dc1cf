// Fair sharing of image decoding between requests. sharp runs every decode on libuv's thread
// pool (UV_THREADPOOL_SIZE, 4 by default), a FIFO queue: a request that queued 256 heavy decodes
// held every thread while a one-image request waited behind all of them (11.5 s instead of
// ~14 ms). Here each request queues its images in its own lane, and a free slot goes to the lane
// served least recently (a lane new to the queue first): every waiting lane starts one task per
// round, so a request waits for at most one task per other active request, not for their whole
// batches, and a lone request still decodes up to `concurrency` images at once.

/** Work for the pool: fewer than libuv's 4 threads, so fs, DNS and zlib work never waits behind decodes. */
export const DECODE_CONCURRENCY = 3;

type Task = () => void;

export class Lane {
  readonly pending: Task[] = [];
  /** When this lane last started a task (the scheduler's count); never: -1. */
  lastServed = -1;
  constructor(private readonly scheduler: FairScheduler) {}

  /** Runs `work` when this lane's turn and a slot come; settles with its result. */
  run<T>(work: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push(() => {
        let started: Promise<T>;
        try {
          started = work();
        } catch (err) {
          started = Promise.reject(err);
        }
        started.then(resolve, reject).finally(() => this.scheduler.release());
      });
      this.scheduler.wake(this);
    });
  }
}

export class FairScheduler {
  /** Lanes with pending tasks, least recently served first (ties: in the order they came). */
  private readonly turns: Lane[] = [];
  private running = 0;
  private served = 0;

  constructor(readonly concurrency: number) {
    if (!(concurrency >= 1)) throw new Error(`concurrency must be >= 1, got ${concurrency}`);
  }

  /** One lane per request (or any unit that must not starve the others). */
  lane(): Lane {
    return new Lane(this);
  }

  get active(): number {
    return this.running;
  }

  /** @internal a lane got a task */
  wake(lane: Lane): void {
    if (!this.turns.includes(lane)) {
      const at = this.turns.findIndex((other) => other.lastServed > lane.lastServed);
      this.turns.splice(at < 0 ? this.turns.length : at, 0, lane);
    }
    this.pump();
  }

  /** @internal a task finished */
  release(): void {
    this.running--;
    this.pump();
  }

  private pump(): void {
    while (this.running < this.concurrency && this.turns.length > 0) {
      const lane = this.turns.shift()!;
      const task = lane.pending.shift()!;
      lane.lastServed = this.served++;
      // the most recently served: behind every other waiting lane
      if (lane.pending.length > 0) this.turns.push(lane);
      this.running++;
      task();
    }
  }
}

/** The process-wide scheduler for sharp work (the thread pool is process-wide too). */
export const decodeScheduler = new FairScheduler(DECODE_CONCURRENCY);
