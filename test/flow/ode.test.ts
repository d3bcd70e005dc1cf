import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  solveBatch,
  OdeAbortedError,
  OdeDeadlineError,
  OdeNonFiniteError,
  OdeStepLimitError,
  type Dynamics,
} from '../../src/flow/ode.js';
import { Rng } from '../../src/flow/random.js';

/** Row-major d×d product. */
function matmul(a: Float64Array, b: Float64Array, d: number): Float64Array {
  const c = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let k = 0; k < d; k++) for (let j = 0; j < d; j++) c[i * d + j] += a[i * d + k] * b[k * d + j];
  return c;
}

/** exp(M) by scaling and squaring of a 30-term Taylor series (‖M/2^s‖∞ ≤ 0.25: truncation ≪ 1e-16). */
function expm(m: Float64Array, d: number): Float64Array {
  let norm = 0;
  for (let i = 0; i < d; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += Math.abs(m[i * d + j]);
    norm = Math.max(norm, s);
  }
  const sq = Math.max(0, Math.ceil(Math.log2(norm / 0.25)));
  const a = m.map((v) => v / 2 ** sq);
  let term: Float64Array = new Float64Array(d * d);
  for (let i = 0; i < d; i++) term[i * d + i] = 1;
  let sum: Float64Array = Float64Array.from(term);
  for (let k = 1; k <= 30; k++) {
    term = matmul(term, a, d).map((v) => v / k);
    sum = sum.map((v, i) => v + term[i]);
  }
  for (let i = 0; i < sq; i++) sum = matmul(sum, sum, d);
  return sum;
}

function matvec(a: Float64Array, x: ArrayLike<number>, off: number, d: number, out: Float64Array, outOff: number, scale = 1): void {
  for (let i = 0; i < d; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += a[i * d + j] * x[off + j];
    out[outOff + i] = scale * s;
  }
}

function trace(a: Float64Array, d: number): number {
  let s = 0;
  for (let i = 0; i < d; i++) s += a[i * d + i];
  return s;
}

/** dx/dt = k_row·A·x, div = k_row·tr A, counting batched calls and rows per call. */
function linear(a: Float64Array, d: number, k: (row: number, x: Float64Array, i: number) => number = () => 1) {
  const calls: number[] = [];
  const tr = trace(a, d);
  const f: Dynamics = async (x, _t, m) => {
    calls.push(m);
    const dx = new Float64Array(m * d);
    const div = new Float64Array(m);
    for (let i = 0; i < m; i++) {
      const s = k(i, x, i);
      matvec(a, x, i * d, d, dx, i * d, s);
      div[i] = s * tr;
    }
    return { dx, div };
  };
  return { f, calls };
}

// A damped rotation and a 3×3 with real and complex eigenvalues of both signs.
const A2 = Float64Array.from([-0.5, 2, -2, -0.5]);
const A3 = Float64Array.from([0.1, 1, 0, -1, -0.3, 0.5, 0.2, 0, -1]);

function randomRows(rng: Rng, n: number, d: number): Float64Array {
  return Float64Array.from({ length: n * d }, () => rng.nextNormal());
}

test('expm helper: exp(tA) for a rotation is [[cos, sin], [−sin, cos]]·e^{−t/2}', () => {
  // Guards the reference the solver is checked against.
  const e = expm(A2.map((v) => v * 1.3), 2);
  const s = Math.exp(-0.65);
  const want = [s * Math.cos(2.6), s * Math.sin(2.6), -s * Math.sin(2.6), s * Math.cos(2.6)];
  e.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-14, `${v} vs ${want[i]}`));
});

