// Probes, model listing, metrics (checked by promtool when it is installed) and the docs.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import type { FastifyInstance } from 'fastify';
import { post, testApp } from '../helpers/app.js';
import { shippedPackages } from '../helpers/packages.js';

const packages = shippedPackages();
let app: FastifyInstance;
before(async () => {
  app = await testApp();
});
after(() => app.close());

test('GET /healthz and /readyz', async () => {
  assert.deepEqual((await app.inject({ method: 'GET', url: '/healthz' })).json(), { status: 'ok' });
  const ready = await app.inject({ method: 'GET', url: '/readyz' });
  assert.equal(ready.statusCode, 200);
  assert.equal(ready.json().status, 'ready');
  for (const p of packages) assert.equal(ready.json().models[p.name].status, 'ready');
});

test('GET /models lists every shipped model with family, shapes, provider and quality', async () => {
  const body = (await app.inject({ method: 'GET', url: '/models' })).json();
  assert.deepEqual(body.models.map((m: { name: string }) => m.name).sort(), packages.map((p) => p.name));
  assert.ok(packages.some((p) => p.name === body.defaultModel));
  for (const m of body.models) {
    const pkg = packages.find((p) => p.name === m.name)!;
    assert.equal(m.status, 'ready');
    assert.equal(m.provider, 'cpu');
    assert.equal(m.family, pkg.manifest.family);
    assert.equal(m.latentSize, pkg.manifest.latent.size);
    assert.equal(m.defaultTemperature, pkg.manifest.defaultTemperature);
    assert.equal(m.quality.testLogLikelihood, pkg.manifest.training.test?.meanLogLikelihood);
    assert.deepEqual(m.scores, pkg.manifest.data.kind === 'image' ? ['nll', 'typicality', 'complexity', 'complexityJpegLs'] : ['nll', 'typicality']);
    assert.ok(m.scores.includes(m.anomaly.defaultScore));
  }
  const one = await app.inject({ method: 'GET', url: `/models/${packages[0].name}` });
  assert.equal(one.statusCode, 200);
  assert.equal(one.json().name, packages[0].name);
});

test('GET /metrics exposes the flowserve_ families and passes promtool', async (t) => {
  const name = packages[0].name;
  await post(app, '/likelihood', { model: name, inputs: packages[0].reference.inputs });
  await post(app, '/sample', { model: 'missing-model', count: 1 });
  const res = await app.inject({ method: 'GET', url: '/metrics' });
  assert.equal(res.statusCode, 200);
  assert.match(res.headers['content-type'] as string, /^text\/plain/);
  const text = res.body;
  for (const family of [
    'flowserve_http_requests_total',
    'flowserve_http_request_duration_seconds',
    'flowserve_http_requests_in_flight',
    'flowserve_inference_duration_seconds',
    'flowserve_inference_batch_size',
    'flowserve_queue_depth',
    'flowserve_queue_wait_seconds',
    'flowserve_requests_shed_total',
    'flowserve_requests_timed_out_total',
    'flowserve_model_info',
    'flowserve_errors_total',
    'flowserve_solver_evaluations',
    'flowserve_solver_iterations',
    'flowserve_requests_cancelled_total',
    'process_cpu_user_seconds_total',
    'nodejs_eventloop_lag_seconds',
  ])
    assert.match(text, new RegExp(`^# TYPE ${family} `, 'm'), family);
  assert.match(text, new RegExp(`flowserve_http_requests_total\\{route="/likelihood",model="${name}",status="200"\\} 1`));
  assert.match(text, /flowserve_errors_total\{code="MODEL_NOT_FOUND"\} 1/);
  assert.match(text, new RegExp(`flowserve_model_info\\{model="${name}",family="\\w+",provider="cpu",status="ready"\\} 1`));
  assert.match(text, new RegExp(`flowserve_inference_batch_size_count\\{model="${name}",graph="[^"]+"\\} [1-9]`));

  if (spawnSync('promtool', ['--version']).error) {
    t.skip('promtool not installed (.ci/run installs it)');
    return;
  }
  const out = execFileSync('promtool', ['check', 'metrics'], { input: text }).toString();
  assert.equal(out.trim(), '', `promtool: ${out}`);
});

test('GET /docs serves Swagger UI and the OpenAPI document', async () => {
  const ui = await app.inject({ method: 'GET', url: '/docs/' });
  assert.equal(ui.statusCode, 200);
  assert.match(ui.body, /swagger/i);
  const doc = await app.inject({ method: 'GET', url: '/docs/json' });
  assert.equal(doc.statusCode, 200);
  assert.ok(doc.json().paths['/likelihood']);
});
