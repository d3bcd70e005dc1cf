// Request budgets (docs/reliability.md, "Request budgets under attack"): a whole-request byte
// budget for every content type, enforced while reading; JSON shape limits; multipart counts and
// fields; an image decode budget checked from the headers before any decode. The byte-budget
// tests use a real socket (supertest), because only there can a client still be sending when the
// answer comes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ClientRequest, IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';
import sharp from 'sharp';
import request from 'supertest';
import { testApp } from '../helpers/app.js';
import { shippedPackages } from '../helpers/packages.js';
import { pngBomb } from '../helpers/images.js';
import { STATUS_BY_CODE } from '../../src/errors.js';

const BUDGET = 1024 * 1024; // BODY_LIMIT_BYTES for this file's server
const MAX_ITEMS = 16;
const packages = shippedPackages();
const imageModel = packages.find((p) => p.manifest.data.kind === 'image')!.name;
const vectorModel = packages.find((p) => p.name === 'realnvp-moons')!.name;

let app: FastifyInstance;
let url: string;
let png28: Buffer;
before(async () => {
  app = await testApp({ bodyLimitBytes: BUDGET, maxItemsPerRequest: MAX_ITEMS });
  url = await app.listen({ port: 0, host: '127.0.0.1' });
  png28 = await sharp({ create: { width: 28, height: 28, channels: 3, background: '#808080' } }).grayscale().png().toBuffer();
});
after(() => app.close());

function assertError(res: { statusCode: number; json: () => any }, code: keyof typeof STATUS_BY_CODE, pattern: RegExp) {
  const body = res.json();
  assert.equal(body?.error?.code, code, JSON.stringify(body).slice(0, 400));
  assert.equal(res.statusCode, STATUS_BY_CODE[code]);
  assert.match(body.error.message, pattern);
  return body.error.message as string;
}

