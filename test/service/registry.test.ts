// Package loading: the calibration block must name a score the model can compute, with statistics;
// MODEL_DIR entries may be symbolic links to package folders; a default temperature must be usable;
// the files are read once, verified, and kept as bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPackage, loadPackages, PackageError, sha256 } from '../../src/service/registry.js';
import { shippedPackages } from '../helpers/packages.js';

// a coupling package with a shared weights file
const vector = shippedPackages().find((p) => p.name === 'realnvp-moons')!;

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
    assert.equal(sha256(pkg.bytes.graphs.forward), files[forward]);
    assert.equal(sha256(pkg.bytes.graphs.inverse), files[inverse]);
    assert.equal(sha256(pkg.bytes.weights!), files[weights!]);
    await writeFile(join(pkgDir, weights!), Buffer.alloc(16));
    await rm(join(pkgDir, inverse));
    assert.equal(sha256(pkg.bytes.weights!), files[weights!]);
    assert.equal(sha256(pkg.bytes.graphs.inverse), files[inverse]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a MODEL_DIR of symbolic links to package folders loads them; a folder without flow.json is reported as skipped, a plain file ignored', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flowserve-registry-'));
  try {
    const store = join(dir, 'store');
    const modelDir = join(dir, 'models');
    await mkdir(modelDir);
    await cp(vector.dir, join(store, 'v1'), { recursive: true });
    await mkdir(join(store, 'notes'));
    await symlink(join(store, 'v1'), join(modelDir, vector.name));
    await symlink(join(store, 'notes'), join(modelDir, 'notes'));
    await mkdir(join(modelDir, 'plain-folder'));
    await writeFile(join(modelDir, 'README.md'), 'not a package');
    const { loaded, refused, skipped } = await loadPackages(modelDir);
    assert.deepEqual(loaded.map((p) => p.name), [vector.name]);
    assert.deepEqual(refused, []);
    assert.deepEqual(skipped.map((s) => [s.name, s.reason]), [['notes', 'no flow.json: not a model package'], ['plain-folder', 'no flow.json: not a model package']]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a MODEL_DIR that is itself one package (KServe\'s /mnt/models) loads it, under its flow.json name or MODEL_NAME', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flowserve-registry-'));
  try {
    const mnt = join(dir, 'models');
    await cp(vector.dir, mnt, { recursive: true });
    let r = await loadPackages(mnt);
    assert.equal(r.single, true);
    assert.deepEqual(r.loaded.map((p) => p.name), [vector.name]);
    r = await loadPackages(mnt, 'moons');
    assert.deepEqual(r.loaded.map((p) => [p.name, p.manifest.name]), [['moons', vector.name]]);
    assert.equal((await loadPackages(join(dir), 'moons')).single, false);
    // a broken package at the root is refused under the name it would have been served as
    await writeFile(join(mnt, 'weights.bin'), 'truncated');
    r = await loadPackages(mnt, 'moons');
    assert.deepEqual(r.loaded, []);
    assert.equal(r.refused[0].name, 'moons');
    assert.match(r.refused[0].reason, /weights\.bin sha256 mismatch/);
    assert.doesNotMatch(r.refused[0].reason, new RegExp(dir));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('BAD CALL - a dangling symbolic link, or one to a file, is refused by name: no path in the public reason, the target in the detail', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flowserve-registry-'));
  try {
    await cp(vector.dir, join(dir, vector.name), { recursive: true });
    await symlink(join(dir, 'gone'), join(dir, 'dangling'));
    await writeFile(join(dir, 'file'), 'x');
    await symlink(join(dir, 'file'), join(dir, 'to-file'));
    const { loaded, refused } = await loadPackages(dir);
    assert.deepEqual(loaded.map((p) => p.name), [vector.name], 'the other packages still load');
    assert.deepEqual(refused.map((r) => [r.name, r.reason]), [
      ['dangling', 'symbolic link whose target does not exist (dangling link)'],
      ['to-file', 'symbolic link to something that is not a folder (a package is a folder holding flow.json)'],
    ]);
    for (const r of refused) {
      assert.doesNotMatch(r.reason, /\//, 'no path in the public reason');
      assert.ok(r.detail?.includes(dir), 'the log detail names the target');
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

async function withManifest(edit: (m: Record<string, unknown>) => void): Promise<() => Promise<unknown>> {
  const dir = await mkdtemp(join(tmpdir(), 'flowserve-registry-'));
  const pkg = join(dir, vector.name);
  await cp(vector.dir, pkg, { recursive: true });
  const manifest = JSON.parse(await readFile(join(pkg, 'flow.json'), 'utf8'));
  edit(manifest);
  await writeFile(join(pkg, 'flow.json'), JSON.stringify(manifest));
  return () => loadPackage(pkg, vector.name).finally(() => rm(dir, { recursive: true, force: true }));
}

const sampling = (maxTemperature: number) => ({ maxTemperature, criterion: { draws: 1000, seed: 0, bound: [-10, 10], maxOutside: 0, grid: 0.05 } });

test('BAD CALL - a defaultTemperature above the measured sampling.maxTemperature is refused at load', async () => {
  const above = await withManifest((m) => Object.assign(m, { defaultTemperature: 0.9, sampling: sampling(0.85) }));
  await assert.rejects(above(), (e: Error) => e instanceof PackageError && e.message === 'defaultTemperature 0.9 is above the measured maximum 0.85 (sampling.maxTemperature)');
  const equal = await withManifest((m) => Object.assign(m, { defaultTemperature: 0.85, sampling: sampling(0.85) }));
  assert.equal(((await equal()) as { manifest: { defaultTemperature: number } }).manifest.defaultTemperature, 0.85);
});
