import { test } from 'node:test';
import assert from 'node:assert/strict';
import { packLatents, unpackLatents } from '../../src/flow/layout.js';

const parts = [
  { name: 'z0', shape: [2, 2, 2] },
  { name: 'z1', shape: [3] },
];

test('pack concatenates parts per sample in manifest order', () => {
  const z0 = Float32Array.from({ length: 16 }, (_, i) => i); // 2 samples × 8
  const z1 = Float32Array.from({ length: 6 }, (_, i) => 100 + i); // 2 samples × 3
  const flat = packLatents(parts, [z0, z1], 2);
  assert.deepEqual(Array.from(flat), [0, 1, 2, 3, 4, 5, 6, 7, 100, 101, 102, 8, 9, 10, 11, 12, 13, 14, 15, 103, 104, 105]);
});

test('unpack(pack(parts)) = parts', () => {
  const z0 = Float32Array.from({ length: 24 }, (_, i) => i * 0.5);
  const z1 = Float32Array.from({ length: 9 }, (_, i) => -i);
  const [a, b] = unpackLatents(parts, packLatents(parts, [z0, z1], 3), 3);
  assert.deepEqual(a, z0);
  assert.deepEqual(b, z1);
});
