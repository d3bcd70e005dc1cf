// At most one log line per cause per interval: a model that stays unavailable, or a client that
// repeats the same bad call, must not flood the log. The first occurrence is logged in full; later
// ones in the same interval are counted and reported with the next line for that cause.
// A leaf module (no imports), so any layer may use it.

export interface LimitedLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

interface Slot {
  until: number;
  suppressed: number;
}

/** Causes remembered at most; past it the oldest are forgotten (a flood of distinct keys stays bounded). */
const MAX_KEYS = 1024;

export class LogLimiter {
  private slots = new Map<string, Slot>();

  constructor(
    readonly intervalMs = 60_000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * Log through `write` unless `key` was logged within the interval; returns whether it logged.
   * `write` gets the number of lines suppressed for this key since the last one.
   */
  log(key: string, write: (suppressed: number) => void): boolean {
    const t = this.now();
    const slot = this.slots.get(key);
    if (slot && t < slot.until) {
      slot.suppressed++;
      return false;
    }
    const suppressed = slot?.suppressed ?? 0;
    this.slots.delete(key);
    if (this.slots.size >= MAX_KEYS) this.slots.delete(this.slots.keys().next().value as string);
    this.slots.set(key, { until: t + this.intervalMs, suppressed: 0 });
    write(suppressed);
    return true;
  }

  /** Start `key` afresh: its next line is logged at once (a failing streak ended). */
  forget(key: string): void {
    this.slots.delete(key);
  }
}
