import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { checkFeeds, createSession, CUDA_NOT_INSTALLED, cudaProviderFiles, cudaProviderInstalled, SessionInputError } from '../../src/runtime/session.js';
import { MODEL_DIR } from '../helpers/server-process.js';

const inputs = [
  { name: 'x', shape: ['batch', 1, 28, 28] as (number | string)[] },
  { name: 'w_0', shape: [4, 4] },
];
const t = (dims: number[]) => ({ dims, data: new Float32Array(dims.reduce((a, b) => a * b, 1)) });

test('checkFeeds accepts matching names and shapes (dynamic batch)', () => {
  checkFeeds(inputs, { x: t([3, 1, 28, 28]), w_0: t([4, 4]) });
});

test('checkFeeds names missing, unexpected and misshapen inputs', () => {
  assert.throws(() => checkFeeds(inputs, { x: t([1, 1, 28, 28]) }), (e: Error) => e instanceof SessionInputError && /missing \[w_0\]/.test(e.message));
  assert.throws(() => checkFeeds(inputs, { x: t([1, 1, 28, 28]), w_0: t([4, 4]), y: t([1]) }), /unexpected \[y\]/);
  assert.throws(() => checkFeeds(inputs, { x: t([1, 28, 28]), w_0: t([4, 4]) }), /input 'x': got \[1, 28, 28\]/);
  assert.throws(() => checkFeeds(inputs, { x: t([1, 1, 28, 28]), w_0: t([3, 3]) }), /input 'w_0'/);
});

test('auto without the CUDA provider libraries opens CPU directly, saying why, without asking ORT for CUDA', async () => {
  const files = cudaProviderFiles();
  assert.deepEqual(files.map((f) => basename(f)), ['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so']);
  assert.ok(existsSync(join(dirname(files[0]), 'onnxruntime_binding.node')), 'looked for next to the binding ORT loads');
  const installed = files.every((f) => existsSync(f));
  assert.equal(cudaProviderInstalled(), installed);
  const moons = join(MODEL_DIR, 'realnvp-moons');
  const graph = { graph: readFileSync(join(moons, 'forward.onnx')), externalData: [{ path: 'weights.bin', data: readFileSync(join(moons, 'weights.bin')) }] };
  const s = await createSession(graph, { provider: 'auto', deviceId: 0, intraOpThreads: 1, intraOpSpinning: false });
  if (!installed) {
    assert.equal(s.provider, 'cpu');
    assert.equal(s.fallbackReason, CUDA_NOT_INSTALLED);
  } else assert.ok(s.provider === 'cuda' || (s.fallbackReason && s.fallbackReason !== CUDA_NOT_INSTALLED), 'installed: CUDA is tried, and a failure carries ORT\'s reason');
  await s.session.release();
});
