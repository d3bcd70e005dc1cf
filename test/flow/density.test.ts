import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bitsPerDim, logProbability } from '../../src/flow/density.js';
import { dataToPixels, pixelsToData } from '../../src/flow/quantize.js';
import { HALF_LOG_2PI } from '../../src/flow/prior.js';

test('log p = Σ log N(z) + logDet', () => {
  const lp = logProbability([1, -1], [0.5], 1, 2);
  assert.ok(Math.abs(lp[0] - (-1 - 2 * HALF_LOG_2PI + 0.5)) < 1e-12);
});

test('bits/dim: uniform density on [0,1]^D is 8 bits/dim at 8-bit depth', () => {
  assert.ok(Math.abs(bitsPerDim(0, 784, 8) - 8) < 1e-12);
  // a density e^(D·ln 256) means every pixel bin has probability 1: 0 bits/dim
  assert.ok(Math.abs(bitsPerDim(784 * Math.log(256), 784, 8)) < 1e-12);
  // vectors: continuous code length
  assert.ok(Math.abs(bitsPerDim(-2 * Math.LN2, 2, null) - 1) < 1e-12);
});

test('pixels ↔ data: k ↦ (k + 0.5)/256 and back', () => {
  const k = Uint8Array.from([0, 1, 127, 255]);
  const x = pixelsToData(k, 8);
  assert.ok(Math.abs(x[0] - 0.5 / 256) < 1e-9 && Math.abs(x[3] - 255.5 / 256) < 1e-9);
  assert.deepEqual(dataToPixels(x, 8), k);
  assert.deepEqual(Array.from(dataToPixels([-0.3, 1.7, NaN], 8)), [0, 255, 0]);
});

test('logMeanExp: log of the mean of exp per group, exact where it can be, without overflow, and ≥ the mean (Jensen)', async () => {
  const { logMeanExp } = await import('../../src/flow/density.js');
  const out = logMeanExp([0, Math.log(3), 1000, 1000, -Infinity, -Infinity], 3, 2);
  assert.ok(Math.abs(out[0] - Math.log(2)) < 1e-15);
  assert.equal(out[1], 1000);
  assert.equal(out[2], -Infinity);
  const xs = [-2500.1, -2490.7, -2510.3, -2499.9];
  const [lme] = logMeanExp(xs, 1, 4);
  assert.ok(lme >= xs.reduce((a, b) => a + b) / 4 && lme <= Math.max(...xs));
});
