// Shutdown as orchestrators expect it (Kubernetes: endpoints are removed while the pod terminates):
//   1. drain():   /readyz answers 503 at once; requests are still served, each response says
//                 `Connection: close` so clients reconnect elsewhere;
//   2. after SHUTDOWN_DELAY_MS: stop listening (new connections are refused); a request that
//                 arrives on a connection already open gets 503 NOT_READY + `Connection: close`;
//   3. in-flight requests finish; idle keep-alive connections close on their own at
//                 KEEP_ALIVE_TIMEOUT_MS (the timeout the server announces, so clients do not race it);
//   4. at SHUTDOWN_TIMEOUT_MS after the signal at the latest: work still running is answered 503,
//                 the remaining connections are closed and the app closes.
// Repeated signals during a drain are the same drain (one promise).
import { Server as NetServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import { NotReadyError } from '../errors.js';

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

export class Lifecycle {
  phase: Phase = 'serving';
  /** Requests inside the server (onRequest → onResponse). */
  inFlight = 0;
  private drainPromise: Promise<DrainReport> | null = null;

  constructor(private readonly app: FastifyInstance) {
    app.addHook('onRequest', async () => {
      this.inFlight++;
      if (this.phase === 'closing') throw new NotReadyError('shutting down: not accepting new requests');
    });
    app.addHook('onResponse', async () => {
      this.inFlight--;
    });
    // Clients that reach us while draining go elsewhere next time: no keep-alive past a drain.
    app.addHook('onSend', async (_request, reply) => {
      if (this.phase !== 'serving') reply.header('connection', 'close');
    });
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
    this.phase = 'closing';
    const server = this.app.server;
    // net.Server#close stops listening without http.Server#close's closeIdleConnections(): a
    // request already written on an idle keep-alive connection is then answered (503), not reset.
    if (server.listening) NetServer.prototype.close.call(server);
    log?.info({ inFlight: this.inFlight }, 'closing: no new connections, finishing in-flight requests');
    while (performance.now() < deadline && (this.inFlight > 0 || (await connections(server)) > 0)) await sleep(POLL_MS);
    const cutOff = this.inFlight;
    const connectionsClosed = await connections(server);
    if (cutOff > 0 || connectionsClosed > 0) log?.warn({ cutOff, connectionsClosed }, 'shutdown deadline reached: answering the rest with 503 and closing');
    return { cutOff, connectionsClosed, ms: performance.now() - started };
  }
}

function connections(server: NetServer): Promise<number> {
  return new Promise((resolve) => server.getConnections((err, n) => resolve(err ? 0 : n)));
}