const BOUNDARY = 'flowserve-test-boundary';
const MULTIPART = `multipart/form-data; boundary=${BOUNDARY}`;
const filePart = (bytes: Buffer, name = 'image') =>
  Buffer.concat([Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="${name}"; filename="${name}.png"\r\nContent-Type: image/png\r\n\r\n`), bytes, Buffer.from('\r\n')]);
const fieldPart = (name: string, value: string) => Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`);
const closing = Buffer.from(`--${BOUNDARY}--\r\n`);
const injectMultipart = (url: string, parts: Buffer[]) => app.inject({ method: 'POST', url, headers: { 'content-type': MULTIPART }, payload: Buffer.concat(parts) });

/** The Node request under a supertest request (superagent's request(); its types leave it out). */
const socketOf = (req: request.Test): ClientRequest => (req as unknown as { request(): ClientRequest }).request();

/**
 * Streams up to `total` bytes of `chunk` (chunked transfer encoding) until the server answers;
 * returns the answer and how many bytes had been written when it came.
 */
async function streamUntilAnswered(path: string, headers: Record<string, string>, chunk: Buffer, total: number): Promise<{ status: number; body: string; sentWhenAnswered: number }> {
  const req = request(url).post(path);
  for (const [k, v] of Object.entries(headers)) req.set(k, v);
  const raw = socketOf(req);
  let sent = 0;
  const answered = new Promise<{ res: IncomingMessage; sent: number }>((resolve) => raw.once('response', (res: IncomingMessage) => resolve({ res, sent })));
  let answer: { res: IncomingMessage; sent: number } | undefined;
  void answered.then((a) => (answer = a));
  raw.on('error', () => {}); // the server closes the connection after refusing: writes past that fail
  const closed = new Promise((r) => raw.once('close', r));
  while (sent < total && !answer && !raw.destroyed) {
    const more = req.write(chunk);
    sent += chunk.length;
    if (!more) await Promise.race([new Promise((r) => raw.once('drain', r)), answered, closed]);
  }
  const { res, sent: sentWhenAnswered } = await answered;
  let body = '';
  res.setEncoding('utf8');
  for await (const piece of res) body += piece;
  raw.destroy();
  return { status: res.statusCode!, body, sentWhenAnswered };
}

test('BAD CALL - multipart over BODY_LIMIT_BYTES in total (many files each under it) → 413 while the client is still sending', { timeout: 60_000 }, async () => {
  // 400 files of 256 KiB: each is far under the budget and the count under the old 256-file cap
  // was the only other bound, so the old server read 64 MiB before answering.
  const part = filePart(Buffer.alloc(256 * 1024, 7));
  const total = 100 * 1024 * 1024;
  const { status, body, sentWhenAnswered } = await streamUntilAnswered('/likelihood', { 'content-type': MULTIPART }, part, total);
  assert.equal(status, 413, body);
  assert.match(JSON.parse(body).error.message, /^body: larger than BODY_LIMIT_BYTES=1048576/);
  assert.ok(sentWhenAnswered < total / 4, `answered after ${sentWhenAnswered} of ${total} bytes`);
  // the same budget, the same way, as for JSON
  const json = await streamUntilAnswered('/likelihood', { 'content-type': 'application/json' }, Buffer.from('0.5,'.repeat(16 * 1024)), total);
  assert.equal(json.status, 413, json.body);
  assert.ok(json.sentWhenAnswered < total / 4, `answered after ${json.sentWhenAnswered} of ${total} bytes`);
});

test('BAD CALL - multipart declaring a Content-Length over BODY_LIMIT_BYTES → 413 before the body is sent', { timeout: 60_000 }, async () => {
  const req = request(url).post('/likelihood').set('content-type', MULTIPART).set('content-length', String(1024 ** 3));
  const raw = socketOf(req);
  raw.on('error', () => {});
  const answered = new Promise<IncomingMessage>((resolve) => raw.once('response', resolve));
  req.write(filePart(Buffer.alloc(16, 1))); // a trickle: the rest of the gigabyte never comes
  const res = await answered;
  let body = '';
  for await (const piece of res) body += piece;
  raw.destroy();
  assert.equal(res.statusCode, 413, body);
  assert.match(JSON.parse(body).error.message, /^body: larger than BODY_LIMIT_BYTES=1048576/);
});

test('BAD CALL - multipart without its closing boundary → 400 naming the body and the rule', async () => {
  const res = await injectMultipart('/likelihood', [fieldPart('model', imageModel), filePart(png28)]); // no closing `--boundary--`
  assertError(res, 'VALIDATION_ERROR', /^body: multipart\/form-data ends without its closing boundary/);
});

test('BAD CALL - multipart with more files than MAX_ITEMS_PER_REQUEST → 400 saying files', async () => {
  const res = await injectMultipart('/likelihood', [...Array.from({ length: MAX_ITEMS + 1 }, () => filePart(png28)), closing]);
  assertError(res, 'LIMIT_EXCEEDED', new RegExp(`^images: at most ${MAX_ITEMS} files \\(MAX_ITEMS_PER_REQUEST\\)`));
});

test('BAD CALL - multipart with 10,000 field parts → 400 about fields, not files', async () => {
  const res = await injectMultipart('/likelihood', [...Array.from({ length: 10_000 }, (_, i) => fieldPart(`field${i}`, 'x')), closing]);
  const message = assertError(res, 'INVALID_INPUT', /^field0: is not a known field \(multipart takes the fields model, resize, batchTest, scores/);
  assert.doesNotMatch(message, /files \(MAX_ITEMS_PER_REQUEST\)/);
  const repeated = await injectMultipart('/likelihood', [...Array.from({ length: 10_000 }, () => fieldPart('resize', 'true')), closing]);
  assertError(repeated, 'INVALID_INPUT', /^resize: is sent more than once/);
});

test('BAD CALL - multipart with more parts than files and fields allow → 400 saying parts', async () => {
  // the most a request may hold: every field once and MAX_ITEMS_PER_REQUEST files, answered in order
  const fields = [
    fieldPart('model', imageModel),
    fieldPart('resize', 'false'),
    fieldPart('batchTest', 'false'),
    fieldPart('scores', 'nll'),
    fieldPart('dequantization', 'uniform'),
    fieldPart('draws', '1'),
    fieldPart('seed', '7'),
  ];
  const black = await sharp({ create: { width: 28, height: 28, channels: 3, background: '#000' } }).grayscale().png().toBuffer();
  const files = Array.from({ length: MAX_ITEMS }, (_, i) => filePart(i % 2 ? black : png28, `f${i}`));
  const ok = await injectMultipart('/likelihood', [...fields, ...files, closing]);
  assert.equal(ok.statusCode, 200, ok.body);
  const results = ok.json().results as { logLikelihood: number }[];
  assert.equal(results.length, MAX_ITEMS);
  assert.notEqual(results[0].logLikelihood, results[1].logLikelihood);
  // the first image gets the first noise draw of the seeded stream, in either encoding
  const json = await app.inject({ method: 'POST', url: '/likelihood', payload: { model: imageModel, scores: ['nll'], images: [png28.toString('base64')], dequantization: 'uniform', draws: 1, seed: 7 } });
  assert.equal(json.json().results[0].logLikelihood, results[0].logLikelihood);
  // one part more
  const res = await injectMultipart('/likelihood', [...fields, ...files, filePart(png28), closing]);
  assertError(res, 'LIMIT_EXCEEDED', new RegExp(`^body: at most ${MAX_ITEMS + 7} parts \\(MAX_ITEMS_PER_REQUEST=${MAX_ITEMS} image files and the fields model, resize, batchTest, scores, dequantization, draws, seed\\)`));
});

test('BAD CALL - multipart field value over 1 KiB → 400 naming the field', async () => {
  const res = await injectMultipart('/likelihood', [fieldPart('scores', 'nll,'.repeat(1000)), filePart(png28), closing]);
  assertError(res, 'INVALID_INPUT', /^scores: is longer than 1024 bytes/);
});

test('BAD CALL - multipart model name breaking the name pattern → 400 naming model, without echoing it', async () => {
  const name = 'A'.repeat(900);
  const res = await injectMultipart('/likelihood', [fieldPart('model', name), filePart(png28), closing]);
  assertError(res, 'VALIDATION_ERROR', /^model: must match pattern/);
  assert.ok(!res.body.includes('AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'), res.body.slice(0, 300));
  const traversal = await injectMultipart('/likelihood', [fieldPart('model', '../models/glow-fashion'), filePart(png28), closing]);
  assertError(traversal, 'VALIDATION_ERROR', /^model: must match pattern/);
});

test('BAD CALL - an unknown model name is echoed at most 64 characters long', async () => {
  const name = `m${'x'.repeat(63)}`; // a legal name of 64 characters is echoed in full
  const res = await app.inject({ method: 'POST', url: '/sample', payload: { model: name, count: 1 } });
  assertError(res, 'MODEL_NOT_FOUND', new RegExp(`model '${name}' is not loaded`));
  const long = await app.inject({ method: 'GET', url: `/models/${'y'.repeat(100)}` });
  const message = assertError(long, 'MODEL_NOT_FOUND', /model 'y{64}…' is not loaded/);
  assert.ok(message.length < 100, message);
});

test('BAD CALL - multipart to a route that takes JSON only → 415 before the body is read', async () => {
  const res = await injectMultipart('/sample', [fieldPart('model', vectorModel), closing]);
  assertError(res, 'UNSUPPORTED_MEDIA_TYPE', /^content-type: POST \/sample takes application\/json only/);
  const noBoundary = await app.inject({ method: 'POST', url: '/likelihood', headers: { 'content-type': 'multipart/form-data' }, payload: 'x' });
  assertError(noBoundary, 'VALIDATION_ERROR', /^body: malformed multipart\/form-data \(the Content-Type header has no boundary parameter\)/);
});

test('BAD CALL - JSON nested deeper than MAX_JSON_DEPTH → 400 naming the limit', async () => {
  // 800 KB of nested arrays (the reported attack was 16 MB of them): refused at the 17th '['
  const deep = `{"model":"${vectorModel}","latents": ${'['.repeat(200_000)}${']'.repeat(200_000)}}`;
  const res = await app.inject({ method: 'POST', url: '/decode', headers: { 'content-type': 'application/json' }, payload: deep });
  assertError(res, 'LIMIT_EXCEEDED', /^body: nesting deeper than MAX_JSON_DEPTH=16/);
});

test('BAD CALL - JSON with more than MAX_JSON_VALUES values → 400 naming the limit', async () => {
  const limited = await testApp({ maxJsonValues: 1000 });
  try {
    const rows = Array.from({ length: 1001 }, () => []);
    const res = await limited.inject({ method: 'POST', url: '/decode', payload: { model: vectorModel, latents: rows } });
    assertError(res, 'LIMIT_EXCEEDED', /^body: more than MAX_JSON_VALUES=1000 values/);
    // within the limit the usual rules answer
    const ok = await limited.inject({ method: 'POST', url: '/decode', payload: { model: vectorModel, latents: [[0.1, -0.2]] } });
    assert.equal(ok.statusCode, 200, ok.body);
  } finally {
    await limited.close();
  }
});

test('BAD CALL - JSON with a "__proto__" or constructor.prototype key → 400 saying prototype poisoning', async () => {
  const proto = await app.inject({ method: 'POST', url: '/sample', headers: { 'content-type': 'application/json' }, payload: `{"model":"${vectorModel}","count":1,"__proto__":{"polluted":true}}` });
  assertError(proto, 'VALIDATION_ERROR', /^body: the key "__proto__" is not allowed \(prototype poisoning\)$/);
  const escaped = await app.inject({ method: 'POST', url: '/sample', headers: { 'content-type': 'application/json' }, payload: `{"count":1,"x":{"\\u005f_proto__":{}}}` });
  assertError(escaped, 'VALIDATION_ERROR', /^body: the key "__proto__" is not allowed/);
  const ctor = await app.inject({ method: 'POST', url: '/sample', headers: { 'content-type': 'application/json' }, payload: `{"count":1,"constructor":{"prototype":{"polluted":true}}}` });
  assertError(ctor, 'VALIDATION_ERROR', /^body: the key "constructor.prototype" is not allowed \(prototype poisoning\)$/);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test('BAD CALL - with resize, a PNG whose header claims 16,777,216×1 pixels → 400 from the header (aspect ratio)', async () => {
  const bomb = pngBomb(16_777_216, 1);
  const res = await app.inject({ method: 'POST', url: '/likelihood', payload: { model: imageModel, images: [png28.toString('base64'), bomb.toString('base64')], resize: true } });
  assertError(res, 'INVALID_IMAGE', /^images\[1\]: image is 16777216×1: its aspect ratio differs from the model's 28×28 by more than 4×/);
  // within 4× of the model's aspect ratio, resize still works
  const wide = await sharp({ create: { width: 100, height: 28, channels: 3, background: '#444' } }).grayscale().png().toBuffer();
  const ok = await app.inject({ method: 'POST', url: '/likelihood', payload: { model: imageModel, images: [wide.toString('base64')], resize: true, scores: ['nll'] } });
  assert.equal(ok.statusCode, 200, ok.body);
});

test('BAD CALL - images over MAX_REQUEST_PIXELS in all → 400 from their headers, before any decode', async () => {
  // Two legal 4096×4096 images (each exactly MAX_IMAGE_PIXELS): 2 × 16,777,216 pixels is twice the request budget.
  const big = await sharp({ create: { width: 4096, height: 4096, channels: 3, background: '#000' } }).grayscale().png({ compressionLevel: 9 }).toBuffer();
  assert.ok(big.length * 2 * 1.4 < BUDGET, `${big.length} bytes`);
  const res = await app.inject({ method: 'POST', url: '/likelihood', payload: { model: imageModel, images: [big.toString('base64'), big.toString('base64')], resize: true } });
  assertError(res, 'LIMIT_EXCEEDED', /^images: at most 16777216 pixels \(width × height summed over the images\) allowed \(MAX_REQUEST_PIXELS\), got 33554432/);
});
