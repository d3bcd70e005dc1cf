import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planarForward, planarInverse, solvePlanarScalar, type PlanarLayer } from '../../src/flow/planar.js';
import { Rng } from '../../src/flow/random.js';
import { logAbsDet, maxAbsDiff } from '../helpers/linalg.js';

/** A random layer with uᵀw set exactly-ish to `uw` (u shifted along w). */
function layer(rng: Rng, d: number, uw: number, scale = 1): PlanarLayer {
  const w = Array.from({ length: d }, () => scale * rng.nextNormal());
  const u = Array.from({ length: d }, () => rng.nextNormal());
  const ww = w.reduce((s, v) => s + v * v, 0);
  const cur = u.reduce((s, v, j) => s + v * w[j], 0);
  const shift = (uw - cur) / ww;
  return { u: u.map((v, j) => v + shift * w[j]), w, b: rng.nextNormal() };
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let j = 0; j < a.length; j++) s += a[j] * b[j];
  return s;
}

const randomRows = (rng: Rng, n: number, d: number, s = 1) => Float64Array.from({ length: n * d }, () => s * rng.nextNormal());

test('round trip forward(inverse(z)) = z to 1e-10, logDets cancel, over uᵀw ∈ (−1, 5] incl. −0.999', () => {
  const rng = new Rng(42);
  let maxIter = 0;
  let maxPerSolve = 0;
  let worst = 0;
  let ldWorst = 0;
  for (const d of [1, 2, 5, 16]) {
    for (let trial = 0; trial < 25; trial++) {
      const L = 1 + (trial % 8);
      const layers = Array.from({ length: L }, (_, k) => {
        // Mix of the hard end (near −1), zero, and the full range up to 5.
        const pick = [-0.999, 0, 5, -0.5 + 5.5 * rng.nextOpen01()][(k + trial) % 4];
        return layer(rng, d, pick, trial % 3 === 0 ? 3 : 1);
      });
      for (const l of layers) assert.ok(dot(l.u, l.w) > -1);
      const n = 40;
      const z = randomRows(rng, n, d, 1 + (trial % 4));
      const x = planarInverse(layers, z, n, d);
      const back = planarForward(layers, x.values, n, d);
      const err = maxAbsDiff(back.values, z);
      worst = Math.max(worst, err);
      assert.ok(err <= 1e-10, `d=${d} trial ${trial}: |z − forward(inverse(z))| = ${err}`);
      for (let i = 0; i < n; i++) {
        // Not to rounding level: with uᵀw = −0.999 a layer's 1 + sech²·uᵀw can be ~1e-3, which
        // amplifies the O(ε) difference between the solved α and the original wᵀz.
        const gap = Math.abs(back.logDet[i] + x.logDet[i]);
        ldWorst = Math.max(ldWorst, gap);
        assert.ok(gap <= 1e-8 * Math.max(1, Math.abs(x.logDet[i])), `row ${i}: ${back.logDet[i]} + ${x.logDet[i]}`);
        maxIter = Math.max(maxIter, back.iterations[i]);
        maxPerSolve = Math.max(maxPerSolve, back.iterations[i] / L);
      }
    }
  }
  // Safeguarded Newton from a one-step fixed-point start: a handful of iterations per layer.
  assert.ok(maxPerSolve <= 12, `mean iterations per layer up to ${maxPerSolve}`);
  console.log(`planar round trip: worst |Δz| ${worst.toExponential(2)}, max iterations per row ${maxIter}, max mean per layer ${maxPerSolve.toFixed(2)}, worst |logDet sum| ${ldWorst.toExponential(2)}`);
});

