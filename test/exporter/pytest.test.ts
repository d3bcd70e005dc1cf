// The Python exporter's own test suite (exporter/tests, pytest), run as part of npm test. It fails
// rather than skips when Python or a dependency is missing: CI installs python3-torch, python3-onnx,
// python3-pytest, python3-sklearn and python3-jsonschema (.ci/run), and an exporter nobody tests
// would break silently.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

const ROOT = new URL('../..', import.meta.url).pathname;
const PYTHON = '/usr/bin/python3';

test('exporter/tests (pytest) pass', { timeout: 600_000 }, () => {
  const deps = spawnSync(PYTHON, ['-c', 'import torch, onnx, numpy, scipy, jsonschema, pytest'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(deps.status, 0, `${PYTHON} cannot import the exporter's dependencies (apt-get install python3-torch python3-onnx python3-pytest python3-sklearn python3-jsonschema): ${deps.error ?? deps.stderr}`);
  const r = spawnSync(PYTHON, ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', 'exporter/tests'], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', OPENBLAS_NUM_THREADS: '1' },
    maxBuffer: 64 * 1024 * 1024,
  });
  const out = `${r.stdout}\n${r.stderr}`;
  assert.equal(r.status, 0, `pytest failed (exit ${r.status}):\n${out.slice(-6000)}`);
  // a run that collected nothing exits 5, but guard against a suite that silently shrank to nothing
  assert.match(r.stdout, /\d+ passed/, out.slice(-2000));
  assert.doesNotMatch(r.stdout, /skipped/, `pytest skipped tests:\n${out.slice(-2000)}`);
});
