// Every error code, as a client would meet it: {error: {code, message, details?}} with the status
// from the one table, and a message naming the field and the rule.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import sharp from 'sharp';
import { post, testApp, MODEL_DIR } from '../helpers/app.js';
import { shippedPackages } from '../helpers/packages.js';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/config.js';
import { STATUS_BY_CODE } from '../../src/errors.js';
import { pngBomb } from '../helpers/images.js';

const packages = shippedPackages();
const vector = packages.find((p) => p.name === 'realnvp-moons')!;
const image = packages.find((p) => p.manifest.data.kind === 'image');
const V = vector.name;

let app: FastifyInstance;
before(async () => {
  app = await testApp({ maxItemsPerRequest: 16, maxSamplesPerRequest: 32, maxImagePixels: 100_000 });
});
after(() => app.close());

function assertError(res: { status: number; body: { error: { code: string; message: string } } }, code: keyof typeof STATUS_BY_CODE, pattern?: RegExp) {
  assert.equal(res.body?.error?.code, code, JSON.stringify(res.body));
  assert.equal(res.status, STATUS_BY_CODE[code]);
  if (pattern) assert.match(res.body.error.message, pattern);
}

test('BAD CALL - body that is not JSON → 400 VALIDATION_ERROR', async () => {
  const res = await app.inject({ method: 'POST', url: '/likelihood', headers: { 'content-type': 'application/json' }, payload: '{"inputs": [[1, 2' });
  assertError({ status: res.statusCode, body: res.json() }, 'VALIDATION_ERROR', /body: not valid JSON/);
});

test('BAD CALL - empty JSON body → 400 VALIDATION_ERROR', async () => {
  const res = await app.inject({ method: 'POST', url: '/sample', headers: { 'content-type': 'application/json' }, payload: '' });
  assertError({ status: res.statusCode, body: res.json() }, 'VALIDATION_ERROR', /body/);
});

test('BAD CALL - missing required field → 400 naming it', async () => {
  assertError(await post(app, '/sample', { model: V }), 'VALIDATION_ERROR', /body\.count: is required/);
  assertError(await post(app, '/decode', { model: V }), 'VALIDATION_ERROR', /body\.latents: is required/);
});

test('BAD CALL - wrong types are not coerced → 400 naming the field', async () => {
  assertError(await post(app, '/sample', { model: V, count: '3' }), 'VALIDATION_ERROR', /body\.count: must be a finite integer/);
  assertError(await post(app, '/likelihood', { model: V, inputs: [[1, 'a']] }), 'VALIDATION_ERROR', /body\.inputs\[0\]\[1\]: must be a finite number/);
  assertError(await post(app, '/likelihood', { model: V, inputs: [1, 2] }), 'VALIDATION_ERROR', /body\.inputs\[0\]: must be an array: send a list of rows/);
  assertError(await post(app, '/likelihood', [1, 2]), 'VALIDATION_ERROR', /body: must be object/);
});

test('BAD CALL - unknown fields are refused, not ignored', async () => {
  assertError(await post(app, '/sample', { model: V, count: 1, temprature: 0.5 }), 'VALIDATION_ERROR', /body\.temprature: is not a known field/);
});

test('BAD CALL - temperature and count out of range → 400', async () => {
  assertError(await post(app, '/sample', { model: V, count: 1, temperature: 0 }), 'VALIDATION_ERROR', /body\.temperature: must be > 0/);
  assertError(await post(app, '/sample', { model: V, count: 1, temperature: 2.5 }), 'VALIDATION_ERROR', /body\.temperature: must be <= 2/);
  assertError(await post(app, '/sample', { model: V, count: 0 }), 'VALIDATION_ERROR', /body\.count: must be >= 1/);
  assertError(await post(app, '/sample', { model: V, count: 1, seed: -1 }), 'VALIDATION_ERROR', /body\.seed/);
});

