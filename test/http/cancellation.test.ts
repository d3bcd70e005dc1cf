// A loop whose client disconnects stops issuing graph calls: the request's signal aborts when the
// connection closes before the answer, the program stops between steps and the batchers drop its
// queued work. Checked from the metrics, over a real socket.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { testApp } from '../helpers/app.js';

let app: FastifyInstance;
let port: number;
// One row per graph call: a 256-sample MAF draw is then thousands of sequential calls.
before(async () => {
  app = await testApp({ maxBatchSize: 1 });
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as { port: number }).port;
});
after(() => app.close());

async function counter(pattern: RegExp): Promise<number> {
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
  let sum = 0;
  for (const line of text.split('\n')) if (pattern.test(line)) sum += Number(line.split(' ').pop());
  return sum;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('FAULT - a sampling loop whose client disconnects stops issuing graph calls', async () => {
  const model = (await app.inject({ method: 'GET', url: '/models' })).json().models.find((m: { family?: string; status: string }) => m.family === 'maf' && m.status === 'ready');
  assert.ok(model, 'a MAF model is shipped');
  const count = 256;
  const passes: number = model.cost.inverse.passes;
  const calls = new RegExp(`^flowserve_inference_batch_size_count\\{model="${model.name}"`);
  const before = await counter(calls);
  const body = JSON.stringify({ model: model.name, count, format: 'array', seed: 1 });
  const socket = connect(port, '127.0.0.1');
  socket.write(`POST /sample HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  // wait until the loop runs, then leave
  for (let i = 0; i < 200 && (await counter(calls)) === before; i++) await sleep(5);
  socket.destroy();
  await sleep(300);
  const stopped = await counter(calls);
  await sleep(500);
  const later = await counter(calls);
  assert.equal(later, stopped, 'no graph call after the client left (beyond those already running)');
  assert.ok(later - before < (count * passes) / 4, `${later - before} of ${count * passes} calls ran`);
  assert.equal(await counter(new RegExp(`^flowserve_requests_cancelled_total\\{model="${model.name}"`)), 1);
  // the service still answers
  const ok = await app.inject({ method: 'POST', url: '/sample', payload: { model: model.name, count: 1, format: 'array' } });
  assert.equal(ok.statusCode, 200);
});

test('FAULT - a client that leaves mid-request stops being in flight: a drain does not wait for it, and it is counted as CANCELLED (499)', async () => {
  const inFlight = async () => counter(/^flowserve_http_requests_in_flight /);
  const cancelled = () => counter(/^flowserve_inference_requests_total\{model="glow-fashion",operation="likelihood",protocol="native",result="failure",reason="CANCELLED"\}/);
  const before = await cancelled();
  const rows = new Float32Array(64 * 784).fill(0.5);
  const body = Buffer.from(rows.buffer);
  const sockets = Array.from({ length: 4 }, () => {
    const s = connect(port, '127.0.0.1');
    s.on('error', () => {});
    s.write(`POST /likelihood?model=glow-fashion HTTP/1.1\r\nhost: x\r\ncontent-type: application/octet-stream\r\ncontent-length: ${body.length}\r\n\r\n`);
    s.write(body);
    return s;
  });
  await sleep(20);
  for (const s of sockets) s.destroy();
  for (let i = 0; i < 200 && (app.lifecycle.inFlight > 0 || (await cancelled()) < before + 4); i++) await sleep(10);
  assert.equal(app.lifecycle.inFlight, 0, 'the lifecycle no longer counts them');
  assert.equal(await inFlight(), 1, 'only the /metrics request itself');
  assert.equal(await cancelled(), before + 4);
});
