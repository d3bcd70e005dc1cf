// The four inference routes on every shipped model, through the HTTP layer (app.inject).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import sharp from 'sharp';
import { post, testApp } from '../helpers/app.js';
import { maxAbs, mnistTestImages, relErr, shippedPackages } from '../helpers/packages.js';
import { HALF_LOG_2PI } from '../../src/flow/prior.js';
import { SCORE_NAMES, normalizeScore } from '../../src/flow/anomaly.js';

let app: FastifyInstance;
before(async () => {
  app = await testApp();
});
after(() => app.close());

const packages = shippedPackages();
const imageModel = packages.find((p) => p.manifest.data.kind === 'image');

for (const pkg of packages) {
  const { name, reference: ref } = pkg;

  test(`${name}: encode → decode returns the inputs (max abs error ≤ 1e-4)`, async () => {
    const enc = await post(app, '/encode', { model: name, inputs: ref.inputs });
    assert.equal(enc.status, 200);
    assert.equal(enc.body.latents.length, ref.inputs.length);
    const dec = await post(app, '/decode', { model: name, latents: enc.body.latents, format: 'array' });
    assert.equal(dec.status, 200);
    assert.ok(maxAbs(dec.body.outputs, ref.inputs) <= 1e-4, `max error ${maxAbs(dec.body.outputs, ref.inputs)}`);
  });

  test(`${name}: /likelihood = Σ log N(latent) + logDet from /encode, and matches reference.json (1e-4 relative)`, async () => {
    // a continuous flow's reference is a tight float64 solve: ask for tight tolerances too
    const tol = pkg.manifest.program?.kind === 'ode' ? { atol: 1e-8, rtol: 1e-8 } : {};
    const [enc, lik] = await Promise.all([post(app, '/encode', { model: name, inputs: ref.inputs, ...tol }), post(app, '/likelihood', { model: name, inputs: ref.inputs, ...tol })]);
    assert.equal(lik.status, 200);
    lik.body.results.forEach((r: { logLikelihood: number; bitsPerDim: number }, i: number) => {
      const z: number[] = enc.body.latents[i];
      const fromEncode = z.reduce((s, v) => s - 0.5 * v * v, 0) - z.length * HALF_LOG_2PI + enc.body.logDet[i];
      assert.ok(relErr(r.logLikelihood, fromEncode) < 1e-9, `${r.logLikelihood} vs ${fromEncode}`);
      assert.ok(relErr(r.logLikelihood, ref.logProb[i]) <= 1e-4, `input ${i}: ${r.logLikelihood} vs reference ${ref.logProb[i]}`);
      assert.ok(Number.isFinite(r.bitsPerDim));
    });
  });

  test(`${name}: seeded sampling is reproducible, and the seed is returned`, async () => {
    const format = 'array';
    const a = await post(app, '/sample', { model: name, count: 3, seed: 1234, format });
    const b = await post(app, '/sample', { model: name, count: 3, seed: 1234, format });
    const c = await post(app, '/sample', { model: name, count: 3, seed: 1235, format });
    assert.equal(a.status, 200);
    assert.equal(a.body.seed, 1234);
    assert.equal(a.body.temperature, pkg.manifest.defaultTemperature);
    assert.deepEqual(a.body.outputs, b.body.outputs);
    assert.notDeepEqual(a.body.outputs, c.body.outputs);
    const random = await post(app, '/sample', { model: name, count: 1, format });
    assert.ok(Number.isInteger(random.body.seed));
  });

  test(`${name}: the latents of samples have std ≈ T`, async () => {
    for (const temperature of [0.5, 1]) {
      if (temperature > (pkg.manifest.sampling?.maxTemperature ?? 2)) continue;
      // raw outputs lie in the model's support, so /encode takes them back unchanged
      const s = await post(app, '/sample', { model: name, count: 64, seed: 5, temperature, format: 'array', output: 'raw' });
      assert.equal(s.status, 200, JSON.stringify(s.body).slice(0, 300));
      const enc = await post(app, '/encode', { model: name, inputs: s.body.outputs });
      assert.equal(enc.status, 200, JSON.stringify(enc.body).slice(0, 300));
      const z: number[] = enc.body.latents.flat();
      const std = Math.sqrt(z.reduce((acc, v) => acc + v * v, 0) / z.length);
      const tol = 0.06;
      assert.ok(Math.abs(std / temperature - 1) < tol, `T=${temperature}: latent std ${std}`);
    }
  });
}

test('vector model: /sample returns arrays by default', async () => {
  const vec = packages.find((p) => p.name === 'realnvp-moons');
  assert.ok(vec, 'a vector model is shipped');
  const s = await post(app, '/sample', { model: vec.name, count: 2, seed: 3 });
  assert.equal(s.status, 200);
  assert.equal(s.body.outputs.length, 2);
  assert.equal(s.body.images, undefined);
  assert.equal(s.body.logLikelihood.length, 2);
});

