// The Open Inference Protocol answers equal the native API's answers BIT FOR BIT, for all four
// operations on every shipped model. Inputs are exact in float32 (pixel centres (k + 0.5)/256 for
// image models, float32-rounded reference rows for vector models) or sent as FP64; outputs come
// back as binary FP64 (as Triton's Python client asks by default) and are compared with Object.is
// per element against the native JSON numbers (which round-trip doubles exactly). Requests run one
// after another, so both protocols see the same batches.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { post, testApp } from '../helpers/app.js';
import { mnistTestImages, shippedPackages } from '../helpers/packages.js';
import { InferInput, V2Client, injectTransport, type InferResult } from '../helpers/v2-client.js';

let app: FastifyInstance;
let client: V2Client;
before(async () => {
  app = await testApp();
  client = new V2Client(injectTransport(app));
});
after(() => app.close());

/** Object.is per element; JSON has no −0, so a binary −0 may stand for a JSON 0. */
function assertSame(what: string, v2: ArrayLike<number> | null, native: ArrayLike<number>): void {
  assert.ok(v2, `${what}: missing from the v2 answer`);
  assert.equal(v2.length, native.length, `${what}: length`);
  for (let i = 0; i < native.length; i++) {
    const a: number = v2[i];
    const b: number = native[i];
    if (!(Object.is(a, b) || (a === 0 && b === 0))) assert.fail(`${what}[${i}]: v2 ${a} vs native ${b} (differ by ${a - b})`);
  }
}

const column = <T>(results: T[], pick: (r: T) => number | boolean | null) => results.map((r) => Number(pick(r)));

for (const pkg of shippedPackages()) {
  const { name, manifest } = pkg;
  const isImage = manifest.data.kind === 'image';
  const rows = 3; // ffjord (an ODE solve per row) and MAF (D passes to invert) stay quick at 3
  const shape = manifest.data.shape;
  // exact in float32: pixel centres, or the reference rows rounded to float32
  const x32: number[][] = isImage ? mnistTestImages(rows, 10).rows : pkg.reference.inputs.slice(0, rows).map((r) => r.map(Math.fround));
  // any doubles: sent as FP64
  const x64: number[][] = isImage ? x32 : pkg.reference.inputs.slice(0, rows);

  test(`${name}: likelihood over v2 (FP32 binary x${isImage ? ', UINT8 pixels' : ''}) = native /likelihood, every output bit for bit`, async () => {
    const native = await post(app, '/likelihood', { model: name, inputs: x32 });
    assert.equal(native.status, 200, JSON.stringify(native.body).slice(0, 300));
    const v2 = await client.infer(name, [new InferInput('x', [rows, ...shape], 'FP32').setData(x32.flat())]);
    const results = native.body.results as { logLikelihood: number; bitsPerDim: number; scores: Record<string, number | null>; anomalyScore: number | null; isAnomaly: boolean | null }[];
    assertSame('logLikelihood', v2.asArray('logLikelihood'), column(results, (r) => r.logLikelihood));
    assertSame('bitsPerDim', v2.asArray('bitsPerDim'), column(results, (r) => r.bitsPerDim));
    const expected = ['logLikelihood', 'bitsPerDim'];
    for (const [score, value] of Object.entries(results[0].scores)) {
      if (value === null) continue;
      expected.push(score);
      assertSame(score, v2.asArray(score), column(results, (r) => r.scores[score]));
    }
    if (results[0].anomalyScore !== null) {
      expected.push('anomalyScore', 'isAnomaly');
      assertSame('anomalyScore', v2.asArray('anomalyScore'), column(results, (r) => r.anomalyScore));
      assertSame('isAnomaly', v2.asArray('isAnomaly'), column(results, (r) => r.isAnomaly));
    }
    assert.deepEqual(v2.getResponse().outputs.map((o) => o.name), expected, 'exactly the outputs the native answer carries');
    assert.equal(v2.getResponse().parameters!.dequantization, native.body.protocol.dequantization);
    if (isImage) {
      const pixels = mnistTestImages(rows, 10).pixels.flatMap((p) => Array.from(p));
      const viaPixels = await client.infer(name, [new InferInput('pixels', [rows, ...shape], 'UINT8').setData(pixels)]);
      assert.deepEqual(viaPixels.buffer, v2.buffer, 'UINT8 pixels: the same bytes');
    }
  });

  test(`${name}: encode over v2 (FP64 binary x) = native /encode: latents and logDet bit for bit`, async () => {
    const native = await post(app, '/encode', { model: name, inputs: x64 });
    assert.equal(native.status, 200, JSON.stringify(native.body).slice(0, 300));
    // rows flattened ([N, D]): the other shape v2 takes besides [N, ...data shape]
    const d = x64[0].length;
    const v2 = await client.infer(`${name}.encode`, [new InferInput('x', [rows, d], 'FP64').setData(x64.flat())]);
    assert.deepEqual(v2.getOutput('latents')!.shape, [rows, d]);
    assertSame('latents', v2.asArray('latents'), native.body.latents.flat());
    assertSame('logDet', v2.asArray('logDet'), native.body.logDet);
  });

  test(`${name}: decode over v2 (FP64 binary latents from /encode) = native /decode: x${isImage ? ', pixels' : ''} and logLikelihood bit for bit`, async () => {
    const enc = await post(app, '/encode', { model: name, inputs: x64 });
    const latents: number[][] = enc.body.latents;
    const native = await post(app, '/decode', { model: name, latents, format: 'array' });
    assert.equal(native.status, 200, JSON.stringify(native.body).slice(0, 300));
    const v2 = await decode(name, latents);
    assert.equal(v2.getResponse().parameters!.output, native.body.output);
    assert.deepEqual(v2.getOutput('x')!.shape, [rows, ...shape]);
    assertSame('x', v2.asArray('x'), native.body.outputs.flat());
    assertSame('logLikelihood', v2.asArray('logLikelihood'), native.body.logLikelihood);
    if (native.body.output === 'quantized') {
      const levels = 2 ** manifest.data.bitDepth!;
      assertSame('pixels', v2.asArray('pixels'), native.body.outputs.flat().map((v: number) => v * levels - 0.5));
    } else assert.equal(v2.getOutput('pixels'), undefined);
  });

  test(`${name}: seeded sample over v2 (count, seed, temperature) = native /sample: x, logLikelihood, latents and the parameters bit for bit`, async () => {
    const meta = await client.getModelMetadata(`${name}.sample`);
    const temperature = Math.min(manifest.defaultTemperature, meta.parameters!.maxTemperature as number) * 0.75;
    const native = await post(app, '/sample', { model: name, count: rows, seed: 20260, temperature, format: 'array', returnLatents: true });
    assert.equal(native.status, 200, JSON.stringify(native.body).slice(0, 300));
    const v2 = await client.infer(`${name}.sample`, [], { parameters: { count: rows, seed: 20260, temperature } });
    const p = v2.getResponse().parameters!;
    assert.deepEqual([p.temperature, p.seed, p.redrawn, p.output], [native.body.temperature, native.body.seed, native.body.redrawn, native.body.output]);
    assertSame('x', v2.asArray('x'), native.body.outputs.flat());
    assertSame('logLikelihood', v2.asArray('logLikelihood'), native.body.logLikelihood);
    assertSame('latents', v2.asArray('latents'), native.body.latents.flat());
  });
}

function decode(name: string, latents: number[][]): Promise<InferResult> {
  return client.infer(`${name}.decode`, [new InferInput('latents', [latents.length, latents[0].length], 'FP64').setData(latents.flat())]);
}
