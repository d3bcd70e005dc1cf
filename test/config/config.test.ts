import { test } from 'node:test';
import assert from 'node:assert/strict';
import { envFromArgs, envName, loadConfig } from '../../src/config/config.js';

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

test('BAD CALL - settings that cannot work together are refused, naming every variable involved', () => {
  // a request of 9 images could never be queued: it would get 429 "retry later" forever
  assert.throws(() => loadConfig({ MAX_QUEUE_SIZE: '8' }), /MAX_QUEUE_SIZE=8 is smaller than one allowed request \(MAX_ITEMS_PER_REQUEST=256, MAX_SAMPLES_PER_REQUEST=256\)/);
  assert.doesNotThrow(() => loadConfig({ MAX_QUEUE_SIZE: '8', MAX_ITEMS_PER_REQUEST: '8', MAX_SAMPLES_PER_REQUEST: '4' }));
  assert.throws(() => loadConfig({ SHUTDOWN_DELAY_MS: '30000', SHUTDOWN_TIMEOUT_MS: '25000' }), /SHUTDOWN_DELAY_MS=30000 must be shorter than SHUTDOWN_TIMEOUT_MS=25000/);
  assert.throws(() => loadConfig({ HEADERS_TIMEOUT_MS: '60000', READ_TIMEOUT_MS: '30000' }), /HEADERS_TIMEOUT_MS=60000 must not exceed READ_TIMEOUT_MS=30000/);
  assert.throws(() => loadConfig({ MAX_IMAGE_PIXELS: '20000000', MAX_REQUEST_PIXELS: '1000000' }), /MAX_IMAGE_PIXELS=20000000 must not exceed MAX_REQUEST_PIXELS=1000000/);
  assert.throws(() => loadConfig({ DEFAULT_MODEL: '../etc' }), /DEFAULT_MODEL=\.\.\/etc is not a model name/);
});

test('the shutdown defaults fit Kubernetes\' default 30 s grace period', () => {
  const c = loadConfig({});
  assert.ok(c.shutdownDelayMs > 0, 'load balancers get time to stop routing here');
  assert.ok(c.shutdownTimeoutMs + 5000 <= 30_000, 'drain deadline, 503 flush and close all fit in 30 s');
});

test('platform flags (KServe\'s --http_port, --model_dir, --model_name, --workers) become settings; other flags are ignored, never refused', () => {
  const { env, ignored } = envFromArgs(['--model_name=glow', '--model_dir', '/mnt/models', '--http_port=8081', '--grpc_port', '8082', '--workers=2', 'stray', '--enable_docs_url']);
  assert.deepEqual(env, { MODEL_NAME: 'glow', MODEL_DIR: '/mnt/models', PORT: '8081', WORKER_THREADS: '2' });
  assert.deepEqual(ignored, ['--grpc_port=8082', 'stray', '--enable_docs_url']);
  assert.equal(loadConfig(env).port, 8081);
  assert.equal(loadConfig(env).modelName, 'glow');
  assert.throws(() => loadConfig({ MODEL_NAME: 'Glow.encode' }), /MODEL_NAME=Glow\.encode is not a model name/);
  assert.deepEqual(envFromArgs([]), { env: {}, ignored: [] });
});
