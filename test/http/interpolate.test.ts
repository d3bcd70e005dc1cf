// POST /interpolate on every shipped model (app.inject): end frames, agreement with /encode and
// /decode, the spherical path's norm, and refusals.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { post, testApp } from '../helpers/app.js';
import { maxAbs, mnistTestImages, relErr, shippedPackages } from '../helpers/packages.js';
import { encodePngs } from '../../src/imaging/image-codec.js';

let app: FastifyInstance;
before(async () => {
  app = await testApp({ maxSamplesPerRequest: 32 });
});
after(() => app.close());

const packages = shippedPackages();
const norm = (v: number[]) => Math.sqrt(v.reduce((a, x) => a + x * x, 0));
type Body = { t: number[]; outputs?: number[][]; images?: string[]; logLikelihood: number[]; latents?: number[][]; method: string; steps: number; cost: { passes: number }; encodeCost?: { passes: number } };

for (const pkg of packages) {
  const { name, reference: ref, manifest } = pkg;
  const ode = manifest.program?.kind === 'ode';
  const tight = ode ? { atol: 1e-8, rtol: 1e-8 } : {};

  test(`${name}: data ends are encoded, the path decoded; the end frames are the inputs again`, async () => {
    const inputs = [ref.inputs[0], ref.inputs[1]];
    const res = await post(app, '/interpolate', { model: name, inputs, steps: 5, format: 'array', output: 'raw', returnLatents: true, ...tight });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const body = res.body as Body;
    assert.deepEqual(body.t, [0, 0.25, 0.5, 0.75, 1]);
    assert.equal(body.method, 'linear');
    assert.equal(body.outputs!.length, 5);
    assert.ok(maxAbs([body.outputs![0], body.outputs![4]], inputs) <= 1e-4, `end frames off by ${maxAbs([body.outputs![0], body.outputs![4]], inputs)}`);
    // the ends' latents are /encode's, and every frame is /decode of its latent
    const enc = await post(app, '/encode', { model: name, inputs, ...tight });
    assert.deepEqual([body.latents![0], body.latents![4]], enc.body.latents);
    const dec = await post(app, '/decode', { model: name, latents: body.latents, output: 'raw', format: 'array', ...tight });
    assert.deepEqual(body.outputs, dec.body.outputs);
    assert.deepEqual(body.logLikelihood, dec.body.logLikelihood);
    // the middle frames lie on the segment between the two latents
    body.latents![2].forEach((v, j) => assert.ok(Math.abs(v - (body.latents![0][j] + body.latents![4][j]) / 2) < 1e-12));
    assert.ok(body.encodeCost && body.cost.passes >= 1);
  });

  test(`${name}: spherical path from latents keeps |z| between ends of equal norm, and the ends are exact`, async () => {
    const d = manifest.latent.size;
    const z0 = Array.from({ length: d }, (_, j) => Math.sin(j + 1));
    const raw = Array.from({ length: d }, (_, j) => Math.cos(3 * j + 0.5));
    const z1 = raw.map((v) => (v * norm(z0)) / norm(raw));
    const res = await post(app, '/interpolate', { model: name, latents: [z0, z1].map((z) => z.map((v) => v * 0.5)), steps: 4, method: 'spherical', output: 'raw', format: 'array', returnLatents: true });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const body = res.body as Body;
    assert.equal(body.method, 'spherical');
    assert.equal(body.encodeCost, undefined);
    assert.deepEqual(body.latents![0], z0.map((v) => v * 0.5));
    assert.deepEqual(body.latents![3], z1.map((v) => v * 0.5));
    for (const z of body.latents!) assert.ok(relErr(norm(z), norm(z0) * 0.5) < 1e-9);
    assert.equal(body.logLikelihood.length, 4);
    for (const v of body.logLikelihood) assert.ok(Number.isFinite(v));
  });
}