test('image model: /sample gives PNGs by default, which /likelihood and /encode accept (JSON and multipart)', async () => {
  const name = imageModel!.name;
  const [c, h, w] = imageModel!.manifest.data.shape;
  const s = await post(app, '/sample', { model: name, count: 2, seed: 9 });
  assert.equal(s.status, 200);
  assert.equal(s.body.images.length, 2);
  const png = Buffer.from(s.body.images[0], 'base64');
  const meta = await sharp(png).metadata();
  assert.deepEqual([meta.format, meta.width, meta.height, meta.channels], ['png', w, h, c]);

  const lik = await post(app, '/likelihood', { model: name, images: s.body.images });
  assert.equal(lik.status, 200);
  assert.equal(lik.body.results.length, 2);

  const form = new FormData();
  form.append('model', name);
  form.append('file', new Blob([png], { type: 'image/png' }), 'a.png');
  const res = await app.inject({ method: 'POST', url: '/likelihood', body: form as never });
  assert.equal(res.statusCode, 200, res.body);
  assert.ok(Math.abs(res.json().results[0].logLikelihood - lik.body.results[0].logLikelihood) < 1e-6);

  const form2 = new FormData();
  form2.append('model', name);
  form2.append('images', new Blob([png], { type: 'image/png' }), 'a.png');
  const enc = await app.inject({ method: 'POST', url: '/encode', body: form2 as never });
  assert.equal(enc.statusCode, 200, enc.body);
  assert.equal(enc.json().latents[0].length, c * h * w);
});

test('image model: a PNG of an MNIST digit scores the same as its pixel-centre array', async () => {
  const name = imageModel!.name;
  const { pixels, rows } = mnistTestImages(1);
  const png = await sharp(Buffer.from(pixels[0]), { raw: { width: 28, height: 28, channels: 1 } }).png().toBuffer();
  const a = await post(app, '/likelihood', { model: name, images: [png.toString('base64')] });
  const b = await post(app, '/likelihood', { model: name, inputs: rows });
  assert.equal(a.status, 200);
  assert.ok(Math.abs(a.body.results[0].logLikelihood - b.body.results[0].logLikelihood) < 1e-6);
});

test('image model: /decode format png and resize for other image sizes', async () => {
  const name = imageModel!.name;
  const { rows, pixels } = mnistTestImages(1, 5);
  const enc = await post(app, '/encode', { model: name, inputs: rows });
  const dec = await post(app, '/decode', { model: name, latents: enc.body.latents, format: 'png' });
  assert.equal(dec.status, 200);
  const { data } = await sharp(Buffer.from(dec.body.images[0], 'base64')).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual(new Uint8Array(data), pixels[0], 'decode(encode(image)) reproduces the pixels');

  const big = await sharp(Buffer.from(pixels[0]), { raw: { width: 28, height: 28, channels: 1 } }).resize(56, 56).png().toBuffer();
  const refused = await post(app, '/likelihood', { model: name, images: [big.toString('base64')] });
  assert.equal(refused.status, 400);
  const resized = await post(app, '/likelihood', { model: name, images: [big.toString('base64')], resize: true });
  assert.equal(resized.status, 200);
});

test('image model: /likelihood carries every default score (all but the PNG complexity, which must be asked for), anomalyScore from the default score, and a batch typicality test on request', async () => {
  const model = packages.find((p) => p.name === 'glow-fashion');
  assert.ok(model, 'glow-fashion is shipped');
  const cal = model.manifest.calibration!;
  const stats = cal.scores[cal.defaultScore];
  const { rows } = mnistTestImages(16);
  const byDefault = await post(app, '/likelihood', { model: model.name, inputs: rows });
  for (const r of byDefault.body.results) {
    for (const s of SCORE_NAMES) assert.equal(Number.isFinite(r.scores[s]), s !== 'complexity', `${s}: ${r.scores[s]}`);
  }
  const res = await post(app, '/likelihood', { model: model.name, inputs: rows, batchTest: true, scores: [...SCORE_NAMES] });
  assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 300));
  for (const [i, r] of res.body.results.entries()) {
    for (const s of SCORE_NAMES) assert.ok(Number.isFinite(r.scores[s]), `${s}: ${r.scores[s]}`);
    assert.deepEqual({ ...r, scores: { ...r.scores, complexity: null } }, byDefault.body.results[i], 'the same answer, but for the score asked for');
    assert.ok(Math.abs(r.scores.nll + r.logLikelihood) < 1e-9);
    assert.ok(Math.abs(r.anomalyScore - normalizeScore(r.scores[cal.defaultScore], stats)) < 1e-12);
    assert.equal(r.isAnomaly, r.scores[cal.defaultScore] > stats.threshold);
  }
  // JPEG-LS codes digits shorter than PNG on average, so S_JPEG-LS exceeds S_PNG on average.
  const mean = (k: string) => res.body.results.reduce((acc: number, r: { scores: Record<string, number> }) => acc + r.scores[k], 0) / 16;
  assert.ok(mean('complexityJpegLs') > mean('complexity'), `${mean('complexityJpegLs')} vs ${mean('complexity')}`);
  const bt = res.body.batchTest;
  assert.equal(bt.batchSize, 16);
  assert.ok(bt.pValue > 0 && bt.pValue <= 1);
  // MNIST digits are not Fashion-MNIST: a batch of 16 is rejected by the typicality test.
  assert.equal(bt.isOutOfDistribution, true, JSON.stringify(bt));
  const again = await post(app, '/likelihood', { model: model.name, inputs: rows, batchTest: true });
  assert.deepEqual(again.body.batchTest, bt, 'the bootstrap is seeded');
  const noTest = await post(app, '/likelihood', { model: model.name, inputs: rows.slice(0, 1) });
  assert.equal(noTest.body.batchTest, undefined);
});

