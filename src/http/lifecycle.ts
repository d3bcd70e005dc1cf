// Shutdown as orchestrators expect it (Kubernetes: endpoints are removed while the pod terminates):
//   1. drain():   /readyz answers 503 at once; requests are still served, each response says
//                 `Connection: close` so clients reconnect elsewhere;
//   2. after SHUTDOWN_DELAY_MS: new requests get 503 NOT_READY + `Connection: close` (body read
//                 first); once the admitted requests are done and no connection has arrived for
//                 QUIET_MS the listener closes (new connections are refused), and a request on a
//                 connection still open gets the same 503;
//   3. idle keep-alive connections close on their own at
//                 KEEP_ALIVE_TIMEOUT_MS (the timeout the server announces, so clients do not race it);
//   4. at SHUTDOWN_TIMEOUT_MS after the signal at the latest: work still running is answered 503,
//                 the remaining connections are closed and the app closes.
// Repeated signals during a drain are the same drain (one promise).
import { readFile } from 'node:fs/promises';
import { Server as NetServer, type AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { NotReadyError } from '../errors.js';

/** After SHUTDOWN_TIMEOUT_MS: time for the 503s of cut-off requests to be written before the app closes (server.ts). */
export const FLUSH_MS = 1000;
/** Past the drain, app.close() gets this long before the process exits anyway (server.ts); the deploy validator adds both to the grace period it requires. */
export const CLOSE_GRACE_MS = 3000;

export type Phase = 'serving' | 'draining' | 'closing';

export interface DrainOptions {
  delayMs: number;
  timeoutMs: number;
  log?: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void };
}

export interface DrainReport {
  /** Requests answered 503 because they were still running at the deadline. */
  cutOff: number;
  /** Connections still open at the deadline, closed by the server. */
  connectionsClosed: number;
  ms: number;
}

const POLL_MS = 20;
/** The listener closes only after this long without a new connection. */
const QUIET_MS = 250;

export class Lifecycle {
  phase: Phase = 'serving';
  /** Requests inside the server (onRequest → onResponse). */
  inFlight = 0;
  /** Requests being refused (503) while closing: they do not hold the listener open. */
  private refusing = 0;
  private lastConnectionAt = 0;
  private drainPromise: Promise<DrainReport> | null = null;

  constructor(private readonly app: FastifyInstance) {
    app.server.on('connection', () => (this.lastConnectionAt = performance.now()));
    app.addHook('onRequest', async (request, reply) => {
      this.inFlight++;
      // onResponse never runs for a request whose client left before the answer: its connection's
      // close ends it instead (whichever comes first, once), or a drain would wait for it forever.
      reply.raw.once('close', () => this.finished(request));
    });
    // Refused only once its body is read: answering before the body is consumed and then closing
    // makes the kernel reset the connection (unread data), and the client never sees the 503.
    app.addHook('preValidation', async (request) => {
      if (this.phase !== 'closing') return;
      this.refusing++;
      (request as { refusedAtClose?: boolean }).refusedAtClose = true;
      throw new NotReadyError('shutting down: not accepting new requests');
    });
    app.addHook('onResponse', async (request) => this.finished(request));
    // Clients that reach us while draining go elsewhere next time: no keep-alive past a drain.
    app.addHook('onSend', async (_request, reply) => {
      if (this.phase !== 'serving') reply.header('connection', 'close');
    });
  }

  private finished(request: FastifyRequest): void {
    const r = request as { lifecycleDone?: boolean; refusedAtClose?: boolean };
    if (r.lifecycleDone) return;
    r.lifecycleDone = true;
    this.inFlight--;
    if (r.refusedAtClose) this.refusing--;
  }

  /** Start the drain (idempotent: a second signal joins the first). */
  drain(opts: DrainOptions): Promise<DrainReport> {
    this.drainPromise ??= this.run(opts);
    return this.drainPromise;
  }

  private async run({ delayMs, timeoutMs, log }: DrainOptions): Promise<DrainReport> {
    const started = performance.now();
    const deadline = started + timeoutMs;
    this.phase = 'draining';
    log?.info({ delayMs, timeoutMs }, 'draining: /readyz answers 503, still serving');
    await sleep(delayMs);
    // Stop taking requests, but keep the listening socket open until the admitted ones are done:
    // closing it resets every connection still waiting in the kernel's accept queue (the client
    // has sent its request and gets ECONNRESET), which under load is dozens. Late requests get a
    // 503 with `Connection: close` instead, and the queue is empty by the time the socket closes.
    this.phase = 'closing';
    const admitted = this.inFlight;
    log?.info({ inFlight: admitted }, 'closing: refusing new requests (503), finishing in-flight requests');
    // ... and until no connection has arrived for QUIET_MS: a client still knocking gets its 503
    // rather than a reset from the closing socket.
    // The kernel's accept queue is checked too: when the event loop lags, connections wait there
    // unseen, and the quiet period alone would not notice them.
    const port = (this.app.server.address() as AddressInfo | null)?.port;
    while (
      performance.now() < deadline &&
      (this.inFlight > this.refusing || performance.now() - this.lastConnectionAt < QUIET_MS || (port !== undefined && (await acceptQueue(port)) > 0))
    )
      await sleep(POLL_MS);
    const server = this.app.server;
    // net.Server#close stops listening without http.Server#close's closeIdleConnections(): a
    // request already written on an idle keep-alive connection is then answered (503), not reset.
    if (server.listening) NetServer.prototype.close.call(server);
    while (performance.now() < deadline && (this.inFlight > 0 || (await connections(server)) > 0)) await sleep(POLL_MS);
    const cutOff = this.inFlight;
    const connectionsClosed = await connections(server);
    if (cutOff > 0 || connectionsClosed > 0) log?.warn({ cutOff, connectionsClosed }, 'shutdown deadline reached: answering the rest with 503 and closing');
    return { cutOff, connectionsClosed, ms: performance.now() - started };
  }
}

/**
 * Connections waiting in the kernel's accept queue of the socket listening on `port` (Linux: the
 * rx_queue of a LISTEN entry in /proc/net/tcp{,6}); 0 where that cannot be read.
 */
export async function acceptQueue(port: number): Promise<number> {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  let queued = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(file, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // f[1] local address:port, f[3] state (0A = LISTEN), f[4] tx_queue:rx_queue
      if (f.length > 4 && f[3] === '0A' && f[1].endsWith(`:${hexPort}`)) queued += parseInt(f[4].split(':')[1], 16);
    }
  }
  return queued;
}

function connections(server: NetServer): Promise<number> {
  return new Promise((resolve) => server.getConnections((err, n) => resolve(err ? 0 : n)));
}
