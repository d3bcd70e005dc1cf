// The workflows users chain together, on every shipped model at several temperatures in its range:
// sample (each output form) → encode → decode → likelihood. Every output of /sample and /decode is
// accepted back; the latents of encode(raw sample) are the drawn ε; every returned log-likelihood
// is the density of exactly what was returned.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import sharp from 'sharp';
import { post, testApp } from '../helpers/app.js';
import { shippedPackages } from '../helpers/packages.js';

let app: FastifyInstance;
before(async () => {
  app = await testApp();
});
after(() => app.close());

const COUNT = 6;
const relClose = (a: number, b: number, tol: number) => Math.abs(a - b) <= tol * Math.max(1, Math.abs(b));

for (const pkg of shippedPackages()) {
  const { name, manifest } = pkg;
  const card = async () => (await app.inject({ method: 'GET', url: `/models/${name}` })).json();

  test(`${name}: sample → encode → decode → likelihood chains in every output form, at several temperatures in range`, async () => {
    const doc = await card();
    // a continuous flow's two directions agree to its solver tolerance: make that tight
    const tol = doc.family === 'ffjord' ? { atol: 1e-9, rtol: 1e-9 } : {};
    const max: number = doc.sampling.temperature.max;
    const temperatures = [...new Set([Math.min(0.3, max), manifest.defaultTemperature, max])];
    assert.ok(temperatures.every((t) => t > 0 && t <= max));
    for (const temperature of temperatures)
      for (const output of doc.outputs.forms as string[]) {
        const at = `T=${temperature} ${output}`;
        const s = await post(app, '/sample', { model: name, count: COUNT, seed: 11, temperature, output, format: 'array', returnLatents: true, ...tol });
        assert.equal(s.status, 200, `${at}: ${JSON.stringify(s.body).slice(0, 300)}`);
        assert.equal(s.body.output, output);
        assert.equal(s.body.latents.length, COUNT);

        // encode takes every output back; raw outputs encode to the drawn ε
        const enc = await post(app, '/encode', { model: name, inputs: s.body.outputs, ...tol });
        assert.equal(enc.status, 200, `${at}: ${JSON.stringify(enc.body).slice(0, 300)}`);
        if (output === 'raw')
          s.body.latents.forEach((eps: number[], i: number) =>
            eps.forEach((e, j) => assert.ok(Math.abs(enc.body.latents[i][j] - e) <= 2e-3 * (1 + Math.abs(e)), `${at}: latent [${i}][${j}] ${enc.body.latents[i][j]} vs drawn ${e}`)),
          );

        // decode(encode(x)) gives x back (raw), and re-applying the form gives exactly the output
        const back = await post(app, '/decode', { model: name, latents: enc.body.latents, output: 'raw', ...tol });
        assert.equal(back.status, 200);
        back.body.outputs.forEach((row: number[], i: number) => row.forEach((v, j) => assert.ok(Math.abs(v - s.body.outputs[i][j]) <= 1e-3, `${at}: round trip [${i}][${j}] ${v} vs ${s.body.outputs[i][j]}`)));
        if (output === 'quantized') {
          const again = await post(app, '/decode', { model: name, latents: enc.body.latents, output, ...tol });
          assert.deepEqual(again.body.outputs, s.body.outputs, `${at}: quantize(decode(encode(x))) = x`);
        }

        // the log-likelihood returned is /likelihood's for the returned rows: exactly for rows the
        // form moved (they are rescored through the forward graph), to float32 precision for rows
        // it left as they were (their density comes from the inverse pass, as for raw outputs)
        const lik = await post(app, '/likelihood', { model: name, inputs: s.body.outputs, scores: [], ...tol });
        assert.equal(lik.status, 200, `${at}: ${JSON.stringify(lik.body).slice(0, 300)}`);
        const raw = output === 'raw' ? s.body : (await post(app, '/sample', { model: name, count: COUNT, seed: 11, temperature, output: 'raw', format: 'array', ...tol })).body;
        lik.body.results.forEach((r: { logLikelihood: number }, i: number) => {
          const moved = output !== 'raw' && raw.outputs[i].some((v: number, j: number) => v !== s.body.outputs[i][j]);
          assert.ok(relClose(s.body.logLikelihood[i], r.logLikelihood, moved ? 1e-9 : 1e-5), `${at}: sample ${i} (${moved ? 'moved' : 'unmoved'}) says ${s.body.logLikelihood[i]}, /likelihood ${r.logLikelihood}`);
        });

        // editing workflow: /decode of the drawn latents reproduces the sample and its density
        const dec = await post(app, '/decode', { model: name, latents: s.body.latents, output, ...tol });
        assert.equal(dec.status, 200);
        assert.deepEqual(dec.body.outputs, s.body.outputs, `${at}: /decode(latents of /sample) = the sample`);
        dec.body.logLikelihood.forEach((l: number, i: number) => assert.ok(relClose(l, s.body.logLikelihood[i], 1e-12)));
      }
  });

  if (manifest.data.kind === 'image')
    test(`${name}: PNG samples are the quantized rows, and /likelihood of the PNGs is the density returned`, async () => {
      const rows = await post(app, '/sample', { model: name, count: 3, seed: 5, output: 'quantized', format: 'array' });
      const pngs = await post(app, '/sample', { model: name, count: 3, seed: 5 });
      assert.equal(pngs.status, 200);
      assert.equal(pngs.body.output, 'quantized', 'PNG is the default for image samples, quantized the default form');
      assert.deepEqual(pngs.body.logLikelihood, rows.body.logLikelihood);
      for (let i = 0; i < 3; i++) {
        const pixels = await sharp(Buffer.from(pngs.body.images[i], 'base64')).extractChannel(0).raw().toBuffer();
        assert.deepEqual(Array.from(pixels, (k) => (k + 0.5) / 256), rows.body.outputs[i]);
      }
      const lik = await post(app, '/likelihood', { model: name, images: pngs.body.images, scores: [] });
      lik.body.results.forEach((r: { logLikelihood: number }, i: number) => assert.ok(relClose(r.logLikelihood, pngs.body.logLikelihood[i], 1e-9)));
    });
}

test('/decode without an output form uses the same default as /sample (quantized for images, raw for vectors)', async () => {
  for (const pkg of shippedPackages()) {
    const dec = await post(app, '/decode', { model: pkg.name, latents: [new Array(pkg.manifest.latent.size).fill(0.1)] });
    assert.equal(dec.status, 200);
    assert.equal(dec.body.output, pkg.manifest.data.bitDepth === null ? 'raw' : 'quantized');
    const s = await post(app, '/sample', { model: pkg.name, count: 1, format: 'array' });
    assert.equal(s.body.output, dec.body.output);
  }
});
