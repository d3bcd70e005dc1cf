// A plain CPU install is quiet: npm prints no config warning, and a start with the default
// EXECUTION_PROVIDER=auto on a machine without the CUDA provider prints no ORT error and no
// warn- or error-level line (nothing there needs the operator's action).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { loadConfig } from '../src/config/config.js';
import { CUDA_NOT_INSTALLED, cudaProviderInstalled } from '../src/runtime/session.js';
import { killGroup, modelDirWith, ROOT, startServer, type ServerProcess } from './helpers/server-process.js';

const run = promisify(execFile);
const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

test('npm commands in the project print no "Unknown project config" warning, and install scripts stay off', async () => {
  const { stdout, stderr } = await run('npm', ['config', 'get', 'ignore-scripts'], { cwd: ROOT });
  assert.equal(stdout.trim(), 'true', '.npmrc: ignore-scripts=true (no CUDA download on npm ci)');
  assert.doesNotMatch(stderr, /Unknown (project|user|cli) config/);
  assert.doesNotMatch(stderr, /npm warn/);
});

test('a default start (EXECUTION_PROVIDER=auto, via npm start) without the CUDA provider prints no ORT error and no warning', async () => {
  assert.equal(loadConfig({}).executionProvider, 'auto', 'auto is the default this test stands for');
  const dir = await modelDirWith(['realnvp-moons', 'realnvp-mnist']);
  dirs.push(dir);
  let server: ServerProcess | undefined;
  try {
    server = await startServer({ via: 'npm', env: { MODEL_DIR: dir, EXECUTION_PROVIDER: 'auto' } });
    server.signalGroup('SIGTERM');
    await server.exited;
    const log = server.log();
    const lines = log.split('\n').filter(Boolean);
    const levels = lines.map((l) => (l.startsWith('{') ? (JSON.parse(l) as { level: number }).level : null));
    assert.match(log, /model realnvp-mnist ready/);
    if (!cudaProviderInstalled()) {
      assert.doesNotMatch(log, /Failed to load library|libonnxruntime_providers/);
      // ORT's own log lines: "2024-01-01 00:00:00.0 [E:onnxruntime:, ...]" (or W for warnings)
      assert.doesNotMatch(log, /\[[EW]:onnxruntime/);
      assert.doesNotMatch(log, /npm (warn|error)/);
      assert.deepEqual(lines.filter((_, i) => levels[i] === null), [], 'every line is a JSON log line');
      assert.deepEqual(lines.filter((_, i) => (levels[i] ?? 0) >= 40), [], 'no warn (40) or error (50) line');
      const fallbacks = lines.filter((l) => l.includes(CUDA_NOT_INSTALLED));
      assert.equal(fallbacks.length, 2, 'the reason is still told, once per model, at info');
      for (const l of fallbacks) assert.equal((JSON.parse(l) as { level: number }).level, 30);
    } else {
      // CUDA EP installed: either it runs, or its failure is a warning worth acting on.
      assert.ok(/"provider":"cuda"/.test(log) || /CUDA execution provider unavailable/.test(log));
    }
  } finally {
    killGroup(server);
  }
});
