import { test } from 'node:test';
import assert from 'node:assert/strict';
import { envName, loadConfig } from '../../src/config/config.js';

test('defaults, env names in SCREAMING_SNAKE, frozen', () => {
  const c = loadConfig({});
  assert.equal(c.port, 8080);
  assert.equal(c.host, '0.0.0.0');
  assert.equal(c.executionProvider, 'auto');
  assert.ok(Object.isFrozen(c));
  assert.equal(envName('maxQueueDelayMs'), 'MAX_QUEUE_DELAY_MS');
});

test('env strings are converted', () => {
  const c = loadConfig({ PORT: '9000', MAX_BATCH_SIZE: '32', EXECUTION_PROVIDER: 'cpu', MAX_QUEUE_DELAY_MS: '1.5' });
  assert.equal(c.port, 9000);
  assert.equal(c.maxBatchSize, 32);
  assert.equal(c.executionProvider, 'cpu');
  assert.equal(c.maxQueueDelayMs, 1.5);
});

test('bad values name the variable', () => {
  assert.throws(() => loadConfig({ PORT: 'abc' }), /PORT/);
  assert.throws(() => loadConfig({ EXECUTION_PROVIDER: 'tpu' }), /EXECUTION_PROVIDER/);
  assert.throws(() => loadConfig({ MAX_BATCH_SIZE: '0' }), /MAX_BATCH_SIZE/);
});
