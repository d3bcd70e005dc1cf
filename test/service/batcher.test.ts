import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Batcher, type BatcherOptions } from '../../src/service/batcher.js';
import { AppError } from '../../src/errors.js';
import type { TensorData } from '../../src/tensor/tensor.js';

// A fake model: y = 2·x + c, where c comes from a constant feed; records every batch it ran.
function fake(over: Partial<BatcherOptions> = {}, delayMs = 5) {
  const batches: number[] = [];
  const batcher = new Batcher({
    model: 'm',
    graph: 'forward',
    maxBatchSize: 8,
    maxQueueDelayMs: 5,
    merge: true,
    maxQueueSize: 64,
    timeoutMs: 1000,
    maxInflight: 1,
    constFeeds: { c: { dims: [1], data: Float32Array.of(1) } },
    run: async (feeds: Record<string, TensorData>, rows: number) => {
      batches.push(rows);
      await new Promise((r) => setTimeout(r, delayMs));
      const c = feeds.c.data[0];
      return { y: { dims: feeds.x.dims, data: feeds.x.data.map((v) => 2 * v + c) } };
    },
    ...over,
  });
  const submit = (values: number[]) => batcher.submit({ x: { dims: [values.length, 1], data: Float32Array.from(values) } }, values.length);
  return { batcher, batches, submit };
}

test('concurrent requests are merged and split back exactly', async () => {
  const { batches, submit } = fake();
  const reqs = Array.from({ length: 6 }, (_, i) => [i, 10 + i]);
  const out = await Promise.all(reqs.map(submit));
  out.forEach((o, i) => assert.deepEqual(Array.from(o.y.data), reqs[i].map((v) => 2 * v + 1)));
  assert.ok(batches.length < 6, `6 requests ran as ${batches.length} batches`);
  assert.ok(batches.every((b) => b <= 8));
});

test('an answer does not depend on batch-mates', async () => {
  const alone = await fake().submit([3, 4]);
  const { submit } = fake();
  const [, mine] = await Promise.all([submit([100, 200, 300]), submit([3, 4]), submit([-5])]);
  assert.deepEqual(Array.from(mine.y.data), Array.from(alone.y.data));
});

test('a request larger than maxBatchSize is chunked', async () => {
  const { batches, submit } = fake();
  const values = Array.from({ length: 20 }, (_, i) => i);
  const out = await submit(values);
  assert.deepEqual(Array.from(out.y.data), values.map((v) => 2 * v + 1));
  assert.ok(batches.every((b) => b <= 8));
  assert.equal(batches.reduce((a, b) => a + b, 0), 20);
});

test('past maxQueueSize requests are shed with OVERLOADED', async () => {
  const { submit } = fake({ maxQueueSize: 4 }, 50);
  const first = submit([1, 2, 3]); // dispatched, leaves the queue
  await new Promise((r) => setTimeout(r, 10));
  const queued = submit([1, 2, 3, 4]); // waits: the one slot is busy
  await assert.rejects(submit([5]), (e: AppError) => e.code === 'OVERLOADED' && e.statusCode === 429 && e.retryAfter === 1);
  await Promise.all([first, queued]);
});

test('a request past its deadline gets TIMEOUT and never runs', async () => {
  const { batches, submit } = fake({ timeoutMs: 20, maxBatchSize: 2 }, 60);
  const busy = submit([1, 2]).catch((e: Error) => e); // occupies the slot for 60 ms, then times out too
  await assert.rejects(submit([7]), (e: AppError) => e.code === 'TIMEOUT' && e.statusCode === 504);
  assert.equal(((await busy) as AppError).code, 'TIMEOUT');
  await new Promise((r) => setTimeout(r, 80));
  assert.deepEqual(batches, [2]);
});

test('a failing run fails only its own batch', async () => {
  let calls = 0;
  const { submit } = fake({
    maxQueueDelayMs: 0,
    run: async (feeds) => {
      calls++;
      if (calls === 1) throw new Error('boom');
      return { y: feeds.x };
    },
  });
  await assert.rejects(submit([1]), /boom/);
  const ok = await submit([2]);
  assert.deepEqual(Array.from(ok.y.data), [2]);
});

test('with merging off every request runs alone', async () => {
  const { batches, submit } = fake({ merge: false });
  await Promise.all([submit([1]), submit([2, 3]), submit([4])]);
  assert.deepEqual(batches, [1, 2, 1]);
});

test('batchers sharing an in-flight budget never run more batches at once than it allows, and calls merge while they wait', async () => {
  const { InflightSlots } = await import('../../src/service/batcher.js');
  const slots = new InflightSlots(2);
  let running = 0;
  let peak = 0;
  const batchers = Array.from({ length: 4 }, (_, g) =>
    fake({
      graph: `layer${g}`,
      maxInflight: 2,
      slots,
      maxQueueDelayMs: 0,
      run: async (feeds: Record<string, TensorData>) => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((r) => setTimeout(r, 10));
        running--;
        return { y: { dims: feeds.x.dims, data: feeds.x.data.map((v) => 2 * v + 1) } };
      },
    }),
  );
  // 4 graphs × 12 single-row calls at once: at most 2 batches run, the rest merge in their batchers
  const calls = batchers.flatMap((b) => Array.from({ length: 12 }, (_, i) => b.submit([i])));
  const out = await Promise.all(calls);
  out.forEach((o, k) => assert.deepEqual(Array.from(o.y.data), [2 * (k % 12) + 1]));
  assert.equal(peak, 2, `peak ${peak} batches at once`);
  const dispatched = batchers.reduce((n, b) => n + b.batches.length, 0);
  assert.ok(dispatched <= 16, `48 calls ran as ${dispatched} batches (merging while waiting)`);
});