for (const [name, a, d] of [['2×2', A2, 2], ['3×3', A3, 3]] as const) {
  test(`linear ${name}: x(T) = exp(T·A)·x0 and ∫div = T·tr A within tolerance; tighter tol → smaller error`, async () => {
    const rng = new Rng(d);
    const n = 8;
    const x0 = randomRows(rng, n, d);
    const T = 2;
    const eT = expm(a.map((v) => v * T), d);
    const exact = new Float64Array(n * d);
    for (let i = 0; i < n; i++) matvec(eT, x0, i * d, d, exact, i * d);
    const errs: number[] = [];
    const nfes: number[] = [];
    for (const tol of [1e-6, 1e-9]) {
      const { f } = linear(a, d);
      const res = await solveBatch(f, x0, n, d, { t0: 0, t1: T, atol: tol, rtol: tol });
      let worst = 0; // global error in units of the local tolerance
      for (let j = 0; j < n * d; j++) worst = Math.max(worst, Math.abs(res.x[j] - exact[j]) / (tol + tol * Math.abs(exact[j])));
      for (let i = 0; i < n; i++) {
        const want = T * trace(a, d);
        assert.ok(Math.abs(res.integral[i] - want) <= 10 * (tol + tol * Math.abs(want)), `row ${i} ∫div ${res.integral[i]} vs ${want}`);
      }
      assert.ok(worst <= 10, `tol ${tol}: error ${worst}× tolerance`);
      errs.push(Math.max(...Array.from(res.x, (v, j) => Math.abs(v - exact[j]))));
      nfes.push(Math.max(...res.nfe));
      for (let i = 0; i < n; i++) {
        assert.equal(res.nfe[i], 2 + 6 * (res.steps[i] + res.rejected[i]), `row ${i} nfe`);
        assert.ok(res.steps[i] >= 1);
      }
    }
    assert.ok(errs[1] < errs[0] / 100, `errors ${errs}`);
    assert.ok(nfes[1] > nfes[0], `nfe ${nfes}`);
    console.log(`${name}: max |error| ${errs.map((e) => e.toExponential(2))} at tol 1e-6/1e-9, max nfe per row ${nfes}`);
  });
}

test('backward integration (t1 < t0) returns to x0 and ∫div cancels', async () => {
  const rng = new Rng(11);
  const n = 5;
  const d = 3;
  const x0 = randomRows(rng, n, d);
  const { f } = linear(A3, d);
  const opts = { atol: 1e-10, rtol: 1e-10 };
  const fwd = await solveBatch(f, x0, n, d, { ...opts, t0: 0.5, t1: 2 });
  const back = await solveBatch(f, fwd.x, n, d, { ...opts, t0: 2, t1: 0.5 });
  for (let j = 0; j < n * d; j++) assert.ok(Math.abs(back.x[j] - x0[j]) < 1e-7, `x[${j}] ${back.x[j]} vs ${x0[j]}`);
  for (let i = 0; i < n; i++) {
    assert.ok(Math.abs(back.integral[i] + 1.5 * trace(A3, d)) < 1e-8, `∫div backward ${back.integral[i]}`);
    assert.ok(Math.abs(fwd.integral[i] + back.integral[i]) < 1e-8);
  }
  // Backward alone also matches exp(−1.5·A).
  const eB = expm(A3.map((v) => -1.5 * v), d);
  const want = new Float64Array(n * d);
  for (let i = 0; i < n; i++) matvec(eB, x0, i * d, d, want, i * d);
  const b2 = await solveBatch(f, x0, n, d, { ...opts, t0: 2, t1: 0.5 });
  for (let j = 0; j < n * d; j++) assert.ok(Math.abs(b2.x[j] - want[j]) < 1e-7);
});

