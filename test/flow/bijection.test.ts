// Property tests over every bijection in src/flow: round trip, forward.logDet + inverse.logDet = 0,
// and logDet against a finite-difference Jacobian.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Bijection } from '../../src/flow/bijection.js';
import { preprocessing } from '../../src/flow/preprocess.js';
import { buildLuConv, luBijection } from '../../src/flow/lu.js';
import { Rng } from '../../src/flow/random.js';
import { logAbsDet, maxAbsDiff, numericJacobian } from '../helpers/linalg.js';
import { randomLuFactors } from '../helpers/lu-factors.js';

const rng = new Rng(7);
const uniform = (lo: number, hi: number) => lo + (hi - lo) * rng.nextOpen01();

// Each case: the bijection and a sampler of valid inputs in its domain.
const table: { b: Bijection; sample: () => number }[] = [
  { b: preprocessing({ kind: 'identity' }, 5), sample: () => uniform(-3, 3) },
  { b: preprocessing({ kind: 'affine', scale: 1, shift: -0.5 }, 5), sample: () => uniform(0, 1) },
  { b: preprocessing({ kind: 'affine', scale: -2.5, shift: 0.3 }, 5), sample: () => uniform(-2, 2) },
  { b: preprocessing({ kind: 'logit', alpha: 0.05 }, 6), sample: () => uniform(0, 1) },
  { b: preprocessing({ kind: 'logit', alpha: 1e-6 }, 6), sample: () => uniform(0.01, 0.99) },
  { b: luBijection(buildLuConv(randomLuFactors(rng, 3, 4))), sample: () => uniform(-2, 2) },
  { b: luBijection(buildLuConv(randomLuFactors(rng, 4, 2))), sample: () => uniform(-2, 2) },
];

for (const { b, sample } of table) {
  const n = 8;
  const x = Float64Array.from({ length: n * b.dim }, sample);

  test(`${b.name}: inverse(forward(x)) = x`, () => {
    const fwd = b.forward(x, n);
    const back = b.inverse(fwd.values, n);
    assert.ok(maxAbsDiff(back.values, x) < 1e-9, `max error ${maxAbsDiff(back.values, x)}`);
  });

  test(`${b.name}: forward.logDet + inverse.logDet = 0`, () => {
    const fwd = b.forward(x, n);
    const inv = b.inverse(fwd.values, n);
    for (let i = 0; i < n; i++) assert.ok(Math.abs(fwd.logDet[i] + inv.logDet[i]) < 1e-9, `row ${i}: ${fwd.logDet[i]} + ${inv.logDet[i]}`);
  });

  test(`${b.name}: logDet matches a finite-difference Jacobian`, () => {
    for (let i = 0; i < 3; i++) {
      const row = x.slice(i * b.dim, (i + 1) * b.dim);
      const expected = logAbsDet(numericJacobian(b, row), b.dim);
      const got = b.forward(row, 1).logDet[0];
      assert.ok(Math.abs(got - expected) < 1e-5 * Math.max(1, Math.abs(expected)), `row ${i}: logDet ${got} vs numeric ${expected}`);
    }
  });
}