test('BAD CALL - wrong sample length → 400 INVALID_INPUT with expected and got', async () => {
  const res = await post(app, '/likelihood', { model: V, inputs: [[0.1, 0.2], [0.1, 0.2, 0.3]] });
  assertError(res, 'INVALID_INPUT', /inputs\[1\]: must have 2 values/);
  assert.deepEqual([res.body.error.details.expected, res.body.error.details.got], [2, 3]);
  assertError(await post(app, '/decode', { model: V, latents: [[0.1]] }), 'INVALID_INPUT', /latents\[0\]: must have 2 values/);
});

test('BAD CALL - overflowing numbers (Infinity after parsing) → 400 naming the value', async () => {
  const res = await app.inject({ method: 'POST', url: '/likelihood', headers: { 'content-type': 'application/json' }, payload: `{"model":"${V}","inputs":[[1e400, 0]]}` });
  assertError({ status: res.statusCode, body: res.json() }, 'VALIDATION_ERROR', /body\.inputs\[0\]\[0\]: must be a finite number/);
});

test('BAD CALL - NaN literal is not JSON → 400', async () => {
  const res = await app.inject({ method: 'POST', url: '/likelihood', headers: { 'content-type': 'application/json' }, payload: `{"model":"${V}","inputs":[[NaN, 0]]}` });
  assertError({ status: res.statusCode, body: res.json() }, 'VALIDATION_ERROR', /not valid JSON/);
});

test('BAD CALL - both or neither of inputs and images → 400', async () => {
  assertError(await post(app, '/likelihood', { model: V }), 'INVALID_INPUT', /exactly one of "inputs" or "images"/);
  assertError(await post(app, '/encode', { model: V, inputs: [[0, 0]], images: ['AAAA'] }), 'INVALID_INPUT', /exactly one/);
  assertError(await post(app, '/likelihood', { model: V, inputs: [] }), 'INVALID_INPUT', /inputs: must hold at least one item/);
});

test('BAD CALL - unknown, repeated or unavailable scores → 400 naming scores', async () => {
  const row = [[0, 0]];
  assertError(await post(app, '/likelihood', { model: V, inputs: row, scores: ['nll', 'likelihoodRatio'] }), 'VALIDATION_ERROR', /body\.scores\[1\]: must be one of "nll", "typicality", "complexity", "complexityJpegLs"/);
  assertError(await post(app, '/likelihood', { model: V, inputs: row, scores: ['nll', 'nll'] }), 'VALIDATION_ERROR', /body\.scores: must NOT have duplicate items/);
  assertError(await post(app, '/likelihood', { model: V, inputs: row, scores: 'nll' }), 'VALIDATION_ERROR', /body\.scores: must be array/);
  const res = await post(app, '/likelihood', { model: V, inputs: row, scores: ['complexityJpegLs'] });
  assertError(res, 'INVALID_INPUT', /scores: model .* has no 'complexityJpegLs' score \(it needs an 8-bit image model\)/);
  assert.deepEqual(res.body.error.details.allowed, ['nll', 'typicality']);
  assertError(await post(app, '/encode', { model: V, inputs: row, scores: ['nll'] }), 'INVALID_INPUT', /scores: is only for \/likelihood/);
  const form = new FormData();
  form.append('scores', 'nll,bogus');
  form.append('file', new Blob([Buffer.from('x')], { type: 'image/png' }), 'a.png');
  const mp = await app.inject({ method: 'POST', url: '/likelihood', body: form as never });
  assertError({ status: mp.statusCode, body: mp.json() }, 'INVALID_INPUT', /scores: 'bogus' is not a score/);
});

test('BAD CALL - too many items or samples → 400 LIMIT_EXCEEDED naming the limit', async () => {
  const res = await post(app, '/likelihood', { model: V, inputs: Array.from({ length: 17 }, () => [0, 0]) });
  assertError(res, 'LIMIT_EXCEEDED', /inputs: at most 16 allowed \(MAX_ITEMS_PER_REQUEST\), got 17/);
  assertError(await post(app, '/sample', { model: V, count: 33 }), 'LIMIT_EXCEEDED', /MAX_SAMPLES_PER_REQUEST/);
});

