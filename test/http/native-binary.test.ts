// Native binary bodies (Content-Type: application/octet-stream) on /likelihood, /encode and
// /decode: the tensor is the body (little-endian, row-major FP32, FP64, or UINT8 pixels of an 8-bit
// image model), the JSON body's other fields come as query parameters, and an optional
// Tensor-Shape header must agree with the body. Every binary answer equals the JSON answer for the
// same values (deepEqual of the whole response).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import sharp from 'sharp';
import { post, testApp } from '../helpers/app.js';
import { mnistTestImages, shippedPackages } from '../helpers/packages.js';
import { STATUS_BY_CODE } from '../../src/errors.js';

const VEC = 'realnvp-moons';
const IMG = 'glow-fashion';
const ODE = shippedPackages().find((p) => p.manifest.program?.kind === 'ode')!.name;
const OCTET = { 'content-type': 'application/octet-stream' };

let app: FastifyInstance;
before(async () => {
  app = await testApp();
});
after(() => app.close());

const f32 = (rows: number[][]) => Buffer.from(new Float32Array(rows.flat()).buffer);
const f64 = (rows: number[][]) => Buffer.from(new Float64Array(rows.flat()).buffer);

/** Rows exact in float32 (the JSON twin of an FP32 body must hold the same values). */
const VEC_ROWS = [
  [0.5, 0.25],
  [1, -0.5],
  [-0.75, 0.125],
];
/** Doubles that float32 cannot hold: for FP64 bodies. */
const VEC_ROWS_64 = [
  [0.1, 0.2],
  [1 / 3, -Math.PI / 7],
];

async function binary(url: string, body: Buffer, headers: Record<string, string> = {}) {
  const res = await app.inject({ method: 'POST', url, payload: body, headers: { ...OCTET, ...headers } });
  return { status: res.statusCode, body: res.json(), headers: res.headers };
}

function assertError(res: { status: number; body: { error: { code: string; message: string } } }, code: keyof typeof STATUS_BY_CODE, pattern?: RegExp) {
  assert.equal(res.body?.error?.code, code, JSON.stringify(res.body));
  assert.equal(res.status, STATUS_BY_CODE[code]);
  if (pattern) assert.match(res.body.error.message, pattern);
}

test('/likelihood: FP32 and FP64 bodies answer exactly as JSON does', async () => {
  const json32 = await post(app, '/likelihood', { model: VEC, inputs: VEC_ROWS });
  assert.equal(json32.status, 200);
  const b32 = await binary(`/likelihood?model=${VEC}`, f32(VEC_ROWS));
  assert.equal(b32.status, 200, JSON.stringify(b32.body));
  assert.deepEqual(b32.body, json32.body);
  const explicit = await binary(`/likelihood?model=${VEC}&datatype=FP32`, f32(VEC_ROWS));
  assert.deepEqual(explicit.body, json32.body);

  const json64 = await post(app, '/likelihood', { model: VEC, inputs: VEC_ROWS_64 });
  const b64 = await binary(`/likelihood?model=${VEC}&datatype=FP64`, f64(VEC_ROWS_64));
  assert.equal(b64.status, 200);
  assert.deepEqual(b64.body, json64.body);
  // the datatype decides how the bytes are read: FP64 bytes read as FP32 are twice the rows
  const misread = await binary(`/likelihood?model=${VEC}`, f64(VEC_ROWS_64));
  assert.ok(misread.status !== 200 || misread.body.results.length === 2 * VEC_ROWS_64.length);
});

test('/likelihood: UINT8 pixels of an 8-bit image model = the JSON rows at pixel centres = the PNGs', async () => {
  const { pixels, rows } = mnistTestImages(3);
  const json = await post(app, '/likelihood', { model: IMG, inputs: rows });
  const px = Buffer.concat(pixels.map((p) => Buffer.from(p)));
  const viaPixels = await binary(`/likelihood?model=${IMG}&datatype=UINT8`, px);
  assert.equal(viaPixels.status, 200, JSON.stringify(viaPixels.body));
  assert.deepEqual(viaPixels.body, json.body);
  assert.deepEqual((await binary(`/likelihood?model=${IMG}`, f32(rows))).body, json.body);
  const pngs = await Promise.all(pixels.map((p) => sharp(Buffer.from(p), { raw: { width: 28, height: 28, channels: 1 } }).png().toBuffer()));
  const viaPng = await post(app, '/likelihood', { model: IMG, images: pngs.map((p) => p.toString('base64')) });
  assert.deepEqual(viaPng.body.results, json.body.results);
});