const images = packages.filter((p) => p.manifest.data.kind === 'image');
test('image models: images in, PNG frames out by default; the end frames are the input pixels exactly', async () => {
  const { pixels } = mnistTestImages(2, 7);
  const pngs = (await encodePngs(pixels, 1, 28, 28)).map((b) => b.toString('base64'));
  for (const pkg of images) {
    const res = await post(app, '/interpolate', { model: pkg.name, images: pngs, steps: 6, method: 'spherical' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const body = res.body as Body;
    assert.equal(body.images!.length, 6);
    assert.equal(body.outputs, undefined);
    assert.equal(body.images![0], pngs[0], `${pkg.name}: first frame`);
    assert.equal(body.images![5], pngs[1], `${pkg.name}: last frame`);
    assert.notEqual(body.images![2], pngs[0]);
  }
});

test('image models: each frame\'s logLikelihood is what /likelihood answers for the frame (pixel centres)', async () => {
  const pkg = images[0];
  const { rows } = mnistTestImages(2, 20);
  const res = await post(app, '/interpolate', { model: pkg.name, inputs: rows, steps: 3, format: 'array' });
  assert.equal(res.status, 200);
  const lik = await post(app, '/likelihood', { model: pkg.name, inputs: res.body.outputs, scores: ['nll'] });
  lik.body.results.forEach((r: { logLikelihood: number }, i: number) => assert.ok(relErr(res.body.logLikelihood[i], r.logLikelihood) < 1e-6, `${res.body.logLikelihood[i]} vs ${r.logLikelihood}`));
});

test('steps default to 8 and the method to linear; the request counts as operation "interpolate"', async () => {
  const res = await post(app, '/interpolate', { model: 'realnvp-moons', inputs: [[0.5, 0.2], [-0.5, 0.3]] });
  assert.equal(res.status, 200);
  assert.equal(res.body.steps, 8);
  assert.equal(res.body.t.length, 8);
  assert.equal(res.body.method, 'linear');
  const metrics = (await app.inject('/metrics')).body;
  assert.match(metrics, /flowserve_inference_requests_total\{model="realnvp-moons",operation="interpolate",protocol="native",result="success",reason=""\} [1-9]/);
});

const bad: [string, Record<string, unknown>, number, RegExp][] = [
  ['inputs and latents both', { inputs: [[0, 0], [1, 1]], latents: [[0, 0], [1, 1]] }, 400, /latents: send exactly one of "inputs", "images" or "latents"/],
  ['no ends', { steps: 4 }, 400, /inputs: send exactly one/],
  ['one input', { inputs: [[0, 0]] }, 400, /body.inputs: must NOT have fewer than 2 items/],
  ['three inputs', { inputs: [[0, 0], [1, 1], [2, 2]] }, 400, /body.inputs: must NOT have more than 2 items/],
  ['steps 1', { inputs: [[0, 0], [1, 1]], steps: 1 }, 400, /body.steps: must be >= 2/],
  ['steps past MAX_SAMPLES_PER_REQUEST', { inputs: [[0, 0], [1, 1]], steps: 33 }, 400, /steps.*MAX_SAMPLES_PER_REQUEST/],
  ['steps not whole', { inputs: [[0, 0], [1, 1]], steps: 2.5 }, 400, /body.steps: must be a finite integer/],
  ['unknown method', { inputs: [[0, 0], [1, 1]], method: 'cubic' }, 400, /body.method: must be one of.*linear.*spherical/],
  ['row of the wrong length', { inputs: [[0, 0], [1, 1, 1]] }, 400, /inputs\[1\]/],
  ['latent row of the wrong length', { latents: [[0], [1, 1]] }, 400, /latents\[0\]/],
  ['opposite latents, spherical', { latents: [[1, 2], [-2, -4]], method: 'spherical' }, 400, /latents: the two latents point in opposite directions.*"linear"/],
  ['png from a vector model', { inputs: [[0, 0], [1, 1]], format: 'png' }, 400, /format: model realnvp-moons produces vectors/],
  ['quantized output from a vector model', { inputs: [[0, 0], [1, 1]], output: 'quantized' }, 400, /output: model realnvp-moons has no/],
  ['resize without images', { inputs: [[0, 0], [1, 1]], resize: true }, 400, /resize: is only for images/],
  ['ODE tolerance on a coupling flow', { inputs: [[0, 0], [1, 1]], atol: 1e-6 }, 400, /atol: is only for continuous flows/],
  ['unknown field', { inputs: [[0, 0], [1, 1]], temperature: 0.5 }, 400, /must NOT have additional properties|temperature/],
  ['unknown model', { model: 'nope', inputs: [[0, 0], [1, 1]] }, 404, /nope/],
  ['a string for a number', { inputs: [[0, '1'], [1, 1]] }, 400, /body.inputs\[0\]\[1\]: must be a finite number/],
];
for (const [what, body, status, message] of bad)
  test(`BAD CALL - /interpolate: ${what}`, async () => {
    const res = await post(app, '/interpolate', { model: 'realnvp-moons', ...body });
    assert.equal(res.status, status, JSON.stringify(res.body));
    assert.match(res.body.error.message, message);
  });

test('BAD CALL - /interpolate: image ends that are not images, or of the wrong size', async () => {
  let res = await post(app, '/interpolate', { model: images[0].name, images: ['aGVsbG8=', 'aGVsbG8='] });
  assert.equal(res.status, 400);
  assert.match(res.body.error.message, /images\[0\]/);
  const small = (await encodePngs([new Uint8Array(64), new Uint8Array(64)], 1, 8, 8)).map((b) => b.toString('base64'));
  res = await post(app, '/interpolate', { model: images[0].name, images: small });
  assert.equal(res.status, 400);
  assert.match(res.body.error.message, /images\[0\].*28/);
  res = await post(app, '/interpolate', { model: images[0].name, images: small, resize: true, steps: 2 });
  assert.equal(res.status, 200);
});

test('BAD CALL - /interpolate: values outside the model\'s support name the row', async () => {
  const logit = images.find((p) => p.manifest.preprocessing.transform.kind === 'logit')!;
  const res = await post(app, '/interpolate', { model: logit.name, inputs: [new Array(784).fill(0.5), new Array(784).fill(1.5)] });
  assert.equal(res.status, 400);
  assert.match(res.body.error.message, /inputs\[1\]/);
});

test('BAD CALL - /interpolate: query parameters are refused (JSON bodies carry their options)', async () => {
  const res = await app.inject({ method: 'POST', url: '/interpolate?steps=4', payload: { model: 'realnvp-moons', inputs: [[0, 0], [1, 1]] } });
  assert.equal(res.statusCode, 400);
  assert.match(res.json().error.message, /query\.steps/);
});