test('BAD CALL - unknown model → 404 MODEL_NOT_FOUND listing the loaded ones', async () => {
  const res = await post(app, '/sample', { model: 'no-such-model', count: 1 });
  assertError(res, 'MODEL_NOT_FOUND', /no-such-model/);
  assert.ok(res.body.error.details.available.includes(V));
  const byPath = await app.inject({ method: 'GET', url: '/models/..%2F..%2Fetc%2Fpasswd' });
  assertError({ status: byPath.statusCode, body: byPath.json() }, 'MODEL_NOT_FOUND');
});

test('BAD CALL - path-like model names are refused by the schema', async () => {
  assertError(await post(app, '/sample', { model: '../models/realnvp-moons', count: 1 }), 'VALIDATION_ERROR', /body\.model/);
});

test('BAD CALL - unknown route → 404 ROUTE_NOT_FOUND', async () => {
  const res = await app.inject({ method: 'GET', url: '/nope' });
  assertError({ status: res.statusCode, body: res.json() }, 'ROUTE_NOT_FOUND');
});

test('BAD CALL - unsupported content type → 415', async () => {
  const res = await app.inject({ method: 'POST', url: '/sample', headers: { 'content-type': 'text/plain' }, payload: 'count=1' });
  assertError({ status: res.statusCode, body: res.json() }, 'UNSUPPORTED_MEDIA_TYPE', /content-type/);
});

test('BAD CALL - body over BODY_LIMIT_BYTES → 413 naming the limit', async () => {
  const small = await testApp({ bodyLimitBytes: 2048 });
  try {
    const res = await post(small, '/likelihood', { model: V, inputs: Array.from({ length: 200 }, () => [0.123456, 0.654321]) });
    assertError(res, 'PAYLOAD_TOO_LARGE', /BODY_LIMIT_BYTES=2048/);
  } finally {
    await small.close();
  }
});

test('BAD CALL - vector model asked for PNG → 400 INVALID_INPUT', async () => {
  assertError(await post(app, '/sample', { model: V, count: 1, format: 'png' }), 'INVALID_INPUT', /format: model .* produces vectors/);
  assertError(await post(app, '/likelihood', { model: V, images: ['iVBORw0KGgo='] }), 'INVALID_INPUT', /images: model .* takes vectors/);
});

test('BAD CALL - image errors → 400 INVALID_IMAGE naming the image', async () => {
  const I = image!.name;
  assertError(await post(app, '/likelihood', { model: I, images: ['not base64!'] }), 'INVALID_IMAGE', /images\[0\]: must be base64/);
  assertError(await post(app, '/likelihood', { model: I, images: [Buffer.from('hello world, not an image').toString('base64')] }), 'INVALID_IMAGE', /images\[0\]: not a decodable/);
  const gif = await sharp({ create: { width: 28, height: 28, channels: 3, background: '#000' } }).gif().toBuffer();
  assertError(await post(app, '/likelihood', { model: I, images: [gif.toString('base64')] }), 'INVALID_IMAGE', /format 'gif' is not supported/);
  const png = await sharp({ create: { width: 28, height: 28, channels: 3, background: '#888' } }).png().toBuffer();
  const truncated = png.subarray(0, png.length - 20);
  assertError(await post(app, '/likelihood', { model: I, images: [png.toString('base64'), truncated.toString('base64')] }), 'INVALID_IMAGE', /images\[1\]/);
  // An image bomb: a small file whose header claims 20000×20000 pixels is refused before decoding.
  const bomb = pngBomb(20000, 20000);
  assertError(await post(app, '/likelihood', { model: I, images: [bomb.toString('base64')], resize: true }), 'INVALID_IMAGE', /pixels allowed \(MAX_IMAGE_PIXELS\)|pixel limit/);
});

test('BAD CALL - missing or wrong API key → 401; probes stay open', async () => {
  const secured = await testApp({ apiKey: 's3cret' });
  try {
    assertError(await post(secured, '/sample', { model: V, count: 1 }), 'UNAUTHORIZED');
    const wrong = await secured.inject({ method: 'POST', url: '/sample', headers: { authorization: 'Bearer nope' }, payload: { model: V, count: 1 } });
    assert.equal(wrong.statusCode, 401);
    const ok = await secured.inject({ method: 'POST', url: '/sample', headers: { authorization: 'Bearer s3cret' }, payload: { model: V, count: 1 } });
    assert.equal(ok.statusCode, 200);
    for (const url of ['/healthz', '/readyz', '/metrics']) assert.equal((await secured.inject({ method: 'GET', url })).statusCode, 200, url);
    assert.equal((await secured.inject({ method: 'GET', url: '/models' })).statusCode, 401);
  } finally {
    await secured.close();
  }
});