test('/likelihood: the JSON body\'s options as query parameters (scores, dequantization, draws, seed, batchTest)', async () => {
  const { rows } = mnistTestImages(4);
  const json = await post(app, '/likelihood', { model: IMG, inputs: rows, scores: ['nll', 'complexityJpegLs'], dequantization: 'uniform', draws: 2, seed: 5, batchTest: true });
  assert.equal(json.status, 200, JSON.stringify(json.body).slice(0, 300));
  const bin = await binary(`/likelihood?model=${IMG}&scores=nll,complexityJpegLs&dequantization=uniform&draws=2&seed=5&batchTest=true`, f32(rows));
  assert.equal(bin.status, 200, JSON.stringify(bin.body).slice(0, 300));
  assert.deepEqual(bin.body, json.body);
  // a continuous flow's solver tolerances
  const tol = { atol: 1e-7, rtol: 1e-7 };
  const odeJson = await post(app, '/likelihood', { model: ODE, inputs: VEC_ROWS.slice(0, 2), ...tol });
  const odeBin = await binary(`/likelihood?model=${ODE}&atol=1e-7&rtol=1e-7`, f32(VEC_ROWS.slice(0, 2)));
  assert.equal(odeBin.status, 200, JSON.stringify(odeBin.body).slice(0, 300));
  assert.deepEqual(odeBin.body, odeJson.body);
});

test('Tensor-Shape header: [N, ...data shape] or [N, D] that agree with the body are served', async () => {
  const { pixels, rows } = mnistTestImages(2);
  const json = await post(app, '/likelihood', { model: IMG, inputs: rows });
  for (const shape of ['2,1,28,28', '2,784', '2, 1, 28, 28'])
    assert.deepEqual((await binary(`/likelihood?model=${IMG}&datatype=UINT8`, Buffer.concat(pixels.map((p) => Buffer.from(p))), { 'tensor-shape': shape })).body, json.body, shape);
  assert.equal((await binary(`/likelihood?model=${VEC}`, f32(VEC_ROWS), { 'tensor-shape': '3,2' })).status, 200);
  assert.equal((await binary(`/encode?model=${VEC}`, f32(VEC_ROWS), { 'tensor-shape': '3,2' })).status, 200);
  assert.equal((await binary(`/decode?model=${VEC}`, f32(VEC_ROWS), { 'tensor-shape': '3,2' })).status, 200);
});

test('BAD CALL - Tensor-Shape that disagrees with the body → 400 INVALID_INPUT', async () => {
  const { rows } = mnistTestImages(2);
  for (const shape of ['2,2', '1,6', '6', '3,2,1', '3,1,2', '', 'a,b', '3,2,', '4,2', '3.0,2', '0x3,2', '3e0,2', '+3,2'])
    assertError(await binary(`/likelihood?model=${VEC}`, f32(VEC_ROWS), { 'tensor-shape': shape }), 'INVALID_INPUT', /Tensor-Shape/);
  assertError(await binary(`/likelihood?model=${VEC}`, f32(VEC_ROWS), { 'tensor-shape': '2,2' }), 'INVALID_INPUT', /Tensor-Shape: '2,2' does not match the body: 3 rows of \[2\]/);
  assertError(await binary(`/likelihood?model=${IMG}`, f32(rows), { 'tensor-shape': '2,1,784' }), 'INVALID_INPUT', /Tensor-Shape/);
  assertError(await binary(`/likelihood?model=${IMG}`, f32(rows), { 'tensor-shape': '2,28,28,1' }), 'INVALID_INPUT', /Tensor-Shape/);
  assertError(await binary(`/decode?model=${VEC}`, f32(VEC_ROWS), { 'tensor-shape': '2,3' }), 'INVALID_INPUT', /Tensor-Shape/);
});

test('/encode: FP32, FP64 and UINT8 bodies answer exactly as JSON does', async () => {
  const json = await post(app, '/encode', { model: VEC, inputs: VEC_ROWS });
  assert.deepEqual((await binary(`/encode?model=${VEC}`, f32(VEC_ROWS))).body, json.body);
  const json64 = await post(app, '/encode', { model: VEC, inputs: VEC_ROWS_64 });
  assert.deepEqual((await binary(`/encode?model=${VEC}&datatype=FP64`, f64(VEC_ROWS_64))).body, json64.body);
  const { pixels, rows } = mnistTestImages(2, 3);
  const img = await post(app, '/encode', { model: IMG, inputs: rows });
  assert.deepEqual((await binary(`/encode?model=${IMG}&datatype=UINT8`, Buffer.concat(pixels.map((p) => Buffer.from(p))))).body, img.body);
});

test('/decode: FP32 and FP64 latents answer exactly as JSON does, with output and format as query parameters', async () => {
  const enc = await post(app, '/encode', { model: VEC, inputs: VEC_ROWS_64 });
  const latents: number[][] = enc.body.latents;
  const json64 = await post(app, '/decode', { model: VEC, latents });
  const bin64 = await binary(`/decode?model=${VEC}&datatype=FP64`, f64(latents));
  assert.equal(bin64.status, 200);
  assert.deepEqual(bin64.body, json64.body);
  const z32 = latents.map((r) => r.map(Math.fround));
  assert.deepEqual((await binary(`/decode?model=${VEC}`, f32(z32))).body, (await post(app, '/decode', { model: VEC, latents: z32 })).body);

  const { rows } = mnistTestImages(2, 7);
  const imgLatents: number[][] = (await post(app, '/encode', { model: IMG, inputs: rows })).body.latents;
  for (const query of [{ output: 'raw', format: 'array' }, { output: 'clamped', format: 'array' }, { format: 'png' }, {}] as Record<string, string>[]) {
    const json = await post(app, '/decode', { model: IMG, latents: imgLatents, ...query });
    const qs = new URLSearchParams({ model: IMG, datatype: 'FP64', ...query }).toString();
    const bin = await binary(`/decode?${qs}`, f64(imgLatents));
    assert.equal(bin.status, 200, `${qs}: ${JSON.stringify(bin.body).slice(0, 200)}`);
    assert.deepEqual(bin.body, json.body, qs);
  }
});

