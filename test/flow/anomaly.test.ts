import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SCORE_NAMES, availableScores, batchTypicality, complexityScore, normalizeScore, quantileFunction, twoPartCodeBits, typicality } from '../../src/flow/anomaly.js';
import { Rng } from '../../src/flow/random.js';

test('anomaly normalization maps the threshold to 0.5 and clamps', () => {
  const stats = { threshold: 10, min: 0, max: 20, mean: 8, std: 2 };
  assert.equal(normalizeScore(10, stats), 0.5);
  assert.equal(normalizeScore(15, stats), 0.75);
  assert.equal(normalizeScore(1e9, stats), 1);
  assert.equal(normalizeScore(-1e9, stats), 0);
  assert.equal(typicality(4, stats), 2);
});

test('complexity score: model code length minus compressed length, in bits', () => {
  assert.equal(complexityScore(2, 784, 1000), 2 * 784 - 1000);
});

test('two-part code: a flag bit, then the shorter of the compressed and the raw code', () => {
  assert.equal(twoPartCodeBits(4000, 6272), 4001);
  assert.equal(twoPartCodeBits(8360, 6272), 6273, 'noise that JPEG-LS expands falls back to raw');
});

test('available scores: image-code scores need 8-bit images, typicality needs NLL statistics', () => {
  assert.deepEqual(availableScores({ kind: 'image', bitDepth: 8 }, true), [...SCORE_NAMES]);
  assert.deepEqual(availableScores({ kind: 'image', bitDepth: 16 }, true), ['nll', 'typicality']);
  assert.deepEqual(availableScores({ kind: 'vector', bitDepth: null }, true), ['nll', 'typicality']);
  assert.deepEqual(availableScores({ kind: 'vector', bitDepth: null }, false), ['nll']);
});

test('quantile function interpolates between evenly spaced quantiles', () => {
  const q = quantileFunction([0, 10, 30]);
  assert.equal(q(0), 0);
  assert.equal(q(0.25), 5);
  assert.equal(q(0.5), 10);
  assert.equal(q(0.75), 20);
  assert.equal(q(1), 30);
});

// In-distribution NLL ~ N(1000, 50²), summarized as 101 quantiles like a calibrated manifest.
const rng = new Rng(1);
const held = Array.from({ length: 20000 }, () => 1000 + 50 * rng.nextNormal()).sort((a, b) => a - b);
const quantiles = Array.from({ length: 101 }, (_, i) => held[Math.round((i / 100) * (held.length - 1))]);
const draw = (seed: number) => {
  const r = new Rng(seed);
  return () => r.nextOpen01();
};

test('batch typicality: in-distribution batches pass, shifted batches fail', () => {
  const r = new Rng(2);
  let falseAlarms = 0;
  for (let t = 0; t < 50; t++) {
    const batch = Array.from({ length: 32 }, () => 1000 + 50 * r.nextNormal());
    const res = batchTypicality(batch, 1000, quantiles, 0.05, draw(t), 500);
    if (res.isOutOfDistribution) falseAlarms++;
    assert.ok(res.pValue > 0 && res.pValue <= 1);
  }
  assert.ok(falseAlarms <= 8, `${falseAlarms}/50 false alarms at α = 0.05`);
  // A batch with much *higher* likelihood (lower NLL) than typical is out of distribution too.
  const shifted = Array.from({ length: 32 }, () => 940 + 50 * r.nextNormal());
  const res = batchTypicality(shifted, 1000, quantiles, 0.05, draw(99), 500);
  assert.ok(res.isOutOfDistribution && res.pValue < 0.01, JSON.stringify(res));
});
