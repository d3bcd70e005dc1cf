import { test } from 'node:test';
import assert from 'node:assert/strict';
import { intraOpThreadsFor } from '../../src/service/flow-service.js';

test('INTRA_OP_THREADS=0 shares the cores among the inference workers (never ORT\'s own one-thread default); a set value wins', () => {
  assert.equal(intraOpThreadsFor({ intraOpThreads: 0, workerThreads: 1 }, 2), 2);
  assert.equal(intraOpThreadsFor({ intraOpThreads: 0, workerThreads: 2 }, 2), 1);
  assert.equal(intraOpThreadsFor({ intraOpThreads: 0, workerThreads: 3 }, 2), 1, 'at least one');
  assert.equal(intraOpThreadsFor({ intraOpThreads: 0, workerThreads: 2 }, 16), 8);
  assert.equal(intraOpThreadsFor({ intraOpThreads: 3, workerThreads: 1 }, 2), 3);
});