test('ill-conditioned stacks (uᵀw = −0.9999, −0.999999): round-trip error within condition × ε', () => {
  // Here 1e-10 is not reachable in float64 for every row: each such layer's inverse amplifies
  // perturbations of x by up to 1 + |u||w|·sech²/(1 + uᵀw·sech²) ≈ 1e4..1e6, so the test bounds the
  // error by that product (computed along the generative pass) times the rounding of x.
  const rng = new Rng(99);
  let worstRatio = 0;
  let maxKappa = 0;
  let maxErr = 0;
  for (const d of [2, 5]) {
    for (let trial = 0; trial < 20; trial++) {
      const L = 2 + (trial % 5);
      const layers = Array.from({ length: L }, (_, k) => layer(rng, d, [-0.9999, -0.999999, 1, -0.5][(k + trial) % 4]));
      const n = 30;
      const z = randomRows(rng, n, d, 2);
      const kappa = new Float64Array(n).fill(1);
      let cur: Float64Array = Float64Array.from(z);
      for (const l of layers) {
        const c = dot(l.u, l.w);
        const norms = Math.sqrt(dot(l.u, l.u) * dot(l.w, l.w));
        for (let i = 0; i < n; i++) {
          const s = 1 - Math.tanh(dot(l.w, cur.subarray(i * d, (i + 1) * d)) + l.b) ** 2;
          kappa[i] *= 1 + (norms * s) / (1 + c * s);
        }
        cur = planarInverse([l], cur, n, d).values;
      }
      const back = planarForward(layers, cur, n, d);
      for (let i = 0; i < n; i++) {
        let err = 0;
        let xm = 1;
        for (let j = i * d; j < (i + 1) * d; j++) {
          err = Math.max(err, Math.abs(back.values[j] - z[j]));
          xm = Math.max(xm, Math.abs(cur[j]));
        }
        const scale = Number.EPSILON * kappa[i] * xm;
        worstRatio = Math.max(worstRatio, err / Math.max(scale, 1e-12));
        maxKappa = Math.max(maxKappa, kappa[i]);
        maxErr = Math.max(maxErr, err);
        assert.ok(err <= Math.max(1e-10, 10 * scale), `d=${d} trial ${trial} row ${i}: error ${err}, κ ${kappa[i]}`);
      }
    }
  }
  console.log(`ill-conditioned round trip: worst error / (ε·κ·|x|) = ${worstRatio.toFixed(2)}, max κ ${maxKappa.toExponential(1)}, max error ${maxErr.toExponential(2)}`);
});

test('scalar solve: root to float64 precision, bracket holds where Newton overshoots (uᵀw → −1)', () => {
  let most = 0;
  const rng = new Rng(7);
  for (const c of [-0.999999, -0.999, -0.9, -0.3, 0.01, 1, 5, 100]) {
    for (let k = 0; k < 200; k++) {
      const b = 3 * rng.nextNormal();
      // Targets clustered around the flat point α = −b, where g' = 1 + c is smallest.
      const y = -b + (k % 2 ? 0.01 : 5) * rng.nextNormal() + c * Math.tanh(0);
      const [a, it] = solvePlanarScalar(c, b, y);
      most = Math.max(most, it);
      const g = a + c * Math.tanh(a + b) - y;
      // Residual at rounding level of the terms involved.
      assert.ok(Math.abs(g) <= 4 * Number.EPSILON * (Math.abs(a) + Math.abs(c) + Math.abs(y)), `c=${c} b=${b} y=${y}: g=${g}`);
      assert.ok(Math.abs(a - y) <= Math.abs(c), 'root inside the initial bracket');
    }
  }
  assert.ok(most <= 60, `max iterations ${most}`);
  console.log(`scalar solve: max iterations ${most}`);
  // c = 0: identity, no iterations.
  assert.deepEqual(solvePlanarScalar(0, 1, 2.5), [2.5, 0]);
});

