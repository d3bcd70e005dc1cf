// The fair decode scheduler: order of service across requests (lanes), never timing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FairScheduler } from '../../src/imaging/decode-scheduler.js';

/** Tasks that finish only when the test says so, recording the order they started in. */
function harness(concurrency: number) {
  const scheduler = new FairScheduler(concurrency);
  const started: string[] = [];
  const finishers = new Map<string, () => void>();
  const task = (lane: ReturnType<FairScheduler['lane']>, name: string) =>
    lane.run(() => {
      started.push(name);
      return new Promise<string>((resolve) => finishers.set(name, () => resolve(name)));
    });
  const finish = async (name: string) => {
    finishers.get(name)!();
    // let the completion reach the scheduler and the next task start
    for (let i = 0; i < 5; i++) await Promise.resolve();
  };
  return { scheduler, started, task, finish };
}

test('fair decode: a one-image request waits for one task of a 256-image request, not for all of them', async () => {
  const { scheduler, started, task, finish } = harness(1);
  const big = scheduler.lane();
  const bigDone = Array.from({ length: 256 }, (_, i) => task(big, `big${i}`));
  const small = scheduler.lane();
  const smallDone = task(small, 'small');
  assert.deepEqual(started, ['big0']);
  await finish('big0');
  assert.deepEqual(started, ['big0', 'small'], 'the newcomer goes next');
  await finish('small');
  assert.equal(await smallDone, 'small');
  assert.deepEqual(started, ['big0', 'small', 'big1']);
  for (let i = 1; i < 256; i++) await finish(`big${i}`);
  assert.equal((await Promise.all(bigDone)).length, 256);
  assert.equal(scheduler.active, 0);
});

test('fair decode: lanes take turns (least recently served first), and a lone lane uses every slot', async () => {
  const { scheduler, started, task, finish } = harness(3);
  const a = scheduler.lane();
  for (let i = 0; i < 6; i++) void task(a, `a${i}`);
  assert.deepEqual(started, ['a0', 'a1', 'a2'], 'one request alone decodes `concurrency` images at once');
  const b = scheduler.lane();
  const c = scheduler.lane();
  for (let i = 0; i < 3; i++) void task(b, `b${i}`);
  void task(c, 'c0');
  assert.equal(scheduler.active, 3);
  for (const name of ['a0', 'a1', 'a2', 'b0', 'c0', 'a3', 'b1', 'a4', 'b2', 'a5']) await finish(name);
  assert.deepEqual(started, ['a0', 'a1', 'a2', 'b0', 'c0', 'a3', 'b1', 'a4', 'b2', 'a5']);
  assert.equal(scheduler.active, 0);
});

test('fair decode: a failing task frees its slot and rejects only its own promise', async () => {
  const scheduler = new FairScheduler(1);
  const lane = scheduler.lane();
  const bad = lane.run(async () => {
    throw new Error('corrupt image');
  });
  const throwsAtOnce = lane.run(() => {
    throw new Error('sync failure');
  });
  const good = lane.run(async () => 'decoded');
  await assert.rejects(bad, /corrupt image/);
  await assert.rejects(throwsAtOnce, /sync failure/);
  assert.equal(await good, 'decoded');
  assert.equal(scheduler.active, 0);
});
