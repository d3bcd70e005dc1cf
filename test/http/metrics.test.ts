// The per-inference-request metrics (README, Metrics: the Triton counterparts), over both protocols.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { testApp } from '../helpers/app.js';

let app: FastifyInstance;
before(async () => {
  app = await testApp();
});
after(() => app.close());

/** The value of one sample line of /metrics (0 when absent). */
async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.split(' ').pop());
  }
  return 0;
}

test('inference requests are counted by model, operation, protocol and result, failures by their error code; samples and stage times follow', async () => {
  const ok = { model: 'realnvp-moons', operation: 'likelihood', protocol: 'native', result: 'success' };
  const v2ok = { ...ok, protocol: 'v2' };
  const v2bad = { ...ok, protocol: 'v2', result: 'failure', reason: 'INVALID_INPUT' };
  const before = { ok: await metric('flowserve_inference_requests_total', ok), v2ok: await metric('flowserve_inference_requests_total', v2ok), v2bad: await metric('flowserve_inference_requests_total', v2bad) };
  const samples = await metric('flowserve_inference_samples_total', { model: 'realnvp-moons', operation: 'likelihood' });
  const parses = await metric('flowserve_request_stage_seconds_count', { model: 'realnvp-moons', operation: 'likelihood', protocol: 'native', stage: 'parse' });

  assert.equal((await app.inject({ method: 'POST', url: '/likelihood', payload: { model: 'realnvp-moons', inputs: [[0.1, 0.2], [0.3, 0.4]] } })).statusCode, 200);
  assert.equal((await app.inject({ method: 'POST', url: '/v2/models/realnvp-moons/infer', payload: '{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[0.1,0.2]}]}' })).statusCode, 200);
  const bad = await app.inject({ method: 'POST', url: '/v2/models/realnvp-moons/infer', payload: '{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1e39,0.2]}]}' });
  assert.equal(bad.statusCode, 400, bad.body);

  assert.equal(await metric('flowserve_inference_requests_total', ok), before.ok + 1);
  assert.equal(await metric('flowserve_inference_requests_total', v2ok), before.v2ok + 1);
  assert.equal(await metric('flowserve_inference_requests_total', v2bad), before.v2bad + 1);
  assert.equal(await metric('flowserve_inference_samples_total', { model: 'realnvp-moons', operation: 'likelihood' }), samples + 3);
  assert.equal(await metric('flowserve_request_stage_seconds_count', { model: 'realnvp-moons', operation: 'likelihood', protocol: 'native', stage: 'parse' }), parses + 1);
  for (const stage of ['operation', 'render']) assert.ok((await metric('flowserve_request_stage_seconds_count', { model: 'realnvp-moons', protocol: 'v2', stage })) >= 1, stage);
});

test('BAD CALL - a request refused before it reaches a model (unknown model) is not an inference request', async () => {
  const before = await metric('flowserve_inference_requests_total', { model: 'nope' });
  assert.equal((await app.inject({ method: 'POST', url: '/v2/models/nope/infer', payload: '{"inputs":[]}' })).statusCode, 404);
  assert.equal(await metric('flowserve_inference_requests_total', { model: 'nope' }), before);
});