test('per-row control: each row of a mixed batch gets exactly its solo answer and solo nfe', async () => {
  const ks = [0.1, 1, 5, 50, 0.5, 20];
  const n = ks.length;
  const d = 2;
  const x0 = randomRows(new Rng(5), n, d);
  // The row's rate rides along in the state as a constant third component (dk/dt = 0), so f is
  // row-wise whatever rows the solver batches together.
  const d3 = 3;
  const xs = new Float64Array(n * d3);
  for (let i = 0; i < n; i++) {
    xs[i * d3] = x0[i * d];
    xs[i * d3 + 1] = x0[i * d + 1];
    xs[i * d3 + 2] = ks[i];
  }
  let calls = 0;
  const f: Dynamics = async (x, _t, m) => {
    calls++;
    const dx = new Float64Array(m * d3);
    const div = new Float64Array(m);
    for (let i = 0; i < m; i++) {
      const k = x[i * d3 + 2];
      matvec(A2, x, i * d3, d, dx, i * d3, k); // dk/dt = 0
      div[i] = k * trace(A2, d);
    }
    return { dx, div };
  };
  const opts = { t0: 0, t1: 1, atol: 1e-8, rtol: 1e-8 };
  const batch = await solveBatch(f, xs, n, d3, opts);
  const batchCalls = calls;
  let soloCalls = 0;
  for (let i = 0; i < n; i++) {
    calls = 0;
    const solo = await solveBatch(f, xs.slice(i * d3, (i + 1) * d3), 1, d3, opts);
    soloCalls += calls;
    assert.deepEqual(Array.from(batch.x.subarray(i * d3, (i + 1) * d3)), Array.from(solo.x), `row ${i} x`);
    assert.equal(batch.integral[i], solo.integral[0], `row ${i} ∫div`);
    assert.equal(batch.nfe[i], solo.nfe[0], `row ${i} nfe`);
    assert.equal(batch.steps[i], solo.steps[0]);
    assert.equal(batch.rejected[i], solo.rejected[0]);
    assert.equal(calls, solo.nfe[0], 'a solo row makes one call per evaluation');
  }
  // The fast row needs many more evaluations than the slow ones; they did not pay for it.
  const nfe = Array.from(batch.nfe);
  assert.ok(nfe[3] > 5 * nfe[0], `nfe ${nfe}`);
  // Batched calls: one per round and stage, bounded by the hardest row, not the sum.
  assert.equal(batchCalls, Math.max(...nfe));
  assert.ok(batchCalls < soloCalls);
  console.log(`k = ${ks}: nfe per row ${nfe}; batched calls ${batchCalls} vs ${soloCalls} solo`);
});

test('batched calls = 6 × rounds + 2 (initial f and Hairer probe), + 1 with h0; rows drop out', async () => {
  const n = 4;
  const d = 2;
  const x0 = randomRows(new Rng(9), n, d);
  for (const h0 of [undefined, 0.01]) {
    const sizes: number[] = [];
    const f: Dynamics = async (x, _t, m) => {
      sizes.push(m);
      const dx = new Float64Array(m * d);
      for (let i = 0; i < m; i++) {
        // Rows speed up with |x|: different rows need different step counts.
        const k = 1 + 10 * Math.abs(x[i * d]);
        matvec(A2, x, i * d, d, dx, i * d, k);
      }
      return { dx, div: new Float64Array(m) };
    };
    const res = await solveBatch(f, x0, n, d, { t0: 0, t1: 3, atol: 1e-7, rtol: 1e-7, h0 });
    const rounds = Math.max(...Array.from(res.steps, (s, i) => s + res.rejected[i]));
    const init = h0 === undefined ? 2 : 1;
    assert.equal(sizes.length, 6 * rounds + init);
    // Σ rows over all calls = Σ nfe: every row is evaluated exactly when counted.
    assert.equal(sizes.reduce((a, b) => a + b, 0), res.nfe.reduce((a, b) => a + b, 0));
    // Batches shrink monotonically as rows finish, and some row finished early.
    for (let c = 1; c < sizes.length; c++) assert.ok(sizes[c] <= sizes[c - 1]);
    assert.ok(sizes[sizes.length - 1] < n, `final batch size ${sizes[sizes.length - 1]}`);
    for (let i = 0; i < n; i++) assert.equal(res.nfe[i], init + 6 * (res.steps[i] + res.rejected[i]));
  }
});

