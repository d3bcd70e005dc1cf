// The Open Inference Protocol (KServe v2 REST) as the protocol documents state it, on flowserve
// models: kserve/open-inference-protocol specification/protocol/inference_rest.md (its request and
// response example, adapted: id "42", a two-dimensional shape, nested or flat data, a requested
// output) and Triton's binary tensor data extension (docs/protocol/extension_binary_data.md, its
// example adapted the same way). Requests come from test/helpers/v2-client.ts, which puts them on
// the wire as Triton's Python HTTP client does (no Content-Type, Inference-Header-Content-Length,
// gzip/deflate bodies), through app.inject and over a real socket. Every failure must be
// {"error": "<string>"} with Triton's status mapping (docs/open-inference-protocol.md).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createDeflate, createGzip, deflateSync, gunzipSync, gzipSync, inflateSync } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import sharp from 'sharp';
import request from 'supertest';
import { post, testApp } from '../helpers/app.js';
import { mnistTestImages } from '../helpers/packages.js';
import { tempModelDirs } from '../helpers/server-process.js';
import { InferInput, InferRequestedOutput, InferResult, V2Client, asciiJson, buildInferRequest, errorOf, fromBytes, injectTransport, socketTransport, tensorBytes, type WireRequest, type WireResponse } from '../helpers/v2-client.js';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/config.js';

const VEC = 'realnvp-moons'; // 2-D vectors
const IMG = 'glow-fashion'; // 8-bit [1, 28, 28] images, calibrated
const modelDir = tempModelDirs();

let app: FastifyInstance;
let client: V2Client;
let send: (req: WireRequest) => Promise<WireResponse>;
before(async () => {
  app = await testApp();
  send = injectTransport(app);
  client = new V2Client(send);
});
after(() => app.close());

/** The spec example's inputs, adapted: two rows of a 2-D model, exactly representable in FP32. */
const ROWS = [
  [0.5, 0.25],
  [1, -0.5],
];

/** A raw v2 request (any body, any headers) through app.inject. */
async function raw(url: string, body: string | Buffer | undefined, headers: Record<string, string> = {}, method: 'GET' | 'POST' = 'POST'): Promise<WireResponse> {
  return send({ method, path: url, headers, ...(body === undefined ? {} : { body: Buffer.isBuffer(body) ? body : Buffer.from(body) }) });
}

/** A JSON header followed by binary sections, with Inference-Header-Content-Length. */
function framed(header: unknown, binaries: Buffer[], extra: Record<string, string> = {}): { body: Buffer; headers: Record<string, string> } {
  const json = Buffer.from(JSON.stringify(header));
  return { body: Buffer.concat([json, ...binaries]), headers: { 'Inference-Header-Content-Length': String(json.length), ...extra } };
}

/** Every v2 failure: the status, and a body that is exactly {"error": "<string>"}. */
function assertV2Error(res: WireResponse, status: number, pattern?: RegExp): string {
  const text = res.body.toString('utf8');
  assert.equal(res.status, status, text.slice(0, 300));
  assert.match(String(res.headers['content-type']), /^application\/json/);
  const body = JSON.parse(text);
  assert.deepEqual(Object.keys(body), ['error'], text);
  assert.equal(typeof body.error, 'string', `"error" must be a string, got ${text}`);
  // what Triton's Python client raises: InferenceServerException(msg=<the string>, status=<code>)
  const exception = errorOf(res)!;
  assert.equal(exception.message, body.error);
  assert.equal(exception.status, String(status));
  if (pattern) assert.match(body.error, pattern);
  return body.error;
}

const json = (res: WireResponse) => JSON.parse(res.body.toString('utf8'));
const f32 = (values: number[]) => tensorBytes(values, 'FP32');

// ---- server and model endpoints ----

test('GET /v2: server metadata with name, version and extensions (binary_tensor_data)', async () => {
  const res = await raw('/v2', undefined, {}, 'GET');
  assert.equal(res.status, 200);
  const meta = json(res);
  assert.deepEqual(Object.keys(meta).sort(), ['extensions', 'name', 'version']);
  assert.equal(meta.name, 'flowserve');
  assert.equal(typeof meta.version, 'string');
  assert.ok(meta.extensions.includes('binary_tensor_data'));
  assert.deepEqual(await client.getServerMetadata(), meta);
});

test('GET /v2/health/live and /v2/health/ready: 200 with {"live": true} and {"ready": true}', async () => {
  const live = await raw('/v2/health/live', undefined, {}, 'GET');
  assert.equal(live.status, 200);
  assert.deepEqual(json(live), { live: true });
  const ready = await raw('/v2/health/ready', undefined, {}, 'GET');
  assert.equal(ready.status, 200);
  assert.deepEqual(json(ready), { ready: true });
  assert.equal(await client.isServerLive(), true);
  assert.equal(await client.isServerReady(), true);
});

test('model metadata: each operation is a v2 model with its tensors, datatypes and shapes (−1 the batch)', async () => {
  const t = (name: string, datatype: string, shape: number[]) => ({ name, datatype, shape });
  const vecLik = {
    inputs: [t('x', 'FP32', [-1, 2])],
    outputs: [t('logLikelihood', 'FP64', [-1]), t('bitsPerDim', 'FP64', [-1]), t('nll', 'FP64', [-1]), t('typicality', 'FP64', [-1]), t('anomalyScore', 'FP64', [-1]), t('isAnomaly', 'BOOL', [-1])],
  };
  const img = [-1, 1, 28, 28];
  const imgInputs = [t('x', 'FP32', img), t('pixels', 'UINT8', img), t('images', 'BYTES', [-1])];
  const expected: Record<string, { inputs: unknown[]; outputs: unknown[] }> = {
    [VEC]: vecLik,
    [`${VEC}.likelihood`]: vecLik,
    [`${VEC}.encode`]: { inputs: [t('x', 'FP32', [-1, 2])], outputs: [t('latents', 'FP64', [-1, 2]), t('logDet', 'FP64', [-1])] },
    [`${VEC}.decode`]: { inputs: [t('latents', 'FP32', [-1, 2])], outputs: [t('x', 'FP64', [-1, 2]), t('logLikelihood', 'FP64', [-1])] },
    [`${VEC}.sample`]: { inputs: [], outputs: [t('x', 'FP64', [-1, 2]), t('logLikelihood', 'FP64', [-1]), t('latents', 'FP64', [-1, 2])] },
    [IMG]: {
      inputs: imgInputs,
      outputs: [
        t('logLikelihood', 'FP64', [-1]),
        t('bitsPerDim', 'FP64', [-1]),
        ...['nll', 'typicality', 'complexity', 'complexityJpegLs'].map((s) => t(s, 'FP64', [-1])),
        t('anomalyScore', 'FP64', [-1]),
        t('isAnomaly', 'BOOL', [-1]),
      ],
    },
    [`${IMG}.encode`]: { inputs: imgInputs, outputs: [t('latents', 'FP64', [-1, 784]), t('logDet', 'FP64', [-1])] },
    [`${IMG}.decode`]: { inputs: [t('latents', 'FP32', [-1, 784])], outputs: [t('x', 'FP64', img), t('pixels', 'UINT8', img), t('logLikelihood', 'FP64', [-1])] },
    [`${IMG}.sample`]: { inputs: [], outputs: [t('x', 'FP64', img), t('pixels', 'UINT8', img), t('logLikelihood', 'FP64', [-1]), t('latents', 'FP64', [-1, 784])] },
  };
  for (const [name, tensors] of Object.entries(expected)) {
    const res = await raw(`/v2/models/${name}`, undefined, {}, 'GET');
    assert.equal(res.status, 200, name);
    const meta = json(res);
    assert.equal(meta.name, name);
    assert.deepEqual(meta.versions, ['1']);
    assert.equal(meta.platform, 'onnxruntime_onnx');
    assert.deepEqual(meta.inputs, tensors.inputs, `${name} inputs`);
    assert.deepEqual(meta.outputs, tensors.outputs, `${name} outputs`);
    assert.equal(meta.parameters.operation, name.includes('.') ? name.split('.')[1] : 'likelihood');
    // with /versions/1: the same document
    assert.deepEqual(await client.getModelMetadata(name, '1'), meta, `${name} /versions/1`);
  }
  const sample = await client.getModelMetadata(`${IMG}.sample`);
  assert.equal(typeof sample.parameters?.defaultTemperature, 'number');
  assert.equal(typeof sample.parameters?.maxTemperature, 'number');
});

