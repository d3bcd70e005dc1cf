// Package loading: the calibration block must name a score the model can compute, with statistics;
// the files are read once, verified, and kept as bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPackage, PackageError, sha256 } from '../../src/service/registry.js';
import { shippedPackages } from '../helpers/packages.js';

const vector = shippedPackages().find((p) => p.manifest.data.kind === 'vector')!;

async function withCalibration(edit: (cal: Record<string, unknown>) => void): Promise<() => Promise<unknown>> {
  const dir = await mkdtemp(join(tmpdir(), 'flowserve-registry-'));
  const pkg = join(dir, vector.name);
  await cp(vector.dir, pkg, { recursive: true });
  const manifest = JSON.parse(await readFile(join(pkg, 'flow.json'), 'utf8'));
  edit(manifest.calibration);
  await writeFile(join(pkg, 'flow.json'), JSON.stringify(manifest));
  return () => loadPackage(pkg, vector.name).finally(() => rm(dir, { recursive: true, force: true }));
}

test('a shipped package loads with its calibration', async () => {
  const load = await withCalibration(() => {});
  const pkg = (await load()) as { manifest: { calibration: { defaultScore: string } } };
  assert.equal(pkg.manifest.calibration.defaultScore, vector.manifest.calibration!.defaultScore);
});

test('BAD CALL - a default score the model cannot compute is refused at load', async () => {
  const imageScore = await withCalibration((cal) => (cal.defaultScore = 'complexityJpegLs'));
  await assert.rejects(imageScore(), (e: Error) => e instanceof PackageError && /defaultScore 'complexityJpegLs' is not a score this model can compute \(nll, typicality\)/.test(e.message));
  const unknown = await withCalibration((cal) => (cal.defaultScore = 'likelihoodRatio'));
  await assert.rejects(unknown(), /defaultScore 'likelihoodRatio' is not a score/);
});

test('BAD CALL - a default score without statistics is refused at load', async () => {
  const load = await withCalibration((cal) => delete (cal.scores as Record<string, unknown>)[cal.defaultScore as string]);
  await assert.rejects(load(), /defaultScore .nll. has no statistics in calibration\.scores/);
});

test('a package holds the bytes its sha256 was checked on, read once: later changes on disk do not reach it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flowserve-registry-'));
  try {
    const pkgDir = join(dir, vector.name);
    await cp(vector.dir, pkgDir, { recursive: true });
    const pkg = await loadPackage(pkgDir, vector.name);
    const files = vector.manifest.files;
    const { forward, inverse, weights } = vector.manifest.graphs;
    assert.equal(sha256(pkg.bytes.forward), files[forward]);
    assert.equal(sha256(pkg.bytes.inverse), files[inverse]);
    assert.equal(sha256(pkg.bytes.weights!), files[weights!]);
    await writeFile(join(pkgDir, weights!), Buffer.alloc(16));
    await rm(join(pkgDir, inverse));
    assert.equal(sha256(pkg.bytes.weights!), files[weights!]);
    assert.equal(sha256(pkg.bytes.inverse), files[inverse]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