test('logDet of the data → latent direction matches a finite-difference Jacobian (D = 2, 5)', () => {
  const rng = new Rng(13);
  for (const d of [2, 5]) {
    const layers = [layer(rng, d, -0.9), layer(rng, d, 2), layer(rng, d, 0.4), layer(rng, d, -0.5)];
    const n = 6;
    const x = randomRows(rng, n, d);
    const fwd = planarForward(layers, x, n, d);
    const inv = planarInverse(layers, x, n, d);
    for (let i = 0; i < n; i++) {
      const row = x.slice(i * d, (i + 1) * d);
      for (const [name, fn, want] of [
        ['forward', (v: Float64Array) => planarForward(layers, v, 1, d).values, fwd.logDet[i]],
        ['inverse', (v: Float64Array) => planarInverse(layers, v, 1, d).values, inv.logDet[i]],
      ] as const) {
        const h = 1e-6;
        const jac = new Float64Array(d * d);
        for (let j = 0; j < d; j++) {
          const p = Float64Array.from(row);
          const m = Float64Array.from(row);
          p[j] += h;
          m[j] -= h;
          const yp = fn(p);
          const ym = fn(m);
          for (let r = 0; r < d; r++) jac[r * d + j] = (yp[r] - ym[r]) / (2 * h);
        }
        const fd = logAbsDet(jac, d);
        assert.ok(Math.abs(fd - want) < 1e-6, `d=${d} row ${i} ${name}: logDet ${want} vs finite difference ${fd}`);
      }
    }
  }
});

test('forward inverts a hand-computed single layer; inverse matches the closed form', () => {
  const l: PlanarLayer = { u: [0.5, -1], w: [2, 1], b: 0.3 };
  const z = [0.2, -0.7];
  const a = 2 * 0.2 - 0.7;
  const th = Math.tanh(a + 0.3);
  const x = [0.2 + 0.5 * th, -0.7 - th];
  const inv = planarInverse([l], z, 1, 2);
  assert.ok(maxAbsDiff(inv.values, x) < 1e-15);
  assert.ok(Math.abs(inv.logDet[0] - Math.log(1 + (1 - th * th) * 0)) < 1e-15); // uᵀw = 0 here
  const fwd = planarForward([l], x, 1, 2);
  assert.ok(maxAbsDiff(fwd.values, z) < 1e-14);
  // Order matters: layer 0 first when generating, so swapping two layers changes the result.
  const l2: PlanarLayer = { u: [1, 1], w: [0.3, 0.9], b: -0.2 };
  const ab = planarInverse([l, l2], z, 1, 2).values;
  const manual = planarInverse([l2], planarInverse([l], z, 1, 2).values, 1, 2).values;
  assert.deepEqual(Array.from(ab), Array.from(manual));
  assert.ok(maxAbsDiff(ab, planarInverse([l2, l], z, 1, 2).values) > 1e-3);
  assert.ok(maxAbsDiff(planarForward([l, l2], ab, 1, 2).values, z) < 1e-14);
});

test('refuses non-invertible layers (uᵀw ≤ −1) naming the layer, and malformed shapes', () => {
  const ok: PlanarLayer = { u: [1, 0], w: [0.5, 0], b: 0 };
  const edge: PlanarLayer = { u: [-1, 0], w: [1, 0], b: 0 }; // uᵀw = −1 exactly
  const worse: PlanarLayer = { u: [-2, 0.5], w: [1, 1], b: 0 }; // uᵀw = −1.5
  for (const bad of [edge, worse]) {
    assert.throws(() => planarForward([ok, bad], [0, 0], 1, 2), /layer 1 is not invertible/);
    assert.throws(() => planarInverse([bad, ok], [0, 0], 1, 2), /layer 0 is not invertible/);
  }
  assert.throws(() => planarForward([{ u: [1], w: [1, 0], b: 0 }], [0, 0], 1, 2), /layer 0/);
  assert.throws(() => planarForward([ok], [0, 0, 0], 1, 2), RangeError);
  assert.throws(() => planarForward([{ ...ok, b: NaN }], [0, 0], 1, 2), /layer 0/);
  // Just above −1 is accepted.
  assert.doesNotThrow(() => planarForward([{ u: [-0.999999, 0], w: [1, 0], b: 0 }], [0.1, 0], 1, 2));
});