test('BAD CALL - queue full → 429 OVERLOADED with Retry-After', async () => {
  const tiny = await testApp({ maxQueueSize: 2, maxItemsPerRequest: 2, maxSamplesPerRequest: 2 });
  try {
    // One request can no longer exceed the queue (MAX_QUEUE_SIZE must hold one allowed request):
    // 16 requests at once fill it while the first batch runs, and the rest are shed.
    const all = await Promise.all(Array.from({ length: 16 }, () => post(tiny, '/likelihood', { model: V, inputs: [[0, 0], [0, 0]] })));
    const shed = all.filter((r) => r.status === 429);
    assert.ok(shed.length > 0, `statuses ${all.map((r) => r.status)}`);
    assert.ok(all.every((r) => r.status === 200 || r.status === 429), `statuses ${all.map((r) => r.status)}`);
    assertError(shed[0], 'OVERLOADED', /MAX_QUEUE_SIZE=2/);
    assert.equal(shed[0].headers['retry-after'], '1');
  } finally {
    await tiny.close();
  }
});

test('BAD CALL - request past REQUEST_TIMEOUT_MS → 504 TIMEOUT', async () => {
  const hurried = await testApp({ requestTimeoutMs: 1, maxBatchSize: 4 });
  try {
    const res = await post(hurried, '/sample', { model: V, count: 200, seed: 1 });
    assertError(res, 'TIMEOUT', /REQUEST_TIMEOUT_MS=1/);
  } finally {
    await hurried.close();
  }
});

