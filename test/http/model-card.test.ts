// A client can build a valid request for every route from GET /models/{name} alone: this test
// reads nothing else (no manifest, no constants from src/) and calls every route, every output
// form and format, every dequantization protocol, at the limits the document states.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import sharp from 'sharp';
import { post, testApp } from '../helpers/app.js';

let app: FastifyInstance;
before(async () => {
  app = await testApp();
});
after(() => app.close());

const get = async (url: string) => (await app.inject({ method: 'GET', url })).json();

/** A value every input accepts: inside the range when there is one, and inside the open support. */
function safeValue(input: { range: number[] | null; support: { min: number | null; max: number | null } }): number {
  if (input.range) return (input.range[0] + input.range[1]) / 2;
  const { min, max } = input.support;
  if (min !== null && max !== null) return (min + max) / 2;
  return min !== null ? min + 1 : max !== null ? max - 1 : 0;
}

test('every route, form, format and protocol can be called from GET /models/{name} alone', async () => {
  const { models } = await get('/models');
  assert.ok(models.length >= 4);
  for (const { name } of models) {
    const doc = await get(`/models/${name}`);
    const ok = (res: { status: number; body: unknown }, what: string) => assert.equal(res.status, 200, `${name} ${what}: ${JSON.stringify(res.body).slice(0, 300)}`);
    const { input, limits, sampling, outputs, likelihood } = doc;
    assert.equal(input.size, input.shape.reduce((a: number, b: number) => a * b, 1));
    const row = new Array(input.size).fill(safeValue(input));
    const two = [row, row.map((v: number, i: number) => (i % 2 ? v : v * 0.9))];

    ok(await post(app, '/encode', { model: name, inputs: two }), 'encode');
    if (input.images) {
      const { channels, height, width } = input.images;
      const png = await sharp(Buffer.alloc(channels * height * width, 128), { raw: { channels, height, width } }).png().toBuffer();
      ok(await post(app, '/likelihood', { model: name, images: [png.toString('base64')] }), 'likelihood images');
      ok(await post(app, '/encode', { model: name, images: [png.toString('base64')] }), 'encode images');
    }
    for (const dequantization of likelihood.dequantization) {
      const extra = dequantization === 'uniform' ? { draws: Math.min(likelihood.maxDraws, Math.floor(limits.maxItemsPerRequest / two.length)), seed: 1 } : {};
      const res = await post(app, '/likelihood', { model: name, inputs: two, dequantization, ...extra, batchTest: likelihood.batchTest, scores: likelihood.scores });
      ok(res, `likelihood ${dequantization}`);
      assert.equal((res.body as { protocol: { dequantization: string } }).protocol.dequantization, input.bitDepth === null ? 'none' : dequantization);
    }
    // the limits are what the document says
    const tooMany = await post(app, '/encode', { model: name, inputs: new Array(limits.maxItemsPerRequest + 1).fill(row) });
    assert.equal(tooMany.status, 400);

    const t = sampling.temperature;
    for (const temperature of [t.default, t.max])
      for (const output of outputs.forms)
        for (const format of outputs.formats) {
          if (format === 'png' && output !== outputs.pngNeedsOutput) continue;
          ok(await post(app, '/sample', { model: name, count: 2, temperature, seed: sampling.seed.max, output, format }), `sample T=${temperature} ${output} ${format}`);
        }
    ok(await post(app, '/sample', { model: name, count: 1 }), 'sample with defaults');
    const over = await post(app, '/sample', { model: name, count: 1, temperature: t.max + 0.01 });
    assert.equal(over.status, 400, `${name}: a temperature above sampling.temperature.max is refused`);

    const latents = [new Array(doc.latentSize).fill(0.1)];
    for (const output of outputs.forms) ok(await post(app, '/decode', { model: name, latents, output }), `decode ${output}`);
    if (outputs.formats.includes('png')) ok(await post(app, '/decode', { model: name, latents, format: 'png' }), 'decode png');
  }
});

test('the card labels the quality figures with their protocol and gives the calibration facts', async () => {
  const { models } = await get('/models');
  for (const m of models) {
    assert.ok(m.quality.label.length > 0);
    if (m.quality.protocol) assert.match(m.quality.label, m.quality.protocol.dequantization === 'uniform' ? /uniform dequantization/ : /continuous|centres/);
    if (m.calibration) {
      assert.equal(typeof m.calibration.threshold, 'number');
      assert.ok(m.calibration.count > 0);
    }
  }
});

test('the card carries the default score\'s in-distribution quantiles: its threshold sits at the target false-positive rate', async () => {
  const { models } = await get('/models');
  for (const m of models) {
    const cal = m.calibration;
    assert.ok(cal, `${m.name}: every shipped model is calibrated`);
    assert.ok(cal.distribution, `${m.name}: no distribution`);
    assert.equal(cal.distribution.score, cal.defaultScore);
    const q: number[] = cal.distribution.quantiles;
    assert.equal(q.length, 101);
    for (let i = 1; i < q.length; i++) assert.ok(q[i] >= q[i - 1], `${m.name}: quantiles not sorted at ${i}`);
    assert.equal(cal.thresholds[cal.defaultScore], cal.threshold);
    // the threshold is the (1 − FPR) quantile of the same held-out scores
    const at = Math.round((1 - cal.targetFalsePositiveRate) * 100);
    assert.ok(cal.threshold >= q[at - 1] && cal.threshold <= q[at + 1], `${m.name}: threshold ${cal.threshold} not near the ${at} % quantile ${q[at]}`);
    for (const s of m.likelihood.scores) if (s !== 'typicality' || cal.thresholds.typicality !== undefined) assert.equal(typeof cal.thresholds[s], 'number', `${m.name}: ${s}`);
  }
});