test('BAD CALL - query parameters with a JSON body → 400 (they are for binary bodies only)', async () => {
  for (const [url, body] of [
    [`/likelihood?model=${VEC}`, { model: VEC, inputs: VEC_ROWS }],
    [`/likelihood?seed=3`, { model: VEC, inputs: VEC_ROWS }],
    [`/encode?datatype=FP64`, { model: VEC, inputs: VEC_ROWS }],
    [`/decode?output=raw`, { model: VEC, latents: VEC_ROWS }],
  ] as const) {
    const res = await app.inject({ method: 'POST', url, payload: body });
    assertError({ status: res.statusCode, body: res.json() }, 'INVALID_INPUT', /query\.\w+: query parameters are for binary bodies/);
  }
});

test('BAD CALL - /sample takes no binary body → 415', async () => {
  assertError(await binary(`/sample?model=${VEC}`, f32([[0.5]])), 'UNSUPPORTED_MEDIA_TYPE', /POST \/sample takes application\/json only/);
});

test('BAD CALL - malformed binary bodies and options → 400, unknown model → 404, past BODY_LIMIT_BYTES → 413', async () => {
  assertError(await binary(`/likelihood?model=${VEC}`, Buffer.alloc(0)), 'INVALID_INPUT', /whole rows of 2 FP32 values \(8 bytes each/);
  assertError(await binary(`/likelihood?model=${VEC}`, Buffer.alloc(12)), 'INVALID_INPUT', /got 12 bytes/);
  assertError(await binary(`/likelihood?model=${VEC}&datatype=FP64`, Buffer.alloc(24)), 'INVALID_INPUT', /16 bytes each/);
  assertError(await binary(`/likelihood?model=${VEC}&datatype=UINT8`, Buffer.alloc(2)), 'INVALID_INPUT', /UINT8 pixels need an 8-bit image model/);
  assertError(await binary(`/decode?model=${IMG}&datatype=UINT8`, Buffer.alloc(784)), 'INVALID_INPUT', /latents are FP32 or FP64/);
  assertError(await binary(`/likelihood?model=${VEC}&datatype=INT32`, f32(VEC_ROWS)), 'VALIDATION_ERROR', /datatype/);
  assertError(await binary(`/likelihood?model=${VEC}&colour=blue`, f32(VEC_ROWS)), 'VALIDATION_ERROR', /querystring\.colour: is not a known field/);
  assertError(await binary(`/likelihood?model=${VEC}`, f32([[Number.NaN, 0]])), 'INVALID_INPUT', /finite/);
  assertError(await binary(`/likelihood?model=${VEC}`, f32([[Infinity, 0]])), 'INVALID_INPUT', /finite/);
  assertError(await binary(`/encode?model=${VEC}&seed=3`, f32(VEC_ROWS)), 'INVALID_INPUT', /seed: is only for \/likelihood/);
  assertError(await binary(`/likelihood?model=${VEC}&output=raw`, f32(VEC_ROWS)), 'INVALID_INPUT', /output: is only for \/decode/);
  assertError(await binary(`/decode?model=${VEC}&scores=nll`, f32(VEC_ROWS)), 'INVALID_INPUT', /scores: is only for \/likelihood/);
  assertError(await binary(`/decode?model=${VEC}&format=png`, f32(VEC_ROWS)), 'INVALID_INPUT', /format/);
  assertError(await binary(`/likelihood?model=${VEC}&scores=nll,bogus`, f32(VEC_ROWS)), 'INVALID_INPUT', /'bogus' is not a score/);
  assertError(await binary(`/likelihood?model=${VEC}&draws=0&dequantization=uniform`, f32(VEC_ROWS)), 'INVALID_INPUT', /draws/);
  assertError(await binary(`/likelihood?model=${VEC}&atol=1e-9`, f32(VEC_ROWS)), 'INVALID_INPUT', /atol/);
  assertError(await binary('/likelihood?model=no-such-model', f32(VEC_ROWS)), 'MODEL_NOT_FOUND');
  assertError(await binary(`/likelihood?model=${VEC}`, Buffer.alloc(17 * 1024 * 1024)), 'PAYLOAD_TOO_LARGE', /BODY_LIMIT_BYTES/);
  const many = Array.from({ length: 257 }, () => [0, 0]);
  assertError(await binary(`/likelihood?model=${VEC}`, f32(many)), 'LIMIT_EXCEEDED', /MAX_ITEMS_PER_REQUEST/);
});