test('each stage is evaluated at the row’s own time t + c·h, and never past t1', async () => {
  const seen: number[] = [];
  const f: Dynamics = async (x, t, m) => {
    for (let i = 0; i < m; i++) seen.push(t[i]);
    // dx/dt = cos t, div = sin t: x(T) = x0 + sin T, ∫div = 1 − cos T (the solver must feed t
    // to f and carry the FSAL div as well as dx).
    return { dx: Float64Array.from({ length: m }, (_, i) => Math.cos(t[i])), div: Float64Array.from({ length: m }, (_, i) => Math.sin(t[i])) };
  };
  const res = await solveBatch(f, Float64Array.from([0, 1]), 2, 1, { t0: 0, t1: 4, atol: 1e-10, rtol: 1e-10 });
  assert.ok(Math.abs(res.x[0] - Math.sin(4)) < 1e-8);
  assert.ok(Math.abs(res.x[1] - 1 - Math.sin(4)) < 1e-8);
  assert.ok(Math.abs(res.integral[0] - (1 - Math.cos(4))) < 1e-8, `∫div ${res.integral[0]}`);
  assert.ok(seen.every((t) => t >= 0 && t <= 4), 'stage times inside [t0, t1]');
  seen.length = 0;
  const back = await solveBatch(f, Float64Array.from([0]), 1, 1, { t0: 4, t1: 0, atol: 1e-10, rtol: 1e-10 });
  assert.ok(Math.abs(back.x[0] + Math.sin(4)) < 1e-8);
  assert.ok(Math.abs(back.integral[0] + (1 - Math.cos(4))) < 1e-8);
  assert.ok(seen.every((t) => t >= 0 && t <= 4), 'backward stage times inside [t1, t0]');
});

test('abort: stops issuing calls, nothing in flight, throws OdeAbortedError', async () => {
  const ac = new AbortController();
  let calls = 0;
  let inFlight = 0;
  const f: Dynamics = async (x, _t, m) => {
    calls++;
    inFlight++;
    if (calls === 10) ac.abort(new Error('client went away'));
    await new Promise((r) => setTimeout(r, 1));
    inFlight--;
    const dx = new Float64Array(m * 2);
    for (let i = 0; i < m; i++) matvec(A2, x, i * 2, 2, dx, i * 2, 30);
    return { dx, div: new Float64Array(m) };
  };
  const x0 = randomRows(new Rng(2), 3, 2);
  const err = await solveBatch(f, x0, 3, 2, { t0: 0, t1: 10, atol: 1e-9, rtol: 1e-9, signal: ac.signal }).catch((e) => e);
  assert.ok(err instanceof OdeAbortedError, String(err));
  assert.equal(err.name, 'AbortError');
  assert.equal(calls, 10);
  assert.equal(inFlight, 0);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(calls, 10, 'no calls after the abort');

  calls = 0;
  const pre = new AbortController();
  pre.abort();
  await assert.rejects(solveBatch(f, x0, 3, 2, { t0: 0, t1: 1, atol: 1e-6, rtol: 1e-6, signal: pre.signal }), OdeAbortedError);
  assert.equal(calls, 0);
});

test('deadline: throws OdeDeadlineError once Date.now() passes it', async () => {
  let calls = 0;
  const f: Dynamics = async (x, _t, m) => {
    calls++;
    await new Promise((r) => setTimeout(r, 2));
    const dx = new Float64Array(m * 2);
    for (let i = 0; i < m; i++) matvec(A2, x, i * 2, 2, dx, i * 2, 50);
    return { dx, div: new Float64Array(m) };
  };
  const x0 = randomRows(new Rng(4), 2, 2);
  const start = Date.now();
  await assert.rejects(solveBatch(f, x0, 2, 2, { t0: 0, t1: 100, atol: 1e-10, rtol: 1e-10, deadline: start + 50 }), OdeDeadlineError);
  const took = Date.now() - start;
  assert.ok(calls > 0 && took < 500, `calls ${calls}, ${took} ms`);
  calls = 0;
  await assert.rejects(solveBatch(f, x0, 2, 2, { t0: 0, t1: 1, atol: 1e-6, rtol: 1e-6, deadline: Date.now() - 1 }), OdeDeadlineError);
  assert.equal(calls, 0);
  // A generous deadline does not interfere.
  const ok = await solveBatch(f, x0, 2, 2, { t0: 0, t1: 0.01, atol: 1e-6, rtol: 1e-6, deadline: Date.now() + 60_000 });
  assert.ok(ok.steps[0] >= 1);
});