test('image model: "scores" computes only the listed scores; the rest and an uncomputed anomalyScore are null', async () => {
  const model = packages.find((p) => p.name === 'glow-fashion')!;
  const defaultScore = model.manifest.calibration!.defaultScore;
  const { rows, pixels } = mnistTestImages(4);
  const full = await post(app, '/likelihood', { model: model.name, inputs: rows });
  const onlyNll = await post(app, '/likelihood', { model: model.name, inputs: rows, scores: ['nll'] });
  assert.equal(onlyNll.status, 200, JSON.stringify(onlyNll.body));
  onlyNll.body.results.forEach((r: Record<string, any>, i: number) => {
    assert.equal(r.logLikelihood, full.body.results[i].logLikelihood);
    assert.equal(r.scores.nll, full.body.results[i].scores.nll);
    assert.deepEqual([r.scores.typicality, r.scores.complexity, r.scores.complexityJpegLs, r.anomalyScore, r.isAnomaly], [null, null, null, null, null]);
  });
  const onlyDefault = await post(app, '/likelihood', { model: model.name, inputs: rows, scores: [defaultScore] });
  onlyDefault.body.results.forEach((r: Record<string, any>, i: number) => {
    assert.equal(r.anomalyScore, full.body.results[i].anomalyScore);
    assert.equal(r.scores[defaultScore], full.body.results[i].scores[defaultScore]);
    assert.equal(r.scores.nll, null);
  });
  const none = await post(app, '/likelihood', { model: model.name, inputs: rows, scores: [], batchTest: true });
  assert.equal(none.status, 200);
  assert.equal(none.body.results[0].scores.nll, null);
  assert.equal(none.body.batchTest.batchSize, 4, 'the batch test needs no per-input score');

  // multipart takes the list comma-separated
  const form = new FormData();
  form.append('model', model.name);
  form.append('scores', 'nll, complexityJpegLs');
  const png = await sharp(Buffer.from(pixels[0]), { raw: { width: 28, height: 28, channels: 1 } }).png().toBuffer();
  form.append('file', new Blob([png], { type: 'image/png' }), 'a.png');
  const mp = await app.inject({ method: 'POST', url: '/likelihood', body: form as never });
  assert.equal(mp.statusCode, 200, mp.body);
  const r = mp.json().results[0];
  assert.equal(r.scores.complexityJpegLs, full.body.results[0].scores.complexityJpegLs);
  assert.equal(r.scores.complexity, null);
});

test('image model: uniform noise is flagged by the JPEG-LS complexity score (its code never exceeds the raw pixels)', async () => {
  const model = packages.find((p) => p.name === 'glow-fashion')!;
  let state = 7;
  const noise = Array.from({ length: 4 }, () => Array.from({ length: 784 }, () => ((state = (state * 1103515245 + 12345) >>> 0) >>> 24) / 256 + 1 / 512));
  const res = await post(app, '/likelihood', { model: model.name, inputs: noise, scores: ['complexityJpegLs'] });
  assert.equal(res.status, 200);
  for (const r of res.body.results) assert.equal(r.isAnomaly, true, JSON.stringify(r));
});

test('vector model: the image-code scores are null (no lossless code for real vectors)', async () => {
  const vec = packages.find((p) => p.name === 'realnvp-moons')!;
  const res = await post(app, '/likelihood', { model: vec.name, inputs: vec.reference.inputs });
  assert.equal(res.body.results[0].scores.complexity, null);
  assert.equal(res.body.results[0].scores.complexityJpegLs, null);
  assert.ok(Number.isFinite(res.body.results[0].scores.nll));
});
