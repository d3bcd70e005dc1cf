// What the service says about itself when inference workers crash or cannot start, and what a
// replacement is made from: readiness, liveness, public reasons, verified bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/config.js';
import { MODEL_DIR, post, testApp } from '../helpers/app.js';

const V = 'realnvp-moons';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A MODEL_DIR holding a copy of the vector model (fast to start), removed after the test. */
async function modelDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'flowserve-health-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await cp(join(MODEL_DIR, V), join(dir, V), { recursive: true });
  return dir;
}

const get = async (app: FastifyInstance, url: string) => {
  const res = await app.inject({ method: 'GET', url });
  return { status: res.statusCode, body: res.json(), headers: res.headers };
};

async function until<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    assert.ok(performance.now() < deadline, `timed out waiting for ${what}`);
    await sleep(25);
  }
}

test('FAULT - a replacement gets the verified bytes, not the files on disk', async (t) => {
  const dir = await modelDir(t);
  const app = await testApp({ modelDir: dir });
  t.after(() => app.close());
  const inputs = JSON.parse(await readFile(join(dir, V, 'reference.json'), 'utf8')).inputs;
  const sample = () => post(app, '/sample', { model: V, count: 8, seed: 3, format: 'array' });
  const likelihood = () => post(app, '/likelihood', { model: V, inputs, scores: ['nll'] });
  const [s0, l0] = [await sample(), await likelihood()];
  assert.equal(s0.status, 200);
  assert.equal(l0.status, 200);

  // After the check: one graph gone, the weights rescaled (valid floats, different model).
  await rm(join(dir, V, 'inverse.onnx'));
  const weights = await readFile(join(dir, V, 'weights.bin'));
  const floats = new Float32Array(weights.buffer, weights.byteOffset, weights.byteLength / 4);
  for (let i = 0; i < floats.length; i++) floats[i] *= 1.5;
  await writeFile(join(dir, V, 'weights.bin'), weights);

  await app.flowserve.killWorker(0);
  await until('the replacement', async () => app.flowserve.restarts === 1 && (await get(app, '/readyz')).status === 200);
  const [s1, l1] = [await sample(), await likelihood()];
  assert.equal(s1.status, 200, JSON.stringify(s1.body));
  assert.deepEqual(s1.body, s0.body, 'same samples from the same seed');
  assert.deepEqual(l1.body, l0.body, 'same likelihoods');
});

test('FAULT - unavailable model reasons carry no paths', async (t) => {
  const dir = await modelDir(t);
  // A package that passes the registry (its sha256 matches) but whose forward graph is not ONNX.
  await cp(join(dir, V), join(dir, 'garbled'), { recursive: true });
  const garbage = Buffer.from('this is not a protobuf '.repeat(40));
  await writeFile(join(dir, 'garbled', 'forward.onnx'), garbage);
  const manifest = JSON.parse(await readFile(join(dir, 'garbled', 'flow.json'), 'utf8'));
  manifest.name = 'garbled';
  manifest.files['forward.onnx'] = createHash('sha256').update(garbage).digest('hex');
  await writeFile(join(dir, 'garbled', 'flow.json'), JSON.stringify(manifest));
  // And one the registry refuses: a file is missing.
  await cp(join(dir, V), join(dir, 'incomplete'), { recursive: true });
  await rm(join(dir, 'incomplete', 'weights.bin'));
  manifest.name = 'incomplete';
  manifest.files['forward.onnx'] = JSON.parse(await readFile(join(dir, V, 'flow.json'), 'utf8')).files['forward.onnx'];
  await writeFile(join(dir, 'incomplete', 'flow.json'), JSON.stringify(manifest));

  const lines: { level: number; msg: string; detail?: string }[] = [];
  const config = loadConfig({}, { modelDir: dir, intraOpThreads: 1 });
  const app = await buildApp(config, { logger: { level: 'info', stream: { write: (line: string) => void lines.push(JSON.parse(line)) } } });
  t.after(() => app.close());
  await app.ready();
  await app.flowserve.whenReady();

  const internals = /\/|\\|onnx|protobuf|flowserve-health|\bat\b|offset/i;
  const readyz = await get(app, '/readyz');
  assert.equal(readyz.status, 200, 'the good model serves');
  assert.deepEqual(readyz.body.models.garbled, { status: 'unavailable', reason: "graph 'forward' could not be loaded" });
  assert.deepEqual(readyz.body.models.incomplete, { status: 'unavailable', reason: 'weights.bin is missing' });
  const models = (await get(app, '/models')).body.models as { name: string; reason?: string }[];
  for (const name of ['garbled', 'incomplete']) {
    const reason = models.find((m) => m.name === name)?.reason;
    assert.ok(reason && !internals.test(reason), `GET /models ${name}: ${reason}`);
    assert.equal((await get(app, `/models/${name}`)).body.reason, reason);
    const res = await post(app, '/sample', { model: name, count: 1 });
    assert.equal(res.status, 503);
    assert.equal(res.body.error.code, 'MODEL_UNAVAILABLE');
    assert.doesNotMatch(JSON.stringify(res.body), internals);
  }
  assert.doesNotMatch(JSON.stringify(readyz.body), internals);
  // The detail went to the log once, at load, at error level.
  const detailed = lines.filter((l) => /protobuf/i.test(JSON.stringify(l)));
  assert.equal(detailed.length, 1, JSON.stringify(detailed));
  assert.equal(detailed[0].level, 50);
  assert.match(detailed[0].msg, /model garbled refused: graph 'forward' could not be loaded/);
});

