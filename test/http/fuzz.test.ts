// Seeded fuzzing: ≥ 5,000 malformed requests across every route. The service must answer each
// with a documented 4xx whose message names the field, never a 5xx, never crash or hang.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import sharp from 'sharp';
import { testApp } from '../helpers/app.js';
import { shippedPackages } from '../helpers/packages.js';
import { Rng } from '../../src/flow/random.js';
import { STATUS_BY_CODE } from '../../src/errors.js';
import { pngBomb } from '../helpers/images.js';

const REQUESTS = 5200;
const packages = shippedPackages();
const names = packages.map((p) => p.name);
const imageModel = packages.find((p) => p.manifest.data.kind === 'image')?.name ?? names[0];
let app: FastifyInstance;
let goodPng: Buffer;

before(async () => {
  app = await testApp({ maxItemsPerRequest: 64, maxSamplesPerRequest: 64, bodyLimitBytes: 256 * 1024, maxImagePixels: 256 * 256 });
  goodPng = await sharp({ create: { width: 28, height: 28, channels: 3, background: '#777' } }).grayscale().png().toBuffer();
});
after(() => app.close());

const rng = new Rng(20261123);
const int = (n: number) => rng.nextUint32() % n;
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];

const weirdNumbers = ['NaN', 'Infinity', '-Infinity', '1e400', '-1e400', '1e-400', '0x10', '01', '.5', '+1', '1.', '--1', 'null', 'true', '"1"', '[]', '{}'];
const weirdNames = ['../models/glow-fashion', '..%2F..%2Fetc%2Fpasswd', '/etc/passwd', 'GLOW', '', ' ', 'a'.repeat(300), 'glow-fashion\u0000', '%00', 'x'.repeat(64) + '-', 'nul\n', '../../', 'C:\\win'];

function randomJsonValue(depth = 0): unknown {
  switch (int(depth > 2 ? 5 : 8)) {
    case 0: return rng.nextNormal() * 10 ** int(12);
    case 1: return pick(['', 'x', 'AAAA', '🙂', 'a'.repeat(int(2000))]);
    case 2: return null;
    case 3: return int(2) === 0;
    case 4: return -int(1000);
    case 5: return Array.from({ length: int(6) }, () => randomJsonValue(depth + 1));
    case 6: return Object.fromEntries(Array.from({ length: int(4) }, () => [pick(['model', 'inputs', 'images', 'count', 'latents', 'seed', 'temperature', 'format', 'resize', 'extra', '__proto__', 'constructor']), randomJsonValue(depth + 1)]));
    default: return Array.from({ length: int(4) }, () => Array.from({ length: int(5) }, () => rng.nextNormal()));
  }
}

function corruptImage(): string {
  const bytes = Buffer.from(goodPng);
  switch (int(6)) {
    case 5: return pngBomb(pick([30000, 100000, 65535]), pick([30000, 100000, 65535])).toString('base64');
    case 0: return bytes.subarray(0, int(bytes.length)).toString('base64');
    case 1: for (let i = 0; i < 8; i++) bytes[int(bytes.length)] = int(256); return bytes.toString('base64');
    case 2: return Buffer.from(Array.from({ length: int(200) }, () => int(256))).toString('base64');
    case 3: return pick(['%%%', 'abc', '====', 'data:image/png;base64,', 'QUJD\n', '*'.repeat(16)]);
    default: return Buffer.concat([Buffer.from('GIF89a'), bytes.subarray(6)]).toString('base64');
  }
}

interface Req { method: 'GET' | 'POST' | 'PUT' | 'DELETE'; url: string; headers?: Record<string, string>; payload?: string | Buffer }

