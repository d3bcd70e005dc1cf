import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildLuConv, validateLuFactors } from '../../src/flow/lu.js';
import { Rng } from '../../src/flow/random.js';
import { logAbsDet } from '../helpers/linalg.js';
import { randomLuFactors } from '../helpers/lu-factors.js';

test('W·W⁻¹ = I and log|det W|·spatial = spatial·Σ logS', () => {
  const rng = new Rng(3);
  for (const c of [1, 2, 4, 8, 16]) {
    const f = randomLuFactors(rng, c, 49);
    const conv = buildLuConv(f);
    assert.ok(conv.residual <= 1e-10, `c=${c}: residual ${conv.residual}`);
    const expected = 49 * logAbsDet(conv.w, c);
    assert.ok(Math.abs(conv.logDet - expected) < 1e-9 * Math.max(1, Math.abs(expected)), `c=${c}: ${conv.logDet} vs ${expected}`);
  }
});

test('W = P·L·(U + diag(sign·exp(logS))) with P[i][perm[i]] = 1', () => {
  // c = 2, perm swaps rows: L = [[1,0],[a,1]], U+D = [[d0,u],[0,d1]] → M = [[d0,u],[a·d0, a·u+d1]], W = [M1; M0]
  const a = 0.5, u = 2, ls = [Math.log(3), Math.log(0.5)];
  const conv = buildLuConv({ channels: 2, spatial: 1, perm: [1, 0], lower: [[9, 9], [a, 9]], upper: [[9, u], [9, 9]], signS: [1, -1], logS: ls });
  const d0 = 3, d1 = -0.5;
  const expected = [a * d0, a * u + d1, d0, u];
  conv.w.forEach((v, i) => assert.ok(Math.abs(v - expected[i]) < 1e-12, `W[${i}] = ${v}, expected ${expected[i]}`));
});

test('validateLuFactors refuses malformed factors', () => {
  const good = randomLuFactors(new Rng(1), 3, 1);
  assert.equal(validateLuFactors(good), null);
  assert.match(validateLuFactors({ ...good, perm: [0, 0, 1] })!, /permutation/);
  assert.match(validateLuFactors({ ...good, signS: [1, 0.5, 1] })!, /±1/);
  assert.match(validateLuFactors({ ...good, logS: [1, NaN, 0] })!, /finite/);
  assert.match(validateLuFactors({ ...good, lower: [[1, 2, 3]] })!, /3×3/);
});
