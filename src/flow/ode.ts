// Adaptive Dormand–Prince 5(4) for a batch of independent augmented ODEs (continuous flows, FFJORD):
//   dx/dt = f(x, t) ∈ R^D,   dℓ/dt = div f(x, t),   so ℓ(t1) = ∫_{t0}^{t1} div dt (the log-det term).
// One step: k_i = F(t + c_i·h, y + h·Σ_j a_ij·k_j) for i = 1..7 with F = (f, div); the 5th-order
// solution is y + h·Σ b_i·k_i (= the 7th stage's input, so k_7 is the next step's k_1: FSAL) and
// the embedded error is h·Σ e_i·k_i (e = b5 − b4). Error norm per row over the D+1 augmented
// components: err = sqrt(mean(((y5 − y4)/(atol + rtol·max(|y|, |y_new|)))²)); accept iff err ≤ 1;
// h_next = h·clamp(0.9·err^(−1/5), 0.2, 10) (no growth right after a rejection, as in Hairer's DOPRI5).
// Unlike zuko/torchdiffeq every row keeps its own t, h and error test, so one hard row does not
// shrink its batch-mates' steps; rows only share the batched calls of f.
// Initial step: Hairer, Nørsett & Wanner, Solving ODEs I, §II.4 (one extra evaluation of f).

export type Dynamics = (
  x: Float64Array /* m rows × D */,
  t: Float64Array /* m */,
  m: number,
) => Promise<{ dx: ArrayLike<number>; div: ArrayLike<number> }>;

export interface OdeOptions {
  t0: number;
  t1: number;
  atol: number;
  rtol: number;
  /** Step attempts (accepted + rejected) allowed per row; default 10_000. */
  maxSteps?: number;
  /** Initial |step|; when given, the Hairer heuristic (and its extra evaluation of f) is skipped. */
  h0?: number;
  signal?: AbortSignal;
  /** Epoch milliseconds. */
  deadline?: number;
}

export interface OdeResult {
  x: Float64Array;
  /** ∫_{t0}^{t1} div dt per row (negative of the forward integral when t1 < t0). */
  integral: Float64Array;
  /** Evaluations of f per row (stage states this row contributed to batched calls). */
  nfe: Int32Array;
  /** Accepted steps per row. */
  steps: Int32Array;
  /** Rejected step attempts per row. */
  rejected: Int32Array;
}

export class OdeAbortedError extends Error {
  override name = 'AbortError';
  constructor(reason?: unknown) {
    super('ODE solve aborted', { cause: reason });
  }
}

export class OdeDeadlineError extends Error {
  override name = 'OdeDeadlineError';
  constructor(readonly deadline: number) {
    super(`ODE solve passed its deadline (${new Date(deadline).toISOString()})`);
  }
}

export class OdeStepLimitError extends Error {
  override name = 'OdeStepLimitError';
  constructor(readonly row: number, readonly limit: number, readonly t: number) {
    super(`ODE row ${row} exceeded ${limit} step attempts at t = ${t}`);
  }
}

export class OdeNonFiniteError extends Error {
  override name = 'OdeNonFiniteError';
  constructor(readonly row: number, readonly t: number) {
    super(`dynamics returned a non-finite value for row ${row} at t = ${t}`);
  }
}

