import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HALF_LOG_2PI, logStandardNormal, sampleStandardNormal } from '../../src/flow/prior.js';
import { Rng } from '../../src/flow/random.js';

test('log N(z; 0, I) per row', () => {
  const lp = logStandardNormal([0, 0, 1, 2], 2, 2);
  assert.ok(Math.abs(lp[0] - -2 * HALF_LOG_2PI) < 1e-12);
  assert.ok(Math.abs(lp[1] - (-2.5 - 2 * HALF_LOG_2PI)) < 1e-12);
});

test('seeded sampling is reproducible and seeds differ', () => {
  const a = sampleStandardNormal(new Rng(42), 4, 10, 0.7);
  const b = sampleStandardNormal(new Rng(42), 4, 10, 0.7);
  const c = sampleStandardNormal(new Rng(43), 4, 10, 0.7);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
});

test('sample mean ≈ 0 and std scales with temperature', () => {
  for (const t of [0.25, 0.7, 1, 1.5]) {
    const z = sampleStandardNormal(new Rng(9), 1, 200_000, t);
    const mean = z.reduce((s, v) => s + v, 0) / z.length;
    const std = Math.sqrt(z.reduce((s, v) => s + (v - mean) ** 2, 0) / z.length);
    assert.ok(Math.abs(mean) < 0.01 * Math.max(t, 1), `T=${t}: mean ${mean}`);
    assert.ok(Math.abs(std / t - 1) < 0.01, `T=${t}: std ${std}`);
  }
});

test('uniform draws stay in (0, 1)', () => {
  const r = new Rng(0);
  for (let i = 0; i < 100_000; i++) {
    const u = r.nextOpen01();
    assert.ok(u > 0 && u < 1);
  }
});
