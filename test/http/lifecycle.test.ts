// The drain's check of the kernel's accept queue (src/http/lifecycle.ts): connections a lagging
// event loop has not accepted yet are seen, so the listener is not closed on top of them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { acceptQueue } from '../../src/http/lifecycle.js';

test('FAULT - acceptQueue() counts connections a blocked server has not accepted yet', { skip: process.platform !== 'linux' && 'reads /proc/net/tcp (Linux)' }, async () => {
  // a server whose event loop is blocked for 1.5 s right after it starts listening
  const child = spawn(process.execPath, ['-e', `const s = require('net').createServer(() => {}).listen(0, '127.0.0.1', () => { console.log(s.address().port); const t = Date.now(); while (Date.now() - t < 1500) {} setTimeout(() => process.exit(0), 300); });`]);
  const port = await new Promise<number>((resolve) => child.stdout.once('data', (d) => resolve(Number(String(d)))));
  const sockets = Array.from({ length: 5 }, () => connect(port, '127.0.0.1').on('error', () => undefined));
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(await acceptQueue(port), 5);
  await once(child, 'exit');
  for (const s of sockets) s.destroy();
  assert.equal(await acceptQueue(port), 0, 'nothing listens there any more');
});
