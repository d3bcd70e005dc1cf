// Slow, idle and too many clients, over real sockets: none of them can hold the server's
// connections (HEADERS_TIMEOUT_MS, READ_TIMEOUT_MS, IDLE_TIMEOUT_MS, MAX_CONNECTIONS).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import request from 'supertest';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/config.js';

let app: FastifyInstance;
let port: number;
before(async () => {
  const config = loadConfig({}, { logLevel: 'silent', headersTimeoutMs: 600, readTimeoutMs: 1200, idleTimeoutMs: 800, keepAliveTimeoutMs: 400, maxConnections: 6 });
  app = await buildApp(config, { skipModels: true });
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as { port: number }).port;
});
after(() => app.close());

/** Resolves when the server closes the connection, with what it wrote first. */
function closedByServer(socket: Socket): Promise<{ received: string; ms: number }> {
  const started = performance.now();
  let received = '';
  socket.on('data', (d: Buffer) => (received += d.toString()));
  return new Promise((resolve) => {
    socket.once('close', () => resolve({ received, ms: performance.now() - started }));
    socket.once('error', () => undefined);
  });
}

async function open(): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  return socket;
}

/** Writes one byte every `everyMs` until the socket closes (a slowloris client). */
function trickle(socket: Socket, text: string, everyMs: number): void {
  let i = 0;
  const timer = setInterval(() => {
    if (socket.destroyed || i >= text.length) return clearInterval(timer);
    socket.write(text[i++]);
  }, everyMs);
  socket.once('close', () => clearInterval(timer));
}

test('BAD CALL - a client that trickles its headers is cut off at HEADERS_TIMEOUT_MS with 408', { timeout: 20_000 }, async () => {
  const socket = await open();
  const closed = closedByServer(socket);
  trickle(socket, 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ' + 'a'.repeat(1000) + '\r\n\r\n', 100);
  const { received, ms } = await closed;
  assert.match(received, /^HTTP\/1\.1 408/);
  // 600 ms budget, checked every second by Node: far less than the 100 s the trickle would take
  assert.ok(ms < 5000, `closed after ${Math.round(ms)} ms`);
});

test('BAD CALL - a body that trickles past READ_TIMEOUT_MS is cut off with 408', { timeout: 20_000 }, async () => {
  const socket = await open();
  const closed = closedByServer(socket);
  socket.write('POST /sample HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n');
  trickle(socket, '{"count": 1, "model": "x"' + ' '.repeat(970) + '}', 100);
  const { received, ms } = await closed;
  assert.match(received, /^HTTP\/1\.1 408/);
  assert.ok(ms < 5000, `closed after ${Math.round(ms)} ms`);
});

test('BAD CALL - a connection that sends nothing is closed at IDLE_TIMEOUT_MS', { timeout: 20_000 }, async () => {
  const socket = await open();
  const { ms } = await closedByServer(socket);
  assert.ok(ms < 5000, `closed after ${Math.round(ms)} ms`);
});

test('BAD CALL - an idle keep-alive connection is closed at KEEP_ALIVE_TIMEOUT_MS, which the server announces', { timeout: 20_000 }, async () => {
  const socket = await open();
  const closed = closedByServer(socket);
  socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
  const { received, ms } = await closed;
  assert.match(received, /^HTTP\/1\.1 200/);
  assert.match(received, /keep-alive: timeout=0/i, 'clients learn the timeout and do not race it');
  assert.ok(ms < 3000, `closed after ${Math.round(ms)} ms`);
});

test('BAD CALL - connections past MAX_CONNECTIONS are closed at once; the others keep working', { timeout: 20_000 }, async () => {
  const held = await Promise.all(Array.from({ length: 6 }, open));
  try {
    const extra = await open();
    const { received, ms } = await closedByServer(extra);
    assert.equal(received, '', 'closed before any byte is read or written');
    assert.ok(ms < 1000);
  } finally {
    for (const s of held) s.destroy();
  }
  // once the held connections are gone, clients are served again (over a real socket)
  for (let i = 0; ; i++) {
    const res = await request(app.server).get('/healthz').catch(() => null);
    if (res?.status === 200) break;
    assert.ok(i < 50, 'not served again');
    await new Promise((r) => setTimeout(r, 20));
  }
});
