// Quantization, clamping and uniform dequantization (src/flow/quantize.ts), and the support of
// each preprocessing (src/flow/preprocess.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clampTo, dataToPixels, dequantizeUniform, pixelsToData, quantizeToCentres } from '../../src/flow/quantize.js';
import { Rng } from '../../src/flow/random.js';
import { inSupport, preprocessing, support } from '../../src/flow/preprocess.js';

test('quantizeToCentres moves each value to the centre of its bin, clamped to the levels, and is idempotent', () => {
  const x = [-0.3, 0, 0.001, 0.5, 0.99999, 1, 1.7, NaN];
  const q = quantizeToCentres(x, 8);
  assert.deepEqual(Array.from(q), [0.5, 0.5, 0.5, 128.5, 255.5, 255.5, 255.5, 0.5].map((k) => k / 256));
  assert.deepEqual(Array.from(quantizeToCentres(q, 8)), Array.from(q));
  assert.deepEqual(Array.from(dataToPixels(q, 8)), [0, 0, 0, 128, 255, 255, 255, 0]);
  assert.deepEqual(Array.from(quantizeToCentres(pixelsToData([0, 7, 15], 4), 4)), [0.5 / 16, 7.5 / 16, 15.5 / 16]);
});

test('clampTo bounds values and leaves those inside untouched', () => {
  assert.deepEqual(Array.from(clampTo([-1, 0.25, 3], 0, 1)), [0, 0.25, 1]);
});

test('dequantizeUniform: every copy stays in its pixel\'s bin, the noise is seeded and covers the bin', () => {
  const x = [0.5 / 256, 100.5 / 256, 255.5 / 256];
  const draws = 400;
  const a = dequantizeUniform(x, 1, 3, 8, draws, new Rng(7));
  const b = dequantizeUniform(x, 1, 3, 8, draws, new Rng(7));
  const c = dequantizeUniform(x, 1, 3, 8, draws, new Rng(8));
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  for (let k = 0; k < draws; k++)
    [0, 100, 255].forEach((pixel, j) => {
      const v = a[k * 3 + j] * 256;
      assert.ok(v >= pixel && v < pixel + 1, `copy ${k}, value ${j}: ${v} outside bin ${pixel}`);
    });
  // mean of U[0, 1) noise ≈ 1/2 (400 draws: sd 0.0144)
  let mean = 0;
  for (let k = 0; k < draws; k++) mean += a[k * 3 + 1] * 256 - 100;
  assert.ok(Math.abs(mean / draws - 0.5) < 0.06, `noise mean ${mean / draws}`);
});

test('support: logit is the open interval where 0 < α + (1 − 2α)x < 1, and the transform is finite inside it', () => {
  const s = support({ kind: 'logit', alpha: 0.05 });
  assert.ok(Math.abs(s.min + 0.05 / 0.9) < 1e-15 && Math.abs(s.max - 0.95 / 0.9) < 1e-15);
  assert.ok(!inSupport(s, s.min) && !inSupport(s, s.max) && inSupport(s, 0) && inSupport(s, 1) && inSupport(s, -0.05));
  const pre = preprocessing({ kind: 'logit', alpha: 0.05 }, 1);
  for (const v of [s.min + 1e-9, -0.05, 1.05, s.max - 1e-9]) {
    const { values, logDet } = pre.forward([v], 1);
    assert.ok(Number.isFinite(values[0]) && Number.isFinite(logDet[0]), `logit(${v})`);
  }
  for (const kind of [{ kind: 'identity' as const }, { kind: 'affine' as const, scale: 2, shift: -1 }]) {
    const all = support(kind);
    assert.equal(all.min, -Infinity);
    assert.equal(all.max, Infinity);
    assert.ok(inSupport(all, -1e300) && inSupport(all, 1e300));
  }
});