test('FAULT - readiness and liveness tell the truth when no worker can start', async (t) => {
  const app = await testApp({ modelDir: await modelDir(t) });
  t.after(() => app.close());
  assert.deepEqual((await get(app, '/healthz')).body, { status: 'ok' });

  app.flowserve.injectStartFaults(Infinity); // every start from now on exits during init
  await app.flowserve.killWorker(0);
  // At once: not ready, with the reason; still live (the first restart attempts are under way).
  const readyz = await get(app, '/readyz');
  assert.equal(readyz.status, 503);
  assert.equal(readyz.body.status, 'restarting');
  assert.match(readyz.body.models[V].reason, /^restarting: inference worker crashed/);
  assert.equal((await get(app, '/healthz')).status, 200, 'one crash is not a reason to restart the process');
  const refused = await post(app, '/sample', { model: V, count: 1 });
  assert.equal(refused.status, 503);
  assert.equal(refused.body.error.code, 'MODEL_UNAVAILABLE');
  assert.match(refused.body.error.message, /restarting: inference worker crashed/);
  assert.equal(refused.headers['retry-after'], '5');
  assert.equal((await get(app, `/models/${V}`)).body.status, 'unavailable');

  // After three failed starts in a row: not live either, so the orchestrator restarts the process.
  const unhealthy = await until('/healthz 503', async () => {
    const h = await get(app, '/healthz');
    return h.status === 503 && h;
  });
  assert.equal(unhealthy.body.status, 'unhealthy');
  assert.match(unhealthy.body.reason, /no inference worker can start: [3-9] attempts in a row failed/);
  const still = await get(app, '/readyz');
  assert.equal(still.status, 503);
  assert.match(still.body.models[V].reason, /^restarting: inference worker crashed; [3-9] restart attempts failed$/);

  // Once starts work again, the retries (still going) bring it back.
  app.flowserve.injectStartFaults(0);
  await until('/readyz 200', async () => (await get(app, '/readyz')).status === 200);
  assert.deepEqual((await get(app, '/healthz')).body, { status: 'ok' });
  assert.equal((await post(app, '/sample', { model: V, count: 1 })).status, 200);
  assert.equal(app.flowserve.restarts, 1);
});

test('BAD CALL - /readyz without the API key answers only its status', async (t) => {
  const app = await testApp({ modelDir: await modelDir(t), apiKey: 's3cret' });
  t.after(() => app.close());
  const anonymous = await get(app, '/readyz');
  assert.equal(anonymous.status, 200, 'probes reach it without the key');
  assert.deepEqual(anonymous.body, { status: 'ready' });
  const wrong = await app.inject({ method: 'GET', url: '/readyz', headers: { authorization: 'Bearer nope' } });
  assert.deepEqual(wrong.json(), { status: 'ready' });
  const authorized = await app.inject({ method: 'GET', url: '/readyz', headers: { authorization: 'Bearer s3cret' } });
  assert.deepEqual(authorized.json(), { status: 'ready', models: { [V]: { status: 'ready' } } });
});
