// The log under repeated failures: one line per cause per interval, at the level the cause
// deserves, with no stack trace for refusals by design and one `msg` key per line.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/config.js';
import { LogLimiter } from '../../src/log-limiter.js';
import { modelDirWith } from '../helpers/server-process.js';

const lines: Record<string, unknown>[] = [];
const raw: string[] = [];
const stream = new Writable({
  write(chunk: Buffer, _enc, done) {
    for (const line of chunk.toString().split('\n').filter(Boolean)) {
      raw.push(line);
      lines.push(JSON.parse(line));
    }
    done();
  },
});

let app: FastifyInstance;
let dir: string;
before(async () => {
  // a good package and a tampered copy of it under another name
  dir = await modelDirWith(['realnvp-moons']);
  const { cp } = await import('node:fs/promises');
  await cp(`${dir}/realnvp-moons`, `${dir}/moons-tampered`, { recursive: true });
  const manifest = JSON.parse(await readFile(`${dir}/moons-tampered/flow.json`, 'utf8'));
  await writeFile(`${dir}/moons-tampered/flow.json`, JSON.stringify({ ...manifest, name: 'moons-tampered' }));
  await writeFile(`${dir}/moons-tampered/weights.bin`, 'tampered');
  app = await buildApp(loadConfig({}, { modelDir: dir, intraOpThreads: 1, executionProvider: 'cpu' }), { logger: { level: 'info', stream } });
  await app.ready();
  await app.flowserve.whenReady();
});
after(async () => {
  await app.close();
  await rm(dir, { recursive: true, force: true });
});

const refusals = (code: string) => lines.filter((l) => l.msg === 'request refused' && l.code === code);

test('FAULT - 50 requests to an unavailable model: 50 × 503, one warn line without a stack, no error lines', async () => {
  for (let i = 0; i < 50; i++) {
    const res = await app.inject({ method: 'POST', url: '/sample', payload: { model: 'moons-tampered', count: 1 } });
    assert.equal(res.statusCode, 503);
    assert.equal(res.json().error.code, 'MODEL_UNAVAILABLE');
  }
  const logged = refusals('MODEL_UNAVAILABLE');
  assert.equal(logged.length, 1, JSON.stringify(logged));
  assert.equal(logged[0].level, 40);
  assert.equal(logged[0].err, undefined, 'no stack trace for a refusal by design');
  assert.equal(lines.filter((l) => (l.level as number) >= 50 && l.reqId).length, 0, 'no request logged at error level');
  // the detailed reason was logged once, at load
  assert.equal(lines.filter((l) => String(l.msg).startsWith('model moons-tampered refused')).length, 1);
});

test('BAD CALL - the same bad call repeated is logged once per interval, whatever its values', async () => {
  for (let i = 0; i < 20; i++) await app.inject({ method: 'POST', url: '/sample', payload: { model: 'realnvp-moons', count: 1, temperature: 5 + i } });
  assert.equal(refusals('VALIDATION_ERROR').length, 1);
});

test('every log line has exactly one msg key', () => {
  for (const line of raw) assert.ok((line.match(/"msg":/g) ?? []).length <= 1, line);
});

test('LogLimiter: once per key per interval, then the count of what it held back', () => {
  let now = 0;
  const limiter = new LogLimiter(1000, () => now);
  const written: [string, number][] = [];
  const log = (key: string) => limiter.log(key, (suppressed) => written.push([key, suppressed]));
  assert.equal(log('a'), true);
  assert.equal(log('a'), false);
  assert.equal(log('b'), true, 'another cause is not held back');
  now = 999;
  assert.equal(log('a'), false);
  now = 1000;
  assert.equal(log('a'), true);
  assert.deepEqual(written, [['a', 0], ['b', 0], ['a', 2]]);
});