test('model ready: 200 {"name", "ready": true}, with and without /versions/1', async () => {
  for (const url of [`/v2/models/${VEC}/ready`, `/v2/models/${VEC}/versions/1/ready`, `/v2/models/${IMG}.sample/ready`]) {
    const res = await raw(url, undefined, {}, 'GET');
    assert.equal(res.status, 200, url);
    assert.deepEqual(json(res), { name: url.split('/')[3], ready: true });
  }
  assert.equal(await client.isModelReady(`${VEC}.encode`), true);
  assert.equal(await client.isModelReady(`${VEC}.encode`, '1'), true);
});

test('BAD CALL - unknown model, operation or version → 404 {"error": string} (metadata, ready and infer)', async () => {
  const body = asciiJson({ inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP32', data: [0, 0] }] });
  for (const [url, method, pattern] of [
    ['/v2/models/no-such-model', 'GET', /no-such-model/],
    ['/v2/models/no-such-model/ready', 'GET', /no-such-model/],
    ['/v2/models/no-such-model/infer', 'POST', /no-such-model/],
    [`/v2/models/${VEC}.train`, 'GET', /operation/],
    [`/v2/models/${VEC}/versions/2`, 'GET', /version '2'/],
    [`/v2/models/${VEC}/versions/2/ready`, 'GET', /version '2'/],
    [`/v2/models/${VEC}/versions/2/infer`, 'POST', /version '2'/],
    ['/v2/no/such/route', 'GET', /no route/],
  ] as const)
    assertV2Error(await raw(url, method === 'POST' ? body : undefined, {}, method), 404, pattern);
  await assert.rejects(client.getModelMetadata('no-such-model'), (e: Error & { status?: string }) => e.status === '404' && /no-such-model/.test(e.message));
  assert.equal(await client.isModelReady('no-such-model'), false);
});

// ---- infer: JSON ----

test('infer, the specification example adapted: id "42", shape [2, 2], nested data, one requested output', async () => {
  // as inference_rest.md writes it: Content-Type application/json, spaced JSON
  const body = `{
  "id" : "42",
  "inputs" : [
    {
      "name" : "x",
      "shape" : [ 2, 2 ],
      "datatype" : "FP32",
      "data" : [ [ 0.5, 0.25 ], [ 1.0, -0.5 ] ]
    }
  ],
  "outputs" : [
    {
      "name" : "logLikelihood"
    }
  ]
}`;
  const res = await raw(`/v2/models/${VEC}/infer`, body, { 'Content-Type': 'application/json' });
  assert.equal(res.status, 200, res.body.toString());
  assert.match(String(res.headers['content-type']), /^application\/json/);
  assert.equal(res.headers['inference-header-content-length'], undefined);
  const answer = json(res);
  assert.equal(answer.id, '42');
  assert.equal(answer.model_name, VEC);
  assert.equal(answer.model_version, '1');
  assert.equal(answer.outputs.length, 1, 'only the requested output');
  const [out] = answer.outputs;
  assert.deepEqual(Object.keys(out).sort(), ['data', 'datatype', 'name', 'shape'], 'a JSON output has no parameters (Triton clients read parameters as binary_data_size)');
  assert.deepEqual([out.name, out.datatype, out.shape], ['logLikelihood', 'FP64', [2]]);
  const native = await post(app, '/likelihood', { model: VEC, inputs: ROWS });
  assert.deepEqual(out.data, native.body.results.map((r: { logLikelihood: number }) => r.logLikelihood));
});

test('infer JSON: flat and nested data give the same answer; FP64 too; /versions/1 too', async () => {
  const ask = async (url: string, datatype: string, data: unknown[]) => {
    const res = await raw(url, asciiJson({ id: 'x', inputs: [{ name: 'x', shape: [2, 2], datatype, data }] }));
    assert.equal(res.status, 200, res.body.toString());
    return json(res).outputs;
  };
  const nested = await ask(`/v2/models/${VEC}/infer`, 'FP32', ROWS);
  assert.deepEqual(await ask(`/v2/models/${VEC}/infer`, 'FP32', ROWS.flat()), nested);
  assert.deepEqual(await ask(`/v2/models/${VEC}/infer`, 'FP64', ROWS.flat()), nested);
  assert.deepEqual(await ask(`/v2/models/${VEC}/versions/1/infer`, 'FP32', ROWS), nested);
  assert.deepEqual(await ask(`/v2/models/${VEC}.likelihood/infer`, 'FP32', ROWS), nested);
  // image rows: fully nested [N, 1, 28, 28], rows of 784, or flat
  const { rows } = mnistTestImages(2);
  const img = async (data: unknown[]) => {
    const res = await raw(`/v2/models/${IMG}/infer`, asciiJson({ inputs: [{ name: 'x', shape: [2, 1, 28, 28], datatype: 'FP32', data }], outputs: [{ name: 'logLikelihood' }] }));
    assert.equal(res.status, 200, res.body.toString().slice(0, 300));
    return json(res).outputs[0].data;
  };
  const full = rows.map((r) => [Array.from({ length: 28 }, (_, y) => r.slice(y * 28, (y + 1) * 28))]);
  const flat = await img(rows.flat());
  assert.deepEqual(await img(full), flat);
  assert.deepEqual(await img(rows), flat);
});

test('infer JSON: no requested outputs → every output of the operation; requested ones → only those', async () => {
  const meta = await client.getModelMetadata(VEC);
  const input = { name: 'x', shape: [2, 2], datatype: 'FP32', data: ROWS.flat() };
  for (const outputs of [undefined, []]) {
    const res = await raw(`/v2/models/${VEC}/infer`, asciiJson({ inputs: [input], ...(outputs ? { outputs } : {}) }));
    assert.equal(res.status, 200);
    const answer = json(res);
    assert.deepEqual(
      answer.outputs.map((o: { name: string; datatype: string; shape: number[] }) => [o.name, o.datatype, o.shape]),
      meta.outputs.map((o) => [o.name, o.datatype, [2]]),
    );
    assert.ok(answer.outputs.every((o: { data: unknown[] }) => o.data.length === 2));
    assert.deepEqual(answer.outputs.find((o: { name: string }) => o.name === 'isAnomaly').data.map((v: unknown) => typeof v), ['boolean', 'boolean']);
  }
  const two = json(await raw(`/v2/models/${VEC}/infer`, asciiJson({ inputs: [input], outputs: [{ name: 'typicality' }, { name: 'bitsPerDim' }] })));
  assert.deepEqual(two.outputs.map((o: { name: string }) => o.name).sort(), ['bitsPerDim', 'typicality']);
});

// ---- infer: binary tensor data extension ----

test('binary extension example adapted: binary input, binary output, Inference-Header-Content-Length, Content-Length = header + data', async () => {
  const header = {
    model_name: VEC,
    inputs: [{ name: 'x', shape: [2, 2], datatype: 'FP32', parameters: { binary_data_size: 16 } }],
    outputs: [{ name: 'logLikelihood', parameters: { binary_data: true } }],
  };
  const { body, headers } = framed(header, [f32(ROWS.flat())], { 'Content-Type': 'application/octet-stream' });
  assert.equal(body.length, Number(headers['Inference-Header-Content-Length']) + 16);
  const res = await raw(`/v2/models/${VEC}/infer`, body, headers);
  assert.equal(res.status, 200, res.body.toString());
  assert.equal(res.headers['content-type'], 'application/octet-stream');
  const yy = Number(res.headers['inference-header-content-length']);
  assert.ok(yy > 0);
  assert.equal(Number(res.headers['content-length']), yy + 16, 'Content-Length: <yy+16> (two FP64)');
  const head = JSON.parse(res.body.subarray(0, yy).toString());
  assert.deepEqual(head.outputs, [{ name: 'logLikelihood', datatype: 'FP64', shape: [2], parameters: { binary_data_size: 16 } }]);
  const values = fromBytes(res.body.subarray(yy), 'FP64');
  const native = await post(app, '/likelihood', { model: VEC, inputs: ROWS });
  assert.deepEqual(Array.from(values), native.body.results.map((r: { logLikelihood: number }) => r.logLikelihood));
});

test('binary outputs: per output (binary_data), for all (binary_data_output), per-output false overrides, mixed JSON and binary', async () => {
  const x = () => new InferInput('x', [2, 2], 'FP32').setData(ROWS.flat());
  const all = await client.infer(VEC, [x()], { outputs: [new InferRequestedOutput('logLikelihood', false), new InferRequestedOutput('bitsPerDim', false), new InferRequestedOutput('isAnomaly', false)] });
  assert.equal(all.headerLength, null, 'all JSON: no Inference-Header-Content-Length');
  const expect = (name: string) => Array.from(all.asArray(name)!);

  // Triton's client with no outputs asks binary_data_output: every output binary, in JSON order
  const everything = await client.infer(VEC, [x()]);
  assert.ok(everything.headerLength! > 0);
  const outs = everything.getResponse().outputs;
  assert.ok(outs.every((o) => o.data === undefined && typeof o.parameters?.binary_data_size === 'number'));
  assert.equal(everything.buffer.length, outs.reduce((s, o) => s + Number(o.parameters!.binary_data_size), 0));
  assert.deepEqual(Array.from(everything.asArray('logLikelihood')!), expect('logLikelihood'));
  assert.deepEqual(Array.from(everything.asArray('isAnomaly')!), expect('isAnomaly'), 'BOOL: one byte per element, 0 or 1');
  assert.equal(everything.getOutput('isAnomaly')!.parameters!.binary_data_size, 2);

  // mixed: one binary, one JSON (binary_data_output with a per-output false)
  const mixed = await raw(`/v2/models/${VEC}/infer`, asciiJson({ inputs: [{ name: 'x', shape: [2, 2], datatype: 'FP32', data: ROWS.flat() }], parameters: { binary_data_output: true }, outputs: [{ name: 'logLikelihood' }, { name: 'bitsPerDim', parameters: { binary_data: false } }] }));
  assert.equal(mixed.status, 200);
  const m = new InferResult(mixed);
  assert.equal(m.getOutput('bitsPerDim')!.parameters, undefined);
  assert.deepEqual(m.getOutput('bitsPerDim')!.data, expect('bitsPerDim'));
  assert.deepEqual(m.getOutput('logLikelihood')!.parameters, { binary_data_size: 16 });
  assert.deepEqual(Array.from(m.asArray('logLikelihood')!), expect('logLikelihood'));
  assert.equal(mixed.body.length, m.headerLength! + 16);

  // per output true without the request-level flag
  const one = await client.infer(VEC, [x()], { outputs: [new InferRequestedOutput('bitsPerDim', true), new InferRequestedOutput('logLikelihood', false)] });
  assert.ok(one.binary('bitsPerDim'));
  assert.equal(one.binary('logLikelihood'), null);
  assert.deepEqual(Array.from(one.asArray('bitsPerDim')!), expect('bitsPerDim'));
  // binary_data_output false: JSON
  const off = await raw(`/v2/models/${VEC}/infer`, asciiJson({ inputs: [{ name: 'x', shape: [2, 2], datatype: 'FP32', data: ROWS.flat() }], parameters: { binary_data_output: false } }));
  assert.equal(off.headers['inference-header-content-length'], undefined);
});

test('binary inputs: FP32 and FP64 bytes give the answer JSON data gives', async () => {
  const viaJson = await client.infer(VEC, [new InferInput('x', [2, 2], 'FP32').setData(ROWS.flat(), false)]);
  const viaF32 = await client.infer(VEC, [new InferInput('x', [2, 2], 'FP32').setData(ROWS.flat())]);
  const viaF64 = await client.infer(VEC, [new InferInput('x', [2, 2], 'FP64').setData(ROWS.flat())]);
  for (const r of [viaF32, viaF64]) for (const o of viaJson.getResponse().outputs) assert.deepEqual(Array.from(r.asArray(o.name)!), Array.from(viaJson.asArray(o.name)!), o.name);
});

test('no Content-Type header: JSON and binary requests are served (Triton\'s Python client sends none)', async () => {
  const req = buildInferRequest(VEC, [new InferInput('x', [2, 2], 'FP32').setData(ROWS.flat())], { requestId: '7' });
  assert.ok(!Object.keys(req.headers).some((h) => h.toLowerCase() === 'content-type'));
  const res = await send(req);
  assert.equal(res.status, 200);
  assert.equal(new InferResult(res).getResponse().id, '7');
  const plain = await raw(`/v2/models/${VEC}/infer`, asciiJson({ inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP32', data: [0, 0] }] }));
  assert.equal(plain.status, 200);
  // any other type is read the same way
  for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=utf-8']) {
    const r = await raw(`/v2/models/${VEC}/infer`, asciiJson({ inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP32', data: [0, 0] }] }), { 'Content-Type': type });
    assert.equal(r.status, 200, type);
  }
});

// ---- compression ----

test('gzip and deflate request bodies (the whole body, header and binary data) give the uncompressed answer', async () => {
  const x = () => new InferInput('x', [2, 2], 'FP32').setData(ROWS.flat());
  const plain = await client.infer(VEC, [x()], { requestId: 'c' });
  for (const requestCompression of ['gzip', 'deflate'] as const) {
    const req = buildInferRequest(VEC, [x()], { requestId: 'c', requestCompression });
    assert.equal(req.headers['Content-Encoding'], requestCompression);
    assert.equal(req.headers['Inference-Header-Content-Length'], String(req.jsonSize), 'the uncompressed JSON length');
    const res = await send(req);
    assert.equal(res.status, 200, res.body.toString());
    const r = new InferResult(res);
    assert.deepEqual(r.getResponse(), plain.getResponse());
    assert.deepEqual(r.buffer, plain.buffer);
  }
  // a JSON-only body compressed
  const body = asciiJson({ inputs: [{ name: 'x', shape: [2, 2], datatype: 'FP32', data: ROWS.flat() }], outputs: [{ name: 'logLikelihood' }] });
  const a = await raw(`/v2/models/${VEC}/infer`, gzipSync(body), { 'Content-Encoding': 'gzip' });
  const b = await raw(`/v2/models/${VEC}/infer`, deflateSync(body), { 'Content-Encoding': 'deflate' });
  assert.deepEqual(json(a), json(b));
});

test('Accept-Encoding gzip or deflate: compressed answer, Inference-Header-Content-Length = the uncompressed JSON header', async () => {
  const { rows } = mnistTestImages(2);
  const x = () => new InferInput('x', [2, 1, 28, 28], 'FP32').setData(rows.flat());
  const outputs = [new InferRequestedOutput('latents', true), new InferRequestedOutput('logDet', false)];
  const plainRes = await send(buildInferRequest(`${IMG}.encode`, [x()], { outputs }));
  assert.equal(plainRes.headers['content-encoding'], undefined);
  const plain = new InferResult(plainRes);
  for (const enc of ['gzip', 'deflate'] as const) {
    const res = await send(buildInferRequest(`${IMG}.encode`, [x()], { outputs, requestCompression: 'gzip', responseCompression: enc }));
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-encoding'], enc);
    const inflated = enc === 'gzip' ? gunzipSync(res.body) : inflateSync(res.body);
    const length = Number(res.headers['inference-header-content-length']);
    assert.equal(length, plain.headerLength);
    const head = JSON.parse(inflated.subarray(0, length).toString());
    assert.deepEqual(head, plain.getResponse());
    assert.equal(inflated.length, length + 2 * 784 * 8);
    assert.ok(res.body.length < inflated.length);
    // as Triton's InferResult reads it
    const r = new InferResult(res);
    assert.deepEqual(r.asArray('latents'), plain.asArray('latents'));
    assert.deepEqual(r.getOutput('logDet')!.data, plain.getOutput('logDet')!.data);
  }
  // a JSON answer is compressed the same way (above 1 KiB)
  const jsonRes = await raw(`/v2/models/${IMG}.encode/infer`, asciiJson({ inputs: [{ name: 'x', shape: [2, 784], datatype: 'FP32', data: rows.flat() }] }), { 'Accept-Encoding': 'gzip' });
  assert.equal(jsonRes.headers['content-encoding'], 'gzip');
  assert.equal(JSON.parse(gunzipSync(jsonRes.body).toString()).outputs[0].name, 'latents');
});

const bombs = new Map<string, Promise<Buffer>>();
/** `mb` MB of zeros through a streaming compressor (the test never holds the inflated bytes). */
function bomb(kind: 'gzip' | 'deflate', mb: number): Promise<Buffer> {
  const key = `${kind}:${mb}`;
  if (!bombs.has(key)) bombs.set(key, compressZeros(kind, mb));
  return bombs.get(key)!;
}

async function compressZeros(kind: 'gzip' | 'deflate', mb: number): Promise<Buffer> {
  const z = kind === 'gzip' ? createGzip({ level: 9 }) : createDeflate({ level: 9 });
  const chunks: Buffer[] = [];
  z.on('data', (c: Buffer) => chunks.push(c));
  const zeros = Buffer.alloc(1 << 20);
  for (let i = 0; i < mb; i++) if (!z.write(zeros)) await once(z, 'drain');
  z.end();
  await once(z, 'end');
  return Buffer.concat(chunks);
}

test('BAD CALL - gzip bomb (200 MB of zeros in ~200 KB) → 413 {"error"} at BODY_LIMIT_BYTES of inflated bytes; memory stays flat and the server serves on', async () => {
  for (const kind of ['gzip', 'deflate'] as const) {
    const payload = await bomb(kind, 200);
    assert.ok(payload.length < 1024 * 1024, `${payload.length} bytes`);
    const rss = process.memoryUsage().rss;
    const started = performance.now();
    const res = await raw(`/v2/models/${VEC}/infer`, payload, { 'Content-Encoding': kind });
    assertV2Error(res, 413, /BODY_LIMIT_BYTES/);
    assert.ok(performance.now() - started < 5000, 'refused while inflating, not after');
    const grown = (process.memoryUsage().rss - rss) / 2 ** 20;
    assert.ok(grown < 100, `RSS grew ${grown.toFixed(0)} MB (200 MB inflated would show)`);
  }
  const ok = await raw(`/v2/models/${VEC}/infer`, asciiJson({ inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP32', data: [0, 0] }] }));
  assert.equal(ok.status, 200);
  assert.equal(await client.isServerLive(), true);
});

test('BAD CALL - corrupt or truncated gzip/deflate → 400; an unsupported Content-Encoding → 400 (identity is fine)', async () => {
  const body = gzipSync(asciiJson({ inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP32', data: [0, 0] }] }));
  assertV2Error(await raw(`/v2/models/${VEC}/infer`, Buffer.from('this is not gzip data at all'), { 'Content-Encoding': 'gzip' }), 400, /^body: not valid gzip or deflate data, as its Content-Encoding says \(incorrect header check\)/);
  // the encoding's name in any case (RFC 9110: a case-insensitive token)
  assert.equal((await raw(`/v2/models/${VEC}/infer`, body, { 'Content-Encoding': 'GZIP' })).status, 200);
  assertV2Error(await raw(`/v2/models/${VEC}/infer`, body.subarray(0, body.length - 12), { 'Content-Encoding': 'gzip' }), 400);
  assertV2Error(await raw(`/v2/models/${VEC}/infer`, body, { 'Content-Encoding': 'deflate' }), 400);
  assertV2Error(await raw(`/v2/models/${VEC}/infer`, body, { 'Content-Encoding': 'br' }), 400, /content-encoding: 'br'/);
  assert.equal((await raw(`/v2/models/${VEC}/infer`, body, { 'Content-Encoding': 'gzip' })).status, 200);
  // identity: not compressed, as the refusal's own message offers
  assert.equal((await raw(`/v2/models/${VEC}/infer`, gunzipSync(body), { 'Content-Encoding': 'identity' })).status, 200);
});

// ---- errors ----

const X1 = { name: 'x', shape: [1, 2], datatype: 'FP32', data: [0.5, 0.25] };
const infer400 = async (url: string, header: unknown, pattern: RegExp) => assertV2Error(await raw(url, typeof header === 'string' ? header : asciiJson(header)), 400, pattern);

test('BAD CALL - bad Inference-Header-Content-Length → 400 (past the body, not a number, zero, cutting the JSON, missing with binary inputs)', async () => {
  const header = { inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP32', parameters: { binary_data_size: 8 } }] };
  const { body, headers } = framed(header, [f32([0.5, 0.25])]);
  assert.equal((await raw(`/v2/models/${VEC}/infer`, body, headers)).status, 200);
  for (const value of [String(body.length + 1), 'abc', '0', '-5', '12.5', '1e2'])
    assertV2Error(await raw(`/v2/models/${VEC}/infer`, body, { 'Inference-Header-Content-Length': value }), 400, /Inference-Header-Content-Length/);
  assertV2Error(await raw(`/v2/models/${VEC}/infer`, body, { 'Inference-Header-Content-Length': '20' }), 400, /not valid JSON/);
  assertV2Error(await raw(`/v2/models/${VEC}/infer`, body, {}), 400, /not valid JSON|Inference-Header-Content-Length/);
  const jsonOnly = Buffer.from(asciiJson(header));
  assertV2Error(await raw(`/v2/models/${VEC}/infer`, jsonOnly, {}), 400, /Inference-Header-Content-Length: required/);
});

test('BAD CALL - binary_data_size that disagrees with the shape, or sizes that do not add up to the body → 400', async () => {
  const h = (size: number, shape = [1, 2], datatype = 'FP32') => ({ inputs: [{ name: 'x', shape, datatype, parameters: { binary_data_size: size } }] });
  let f = framed(h(12), [Buffer.alloc(12)]);
  assertV2Error(await raw(`/v2/models/${VEC}/infer`, f.body, f.headers), 400, /binary_data_size: is 12 bytes; shape \[1, 2\] of FP32 needs 8/);
  f = framed(h(8), [Buffer.alloc(12)]);
  assertV2Error(await raw(`/v2/models/${VEC}/infer`, f.body, f.headers), 400, /must add up to the body length/);
  f = framed(h(8), [Buffer.alloc(4)]);
  assertV2Error(await raw(`/v2/models/${VEC}/infer`, f.body, f.headers), 400, /must add up to the body length/);
  f = framed(h(8, [1, 2], 'FP64'), [Buffer.alloc(8)]);
  assertV2Error(await raw(`/v2/models/${VEC}/infer`, f.body, f.headers), 400, /FP64 needs 16/);
  f = framed({ inputs: [{ ...X1, parameters: { binary_data_size: 8 } }] }, [Buffer.alloc(8)]);
  assertV2Error(await raw(`/v2/models/${VEC}/infer`, f.body, f.headers), 400, /both data and parameters.binary_data_size/);
  f = framed(h(-8), []);
  assertV2Error(await raw(`/v2/models/${VEC}/infer`, f.body, f.headers), 400, /binary_data_size/);
});

test('BAD CALL - duplicated input or output names → 400', async () => {
  await infer400(`/v2/models/${VEC}/infer`, { inputs: [X1, X1] }, /inputs\[1\]\.name: 'x' is given twice/);
  await infer400(`/v2/models/${VEC}/infer`, { inputs: [X1], outputs: [{ name: 'nll' }, { name: 'nll' }] }, /outputs\[1\]\.name: 'nll' is requested twice/);
  const f = framed({ inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP32', parameters: { binary_data_size: 8 } }, { name: 'x', shape: [1, 2], datatype: 'FP32', parameters: { binary_data_size: 8 } }] }, [Buffer.alloc(8), Buffer.alloc(8)]);
  assertV2Error(await raw(`/v2/models/${VEC}/infer`, f.body, f.headers), 400, /given twice/);
  // two different inputs at once: one data input per request
  const { pixels, rows } = mnistTestImages(1);
  await infer400(`/v2/models/${IMG}/infer`, { inputs: [{ name: 'x', shape: [1, 784], datatype: 'FP32', data: rows[0] }, { name: 'pixels', shape: [1, 784], datatype: 'UINT8', data: Array.from(pixels[0]) }] }, /exactly one input tensor/);
});

test('BAD CALL - unknown or mistyped parameters (request, input, output) → 400, never ignored', async () => {
  const url = `/v2/models/${VEC}/infer`;
  await infer400(url, { inputs: [X1], parameters: { priority: 1 } }, /parameters\.priority: is not a parameter of likelihood/);
  await infer400(url, { inputs: [X1], parameters: { sequence_id: 3 } }, /parameters\.sequence_id/);
  await infer400(url, { inputs: [X1], parameters: { count: 2 } }, /parameters\.count: is not a parameter of likelihood/);
  await infer400(url, { inputs: [X1], parameters: { draws: '2' } }, /parameters\.draws: must be a whole number/);
  await infer400(url, { inputs: [X1], parameters: { binary_data_output: 'yes' } }, /binary_data_output: must be true or false/);
  await infer400(url, { inputs: [X1], parameters: { dequantization: 'gaussian' } }, /parameters\.dequantization: must be one of/);
  await infer400(url, { inputs: [X1], parameters: { scores: 'nll,bogus' } }, /'bogus' is not a score/);
  await infer400(url, { inputs: [{ ...X1, parameters: { shared_memory_region: 'r' } }] }, /inputs\[0\]\.parameters\.shared_memory_region: is not supported/);
  await infer400(url, { inputs: [X1], outputs: [{ name: 'nll', parameters: { classification: 2 } }] }, /outputs\[0\]\.parameters\.classification: is not supported/);
  await infer400(url, { inputs: [X1], outputs: [{ name: 'nll', parameters: { binary_data: 1 } }] }, /binary_data: must be true or false/);
  await infer400(`/v2/models/${VEC}.encode/infer`, { inputs: [X1], parameters: { seed: 3 } }, /parameters\.seed: is not a parameter of encode/);
  await infer400(`/v2/models/${VEC}.sample/infer`, { inputs: [], parameters: { count: 1.5 } }, /parameters\.count: must be a whole number/);
  await infer400(`/v2/models/${VEC}.sample/infer`, { inputs: [], parameters: { temperature: 'hot' } }, /parameters\.temperature: must be a number/);
  await infer400(url, { inputs: [X1], extra: true }, /extra/);
  await infer400(url, { inputs: [X1], model_name: 'another-model' }, /model_name: 'another-model' differs/);
  await infer400(url, { inputs: [X1], model_version: '7' }, /model_version: '7' differs/);
  // what clients send that names the same model and version is fine
  const same = await raw(url, asciiJson({ model_name: VEC, model_version: '1', inputs: [X1] }));
  assert.equal(same.status, 200);
  assert.equal((await raw(url, asciiJson({ model_name: '', model_version: '', inputs: [X1] }))).status, 200);
});

test('BAD CALL - wrong datatype, shape, data or names → 400', async () => {
  const url = `/v2/models/${VEC}/infer`;
  await infer400(url, { inputs: [{ ...X1, datatype: 'INT32', data: [0, 1] }] }, /inputs\[0\]\.datatype: x is FP32 or FP64/);
  await infer400(url, { inputs: [{ ...X1, datatype: 'FLOAT' }] }, /'FLOAT' is not a v2 datatype/);
  await infer400(url, { inputs: [{ ...X1, shape: [1, 3], data: [0, 0, 0] }] }, /inputs\[0\]\.shape: must be \[N, 2\]/);
  await infer400(url, { inputs: [{ ...X1, shape: [2, 2] }] }, /holds 2 elements; shape \[2, 2\] needs 4/);
  await infer400(url, { inputs: [{ ...X1, data: [[0.5], [0.25]] }] }, /nests 2 arrays where dimension 0 of shape \[1, 2\] is 1/);
  await infer400(url, { inputs: [{ ...X1, shape: [2, 2], data: [[0.5, 0.25], [1]] }] }, /holds 1 elements where shape \[2, 2\] needs 2/);
  await infer400(url, { inputs: [{ ...X1, data: [0.5, 'a'] }] }, /data\[1\]: FP32 elements must be finite numbers/);
  await infer400(url, { inputs: [{ ...X1, data: [0.5, null] }] }, /data\[1\]/);
  await infer400(url, { inputs: [{ ...X1, shape: [1, -2] }] }, /shape/);
  await infer400(url, { inputs: [{ ...X1, shape: [0, 2], data: [] }] }, /at least one/);
  await infer400(url, { inputs: [{ ...X1, name: 'input0' }] }, /'input0' is not an input of likelihood/);
  await infer400(url, { inputs: [] }, /exactly one input/);
  await infer400(url, { inputs: [X1], outputs: [{ name: 'output0' }] }, /'output0' is not an output of likelihood/);
  await infer400(`/v2/models/${VEC}.sample/infer`, { inputs: [X1] }, /it takes none/);
  await infer400(`/v2/models/${VEC}.decode/infer`, { inputs: [{ name: 'latents', shape: [1, 2], datatype: 'UINT8', data: [0, 1] }] }, /latents are FP32 or FP64/);
  await infer400(`/v2/models/${IMG}/infer`, { inputs: [{ name: 'pixels', shape: [1, 784], datatype: 'FP32', data: new Array(784).fill(0) }] }, /pixels are UINT8/);
  await infer400(`/v2/models/${IMG}/infer`, { inputs: [{ name: 'pixels', shape: [1, 784], datatype: 'UINT8', data: new Array(784).fill(300) }] }, /pixels|255/);
  await infer400(`/v2/models/${IMG}/infer`, { inputs: [{ name: 'images', shape: [1, 1], datatype: 'BYTES', data: ['AAAA'] }] }, /images is BYTES of shape \[N\]/);
  await infer400(`/v2/models/${IMG}/infer`, { inputs: [{ name: 'images', shape: [1], datatype: 'BYTES', data: [Buffer.from('not a png').toString('base64')] }] }, /images|image/);
  await infer400(url, 'not json', /not valid JSON/);
  await infer400(url, '', /must not be empty/);
  await infer400(url, '[1, 2]', /body|inputs/);
  await infer400(url, '{"outputs": []}', /inputs/);
});

test('BAD CALL - failures map to Triton\'s statuses: 400, 404, 413, 401 (API key), 503 (loading, full queue, timeout), 500 (inference)', async () => {
  const dir = await modelDir(VEC);
  const body = asciiJson({ inputs: [{ name: 'x', shape: [2, 2], datatype: 'FP32', data: ROWS.flat() }] });
  const infer = (a: FastifyInstance, headers: Record<string, string> = {}) => injectTransport(a)({ method: 'POST', path: `/v2/models/${VEC}/infer`, headers, body: Buffer.from(body) });

  // 503 while loading: ready false, infer refused; live all the same
  const cold = await buildApp(loadConfig({}, { modelDir: dir, logLevel: 'silent', intraOpThreads: 1 }));
  await cold.ready();
  try {
    const get = (path: string) => injectTransport(cold)({ method: 'GET', path, headers: {} });
    const [ready, modelReady, inferred, live] = await Promise.all([get('/v2/health/ready'), get(`/v2/models/${VEC}/ready`), infer(cold), get('/v2/health/live')]);
    assert.equal(ready.status, 503);
    assert.deepEqual(json(ready), { ready: false });
    assert.equal(modelReady.status, 503);
    assert.deepEqual(json(modelReady), { name: VEC, ready: false });
    assertV2Error(inferred, 503);
    assert.equal(live.status, 200);
    await cold.flowserve.whenReady();
    assert.equal((await get('/v2/health/ready')).status, 200);
    assert.equal((await get(`/v2/models/${VEC}/ready`)).status, 200);
  } finally {
    await cold.flowserve.whenReady();
    await cold.close();
  }

  // 503 for a full queue (native: 429) and a request past its deadline (native: 504)
  const tiny = await testApp({ modelDir: dir, maxQueueSize: 2, maxItemsPerRequest: 2, maxSamplesPerRequest: 2 });
  try {
    const all = await Promise.all(Array.from({ length: 16 }, () => infer(tiny)));
    const shed = all.filter((r) => r.status !== 200);
    assert.ok(shed.length > 0, `statuses ${all.map((r) => r.status)}`);
    for (const r of shed) assertV2Error(r, 503, /MAX_QUEUE_SIZE=2/);
  } finally {
    await tiny.close();
  }
  const hurried = await testApp({ modelDir: dir, requestTimeoutMs: 1, maxBatchSize: 4 });
  try {
    const res = await injectTransport(hurried)({ method: 'POST', path: `/v2/models/${VEC}.sample/infer`, headers: {}, body: Buffer.from(asciiJson({ inputs: [], parameters: { count: 200, seed: 1 } })) });
    assertV2Error(res, 503, /REQUEST_TIMEOUT_MS=1/);
  } finally {
    await hurried.close();
  }

  // 500 for an inference failure, without internals
  const faulty = await testApp({ modelDir: dir });
  try {
    (faulty.flowserve as unknown as { pool: { run: () => Promise<never> } }).pool.run = () => Promise.reject(new Error('ORT: /secret/path/model.onnx failed'));
    const msg = assertV2Error(await infer(faulty), 500);
    assert.doesNotMatch(msg, /secret|ORT/);
  } finally {
    await faulty.close();
  }

  // 401 without the API key (the v2 probes stay open), 413 past BODY_LIMIT_BYTES
  const secured = await testApp({ modelDir: dir, apiKey: 'sesame', bodyLimitBytes: 4096 });
  try {
    assertV2Error(await infer(secured), 401, /API key/);
    assertV2Error(await injectTransport(secured)({ method: 'GET', path: '/v2', headers: {} }), 401);
    assert.equal((await infer(secured, { Authorization: 'Bearer sesame' })).status, 200);
    assert.equal(await new V2Client(injectTransport(secured)).isServerLive(), true);
    assert.equal(await new V2Client(injectTransport(secured)).isServerReady(), true);
    const big = framed({ inputs: [{ name: 'x', shape: [1024, 2], datatype: 'FP32', parameters: { binary_data_size: 8192 } }] }, [Buffer.alloc(8192)], { Authorization: 'Bearer sesame' });
    assertV2Error(await injectTransport(secured)({ method: 'POST', path: `/v2/models/${VEC}/infer`, headers: big.headers, body: big.body }), 413, /BODY_LIMIT_BYTES=4096/);
  } finally {
    await secured.close();
  }
});

// ---- operations and their parameters ----

test('all four operations over v2 (binary outputs, as Triton\'s client asks by default)', async () => {
  const x = new InferInput('x', [2, 2], 'FP32').setData(ROWS.flat());
  const lik = await client.infer(VEC, [x]);
  assert.equal(lik.asArray('logLikelihood')!.length, 2);
  const enc = await client.infer(`${VEC}.encode`, [x]);
  assert.deepEqual(enc.getOutput('latents')!.shape, [2, 2]);
  assert.deepEqual(enc.getOutput('logDet')!.shape, [2]);
  const dec = await client.infer(`${VEC}.decode`, [new InferInput('latents', [2, 2], 'FP64').setData(enc.asArray('latents')!)]);
  assert.deepEqual(dec.getOutput('x')!.shape, [2, 2]);
  assert.equal(dec.getResponse().parameters!.output, 'raw');
  const back = dec.asArray('x')!;
  ROWS.flat().forEach((v, i) => assert.ok(Math.abs(back[i] - v) < 1e-4, `decode(encode(x)) ≈ x: ${back[i]} vs ${v}`));
  const s = await client.infer(`${VEC}.sample`, [], { parameters: { count: 3, seed: 5 } });
  assert.deepEqual(s.getOutput('x')!.shape, [3, 2]);
  assert.deepEqual(s.getOutput('latents')!.shape, [3, 2]);
  assert.equal(s.getResponse().parameters!.seed, 5);
});

test('sample parameters: count, seed (reproducible), temperature (bounded by the model), output form; image pixels UINT8', async () => {
  const meta = await client.getModelMetadata(`${IMG}.sample`);
  const tMax = meta.parameters!.maxTemperature as number;
  const draw = (parameters: Record<string, string | number | boolean>) => client.infer(`${IMG}.sample`, [], { parameters });
  const a = await draw({ count: 2, seed: 11, temperature: tMax / 2 });
  const b = await draw({ count: 2, seed: 11, temperature: tMax / 2 });
  const c = await draw({ count: 2, seed: 12, temperature: tMax / 2 });
  assert.deepEqual(a.getResponse().parameters, { temperature: tMax / 2, seed: 11, output: 'quantized', redrawn: a.getResponse().parameters!.redrawn, passes: a.getResponse().parameters!.passes });
  assert.deepEqual(a.buffer, b.buffer, 'the same seed draws the same samples');
  assert.notDeepEqual(a.asArray('latents'), c.asArray('latents'));
  const x = a.asArray('x')!;
  const px = a.asArray('pixels')!;
  assert.deepEqual(a.getOutput('pixels')!.shape, [2, 1, 28, 28]);
  assert.equal(a.getOutput('pixels')!.datatype, 'UINT8');
  px.forEach((p, i) => assert.equal(x[i], (p + 0.5) / 256, 'quantized x are the pixel bin centres'));
  const def = await draw({ count: 1, seed: 1 });
  assert.equal(def.getResponse().parameters!.temperature, meta.parameters!.defaultTemperature);
  const raw = await draw({ count: 1, seed: 1, output: 'raw' });
  assert.equal(raw.getOutput('pixels'), undefined, 'raw samples have no pixels');
  // matches native /sample bit for bit
  const native = await post(app, '/sample', { model: IMG, count: 2, seed: 11, temperature: tMax / 2, format: 'array', returnLatents: true });
  assert.deepEqual(Array.from(x), native.body.outputs.flat());
  assert.deepEqual(Array.from(a.asArray('latents')!), native.body.latents.flat());
  await assert.rejects(draw({ count: 1, temperature: tMax * 2 }), (e: Error & { status?: string }) => e.status === '400' && /temperature/.test(e.message));
  await assert.rejects(draw({ count: 0 }), (e: Error & { status?: string }) => e.status === '400' && /count/.test(e.message));
  await assert.rejects(draw({ count: 1000 }), (e: Error & { status?: string }) => e.status === '400' && /count/.test(e.message));
  await assert.rejects(draw({ count: 1, seed: -1 }), (e: Error & { status?: string }) => e.status === '400' && /seed/.test(e.message));
});

test('likelihood parameters: scores (only those computed are returned), dequantization uniform with draws and seed, batchTest', async () => {
  const { rows } = mnistTestImages(4);
  const x = () => new InferInput('x', [4, 784], 'FP32').setData(rows.flat());
  const onlyNll = await client.infer(IMG, [x()], { parameters: { scores: 'nll' } });
  const native = await post(app, '/likelihood', { model: IMG, inputs: rows, scores: ['nll'] });
  const names = onlyNll.getResponse().outputs.map((o) => o.name);
  const nativeNames = ['logLikelihood', 'bitsPerDim', 'nll', ...(native.body.results[0].anomalyScore === null ? [] : ['anomalyScore', 'isAnomaly'])];
  assert.deepEqual(names, nativeNames);
  assert.deepEqual(Array.from(onlyNll.asArray('nll')!), native.body.results.map((r: { scores: { nll: number } }) => r.scores.nll));
  // asking for a score that was not computed is refused, not answered with nothing
  await assert.rejects(client.infer(IMG, [x()], { parameters: { scores: 'nll' }, outputs: [new InferRequestedOutput('typicality')] }), (e: Error & { status?: string }) => e.status === '400' && /typicality/.test(e.message));

  const deq = await client.infer(IMG, [x()], { parameters: { dequantization: 'uniform', draws: 3, seed: 9 } });
  assert.deepEqual(deq.getResponse().parameters, { dequantization: 'uniform', draws: 3, seed: 9, passes: deq.getResponse().parameters!.passes });
  const nativeDeq = await post(app, '/likelihood', { model: IMG, inputs: rows, dequantization: 'uniform', draws: 3, seed: 9 });
  assert.deepEqual(Array.from(deq.asArray('logLikelihood')!), nativeDeq.body.results.map((r: { logLikelihood: number }) => r.logLikelihood));
  const again = await client.infer(IMG, [x()], { parameters: { dequantization: 'uniform', draws: 3, seed: 9 } });
  assert.deepEqual(again.buffer, deq.buffer, 'seeded draws');
  const centre = await client.infer(IMG, [x()]);
  assert.equal(centre.getResponse().parameters!.dequantization, 'centre');
  assert.notDeepEqual(centre.asArray('logLikelihood'), deq.asArray('logLikelihood'));

  const bt = await client.infer(IMG, [x()], { parameters: { batchTest: true } });
  const nativeBt = await post(app, '/likelihood', { model: IMG, inputs: rows, batchTest: true });
  const p = bt.getResponse().parameters!;
  assert.equal(p.batchTestPValue, nativeBt.body.batchTest.pValue);
  assert.equal(p.batchTestIsOutOfDistribution, nativeBt.body.batchTest.isOutOfDistribution);
});

test('image inputs: x at pixel centres, UINT8 pixels (binary and JSON) and BYTES PNGs (binary and base64 JSON) agree bit for bit', async () => {
  const { pixels, rows } = mnistTestImages(3);
  const pngs = await Promise.all(pixels.map((p) => sharp(Buffer.from(p), { raw: { width: 28, height: 28, channels: 1 } }).png().toBuffer()));
  const px = pixels.flatMap((p) => Array.from(p));
  const ask = async (input: InferInput) => Array.from((await client.infer(IMG, [input], { outputs: [new InferRequestedOutput('logLikelihood')] })).asArray('logLikelihood')!);
  const ref = await ask(new InferInput('x', [3, 1, 28, 28], 'FP32').setData(rows.flat()));
  assert.deepEqual(await ask(new InferInput('pixels', [3, 1, 28, 28], 'UINT8').setData(px)), ref);
  assert.deepEqual(await ask(new InferInput('pixels', [3, 784], 'UINT8').setData(px, false)), ref);
  assert.deepEqual(await ask(new InferInput('images', [3], 'BYTES').setData(pngs)), ref);
  assert.deepEqual(await ask(new InferInput('images', [3], 'BYTES').setData(pngs.map((p) => p.toString('base64')), false)), ref);
  const native = await post(app, '/likelihood', { model: IMG, images: pngs.map((p) => p.toString('base64')) });
  assert.deepEqual(ref, native.body.results.map((r: { logLikelihood: number }) => r.logLikelihood));
  // encode takes them too
  const enc = await client.infer(`${IMG}.encode`, [new InferInput('images', [3], 'BYTES').setData(pngs)]);
  assert.deepEqual(enc.getOutput('latents')!.shape, [3, 784]);
  // BAD CALL: malformed BYTES framing
  const bad = framed({ inputs: [{ name: 'images', shape: [1], datatype: 'BYTES', parameters: { binary_data_size: 6 } }] }, [Buffer.from([100, 0, 0, 0, 1, 2])]);
  assertV2Error(await raw(`/v2/models/${IMG}/infer`, bad.body, bad.headers), 400, /BYTES element 0 claims 100 bytes/);
});

// ---- real sockets ----

test('over a real socket (supertest, then Triton\'s wire format): metadata, health, JSON and binary infer, gzip both ways, errors', async () => {
  const served = await testApp({ modelDir: await modelDir(VEC) });
  try {
    const base = await served.listen({ host: '127.0.0.1', port: 0 });
    const meta = await request(base).get('/v2').expect(200);
    assert.ok(meta.body.extensions.includes('binary_tensor_data'));
    await request(base).get('/v2/health/live').expect(200, { live: true });
    await request(base).get('/v2/health/ready').expect(200, { ready: true });
    await request(base).get(`/v2/models/${VEC}/versions/1/ready`).expect(200, { name: VEC, ready: true });
    const spec = await request(base)
      .post(`/v2/models/${VEC}/infer`)
      .set('Content-Type', 'application/json')
      .send(JSON.stringify({ id: '42', inputs: [{ name: 'x', shape: [2, 2], datatype: 'FP32', data: ROWS }], outputs: [{ name: 'logLikelihood' }] }))
      .expect(200);
    assert.equal(spec.body.id, '42');
    assert.deepEqual(spec.body.outputs.map((o: { name: string }) => o.name), ['logLikelihood']);
    const notFound = await request(base).get('/v2/models/nope').expect(404);
    assert.equal(typeof notFound.body.error, 'string');

    // Triton's client: no Content-Type, binary input and outputs, gzip request and response
    const triton = new V2Client(socketTransport(base));
    assert.equal(await triton.isServerLive(), true);
    assert.equal(await triton.isServerReady(), true);
    assert.equal(await triton.isModelReady(VEC), true);
    assert.equal((await triton.getModelMetadata(`${VEC}.decode`)).inputs[0].name, 'latents');
    const r = await triton.infer(VEC, [new InferInput('x', [2, 2], 'FP32').setData(ROWS.flat())], { requestId: '42', requestCompression: 'gzip', responseCompression: 'gzip' });
    assert.equal(r.getResponse().id, '42');
    assert.deepEqual(Array.from(r.asArray('logLikelihood')!), spec.body.outputs[0].data);
    await assert.rejects(triton.infer(VEC, [new InferInput('x', [1, 3], 'FP32').setData([0, 0, 0])]), (e: Error & { status?: string }) => e.status === '400' && /shape/.test(e.message));
    // a gzip bomb on the socket (32 MB in ~32 KB: the whole body fits the socket buffers before the 413): 413, and the server goes on
    const res = await socketTransport(base)({ method: 'POST', path: `/v2/models/${VEC}/infer`, headers: { 'Content-Encoding': 'gzip' }, body: await bomb('gzip', 32) });
    assertV2Error(res, 413);
    assert.equal(await triton.isServerLive(), true);
  } finally {
    await served.close();
  }
});

test('the test client puts requests on the wire as Triton\'s Python client does (checked against a recording server)', async () => {
  const seen: { method: string; url: string; headers: IncomingHttpHeaders; body: Buffer }[] = [];
  const recorder = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(400, { 'Content-Type': 'application/json' }).end('{"error":"recorded"}');
    });
  });
  recorder.listen(0, '127.0.0.1');
  await once(recorder, 'listening');
  try {
    const base = `http://127.0.0.1:${(recorder.address() as AddressInfo).port}`;
    const triton = new V2Client(socketTransport(base));
    const inputs = [new InferInput('x', [2, 2], 'FP32').setData(ROWS.flat())];
    await assert.rejects(triton.infer(`${VEC}.encode`, inputs, { requestId: 'é1', requestCompression: 'gzip', responseCompression: 'gzip', parameters: { custom: 1 } }), (e: Error & { status?: string }) => e.status === '400' && e.message === 'recorded');
    await assert.rejects(triton.infer(VEC, [new InferInput('x', [1, 2], 'FP32').setData([0, 0], false)], { outputs: [new InferRequestedOutput('nll', false)] }));
    assert.equal(await triton.isServerLive(), false);
    const [binary, jsonOnly, live] = seen;
    assert.equal(binary.method, 'POST');
    assert.equal(binary.url, `/v2/models/${VEC}.encode/infer`);
    assert.equal(binary.headers['content-type'], undefined, 'no Content-Type');
    assert.equal(binary.headers['content-encoding'], 'gzip');
    assert.equal(binary.headers['accept-encoding'], 'gzip');
    const body = gunzipSync(binary.body);
    const expectedJson = '{"id":"\\u00e91","inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","parameters":{"binary_data_size":16}}],"parameters":{"binary_data_output":true,"custom":1}}';
    assert.equal(binary.headers['inference-header-content-length'], String(expectedJson.length));
    assert.equal(body.subarray(0, expectedJson.length).toString(), expectedJson);
    assert.deepEqual(body.subarray(expectedJson.length), f32(ROWS.flat()));
    assert.equal(jsonOnly.headers['inference-header-content-length'], undefined, 'an all-JSON request has none');
    assert.equal(jsonOnly.headers['content-type'], undefined);
    assert.equal(jsonOnly.body.toString(), '{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[0,0]}],"outputs":[{"name":"nll","parameters":{"binary_data":false}}]}');
    assert.deepEqual([live.method, live.url], ['GET', '/v2/health/live']);
  } finally {
    recorder.close();
  }
});

test('docs/open-inference-protocol.md: every shell example runs as printed and prints what the doc says', async () => {
  const root = new URL('../../', import.meta.url).pathname;
  const doc = await readFile(join(root, 'docs/open-inference-protocol.md'), 'utf8');
  const blocks = [...doc.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]);
  assert.ok(blocks.length >= 5, `${blocks.length} shell blocks`);
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  const dir = await mkdtemp(join(tmpdir(), 'flowserve-v2-doc-'));
  try {
    await symlink(join(root, 'docs'), join(dir, 'docs'));
    const script = `set -euo pipefail\n${blocks.join('\n')}`.replaceAll('localhost:8080', base.replace('http://', ''));
    const { stdout } = await promisify(execFile)('bash', ['-c', script], { cwd: dir, maxBuffer: 1 << 24 }).catch((err) => assert.fail(`the examples failed: ${err.stderr}\n${err.stdout}`));
    const printed = stdout.replace(/\s+/g, '');
    // each "# answer" line (its parenthesised remark dropped) is printed, piece by piece around "…"
    const said = blocks.flatMap((b) => b.split('\n').filter((l) => l.startsWith('#')).map((l) => l.slice(1).replace(/\s+\(.*\)$/, '').replace(/\s+/g, '')));
    assert.ok(said.length >= 15, `${said.length} answer lines`);
    for (const line of said) for (const piece of line.split('…').filter(Boolean)) assert.ok(printed.includes(piece), `the doc says ${line}\nbut the examples printed ${stdout}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('Triton\'s per-request `timeout` (µs) is a deadline earlier than REQUEST_TIMEOUT_MS: past it the work is dropped (503), never run late', async () => {
  const ok = await raw(`/v2/models/${VEC}/infer`, asciiJson({ inputs: [X1], parameters: { timeout: 60_000_000 } }));
  assert.equal(ok.status, 200);
  // 1 µs has passed before the request reaches the queue: refused as TIMEOUT, Triton's UNAVAILABLE
  assertV2Error(await raw(`/v2/models/${VEC}/infer`, asciiJson({ inputs: [X1], parameters: { timeout: 1 } })), 503, /REQUEST_TIMEOUT_MS|did not complete/);
  await infer400(`/v2/models/${VEC}/infer`, { inputs: [X1], parameters: { timeout: -1 } }, /parameters\.timeout: must be a whole number of microseconds/);
});

test('an output asked for by name is computed: complexity (not a default score) comes back without parameters.scores', async () => {
  const png = await raw(`/v2/models/glow-fashion/infer`, asciiJson({ inputs: [{ name: 'pixels', shape: [1, 1, 28, 28], datatype: 'UINT8', data: Array.from({ length: 784 }, (_, i) => i % 256) }], outputs: [{ name: 'complexity' }, { name: 'anomalyScore' }] }));
  assert.equal(png.status, 200, png.body.toString());
  const out = JSON.parse(png.body.toString()).outputs;
  assert.deepEqual(out.map((o: { name: string }) => o.name), ['complexity', 'anomalyScore']);
  assert.ok(Number.isFinite(out[0].data[0]));
});

test('BAD CALL - ODE tolerances follow the native rule over v2 too: [1e-12, 0.1]', async () => {
  await infer400(`/v2/models/ffjord-checker/infer`, { inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP32', data: [0.1, 0.2] }], parameters: { atol: 0.5 } }, /parameters\.atol: must lie in \[1e-12, 0\.1\], got 0\.5/);
  const ok = await raw(`/v2/models/ffjord-checker/infer`, asciiJson({ inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP32', data: [0.1, 0.2] }], parameters: { atol: 1e-5 } }));
  assert.equal(ok.status, 200, ok.body.toString());
});
