import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkFeeds, SessionInputError } from '../../src/runtime/session.js';

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