test('step limit: names the row that ran out', async () => {
  const ks = [1, 1, 40, 1];
  const d = 3;
  const x0 = new Float64Array(ks.length * d);
  ks.forEach((k, i) => x0.set([1, 0, k], i * d));
  const f: Dynamics = async (x, _t, m) => {
    const dx = new Float64Array(m * d);
    for (let i = 0; i < m; i++) matvec(A2, x, i * d, 2, dx, i * d, x[i * d + 2]);
    return { dx, div: new Float64Array(m) };
  };
  const opts = { t0: 0, t1: 5, atol: 1e-8, rtol: 1e-8 };
  const free = await solveBatch(f, x0, ks.length, d, opts);
  const easy = Math.max(free.steps[0] + free.rejected[0], free.steps[1] + free.rejected[1], free.steps[3] + free.rejected[3]);
  const hard = free.steps[2] + free.rejected[2];
  assert.ok(hard > easy + 1, `hard ${hard}, easy ${easy}`);
  const err = await solveBatch(f, x0, ks.length, d, { ...opts, maxSteps: easy + 1 }).catch((e) => e);
  assert.ok(err instanceof OdeStepLimitError, String(err));
  assert.equal(err.row, 2);
  assert.match(err.message, /row 2/);
  // Exactly enough attempts succeeds.
  const res = await solveBatch(f, x0, ks.length, d, { ...opts, maxSteps: hard });
  assert.deepEqual(res.x, free.x);
});

test('non-finite dynamics output names the row; malformed inputs are refused', async () => {
  const f: Dynamics = async (x, t, m) => {
    const dx = new Float64Array(m);
    const div = new Float64Array(m);
    for (let i = 0; i < m; i++) {
      dx[i] = -x[i];
      // The row starting at 7 blows up after t > 0.3.
      if (x[i] > 3 && t[i] > 0.3) div[i] = NaN;
    }
    return { dx, div };
  };
  const err = await solveBatch(f, Float64Array.from([1, 2, 7, 1]), 4, 1, { t0: 0, t1: 1, atol: 1e-8, rtol: 1e-8 }).catch((e) => e);
  assert.ok(err instanceof OdeNonFiniteError, String(err));
  assert.equal(err.row, 2);
  assert.match(err.message, /row 2/);

  await assert.rejects(solveBatch(f, new Float64Array(3), 2, 2, { t0: 0, t1: 1, atol: 1e-6, rtol: 1e-6 }), RangeError);
  await assert.rejects(solveBatch(f, new Float64Array(2), 2, 1, { t0: 0, t1: 1, atol: 0, rtol: 0 }), RangeError);
  await assert.rejects(solveBatch(f, Float64Array.from([NaN]), 1, 1, { t0: 0, t1: 1, atol: 1e-6, rtol: 1e-6 }), RangeError);
  // t0 = t1: nothing to integrate, no calls.
  let calls = 0;
  const r = await solveBatch(async (x, _t, m) => (calls++, { dx: new Float64Array(m), div: new Float64Array(m) }), Float64Array.from([5]), 1, 1, { t0: 1, t1: 1, atol: 1e-6, rtol: 1e-6 });
  assert.equal(calls, 0);
  assert.equal(r.x[0], 5);
  assert.equal(r.integral[0], 0);
});
