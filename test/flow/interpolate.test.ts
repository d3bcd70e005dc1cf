// Latent paths (src/flow/interpolate.ts): ends exact, linear and spherical geometry, limits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { angleBetween, interpolatePath, interpolationTimes, isAntipodal, type InterpolationMethod } from '../../src/flow/interpolate.js';
import { Rng } from '../../src/flow/random.js';

const norm = (v: ArrayLike<number>) => Math.sqrt(Array.from(v).reduce((a, x) => a + x * x, 0));
const rows = (flat: Float64Array, d: number) => Array.from({ length: flat.length / d }, (_, k) => flat.subarray(k * d, (k + 1) * d));
function gaussian(d: number, seed: number): Float64Array {
  const rng = new Rng(seed);
  return Float64Array.from({ length: d }, () => rng.nextNormal());
}

test('interpolationTimes: evenly spaced from exactly 0 to exactly 1', () => {
  assert.deepEqual(Array.from(interpolationTimes(2)), [0, 1]);
  assert.deepEqual(Array.from(interpolationTimes(5)), [0, 0.25, 0.5, 0.75, 1]);
  const t = interpolationTimes(7);
  assert.equal(t[6], 1);
  for (let k = 1; k < t.length; k++) assert.ok(Math.abs(t[k] - t[k - 1] - 1 / 6) < 1e-15);
  assert.throws(() => interpolationTimes(1), RangeError);
  assert.throws(() => interpolationTimes(2.5), RangeError);
});

for (const method of ['linear', 'spherical'] as InterpolationMethod[])
  for (const d of [1, 2, 64, 784]) {
    test(`${method}, D = ${d}: the end frames are the two latents bit for bit`, () => {
      const z0 = gaussian(d, 1 + d);
      const z1 = gaussian(d, 2 + d);
      if (d === 1) z1[0] = Math.abs(z1[0]) * Math.sign(z0[0]); // one dimension: same side, or the arc is undefined
      const path = rows(interpolatePath(z0, z1, interpolationTimes(9), method), d);
      assert.deepEqual(Array.from(path[0]), Array.from(z0));
      assert.deepEqual(Array.from(path[8]), Array.from(z1));
    });
  }

test('linear: frame k is (1 − t)·z₀ + t·z₁, equally spaced along the segment', () => {
  const z0 = gaussian(16, 3);
  const z1 = gaussian(16, 4);
  const t = interpolationTimes(5);
  const path = rows(interpolatePath(z0, z1, t, 'linear'), 16);
  for (let k = 0; k < 5; k++) for (let j = 0; j < 16; j++) assert.ok(Math.abs(path[k][j] - ((1 - t[k]) * z0[j] + t[k] * z1[j])) < 1e-12);
  const step = (k: number) => norm(path[k + 1].map((v, j) => v - path[k][j]));
  for (let k = 1; k < 4; k++) assert.ok(Math.abs(step(k) - step(0)) < 1e-12);
});

test('spherical: equal-norm latents keep their norm along the arc, and the angle moves in equal steps', () => {
  const d = 784;
  const z0 = gaussian(d, 5);
  const raw = gaussian(d, 6);
  const z1 = raw.map((v) => (v * norm(z0)) / norm(raw));
  const path = rows(interpolatePath(z0, z1, interpolationTimes(11), 'spherical'), d);
  const omega = angleBetween(z0, z1)!;
  for (let k = 0; k < 11; k++) {
    assert.ok(Math.abs(norm(path[k]) / norm(z0) - 1) < 1e-12, `frame ${k}: |z| = ${norm(path[k])} vs ${norm(z0)}`);
    assert.ok(Math.abs(angleBetween(z0, path[k])! - (k / 10) * omega) < 1e-9, `frame ${k}`);
  }
  // the linear midpoint of two near-orthogonal typical latents has |z| ≈ |z₀|/√2: the arc does not
  const mid = rows(interpolatePath(z0, z1, [0.5], 'linear'), d)[0];
  assert.ok(norm(mid) < 0.8 * norm(z0));
});

test('spherical: nearly parallel latents take the linear path (the limit), and a zero latent too', () => {
  const z0 = Float64Array.from([1, 2, 3]);
  const z1 = Float64Array.from([2, 4, 6 + 1e-12]);
  const t = interpolationTimes(4);
  assert.deepEqual(Array.from(interpolatePath(z0, z1, t, 'spherical')), Array.from(interpolatePath(z0, z1, t, 'linear')));
  const zero = new Float64Array(3);
  assert.deepEqual(Array.from(interpolatePath(zero, z1, t, 'spherical')), Array.from(interpolatePath(zero, z1, t, 'linear')));
  assert.equal(angleBetween(zero, z1), null);
});

test('BAD CALL - spherical between opposite latents: refused (no single arc); linear passes through 0', () => {
  const z0 = Float64Array.from([1, -2, 0.5]);
  const z1 = z0.map((v) => -3 * v);
  assert.equal(isAntipodal(z0, z1), true);
  assert.equal(isAntipodal(z0, z0), false);
  assert.throws(() => interpolatePath(z0, z1, interpolationTimes(3), 'spherical'), /opposite/);
  const lin = rows(interpolatePath(z0, z1, [0.25], 'linear'), 3)[0];
  assert.ok(norm(lin) < 1e-12);
});

test('BAD CALL - latents of different lengths', () => {
  assert.throws(() => interpolatePath([1, 2], [1, 2, 3], [0, 1], 'linear'), RangeError);
});