// Dormand & Prince (1980) tableau. A[i] holds a_{i+1,1..i} for stages 2..7.
const C = [0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1, 1];
const A: number[][] = [
  [],
  [1 / 5],
  [3 / 40, 9 / 40],
  [44 / 45, -56 / 15, 32 / 9],
  [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
  [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
  [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84],
];
// b5 = A[6] with b7 = 0; e = b5 − b4.
const B5 = [...A[6], 0];
const E = [71 / 57600, 0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40];

const SAFETY = 0.9;
const FAC_MIN = 0.2;
const FAC_MAX = 10;

export async function solveBatch(f: Dynamics, x0: Float64Array, n: number, d: number, opts: OdeOptions): Promise<OdeResult> {
  const { t0, t1, atol, rtol } = opts;
  const maxSteps = opts.maxSteps ?? 10_000;
  if (!Number.isInteger(n) || n < 0 || !Number.isInteger(d) || d < 1) throw new RangeError(`bad shape n=${n}, d=${d}`);
  if (x0.length !== n * d) throw new RangeError(`x0 has ${x0.length} values, expected ${n}×${d}`);
  if (!Number.isFinite(t0) || !Number.isFinite(t1)) throw new RangeError('t0 and t1 must be finite');
  if (!(atol >= 0) || !(rtol >= 0) || !(atol > 0 || rtol > 0)) throw new RangeError('atol, rtol must be ≥ 0 and not both 0');
  if (!Number.isInteger(maxSteps) || maxSteps < 1) throw new RangeError('maxSteps must be a positive integer');
  if (opts.deadline !== undefined && !Number.isFinite(opts.deadline)) throw new RangeError('deadline must be a finite epoch time');
  if (opts.h0 !== undefined && !(opts.h0 > 0 && Number.isFinite(opts.h0))) throw new RangeError('h0 must be positive');
  for (let i = 0; i < x0.length; i++) if (!Number.isFinite(x0[i])) throw new RangeError(`x0 row ${Math.floor(i / d)} is not finite`);

  const x = Float64Array.from(x0);
  const ell = new Float64Array(n);
  const nfe = new Int32Array(n);
  const steps = new Int32Array(n);
  const rejected = new Int32Array(n);
  const result = (): OdeResult => ({ x, integral: ell, nfe, steps, rejected });
  if (n === 0 || t0 === t1) return result();

  const dir = t1 > t0 ? 1 : -1;
  const span = Math.abs(t1 - t0);
  const dd = d + 1; // augmented dimension used by the error norm
  const t = new Float64Array(n).fill(t0);
  const h = new Float64Array(n); // signed step
  const justRejected = new Uint8Array(n);
  // FSAL derivative at (t, y) per row, kept in full-batch layout.
  const k1x = new Float64Array(n * d);
  const k1l = new Float64Array(n);

  // Checked before every call of f: the only await points, so nothing is in flight when we throw.
  const checkpoint = (): void => {
    if (opts.signal?.aborted) throw new OdeAbortedError(opts.signal.reason);
    if (opts.deadline !== undefined && Date.now() > opts.deadline) throw new OdeDeadlineError(opts.deadline);
  };

  // Evaluate F at m stage states; rows[i] is the batch row behind compact index i (for errors/nfe).
  const evaluate = async (xs: Float64Array, ts: Float64Array, rows: Int32Array, m: number): Promise<{ dx: ArrayLike<number>; div: ArrayLike<number> }> => {
    checkpoint();
    const out = await f(xs, ts, m);
    if (!out || out.dx.length < m * d || out.div.length < m) throw new RangeError(`dynamics returned ${out?.dx.length} dx / ${out?.div.length} div values for ${m} rows × ${d}`);
    for (let i = 0; i < m; i++) {
      let ok = Number.isFinite(out.div[i]);
      for (let j = i * d, end = j + d; ok && j < end; j++) ok = Number.isFinite(out.dx[j]);
      if (!ok) throw new OdeNonFiniteError(rows[i], ts[i]);
      nfe[rows[i]]++;
    }
    return out;
  };

  const all = Int32Array.from({ length: n }, (_, i) => i);
  {
    const k = await evaluate(x.slice(), t.slice(), all, n); // copies: f must not see (or alter) solver state
    for (let j = 0; j < n * d; j++) k1x[j] = k.dx[j];
    for (let i = 0; i < n; i++) k1l[i] = k.div[i];
  }

  if (opts.h0 !== undefined) {
    h.fill(dir * Math.min(opts.h0, span));
  } else {
    // Hairer's heuristic: h0 = 0.01·‖y0‖/‖f0‖, then h1 from the curvature ‖f(y0 + h0·f0) − f0‖/h0 so
    // that the local error of the first step ≈ 0.01 in the scaled norm; h = min(100·h0, h1, |t1 − t0|).
    const h0s = new Float64Array(n);
    const d1s = new Float64Array(n);
    const xs = new Float64Array(n * d);
    const ts = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let s0 = 0;
      let s1 = 0;
      for (let j = i * d; j < (i + 1) * d; j++) {
        const sc = atol + rtol * Math.abs(x[j]);
        s0 += (x[j] / sc) ** 2;
        s1 += (k1x[j] / sc) ** 2;
      }
      s1 += (k1l[i] / atol) ** 2; // ℓ0 = 0, so its scale is atol (Infinity when atol = 0: term drops)
      const d0 = Math.sqrt(s0 / dd);
      const d1 = Math.sqrt((Number.isFinite(s1) ? s1 : 0) / dd);
      const hh = d0 < 1e-5 || d1 < 1e-5 ? 1e-6 : 0.01 * (d0 / d1);
      h0s[i] = Math.min(hh, span);
      d1s[i] = d1;
      ts[i] = t0 + dir * h0s[i];
      for (let j = i * d; j < (i + 1) * d; j++) xs[j] = x[j] + dir * h0s[i] * k1x[j];
    }
    const k = await evaluate(xs, ts, all, n);
    for (let i = 0; i < n; i++) {
      let s2 = 0;
      for (let j = i * d; j < (i + 1) * d; j++) {
        const sc = atol + rtol * Math.abs(x[j]);
        s2 += ((k.dx[j] - k1x[j]) / sc) ** 2;
      }
      const sl = ((k.div[i] - k1l[i]) / atol) ** 2;
      if (Number.isFinite(sl)) s2 += sl;
      const d2 = Math.sqrt(s2 / dd) / h0s[i];
      const dm = Math.max(d1s[i], d2);
      const h1 = dm <= 1e-15 ? Math.max(1e-6, h0s[i] * 1e-3) : (0.01 / dm) ** (1 / 5);
      h[i] = dir * Math.min(100 * h0s[i], h1, span);
    }
  }

  let active = all;
  while (active.length > 0) {
    const m = active.length;
    // Per-row step this round, clamped so that no row steps past t1.
    const hr = new Float64Array(m);
    const tr = new Float64Array(m);
    for (let i = 0; i < m; i++) {
      const r = active[i];
      if (steps[r] + rejected[r] >= maxSteps) throw new OdeStepLimitError(r, maxSteps, t[r]);
      let hi = h[r];
      if (dir * (t[r] + hi - t1) > 0) hi = t1 - t[r];
      hr[i] = hi;
      tr[i] = t[r];
    }
    // Stage derivatives in compact (active-row) layout; stage 1 is the FSAL value.
    const kx: Float64Array[] = [new Float64Array(m * d)];
    const kl: Float64Array[] = [new Float64Array(m)];
    for (let i = 0; i < m; i++) {
      const r = active[i];
      kx[0].set(k1x.subarray(r * d, (r + 1) * d), i * d);
      kl[0][i] = k1l[r];
    }
    let xs = new Float64Array(0);
    for (let s = 1; s < 7; s++) {
      xs = new Float64Array(m * d);
      const ts = new Float64Array(m);
      const a = A[s];
      for (let i = 0; i < m; i++) {
        const r = active[i];
        ts[i] = s === 6 ? tr[i] + hr[i] : tr[i] + C[s] * hr[i]; // c7 = 1 exactly: land on t + h
        for (let j = 0; j < d; j++) {
          let acc = 0;
          for (let q = 0; q < s; q++) if (a[q] !== 0) acc += a[q] * kx[q][i * d + j];
          xs[i * d + j] = x[r * d + j] + hr[i] * acc;
        }
      }
      const k = await evaluate(xs, ts, active, m);
      // Copied: a caller may hand back (and later reuse) its own output buffers.
      kx.push(Float64Array.from({ length: m * d }, (_, j) => k.dx[j]));
      kl.push(Float64Array.from({ length: m }, (_, i) => k.div[i]));
    }
    // xs is now the 5th-order solution (stage 7's input); k_7 is its derivative.
    const still: number[] = [];
    for (let i = 0; i < m; i++) {
      const r = active[i];
      const hi = hr[i];
      let sum = 0;
      for (let j = 0; j < d; j++) {
        let e = 0;
        for (let q = 0; q < 7; q++) if (E[q] !== 0) e += E[q] * kx[q][i * d + j];
        const yOld = x[r * d + j];
        const yNew = xs[i * d + j];
        sum += ((hi * e) / (atol + rtol * Math.max(Math.abs(yOld), Math.abs(yNew)))) ** 2;
      }
      let lInc = 0;
      let le = 0;
      for (let q = 0; q < 7; q++) {
        lInc += B5[q] * kl[q][i];
        le += E[q] * kl[q][i];
      }
      const lNew = ell[r] + hi * lInc;
      sum += ((hi * le) / (atol + rtol * Math.max(Math.abs(ell[r]), Math.abs(lNew)))) ** 2;
      const err = Math.sqrt(sum / dd);

      // NaN err (overflowing stage states) counts as a rejection with the largest shrink.
      const accept = err <= 1;
      let fac = err === 0 ? FAC_MAX : Number.isFinite(err) ? SAFETY * err ** -0.2 : FAC_MIN;
      fac = Math.min(accept && !justRejected[r] ? FAC_MAX : 1, Math.max(FAC_MIN, fac));
      if (accept) {
        steps[r]++;
        justRejected[r] = 0;
        x.set(xs.subarray(i * d, (i + 1) * d), r * d);
        ell[r] = lNew;
        k1x.set(kx[6].subarray(i * d, (i + 1) * d), r * d);
        k1l[r] = kl[6][i];
        // Done when the step was clamped to t1, or rounding landed it there anyway (no zero-length step).
        const reached = hi === t1 - t[r] || t[r] + hi === t1;
        t[r] = reached ? t1 : t[r] + hi;
        if (reached) continue; // row done: drops out of the batch
        h[r] = hi * fac;
      } else {
        rejected[r]++;
        justRejected[r] = 1;
        h[r] = hi * fac;
      }
      still.push(r);
    }
    active = Int32Array.from(still);
  }
  return result();
}
