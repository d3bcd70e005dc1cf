// Acceptance check of every shipped package, loaded with onnxruntime-node on CPU through the
// service's own registry and glue: sha256 and manifest schema, LU-built W·W⁻¹ ≈ I, encode → decode
// on the reference inputs and on real test images (max abs error ≤ 1e-4), and log p(x) against the
// float64 PyTorch values in reference.json (≤ 1e-4 relative).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { loadConfig } from '../../src/config/config.js';
import { ManifestSchema } from '../../src/config/manifest-schema.js';
import { FlowService } from '../../src/service/flow-service.js';
import { createMetrics } from '../../src/service/metrics.js';
import { loadPackage, sha256File, LU_RESIDUAL_TOLERANCE } from '../../src/service/registry.js';
import { logProbability } from '../../src/flow/density.js';
import { MODEL_DIR } from '../helpers/app.js';
import { mnistTestImages, relErr, shippedPackages } from '../helpers/packages.js';

const silent = { info() {}, warn() {}, error() {} };
const packages = shippedPackages();
let service: FlowService;

before(async () => {
  service = new FlowService(loadConfig({}, { modelDir: MODEL_DIR, executionProvider: 'cpu', intraOpThreads: 1 }), createMetrics(), silent);
  await service.start();
});
after(() => service.close());

test('the zoo is shipped and within its size budget', () => {
  const names = packages.map((p) => p.name);
  for (const want of ['realnvp-moons', 'nice-mnist', 'realnvp-mnist', 'glow-fashion']) assert.ok(names.includes(want), `models/${want} is missing`);
  let total = 0;
  for (const p of packages) {
    const size = readdirSync(p.dir).reduce((s, f) => s + statSync(join(p.dir, f)).size, 0);
    assert.ok(size <= 8 * 1024 * 1024, `${p.name} is ${size} bytes (> 8 MB)`);
    total += size;
  }
  assert.ok(total <= 16 * 1024 * 1024, `models/ is ${total} bytes (> 16 MB)`);
});

for (const pkg of packages) {
  const { name, manifest, reference: ref } = pkg;

  test(`${name}: manifest schema and sha256 of every file`, async () => {
    assert.ok(Value.Check(ManifestSchema, manifest), JSON.stringify(Value.Errors(ManifestSchema, manifest).First()));
    for (const [file, sha] of Object.entries(manifest.files)) assert.equal(await sha256File(join(pkg.dir, file)), sha, file);
    assert.equal(service.states.get(name)?.status, 'ready', service.states.get(name)?.reason);
  });

  if (manifest.lu !== null)
    test(`${name}: LU-built W·W⁻¹ ≈ I for every 1×1 convolution`, async () => {
    const loaded = await loadPackage(pkg.dir, name);
    assert.equal(loaded.lu.length, manifest.lu!.layers);
    for (const l of loaded.lu) assert.ok(l.residual <= LU_RESIDUAL_TOLERANCE, `${l.name}: ${l.residual}`);
  });

  test(`${name}: log p(x) and latents match reference.json (float64 PyTorch)`, async () => {
    const model = service.resolve(name);
    const n = ref.inputs.length;
    // a continuous flow's reference is a tight float64 solve: compare at a tight tolerance too
    const ctx = manifest.program?.kind === 'ode' ? { solver: { atol: 1e-8, rtol: 1e-8 } } : {};
    const { latents, logDet } = await model.encode(ref.inputs.flat(), n, ctx);
    const logp = logProbability(latents, logDet, n, model.dim);
    for (let i = 0; i < n; i++) {
      assert.ok(relErr(logp[i], ref.logProb[i]) <= 1e-4, `input ${i}: log p ${logp[i]} vs ${ref.logProb[i]}`);
      assert.ok(relErr(logDet[i], ref.logDet[i]) <= 1e-4 || Math.abs(logDet[i] - ref.logDet[i]) < 1e-3, `input ${i}: logDet ${logDet[i]} vs ${ref.logDet[i]}`);
      const zErr = Math.max(...ref.latents[i].map((v, j) => Math.abs(v - latents[i * model.dim + j])));
      assert.ok(zErr <= 1e-3, `input ${i}: latent max abs error ${zErr}`);
    }
  });

  test(`${name}: encode → decode max abs error ≤ 1e-4 (reference inputs${manifest.data.kind === 'image' ? ' and 64 MNIST test images' : ''})`, async () => {
    const model = service.resolve(name);
    const sets = [ref.inputs];
    if (manifest.data.kind === 'image') sets.push(mnistTestImages(64, 100).rows);
    for (const rows of sets) {
      const x = rows.flat();
      const enc = await model.encode(x, rows.length);
      const dec = await model.decode(enc.latents, rows.length);
      let err = 0;
      for (let i = 0; i < x.length; i++) err = Math.max(err, Math.abs(dec.outputs[i] - x[i]));
      assert.ok(err <= 1e-4, `max abs error ${err}`);
      // inverse logDet is the negative of forward's
      for (let i = 0; i < rows.length; i++) assert.ok(Math.abs(enc.logDet[i] + dec.logDet[i]) <= 1e-3 * Math.max(1, Math.abs(enc.logDet[i])), `row ${i}`);
    }
  });
}

// The service samples at any 0 < T <= 2; a flow whose inverse divides by an unbounded learned scale
// (Glow's original sigmoid coupling) decodes such draws to Inf/NaN. Every shipped flow must decode
// prior draws to finite values on its own, without the sampler's redraw guard.
for (const pkg of packages)
  test(`${pkg.name}: 128 prior draws at T = 1 and T = 2 decode to finite values without redraws (|x| ≤ 1e4 at T = 1)`, async () => {
    const model = service.resolve(pkg.name);
    for (const temperature of [1, 2]) {
      const s = await model.sample(128, temperature, 11);
      assert.equal(s.redrawn, 0, `T=${temperature}: ${s.redrawn} of 128 draws decoded to non-finite values`);
      let max = 0;
      for (const v of s.outputs) max = Math.max(max, Math.abs(v));
      // at T = 2 a draw lies far outside the typical set: finiteness only (exporter/flowexport/stability.py)
      if (temperature === 1) assert.ok(max <= 1e4, `T=1: max |x| ${max}`);
    }
  });