test('BAD CALL - request before models are warm → 503 NOT_READY with Retry-After', async () => {
  const config = loadConfig({}, { modelDir: MODEL_DIR, logLevel: 'silent' });
  const cold = await buildApp(config);
  await cold.ready();
  try {
    const res = await post(cold, '/sample', { model: V, count: 1 });
    assertError(res, 'NOT_READY');
    assert.equal(res.headers['retry-after'], '1');
    assert.equal((await cold.inject({ method: 'GET', url: '/readyz' })).statusCode, 503);
    assert.equal((await cold.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
  } finally {
    await cold.flowserve.whenReady();
    await cold.close();
  }
});

test('BAD CALL - inference failure → 500 INFERENCE_FAILED without internals', async () => {
  const faulty = await testApp();
  try {
    // Fault injection: the ORT run itself fails.
    const pool = (faulty.flowserve as unknown as { pool: { run: () => Promise<never> } }).pool;
    pool.run = () => Promise.reject(new Error('ORT: /secret/path/model.onnx failed at node Conv_12'));
    const res = await post(faulty, '/likelihood', { model: V, inputs: [[0, 0]] });
    assertError(res, 'INFERENCE_FAILED', /^inference failed$/);
    assert.doesNotMatch(JSON.stringify(res.body), /secret|Conv_12|stack/);
  } finally {
    await faulty.close();
  }
});

test('BAD CALL - tampered package → refused at load, 503 MODEL_UNAVAILABLE; the others serve', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flowserve-models-'));
  try {
    await cp(vector.dir, join(dir, V), { recursive: true });
    await cp(vector.dir, join(dir, 'broken'), { recursive: true });
    const manifest = JSON.parse(await readFile(join(dir, 'broken', 'flow.json'), 'utf8'));
    manifest.name = 'broken';
    await writeFile(join(dir, 'broken', 'flow.json'), JSON.stringify(manifest));
    const weights = join(dir, 'broken', 'weights.bin');
    const bytes = await readFile(weights);
    bytes[100] ^= 0xff;
    await writeFile(weights, bytes);
    const partial = await testApp({ modelDir: dir });
    try {
      const res = await post(partial, '/sample', { model: 'broken', count: 1 });
      assertError(res, 'MODEL_UNAVAILABLE', /sha256 mismatch/);
      assert.equal((await post(partial, '/sample', { model: V, count: 1 })).status, 200);
      const ready = await partial.inject({ method: 'GET', url: '/readyz' });
      assert.equal(ready.statusCode, 200);
      assert.equal(ready.json().models.broken.status, 'unavailable');
    } finally {
      await partial.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('BAD CALL - crashed inference worker → 503 for its requests only; the worker is replaced', async () => {
  const crashy = await testApp();
  try {
    const pending = post(crashy, '/sample', { model: V, count: 256, seed: 1 });
    await crashy.flowserve.killWorker(0);
    const res = await pending;
    assert.ok(res.status === 200 || (res.status === 503 && res.body.error.code === 'MODEL_UNAVAILABLE'), JSON.stringify(res.body).slice(0, 200));
    // The replacement serves.
    let ok = false;
    for (let i = 0; i < 50 && !ok; i++) {
      ok = (await post(crashy, '/sample', { model: V, count: 1 })).status === 200;
      if (!ok) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(ok, 'model serves again after the crash');
    assert.equal(crashy.flowserve.restarts, 1);
  } finally {
    await crashy.close();
  }
});

test('BAD CALL - output forms and formats: every allowed value is named, impossible combinations are refused by name', async () => {
  assertError(await post(app, '/sample', { model: V, count: 1, format: 'jpeg' }), 'VALIDATION_ERROR', /body\.format: must be one of "array", "png"/);
  assertError(await post(app, '/sample', { model: V, count: 1, output: 'rounded' }), 'VALIDATION_ERROR', /body\.output: must be one of "raw", "clamped", "quantized"/);
  assertError(await post(app, '/sample', { model: V, count: 1, output: 'quantized' }), 'INVALID_INPUT', /output: model .* has no bit depth .*its forms are "raw"/);
  assertError(await post(app, '/decode', { model: V, latents: [[0, 0]], output: 'clamped' }), 'INVALID_INPUT', /output: model .* has no data range/);
  assertError(await post(app, '/sample', { model: V, count: 1, format: 'png' }), 'INVALID_INPUT', /format: model .* produces vectors: use "array"/);
  if (image) {
    const latents = [new Array(image.manifest.latent.size).fill(0)];
    assertError(await post(app, '/sample', { model: image.name, count: 1, format: 'png', output: 'raw' }), 'INVALID_INPUT', /format: "png" holds quantized pixels: use output "quantized" or format "array"/);
    assertError(await post(app, '/decode', { model: image.name, latents, format: 'png', output: 'clamped' }), 'INVALID_INPUT', /format: "png" holds quantized pixels/);
  }
});

test('BAD CALL - a temperature above the model\'s measured range → 400 naming the range', async () => {
  const measured = packages.find((p) => p.manifest.sampling && p.manifest.sampling.maxTemperature < 2);
  assert.ok(measured, 'a shipped model has a measured temperature range below 2');
  const max = measured.manifest.sampling!.maxTemperature;
  const res = await post(app, '/sample', { model: measured.name, count: 1, temperature: Math.min(2, max + 0.05) });
  assertError(res, 'INVALID_INPUT', new RegExp(`temperature: must be at most ${max} for model ${measured.name}: its measured usable range is 0 < T ≤ ${max}`));
  assert.equal(res.body.error.details.max, max);
  assert.equal((await post(app, '/sample', { model: measured.name, count: 1, temperature: max, format: 'array' })).status, 200);
});

test('BAD CALL - dequantization options: only for /likelihood, "uniform" only for quantized data, draws and seed only with "uniform"', async () => {
  const row = [[0.1, 0.2]];
  assertError(await post(app, '/likelihood', { model: V, inputs: row, dequantization: 'uniform' }), 'INVALID_INPUT', /dequantization: "uniform" needs quantized data/);
  assertError(await post(app, '/likelihood', { model: V, inputs: row, dequantization: 'gaussian' }), 'VALIDATION_ERROR', /body\.dequantization: must be one of "centre", "uniform"/);
  assertError(await post(app, '/likelihood', { model: V, inputs: row, draws: 4 }), 'INVALID_INPUT', /draws: is only for dequantization "uniform"/);
  assertError(await post(app, '/likelihood', { model: V, inputs: row, seed: 4 }), 'INVALID_INPUT', /seed: is only for dequantization "uniform"/);
  assertError(await post(app, '/encode', { model: V, inputs: row, dequantization: 'centre' }), 'INVALID_INPUT', /dequantization: is only for \/likelihood/);
  assertError(await post(app, '/likelihood', { model: V, inputs: row, dequantization: 'uniform', draws: 65 }), 'VALIDATION_ERROR', /body\.draws: must be <= 64/);
  if (image) {
    const px = [new Array(image.manifest.latent.size).fill(0.5)];
    // 16 items per request in this app: 2 inputs × 9 draws = 18 rows
    assertError(await post(app, '/likelihood', { model: image.name, inputs: [px[0], px[0]], dequantization: 'uniform', draws: 9 }), 'LIMIT_EXCEEDED', /draws: at most 16 rows \(inputs × draws\) allowed \(MAX_ITEMS_PER_REQUEST\), got 18/);
    const outside = [px[0].map((v, i) => (i === 3 ? 1.01 : v))];
    if (image.manifest.preprocessing.transform.kind !== 'logit' || 1.01 < 1.05)
      assertError(await post(app, '/likelihood', { model: image.name, inputs: outside, dequantization: 'uniform' }), 'INVALID_INPUT', /inputs\[0\]\[3\]: dequantization "uniform" scores 8-bit pixels: values must lie in the data range \[0, 1\], got 1\.01/);
  }
});

test('BAD CALL - inputs outside the model\'s support name the open interval; values outside [0, 1] inside it are accepted', async () => {
  const logit = packages.find((p) => p.manifest.preprocessing.transform.kind === 'logit');
  assert.ok(logit, 'a shipped model has logit preprocessing');
  const d = logit.manifest.latent.size;
  const alpha = (logit.manifest.preprocessing.transform as { alpha: number }).alpha;
  const lo = -alpha / (1 - 2 * alpha);
  const row = new Array(d).fill(0.5);
  assert.equal((await post(app, '/likelihood', { model: logit.name, inputs: [row.map((v, i) => (i === 7 ? lo / 2 : v))] })).status, 200, 'a value below 0 but inside the support');
  assertError(await post(app, '/likelihood', { model: logit.name, inputs: [row.map((v, i) => (i === 7 ? lo : v))] }), 'INVALID_INPUT', /inputs\[0\]\[7\]: must lie in the model's support, the open interval \(-0\.05\d+, 1\.05\d+\)/);
  const affine = packages.find((p) => p.manifest.data.kind === 'image' && p.manifest.preprocessing.transform.kind !== 'logit');
  if (affine) assert.equal((await post(app, '/encode', { model: affine.name, inputs: [new Array(affine.manifest.latent.size).fill(1.5)] })).status, 200, 'affine preprocessing is defined on all reals');
});

test('BAD CALL - nested [C][H][W] arrays get a hint to flatten', async () => {
  const res = await post(app, '/likelihood', { model: V, inputs: [[[0.1], [0.2]]] });
  assertError(res, 'VALIDATION_ERROR', /body\.inputs\[0\]\[0\]: must be a finite number; each row is one flat array of numbers: flatten nested arrays row-major/);
});

test('BAD CALL - ODE tolerances on a model that is not continuous → 400 naming the field', async () => {
  assertError(await post(app, '/likelihood', { model: V, inputs: [[0.1, 0.2]], atol: 1e-6 }), 'INVALID_INPUT', /atol: is only for continuous flows \(family ffjord\); model realnvp-moons is realnvp/);
  assertError(await post(app, '/sample', { model: V, count: 1, rtol: 1e-6 }), 'INVALID_INPUT', /rtol: is only for continuous flows/);
  assertError(await post(app, '/sample', { model: V, count: 1, rtol: 0 }), 'VALIDATION_ERROR', /body\.rtol: must be >= 1e-12/);
});