function malformed(): Req {
  const route = pick(['/encode', '/decode', '/sample', '/likelihood']);
  const json = (body: unknown): Req => ({ method: 'POST', url: route, headers: { 'content-type': 'application/json' }, payload: JSON.stringify(body) });
  const model = pick([...names, ...weirdNames]);
  switch (int(14)) {
    case 0: { // truncated JSON
      const text = JSON.stringify({ model: pick(names), inputs: [[0.1, 0.2, 0.3]], count: 3 });
      return { method: 'POST', url: route, headers: { 'content-type': 'application/json' }, payload: text.slice(0, int(text.length)) };
    }
    case 1: return json(randomJsonValue()); // random structure
    case 2: { // weird numeric literals spliced into JSON
      return { method: 'POST', url: route, headers: { 'content-type': 'application/json' }, payload: `{"model":"${pick(names)}","inputs":[[${pick(weirdNumbers)},0.5]],"latents":[[${pick(weirdNumbers)}]],"count":${pick(weirdNumbers)}}` };
    }
    case 3: return json({ model, count: pick([0, -1, 1e9, 2.5, '3', null, [], 65]), temperature: pick([0, -1, 2.01, 1e308, '0.5', null]) });
    case 4: return json({ model: pick(names), inputs: Array.from({ length: int(3) + 1 }, () => Array.from({ length: pick([0, 1, 3, 783, 785]) }, () => rng.nextOpen01())) });
    case 5: return json({ model: pick(names), inputs: pick([[], [[]], 'abc', [1, 2, 3], { 0: [1] }, Array.from({ length: 65 }, () => [0.5, 0.5])]) });
    case 6: return json({ model: imageModel, images: Array.from({ length: int(3) + 1 }, corruptImage) });
    case 7: return json({ model: imageModel, images: pick([[], [''], [123], 'abc', [null], [goodPng.toString('base64'), 7]]) });
    case 8: return json({ model: pick(names), latents: pick([[[NaN]], [[1, 2]], [], 'x', [[1e300, -1e300]], [Array.from({ length: 784 }, () => 'a')]]), format: pick(['array', 'png', 'jpeg', 1, null]) });
    case 9: return json({ model, count: 1, seed: pick([-1, 2 ** 32, 1.5, '7', null]), unknownField: randomJsonValue() });
    case 10: return { method: 'POST', url: route, headers: { 'content-type': pick(['text/plain', 'application/xml', 'application/x-www-form-urlencoded', 'image/png', 'application/octet-stream', 'multipart/form-data']) }, payload: Buffer.from(Array.from({ length: int(300) }, () => int(256))) };
    case 11: return { method: 'POST', url: route, headers: { 'content-type': 'application/json' }, payload: '[' + '1,'.repeat(200_000) + '1]' }; // oversized body
    case 12: return { method: pick(['GET', 'PUT', 'DELETE'] as const), url: pick([route, `/models/${encodeURIComponent(pick(weirdNames))}`, '/../etc/passwd', `/models/${pick(weirdNames)}`, '/nope']) };
    default: return json({ model, inputs: [[rng.nextNormal() * 1e6, 2]], images: int(2) ? ['AAAA'] : undefined, resize: pick([true, 'yes', 1]) });
  }
}

test(`fuzz: ${REQUESTS} malformed requests get documented 4xx answers naming the field`, async () => {
  const statusCounts: Record<number, number> = {};
  const codeCounts: Record<string, number> = {};
  for (let i = 0; i < REQUESTS; i++) {
    const req = malformed();
    const res = await app.inject(req);
    statusCounts[res.statusCode] = (statusCounts[res.statusCode] ?? 0) + 1;
    const where = `request ${i}: ${req.method} ${req.url} ${String(req.payload ?? '').slice(0, 160)}`;
    assert.ok(res.statusCode < 500, `${where} → ${res.statusCode} ${res.body.slice(0, 300)}`);
    if (res.statusCode === 200) continue; // a random request can be valid
    const body = res.json();
    const code = body?.error?.code as keyof typeof STATUS_BY_CODE;
    assert.ok(code in STATUS_BY_CODE, `${where} → undocumented body ${res.body.slice(0, 200)}`);
    assert.equal(res.statusCode, STATUS_BY_CODE[code], where);
    codeCounts[code] = (codeCounts[code] ?? 0) + 1;
    const msg: string = body.error.message;
    const namesField = /^[A-Za-z_][\w.[\]-]*: \S/.test(msg);
    assert.ok(namesField || ['ROUTE_NOT_FOUND', 'MODEL_NOT_FOUND', 'OVERLOADED', 'UNAUTHORIZED'].includes(code), `${where} → message does not name a field: ${msg}`);
  }
  // The fuzzer reached the documented refusals, not just one of them.
  for (const code of ['VALIDATION_ERROR', 'INVALID_INPUT', 'INVALID_IMAGE', 'LIMIT_EXCEEDED', 'MODEL_NOT_FOUND', 'ROUTE_NOT_FOUND', 'PAYLOAD_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE'])
    assert.ok((codeCounts[code] ?? 0) > 0, `no ${code} in ${JSON.stringify(codeCounts)}`);
  const health = await app.inject({ method: 'GET', url: '/healthz' });
  assert.equal(health.statusCode, 200);
});
