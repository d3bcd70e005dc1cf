// Every curl example of the README's "API by example", as printed, against the real server
// (npm start's process on the shipped models): tools/check-readme-examples.sh.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, killGroup, startServer, type ServerProcess } from '../helpers/server-process.js';

let server: ServerProcess;
before(async () => {
  server = await startServer({ via: 'node' });
});
after(async () => killGroup(server));

test('README: every API example answers 2xx', async () => {
  const { stdout } = await promisify(execFile)('bash', ['tools/check-readme-examples.sh'], { cwd: ROOT, env: { ...process.env, FLOWSERVE_URL: `127.0.0.1:${server.port}` }, maxBuffer: 1 << 24 }).catch((err) => {
    assert.fail(`README examples failed:\n${err.stdout}`);
  });
  const m = /(\d+) examples, 0 failed/.exec(stdout);
  assert.ok(m, stdout);
  assert.ok(Number(m[1]) >= 18, `${m[1]} examples`);
  const examples = /## API by example([\s\S]*?)\nEndpoints/.exec(readFileSync(join(ROOT, 'README.md'), 'utf8'))![1];
  for (const option of ['dequantization', 'draws', 'output', 'returnLatents', 'format']) assert.match(examples, new RegExp(`\\\\?"${option}\\\\?"`), `an example uses ${option}`);
});
