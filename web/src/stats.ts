// Small numeric helpers shared by the views.

/** Linear-interpolated quantile of an already sorted array, p in [0, 1]. */
export function quantileSorted(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  const x = p * (sorted.length - 1);
  const i = Math.floor(x);
  const f = x - i;
  return i + 1 < sorted.length ? sorted[i] + (sorted[i + 1] - sorted[i]) * f : sorted[i];
}

/**
 * Histogram masses from evenly spaced quantiles q[0..K] (each interval holds 1/K of the mass,
 * taken as spread uniformly over it) rebinned into `bins` equal bins over [lo, hi]. Mass outside
 * [lo, hi] is not counted. A zero-width interval (tied quantiles) puts its mass on its point.
 */
export function rebinQuantiles(q: number[], lo: number, hi: number, bins: number): number[] {
  const out = new Array<number>(bins).fill(0);
  const k = q.length - 1;
  const width = (hi - lo) / bins;
  for (let i = 0; i < k; i++) {
    const a = q[i];
    const b = q[i + 1];
    const mass = 1 / k;
    if (b <= a) {
      if (a >= lo && a <= hi) out[Math.min(bins - 1, Math.floor((a - lo) / width))] += mass;
      continue;
    }
    const first = Math.max(0, Math.floor((Math.max(a, lo) - lo) / width));
    const last = Math.min(bins - 1, Math.floor((Math.min(b, hi) - lo) / width));
    for (let j = first; j <= last; j++) {
      const overlap = Math.min(b, lo + (j + 1) * width) - Math.max(a, lo + j * width);
      if (overlap > 0) out[j] += (mass * overlap) / (b - a);
    }
  }
  return out;
}

/** Runs async tasks with at most `limit` in flight, in order of start; rejects on the first failure. */
export async function runPool<T>(tasks: (() => Promise<T>)[], limit: number): Promise<T[]> {
  const results = new Array<T>(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return results;
}

export function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
