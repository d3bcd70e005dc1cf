// /likelihood's dequantization protocols: "uniform" with K seeded draws is the log-mean-exp of the
// continuous density at K noisy copies (k + u)/256, reproduced here from the same seeded stream;
// scores stay at pixel centres, the protocol they were calibrated with.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { post, testApp } from '../helpers/app.js';
import { mnistTestImages, shippedPackages } from '../helpers/packages.js';
import { dequantizeUniform } from '../../src/flow/quantize.js';
import { Rng } from '../../src/flow/random.js';
import { logMeanExp } from '../../src/flow/density.js';

let app: FastifyInstance;
before(async () => {
  app = await testApp();
});
after(() => app.close());

const image = shippedPackages().filter((p) => p.manifest.data.bitDepth !== null);

for (const pkg of image) {
  test(`${pkg.name}: uniform dequantization = log-mean-exp of log p at the seeded noisy copies; scores stay at pixel centres`, async () => {
    const { rows } = mnistTestImages(3);
    const d = pkg.manifest.latent.size;
    const draws = 4;
    const seed = 99;
    const centre = await post(app, '/likelihood', { model: pkg.name, inputs: rows });
    const uniform = await post(app, '/likelihood', { model: pkg.name, inputs: rows, dequantization: 'uniform', draws, seed });
    assert.equal(uniform.status, 200, JSON.stringify(uniform.body).slice(0, 300));
    assert.deepEqual(centre.body.protocol, { dequantization: 'centre' });
    assert.deepEqual(uniform.body.protocol, { dequantization: 'uniform', draws, seed });

    const noisy = dequantizeUniform(Float64Array.from(rows.flat()), rows.length, d, 8, draws, new Rng(seed));
    const copies = Array.from({ length: rows.length * draws }, (_, i) => Array.from(noisy.subarray(i * d, (i + 1) * d)));
    const each = await post(app, '/likelihood', { model: pkg.name, inputs: copies, scores: [] });
    const expected = logMeanExp(each.body.results.map((r: { logLikelihood: number }) => r.logLikelihood), rows.length, draws);
    uniform.body.results.forEach((r: { logLikelihood: number; bitsPerDim: number; scores: unknown; anomalyScore: unknown }, i: number) => {
      assert.ok(Math.abs(r.logLikelihood - expected[i]) < 1e-9 * Math.abs(expected[i]), `${r.logLikelihood} vs ${expected[i]}`);
      assert.ok(Math.abs(r.bitsPerDim - -(r.logLikelihood - d * 8 * Math.LN2) / (d * Math.LN2)) < 1e-12);
      assert.deepEqual(r.scores, centre.body.results[i].scores);
      assert.equal(r.anomalyScore, centre.body.results[i].anomalyScore);
    });
    const again = await post(app, '/likelihood', { model: pkg.name, inputs: rows, dequantization: 'uniform', draws, seed });
    assert.deepEqual(again.body.results, uniform.body.results, 'the seed fixes the answer');
    const unseeded = await post(app, '/likelihood', { model: pkg.name, inputs: rows, dequantization: 'uniform' });
    assert.ok(Number.isInteger(unseeded.body.protocol.seed) && unseeded.body.protocol.draws === 1, 'a drawn seed is returned');
  });
}

test('uniform dequantization works on image uploads too, and scores: [] skips the centre pass', async () => {
  const pkg = image[0];
  const { rows } = mnistTestImages(2);
  const res = await post(app, '/likelihood', { model: pkg.name, inputs: rows, dequantization: 'uniform', seed: 1, scores: [] });
  assert.equal(res.status, 200);
  for (const r of res.body.results) {
    assert.deepEqual(r.scores, { nll: null, typicality: null, complexity: null, complexityJpegLs: null });
    assert.equal(r.anomalyScore, null);
    assert.ok(Number.isFinite(r.logLikelihood));
  }
});

test('multipart uploads take the dequantization fields too, with the JSON rules', async () => {
  const pkg = image[0];
  const sharp = (await import('sharp')).default;
  const png = await sharp(Buffer.alloc(784, 40), { raw: { width: 28, height: 28, channels: 1 } }).png().toBuffer();
  const form = (fields: Record<string, string>) => {
    const f = new FormData();
    f.append('model', pkg.name);
    for (const [k, v] of Object.entries(fields)) f.append(k, v);
    f.append('images', new Blob([png], { type: 'image/png' }), 'a.png');
    return f;
  };
  const ok = await app.inject({ method: 'POST', url: '/likelihood', body: form({ dequantization: 'uniform', draws: '3', seed: '5' }) as never });
  assert.equal(ok.statusCode, 200, ok.body);
  assert.deepEqual(ok.json().protocol, { dequantization: 'uniform', draws: 3, seed: 5 });
  const json = await post(app, '/likelihood', { model: pkg.name, images: [png.toString('base64')], dequantization: 'uniform', draws: 3, seed: 5 });
  assert.equal(ok.json().results[0].logLikelihood, json.body.results[0].logLikelihood);
  const bad = await app.inject({ method: 'POST', url: '/likelihood', body: form({ dequantization: 'uniform', draws: '0' }) as never });
  assert.equal(bad.statusCode, 400);
  assert.match(bad.json().error.message, /draws: must be a whole number from 1 to 64, got '0'/);
  const badKind = await app.inject({ method: 'POST', url: '/likelihood', body: form({ dequantization: 'logistic' }) as never });
  assert.match(badKind.json().error.message, /dequantization: must be one of "centre", "uniform", got 'logistic'/);
});
