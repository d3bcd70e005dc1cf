// The property table over every shipped package, whatever its family (coupling, MAF, IAF, planar,
// continuous), through the service's own programs, batchers and inference workers:
//   round trip decode(encode(x)) ≈ x on raw samples, and encode(decode(ε)) ≈ ε;
//   forward.logDet + inverse.logDet ≈ 0;
//   logDet against a central finite-difference Jacobian of the served encode (2-D models);
//   every 2-D model's density integrates to 1 ± 0.01 on a grid.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config/config.js';
import { FlowService } from '../../src/service/flow-service.js';
import { createMetrics } from '../../src/service/metrics.js';
import { logProbability } from '../../src/flow/density.js';
import { MODEL_DIR } from '../helpers/app.js';
import { shippedPackages } from '../helpers/packages.js';

const silent = { info() {}, warn() {}, error() {} };
const packages = shippedPackages();
let service: FlowService;

before(async () => {
  // Large batches: the grid integrals send tens of thousands of rows.
  const config = loadConfig({}, { modelDir: MODEL_DIR, executionProvider: 'cpu', maxBatchSize: 4096, maxQueueSize: 1_000_000, requestTimeoutMs: 600_000 });
  service = new FlowService(config, createMetrics(), silent);
  await service.start();
});
after(() => service.close());

/** Tight tolerances for continuous flows, so that the solver's error does not hide the property. */
const tight = (family: string) => (family === 'ffjord' ? { solver: { atol: 1e-8, rtol: 1e-8 } } : {});

test('every family of the issue is shipped', () => {
  const families = new Set(packages.map((p) => p.manifest.family));
  for (const f of ['nice', 'realnvp', 'glow', 'maf', 'iaf', 'planar', 'ffjord']) assert.ok(families.has(f as never), `no shipped ${f} model`);
});

for (const pkg of packages) {
  const { name } = pkg;
  const family = pkg.manifest.family;

  test(`${name} (${family}): raw samples round-trip, encode recovers the drawn ε, and the two logDets cancel`, async () => {
    const model = service.resolve(name);
    const n = 16;
    const ctx = { deadline: performance.now() + 600_000, ...tight(family) };
    const s = await model.sample(n, Math.min(pkg.manifest.defaultTemperature, model.maxTemperature), 3, ctx);
    const enc = await model.encode(s.outputs, n, ctx);
    const dec = await model.decode(enc.latents, n, ctx);
    const d = model.dim;
    // float32 graphs: coupling and autoregressive flows agree to ~1e-5; Glow's 16 steps to ~1e-4
    const tol = family === 'glow' ? 2e-3 : 1e-3;
    for (let j = 0; j < n * d; j++) {
      assert.ok(Math.abs(enc.latents[j] - s.latents[j]) <= tol * (1 + Math.abs(s.latents[j])), `latent ${j}: ${enc.latents[j]} vs drawn ${s.latents[j]}`);
      assert.ok(Math.abs(dec.outputs[j] - s.outputs[j]) <= tol * (1 + Math.abs(s.outputs[j])), `output ${j}: ${dec.outputs[j]} vs ${s.outputs[j]}`);
    }
    for (let i = 0; i < n; i++) assert.ok(Math.abs(enc.logDet[i] + s.logDet[i]) <= 1e-3 * Math.max(1, Math.abs(enc.logDet[i])), `row ${i}: ${enc.logDet[i]} + ${s.logDet[i]}`);
  });

  if (pkg.manifest.data.shape.length === 1 && pkg.manifest.data.shape[0] === 2) {
    test(`${name} (${family}): logDet matches a central finite-difference Jacobian of the served encode`, async () => {
      const model = service.resolve(name);
      const ctx = { deadline: performance.now() + 600_000, ...tight(family) };
      const s = await model.sample(4, Math.min(0.8, model.maxTemperature), 5, ctx);
      // float32 graphs: a step of 1e-3 keeps rounding (~1e-7/1e-3) well under the curvature error
      const h = 1e-3;
      for (let i = 0; i < 4; i++) {
        const x = [s.outputs[2 * i], s.outputs[2 * i + 1]];
        const probes = [
          [x[0] + h, x[1]],
          [x[0] - h, x[1]],
          [x[0], x[1] + h],
          [x[0], x[1] - h],
        ];
        const z = (await model.encode(Float64Array.from(probes.flat()), 4, ctx)).latents;
        const j00 = (z[0] - z[2]) / (2 * h);
        const j10 = (z[1] - z[3]) / (2 * h);
        const j01 = (z[4] - z[6]) / (2 * h);
        const j11 = (z[5] - z[7]) / (2 * h);
        const fd = Math.log(Math.abs(j00 * j11 - j01 * j10));
        const served = (await model.encode(Float64Array.from(x), 1, ctx)).logDet[0];
        assert.ok(Math.abs(fd - served) <= 2e-2 * Math.max(1, Math.abs(served)), `point ${i}: finite difference ${fd}, served ${served}`);
      }
    });

    test(`${name} (${family}): the density integrates to 1 ± 0.01 on a grid`, async () => {
      const model = service.resolve(name);
      const [lo, hi, cells] = [-6, 6, 160];
      const step = (hi - lo) / cells;
      const x = new Float64Array(cells * cells * 2);
      for (let a = 0; a < cells; a++)
        for (let b = 0; b < cells; b++) {
          x[2 * (a * cells + b)] = lo + (a + 0.5) * step;
          x[2 * (a * cells + b) + 1] = lo + (b + 0.5) * step;
        }
      const n = cells * cells;
      const enc = await model.encode(x, n, { deadline: performance.now() + 600_000 });
      const logp = logProbability(enc.latents, enc.logDet, n, 2);
      let mass = 0;
      for (const lp of logp) mass += Math.exp(lp) * step * step;
      assert.ok(Math.abs(mass - 1) <= 0.01, `∫p = ${mass}`);
    });
  }
}
