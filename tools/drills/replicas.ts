// Multi-replica drill (issue 15): replicas of the real server behind HAProxy, which routes by
// readiness, under steady load; a rolling restart (goal: 0 failed requests) and a SIGKILL of one
// replica (failures bounded by the requests in flight, and the time HAProxy takes to route around
// it). Loopback only; every process it starts is killed and every temporary folder removed at the
// end, on an error, and on Ctrl-C.
//
//   node --import tsx tools/drills/replicas.ts (or npx tsx …; npm run drill:replicas --)
//       [--model realnvp-moons|glow-fashion|all|a,b] [--seconds N] [--replicas 3] [--clients 16]
//       [--baseline 5] [--gap 3] [--retries l7|conn|none] [--no-restart] [--no-kill]
//       [--json PATH] [--haproxy-log PATH]
// Figures and the reasons for each HAProxy setting: docs/replicas.md. Exit code 1 when a goal was missed.
//
// - Replicas: `node --import tsx src/server.ts` (tools/lib/server-process.ts: a process group each,
//   server and inference child), on loopback ports chosen free at the start so that a restarted
//   replica comes back on its port; INTRA_OP_THREADS=1, SHUTDOWN_DELAY_MS derived from HAProxy's
//   health-check settings (tools/drills/replicas-haproxy.ts).
// - HAProxy (/usr/sbin/haproxy, or $HAPROXY): foreground (-db), config generated from
//   deploy/haproxy/haproxy.cfg.template in a temporary folder; its stats CSV is polled every 50 ms
//   to see servers go DOWN and UP; its log (stdout) gives per-request retries.
// - Load: tools/drills/replicas-load.ts in its own process: --clients keep-alive clients POSTing
//   /likelihood (4 rows) and /sample (4, seeded), 4 to 1, every request recorded.
// - Timeline: baseline (--baseline s); rolling restart, one replica at a time (SIGTERM to its
//   process group, wait for exit and record the code, start it on the same port, wait until HAProxy
//   reports it UP); steady (--gap s); kill (SIGKILL to one replica's group, wait until HAProxy
//   reports it DOWN, restart, wait UP); after (--gap s, or longer so that the load lasts --seconds).
// - Reported per window (each request in the window in which it ended): requests, failures by
//   kind, p50/p99/max latency, requests HAProxy retried; per restart: SIGTERM → DOWN, → exit (code), restart → UP; for the
//   kill: requests in flight at the kill, the replica's share, failures, kill → DOWN, kill → last
//   failure, requests served by the others after the kill. Table on stdout; JSON with --json.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { MODEL_DIR, ROOT, modelDirWith, startServer, type ServerProcess } from '../lib/server-process.js';
import {
  HEALTH_CHECK,
  RETRYABLE_REQUEST_BYTES,
  SHUTDOWN_DELAY_MS,
  isDown,
  markDownBoundMs,
  parseRequestLog,
  parseStatsCsv,
  renderConfig,
  type RequestLogLine,
  type RetryPolicy,
  type StatRow,
} from './replicas-haproxy.js';
import { now, type LoadBody, type LoadRecord } from './replicas-load.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The promise's value, or null after `ms` (the timer is cleared either way: nothing keeps the process alive). */
async function within<T>(p: Promise<T>, ms: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<null>((r) => (timer = setTimeout(() => r(null), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
const BACKEND = 'be_flowserve';
const STATS_POLL_MS = 50;
/** Slack on top of markDownBoundMs for the kill → DOWN bound: stats polling and a loaded scheduler. */
export const DOWN_SLACK_MS = 1000;
/** Bound on kill → DOWN that the test asserts: from the configuration, not from a measurement. */
export const KILL_DOWN_BOUND_MS = markDownBoundMs() + DOWN_SLACK_MS;

export interface DrillOptions {
  models: string[];
  replicas: number;
  clients: number;
  /** Seconds of load before the first event. */
  baselineS: number;
  /** Seconds of steady load between the events and after the last. */
  gapS: number;
  /** The load lasts at least this long (the last window is extended). */
  minSeconds: number;
  retries: RetryPolicy;
  rollingRestart: boolean;
  kill: boolean;
  /** Progress lines (default: console.log). */
  log?: (line: string) => void;
  /** Write HAProxy's whole log (stdout and stderr) here at the end. */
  haproxyLog?: string;
}

export const DEFAULTS: DrillOptions = { models: ['realnvp-moons'], replicas: 3, clients: 16, baselineS: 5, gapS: 3, minSeconds: 0, retries: 'l7', rollingRestart: true, kill: true };

export interface WindowSummary {
  window: string;
  /** Relative to the load's start, seconds. */
  fromS: number;
  toS: number;
  requests: number;
  ok: number;
  failed: number;
  failures: Record<string, number>;
  /** Latency of every request that ended in the window, failed ones included. */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Requests HAProxy retried (its log's retry count > 0), of which redispatched to another replica. */
  retried: number;
  redispatched: number;
  byReplica: Record<string, number>;
}

export interface RestartRecord {
  replica: string;
  /** SIGTERM → HAProxy reports DOWN (stats; log line arrival in downLogMs). */
  downMs: number | null;
  downLogMs: number | null;
  exitCode: number | null;
  exitSignal: string | null;
  /** SIGTERM → exit. */
  exitMs: number;
  /** Start of the new process → HAProxy reports UP. */
  restartToUpMs: number | null;
  /** SIGTERM → UP again. */
  totalMs: number | null;
}

export interface KillRecord {
  replica: string;
  atS: number;
  /** Requests in flight through HAProxy at the kill (load generator's view: started before, ended after). */
  inFlightAtKill: number;
  /**
   * Requests in flight at some instant between sending SIGKILL and seeing the replica exit
   * (exitObservedMs later): the kill takes effect in that interval, not at the send. The bound.
   */
  inFlightUntilExit: number;
  exitObservedMs: number;
  /** HAProxy's current sessions on the killed replica and on the frontend, read just before the kill. */
  replicaSessionsAtKill: number;
  frontendSessionsAtKill: number;
  failures: number;
  failuresInFlightAtKill: number;
  failuresStartedAfterKill: number;
  /** Kill → HAProxy reports DOWN (stats; log line arrival in downLogMs). */
  downMs: number | null;
  downLogMs: number | null;
  downBoundMs: number;
  /** Kill → end of the last failed request of the kill window (null: none failed). */
  lastFailureMs: number | null;
  /** Requests started after the kill, before the replica was back, answered 200 by the other replicas. */
  okOnOthersAfterKill: number;
  /** Requests in flight at the kill that HAProxy retried on another replica (empty-response). */
  retriedInFlight: number;
  /** Requests started after the kill that HAProxy retried (conn-failure: sent to the dead replica before it was DOWN). */
  retriedAfterKill: number;
  /** Failed requests HAProxy did not log (it closed the client connection without an answer). */
  failuresNotLogged: number;
  exitSignal: string | null;
  restartToUpMs: number | null;
}

export interface DrillReport {
  date: string;
  machine: string;
  /** /proc/loadavg (1, 5, 15 min) at the start and at the end: other work on the machine shows here. */
  loadAverage: { start: number[]; end: number[] };
  command: string;
  options: Omit<DrillOptions, 'log'>;
  haproxy: { version: string; healthCheck: typeof HEALTH_CHECK; markDownBoundMs: number; retries: RetryPolicy };
  shutdownDelayMs: number;
  loadSeconds: number;
  totals: { requests: number; failed: number; haproxyLogLines: number };
  windows: WindowSummary[];
  restarts: RestartRecord[];
  kill: KillRecord | null;
  /** The failed requests (first 50), each with HAProxy's log line for it. */
  failedRequests: { id: string; path: string; startS: number; ms: number; kind: string; detail?: string; haproxy?: string }[];
  /** Server state changes seen in the stats (relative seconds). */
  transitions: { atS: number; server: string; from: string; to: string }[];
  /** What went against the drill's goals; empty when all held. */
  problems: string[];
  cleanup: { groups: number[]; tempDirs: string[]; leftoverGroups: number[] };
}

// ---- helpers ---------------------------------------------------------------------------------------

/** HAProxy's binary: $HAPROXY, /usr/sbin/haproxy, or on PATH; null when there is none. */
export function findHaproxy(): string | null {
  const candidates = [process.env.HAPROXY, '/usr/sbin/haproxy', ...(process.env.PATH ?? '').split(':').map((d) => join(d, 'haproxy'))].filter(Boolean) as string[];
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      /* next */
    }
  }
  return null;
}

export const HAPROXY_MISSING = 'haproxy is not installed (the multi-replica drill needs HAProxy 2.6+): `.ci/run` installs it with apt (apt-get install -y haproxy); or set HAPROXY=/path/to/haproxy';

/** Nearest-rank percentile; NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export const failureKind = (r: LoadRecord): string | null => (r.error ? r.error : r.status === 200 ? null : `HTTP ${r.status}`);

async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, async () => {
      const s = createServer();
      s.listen(0, '127.0.0.1');
      await once(s, 'listening');
      return s;
    }),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

const groupAlive = (pgid: number): boolean => {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Request bodies for the models: /likelihood on 4 reference rows, /sample of 4 (seeded), 4 to 1. */
export function requestBodies(models: string[], modelDir: string): LoadBody[] {
  const bodies: LoadBody[] = [];
  models.forEach((model, k) => {
    const inputs = (JSON.parse(readFileSync(join(modelDir, model, 'reference.json'), 'utf8')) as { inputs: unknown[] }).inputs.slice(0, 4);
    const lik = { path: '/likelihood', body: JSON.stringify({ model, inputs }) };
    bodies.push(lik, lik, lik, lik, { path: '/sample', body: JSON.stringify({ model, count: 4, seed: 1000 + k, format: 'array' }) });
  });
  for (const b of bodies)
    if (Buffer.byteLength(b.body) + 512 > RETRYABLE_REQUEST_BYTES)
      throw new Error(`a ${b.path} body of ${Buffer.byteLength(b.body)} bytes would not fit HAProxy's buffer (${RETRYABLE_REQUEST_BYTES} bytes): it could never be retried`);
  return bodies;
}

class StatsWatcher {
  current = new Map<string, StatRow>();
  transitions: { at: number; server: string; from: string; to: string }[] = [];
  private stopped = false;
  private loop: Promise<void> | null = null;
  constructor(private readonly url: string) {}

  async read(): Promise<StatRow[]> {
    const r = await fetch(this.url, { signal: AbortSignal.timeout(2000) });
    return parseStatsCsv(await r.text());
  }

  async pollOnce(): Promise<void> {
    const sent = now();
    const rows = await this.read();
    const at = (sent + now()) / 2;
    for (const row of rows) {
      if (row.pxname !== BACKEND && !(row.pxname === 'fe_flowserve' && row.svname === 'FRONTEND')) continue;
      const key = row.pxname === BACKEND ? row.svname : 'FRONTEND';
      const prev = this.current.get(key);
      if (row.pxname === BACKEND && row.svname !== 'BACKEND' && prev && prev.status !== row.status) this.transitions.push({ at, server: key, from: prev.status, to: row.status });
      this.current.set(key, row);
    }
  }

  start(): void {
    this.loop = (async () => {
      while (!this.stopped) {
        await this.pollOnce().catch(() => undefined);
        await sleep(STATS_POLL_MS);
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  /** Time of the first state change of `server` at or after `after` into a state matching `pred`. */
  async waitFor(server: string, pred: (status: string) => boolean, after: number, timeoutMs: number, what: string): Promise<number> {
    const deadline = now() + timeoutMs;
    for (;;) {
      const t = this.transitions.find((x) => x.server === server && x.at >= after && pred(x.to));
      if (t) return t.at;
      if (now() > deadline) throw new Error(`${server}: not ${what} within ${timeoutMs} ms (HAProxy says ${this.current.get(server)?.status} ${this.current.get(server)?.checkStatus})`);
      await sleep(STATS_POLL_MS / 2);
    }
  }
}

// ---- the drill ------------------------------------------------------------------------------------

/** Cleanups of drills still running, for the CLI's signal handlers. */
const running = new Set<() => void>();

export async function runDrill(optsIn: Partial<DrillOptions> = {}): Promise<DrillReport> {
  const opts: DrillOptions = { ...DEFAULTS, ...optsIn };
  const drillStart = now();
  const loadAvgStart = loadavg();
  const print = opts.log ?? ((l: string) => console.log(l));
  const log = (l: string) => print(`[${((now() - drillStart) / 1000).toFixed(1).padStart(5)} s] ${l}`);
  const haproxyBin = findHaproxy();
  if (!haproxyBin) throw new Error(HAPROXY_MISSING);
  const haproxyVersion = (await new Promise<string>((resolve) => {
    const p = spawn(haproxyBin, ['-v'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('close', () => resolve(out.split('\n')[0].trim()));
  })) as string;

  const groups = new Set<number>();
  const tempDirs: string[] = [];
  const incarnations: { name: string; proc: ServerProcess }[] = [];
  let haproxy: ChildProcess | null = null;
  let haproxyExited = '';
  let haproxyErr = '';
  let load: ChildProcess | null = null;
  let loadLog = '';
  const logLines: { at: number; line: string }[] = [];
  const stateLines: { at: number; server: string; state: string }[] = [];
  const problems: string[] = [];

  const killAllSync = () => {
    for (const pgid of [...groups].filter(groupAlive)) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  };
  running.add(killAllSync);

  const diagnostics = (records: LoadRecord[] | null, byId: Map<string, RequestLogLine> | null) => {
    const out: string[] = ['---- diagnostics ----'];
    if (records && byId) {
      const failed = records.filter((r) => failureKind(r)).slice(0, 40);
      out.push(`failed requests (first ${failed.length}) with HAProxy's log line:`);
      for (const r of failed) out.push(`  ${r.id} ${r.path} ${failureKind(r)} ${r.detail ?? ''} | ${byId.get(r.id)?.line ?? '(no HAProxy log line)'}`);
    }
    out.push('HAProxy (state changes, warnings):', ...logLines.filter((l) => !parseRequestLog(l.line)).map((l) => `  ${l.line}`), haproxyErr.trim().split('\n').slice(-40).join('\n'));
    for (const { name, proc } of incarnations) out.push(`replica ${name} (pid ${proc.child.pid}, exit ${proc.child.exitCode ?? proc.child.signalCode ?? 'running'}), last lines:`, proc.log().trim().split('\n').slice(-25).join('\n'));
    out.push('load generator:', loadLog.trim());
    console.error(out.join('\n'));
  };

  let records: LoadRecord[] | null = null;
  let byId: Map<string, RequestLogLine> | null = null;
  try {
    const modelDir = await modelDirWith(opts.models);
    tempDirs.push(modelDir);
    const work = mkdtempSync(join(tmpdir(), 'flowserve-replicas-'));
    tempDirs.push(work);
    const [frontendPort, statsPort, ...replicaPorts] = await freePorts(opts.replicas + 2);
    const names = replicaPorts.map((_, i) => `r${i + 1}`);
    const bodies = requestBodies(opts.models, modelDir);
    const bodiesPath = join(work, 'bodies.json');
    writeFileSync(bodiesPath, JSON.stringify(bodies));

    // -- replicas
    const replicas = new Map<string, ServerProcess>();
    const startReplica = async (name: string, port: number): Promise<ServerProcess> => {
      const proc = await startServer({
        via: 'node',
        waitReady: false,
        env: { PORT: String(port), MODEL_DIR: modelDir, INTRA_OP_THREADS: '1', SHUTDOWN_DELAY_MS: String(SHUTDOWN_DELAY_MS) },
      }).catch((err: Error) => {
        throw new Error(`replica ${name} on port ${port} did not start: ${err.message}`);
      });
      groups.add(proc.child.pid!);
      incarnations.push({ name, proc });
      replicas.set(name, proc);
      return proc;
    };
    const t = now();
    // Spawned together; startServer watches each for its "listening" line. Every start is settled
    // before a failure is thrown, so that the clean-up knows every process group.
    const started = await Promise.allSettled(names.map((n, i) => startReplica(n, replicaPorts[i])));
    for (const r of started) if (r.status === 'rejected') throw r.reason;
    for (const [name, proc] of replicas)
      for (let i = 0; (await fetch(`${proc.base}/readyz`).catch(() => null))?.status !== 200; i++) {
        if (i > 1200) throw new Error(`replica ${name} not ready after 120 s`);
        await sleep(100);
      }
    log(`${opts.replicas} replicas of ${opts.models.join(', ')} ready in ${((now() - t) / 1000).toFixed(1)} s on ports ${replicaPorts.join(', ')} (SHUTDOWN_DELAY_MS=${SHUTDOWN_DELAY_MS})`);

    // -- HAProxy
    const cfgPath = join(work, 'haproxy.cfg');
    writeFileSync(cfgPath, renderConfig({ frontendPort, statsPort, servers: names.map((name, i) => ({ name, port: replicaPorts[i] })), retries: opts.retries }));
    haproxy = spawn(haproxyBin, ['-db', '-f', cfgPath], { cwd: work, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    groups.add(haproxy.pid!);
    let partial = '';
    haproxy.stdout!.on('data', (d: Buffer) => {
      const at = now();
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        logLines.push({ at, line });
        const m = /Server be_flowserve\/(\S+) is (UP|DOWN)/.exec(line);
        if (m) stateLines.push({ at, server: m[1], state: m[2] });
      }
    });
    haproxy.stderr!.on('data', (d: Buffer) => (haproxyErr += d.toString()));
    const haproxyExit = once(haproxy, 'exit');
    void haproxyExit.then(([code, sig]) => (haproxyExited = `haproxy exited (${code ?? sig})`));
    const watcher = new StatsWatcher(`http://127.0.0.1:${statsPort}/stats;csv`);
    for (let i = 0; ; i++) {
      const rows = await watcher.read().catch(() => null);
      if (rows && names.every((n) => rows.some((r) => r.pxname === BACKEND && r.svname === n && r.status === 'UP' && r.checkStatus.startsWith('L7OK')))) break;
      if (haproxyExited || i > 200) throw new Error(`HAProxy did not report every replica UP: ${haproxyExited} ${haproxyErr.slice(-2000)} ${rows ? JSON.stringify(rows.filter((r) => r.pxname === BACKEND)) : ''}`);
      await sleep(100);
    }
    await watcher.pollOnce();
    watcher.start();
    log(`HAProxy (${haproxyVersion.replace(/ - .*/, '')}) on 127.0.0.1:${frontendPort}, stats on :${statsPort}, retries: ${opts.retries}, check inter ${HEALTH_CHECK.interMs} ms fall ${HEALTH_CHECK.fall} rise ${HEALTH_CHECK.rise} timeout ${HEALTH_CHECK.timeoutMs} ms`);

    // -- load, in its own process
    const loadOut = join(work, 'load.json');
    const plannedS = opts.baselineS + opts.gapS * 2 + 60 * opts.replicas + 120;
    load = spawn(
      process.execPath,
      ['--import', 'tsx', 'tools/drills/replicas-load.ts', '--url', `http://127.0.0.1:${frontendPort}`, '--bodies', bodiesPath, '--out', loadOut, '--clients', String(opts.clients), '--max-seconds', String(Math.max(opts.minSeconds, plannedS) + 60)],
      { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'], detached: true },
    );
    groups.add(load.pid!);
    load.stdout!.on('data', (d: Buffer) => (loadLog += d.toString()));
    load.stderr!.on('data', (d: Buffer) => (loadLog += d.toString()));
    const loadExit = once(load, 'exit');
    for (let i = 0; !/LOAD_STARTED/.test(loadLog); i++) {
      if (load.exitCode !== null || i > 600) throw new Error(`load generator did not start: ${loadLog}`);
      await sleep(50);
    }
    const loadStart = Number(/LOAD_STARTED (\S+)/.exec(loadLog)![1]);
    const rel = (at: number) => (at - loadStart) / 1000;
    log(`load: ${opts.clients} keep-alive clients through HAProxy (${bodies.length} request bodies, ${opts.models.length} model(s))`);

    const marks: { name: string; at: number }[] = [{ name: 'baseline', at: loadStart }];
    await sleep(opts.baselineS * 1000);

    // -- rolling restart
    const restarts: RestartRecord[] = [];
    if (opts.rollingRestart) {
      marks.push({ name: 'rolling restart', at: now() });
      for (const name of names) {
        const proc = replicas.get(name)!;
        const port = replicaPorts[names.indexOf(name)];
        const sigterm = now();
        proc.signalGroup('SIGTERM');
        const down = watcher.waitFor(name, isDown, sigterm, SHUTDOWN_DELAY_MS + 30_000, 'DOWN').catch(() => null);
        const exited = await within(proc.exited, 40_000);
        if (!exited) throw new Error(`replica ${name} did not exit within 40 s of SIGTERM`);
        const exitAt = now();
        const [exitCode, exitSignal] = exited;
        const downAt = await down;
        const downLog = stateLines.find((s) => s.server === name && s.state === 'DOWN' && s.at >= sigterm);
        const restartAt = now();
        await startReplica(name, port);
        const upAt = await watcher.waitFor(name, (s) => s === 'UP', restartAt, 120_000, 'UP again');
        const r: RestartRecord = {
          replica: name,
          downMs: downAt === null ? null : Math.round(downAt - sigterm),
          downLogMs: downLog ? Math.round(downLog.at - sigterm) : null,
          exitCode,
          exitSignal,
          exitMs: Math.round(exitAt - sigterm),
          restartToUpMs: Math.round(upAt - restartAt),
          totalMs: Math.round(upAt - sigterm),
        };
        restarts.push(r);
        log(`  ${name}: SIGTERM → DOWN ${r.downMs} ms, → exit ${r.exitMs} ms (code ${exitCode}${exitSignal ? `, ${exitSignal}` : ''}); restart → UP ${r.restartToUpMs} ms`);
        if (exitCode !== 0) problems.push(`${name} exited with ${exitCode ?? exitSignal} after SIGTERM (expected 0)`);
        if (r.downMs === null || r.downMs >= SHUTDOWN_DELAY_MS) problems.push(`${name}: HAProxy did not mark it DOWN before its shutdown delay (${SHUTDOWN_DELAY_MS} ms) ended: ${r.downMs} ms`);
      }
      marks.push({ name: 'steady', at: now() });
      await sleep(opts.gapS * 1000);
    }

    // -- kill
    let killInfo: { name: string; at: number; exitAt: number; scur: number; feScur: number; downAt: number | null; exitSignal: string | null; upAt: number | null; restartAt: number } | null = null;
    if (opts.kill) {
      const name = names[Math.min(1, names.length - 1)];
      const proc = replicas.get(name)!;
      const before = await watcher.read();
      const scur = before.find((r) => r.pxname === BACKEND && r.svname === name)?.scur ?? NaN;
      const feScur = before.find((r) => r.svname === 'FRONTEND')?.scur ?? NaN;
      const at = now();
      proc.signalGroup('SIGKILL');
      const exitSeen = proc.exited.then(([, signal]) => ({ signal, at: now() }));
      marks.push({ name: 'kill', at });
      const downAt = await watcher.waitFor(name, isDown, at, 30_000, 'DOWN').catch(() => null);
      const { signal: exitSignal, at: exitAt } = await exitSeen;
      const restartAt = now();
      await startReplica(name, replicaPorts[names.indexOf(name)]);
      const upAt = await watcher.waitFor(name, (s) => s === 'UP', restartAt, 120_000, 'UP again');
      killInfo = { name, at, exitAt, scur, feScur, downAt, exitSignal, upAt, restartAt };
      log(`  kill ${name}: → DOWN ${downAt === null ? 'never' : `${Math.round(downAt - at)} ms`}; restart → UP ${Math.round(upAt - restartAt)} ms`);
      marks.push({ name: 'after', at: now() });
    }

    // -- the rest of the load, then stop it
    const endAt = Math.max(now() + opts.gapS * 1000, loadStart + opts.minSeconds * 1000);
    await sleep(Math.max(0, endAt - now()));
    load.stdin!.write('stop\n');
    const loadDone = await within(loadExit, 60_000);
    if (!loadDone) throw new Error('load generator did not stop within 60 s');
    log('load stopped');
    const loadResult = JSON.parse(readFileSync(loadOut, 'utf8')) as { started: number; stopped: number; records: LoadRecord[] };
    records = loadResult.records;
    await watcher.stop();
    await sleep(200); // HAProxy logs a request when it ends: the last lines
    if (opts.haproxyLog) writeFileSync(opts.haproxyLog, logLines.map((l) => l.line).join('\n') + '\n' + haproxyErr);
    byId = new Map(logLines.map((l) => parseRequestLog(l.line)).filter((x): x is RequestLogLine => x !== null && x.id !== '-').map((l) => [l.id, l]));

    // -- windows
    marks.push({ name: '(end)', at: loadResult.stopped });
    const windows: WindowSummary[] = [];
    for (let i = 0; i + 1 < marks.length; i++) {
      const { name, at: from } = marks[i];
      const to = marks[i + 1].at;
      // A request belongs to the window in which it ended: when it was answered, or failed.
      const inWin = records.filter((r) => r.t0 + r.ms >= from && r.t0 + r.ms < to);
      const lat = inWin.map((r) => r.ms).sort((a, b) => a - b);
      const failures: Record<string, number> = {};
      const byReplica: Record<string, number> = {};
      let retried = 0;
      let redispatched = 0;
      for (const r of inWin) {
        const f = failureKind(r);
        if (f) failures[f] = (failures[f] ?? 0) + 1;
        if (r.server) byReplica[r.server] = (byReplica[r.server] ?? 0) + 1;
        const h = byId.get(r.id);
        if (h && h.retries > 0) retried++;
        if (h?.redispatched) redispatched++;
      }
      const failed = Object.values(failures).reduce((a, b) => a + b, 0);
      windows.push({
        window: name,
        fromS: +rel(from).toFixed(2),
        toS: +rel(to).toFixed(2),
        requests: inWin.length,
        ok: inWin.length - failed,
        failed,
        failures,
        p50Ms: +percentile(lat, 50).toFixed(1),
        p99Ms: +percentile(lat, 99).toFixed(1),
        maxMs: +(lat.at(-1) ?? NaN).toFixed(1),
        retried,
        redispatched,
        byReplica,
      });
    }
    const rolling = windows.find((w) => w.window === 'rolling restart');
    if (rolling && rolling.failed > 0) problems.push(`${rolling.failed} failed requests during the rolling restart (goal 0): ${JSON.stringify(rolling.failures)}`);

    let kill: KillRecord | null = null;
    if (killInfo) {
      const { name, at, upAt } = killInfo;
      const killWin = records.filter((r) => r.t0 + r.ms >= at && r.t0 < (upAt ?? Infinity));
      const inFlight = records.filter((r) => r.t0 <= at && r.t0 + r.ms > at);
      const inFlightUntilExit = records.filter((r) => r.t0 <= killInfo!.exitAt && r.t0 + r.ms > at);
      const failedWin = killWin.filter((r) => failureKind(r));
      const failedInFlight = inFlight.filter((r) => failureKind(r));
      const lastFailure = failedWin.length ? Math.max(...failedWin.map((r) => r.t0 + r.ms)) : null;
      const downLog = stateLines.find((s) => s.server === name && s.state === 'DOWN' && s.at >= at);
      kill = {
        replica: name,
        atS: +rel(at).toFixed(2),
        inFlightAtKill: inFlight.length,
        inFlightUntilExit: inFlightUntilExit.length,
        exitObservedMs: Math.round(killInfo.exitAt - at),
        replicaSessionsAtKill: killInfo.scur,
        frontendSessionsAtKill: killInfo.feScur,
        failures: failedWin.length,
        failuresInFlightAtKill: failedInFlight.length,
        failuresStartedAfterKill: failedWin.filter((r) => r.t0 > at).length,
        downMs: killInfo.downAt === null ? null : Math.round(killInfo.downAt - at),
        downLogMs: downLog ? Math.round(downLog.at - at) : null,
        downBoundMs: KILL_DOWN_BOUND_MS,
        lastFailureMs: lastFailure === null ? null : Math.round(lastFailure - at),
        okOnOthersAfterKill: records.filter((r) => r.t0 > at && r.t0 < (upAt ?? Infinity) && r.status === 200 && !r.error && r.server && r.server !== name).length,
        retriedInFlight: inFlight.filter((r) => (byId!.get(r.id)?.retries ?? 0) > 0).length,
        retriedAfterKill: records.filter((r) => r.t0 > at && r.t0 < (upAt ?? Infinity) && (byId!.get(r.id)?.retries ?? 0) > 0).length,
        failuresNotLogged: failedWin.filter((r) => !byId!.has(r.id)).length,
        exitSignal: killInfo.exitSignal,
        restartToUpMs: upAt === null ? null : Math.round(upAt - killInfo.restartAt),
      };
      if (kill.failures > kill.inFlightUntilExit) problems.push(`kill: ${kill.failures} failed requests, more than the ${kill.inFlightUntilExit} in flight between the kill and the replica's exit`);
      if (kill.downMs === null || kill.downMs > KILL_DOWN_BOUND_MS) problems.push(`kill: HAProxy marked ${name} DOWN after ${kill.downMs} ms (bound ${KILL_DOWN_BOUND_MS} ms)`);
      if (kill.okOnOthersAfterKill === 0) problems.push('kill: no request succeeded on the other replicas after the kill');
    }
    const failedTotal = records.filter((r) => failureKind(r)).length;
    const report: Omit<DrillReport, 'cleanup'> = {
      date: new Date().toISOString(),
      machine: `${cpus().length} cores (${cpus()[0]?.model ?? 'unknown CPU'}), shared by the replicas, HAProxy and the load generator; loopback`,
      loadAverage: { start: loadAvgStart.map((x) => +x.toFixed(2)), end: loadavg().map((x) => +x.toFixed(2)) },
      command: '',
      options: { models: opts.models, replicas: opts.replicas, clients: opts.clients, baselineS: opts.baselineS, gapS: opts.gapS, minSeconds: opts.minSeconds, retries: opts.retries, rollingRestart: opts.rollingRestart, kill: opts.kill, haproxyLog: opts.haproxyLog },
      haproxy: { version: haproxyVersion, healthCheck: HEALTH_CHECK, markDownBoundMs: markDownBoundMs(), retries: opts.retries },
      shutdownDelayMs: SHUTDOWN_DELAY_MS,
      loadSeconds: +((loadResult.stopped - loadResult.started) / 1000).toFixed(1),
      totals: { requests: records.length, failed: failedTotal, haproxyLogLines: byId.size },
      windows,
      restarts,
      kill,
      failedRequests: records
        .filter((r) => failureKind(r))
        .slice(0, 50)
        .map((r) => ({ id: r.id, path: r.path, startS: +rel(r.t0).toFixed(3), ms: +r.ms.toFixed(1), kind: failureKind(r)!, detail: r.detail, haproxy: byId!.get(r.id)?.line })),
      transitions: watcher.transitions.map((x) => ({ atS: +rel(x.at).toFixed(2), server: x.server, from: x.from, to: x.to })),
      problems,
    };
    if (problems.length > 0) diagnostics(records, byId);
    const cleaned = await cleanup();
    log(`cleaned up: ${cleaned.groups.length} process groups killed, ${cleaned.tempDirs.length} temporary folders removed`);
    return { ...report, cleanup: cleaned };
  } catch (err) {
    diagnostics(records, byId);
    await cleanup();
    throw err;
  } finally {
    running.delete(killAllSync);
  }

  async function cleanup(): Promise<DrillReport['cleanup']> {
    // Every group started, alive or not; a group id is not reused while any process of the group lives.
    const all = [...groups];
    if (load && load.exitCode === null) load.stdin?.end();
    for (const pgid of all.filter(groupAlive)) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    for (let i = 0; i < 100 && all.some(groupAlive); i++) await sleep(50);
    for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
    return { groups: all, tempDirs: [...tempDirs], leftoverGroups: all.filter(groupAlive) };
  }
}

// ---- output -----------------------------------------------------------------------------------------

export function printReport(r: DrillReport, out: (l: string) => void = console.log): void {
  out(`\n${r.options.replicas} replicas of ${r.options.models.join(', ')} behind ${r.haproxy.version.replace(/ - .*/, '')}, retries ${r.haproxy.retries}, ${r.options.clients} clients, ${r.loadSeconds} s of load; ${r.machine}; load average ${r.loadAverage.start.join(' ')} at the start, ${r.loadAverage.end.join(' ')} at the end`);
  out('| window | from–to (s) | requests | failed | failures | p50 ms | p99 ms | max ms | retried by HAProxy | by replica |');
  out('|---|---|---:|---:|---|---:|---:|---:|---:|---|');
  for (const w of r.windows)
    out(`| ${w.window} | ${w.fromS}–${w.toS} | ${w.requests} | ${w.failed} | ${Object.entries(w.failures).map(([k, v]) => `${k}: ${v}`).join(', ') || '–'} | ${w.p50Ms} | ${w.p99Ms} | ${w.maxMs} | ${w.retried} (${w.redispatched} redispatched) | ${Object.entries(w.byReplica).sort().map(([k, v]) => `${k} ${v}`).join(', ')} |`);
  if (r.restarts.length) {
    out('\n| replica | SIGTERM → DOWN ms | SIGTERM → exit ms | exit code | restart → UP ms | SIGTERM → UP ms |');
    out('|---|---:|---:|---:|---:|---:|');
    for (const x of r.restarts) out(`| ${x.replica} | ${x.downMs} | ${x.exitMs} | ${x.exitCode ?? x.exitSignal} | ${x.restartToUpMs} | ${x.totalMs} |`);
  }
  if (r.kill) {
    const k = r.kill;
    out(
      `\nkill ${k.replica} at ${k.atS} s: in flight ${k.inFlightAtKill} (HAProxy: ${k.replicaSessionsAtKill} of ${k.frontendSessionsAtKill} on ${k.replica}; ${k.inFlightUntilExit} until its exit was seen, ${k.exitObservedMs} ms later), ` +
        `failed ${k.failures} (${k.failuresInFlightAtKill} in flight at the kill, ${k.failuresStartedAfterKill} started after; ${k.failuresNotLogged} not in HAProxy's log), ` +
        `retried by HAProxy: ${k.retriedInFlight} of those in flight, ${k.retriedAfterKill} started after; → DOWN ${k.downMs} ms (bound ${k.downBoundMs} ms; log line ${k.downLogMs} ms); → last failure ${k.lastFailureMs ?? '–'} ms; ${k.okOnOthersAfterKill} answered by the others before it was back; restart → UP ${k.restartToUpMs} ms`,
    );
  }
  out(r.problems.length ? `\nPROBLEMS:\n${r.problems.map((p) => `  - ${p}`).join('\n')}` : '\nall goals held');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', default: 'realnvp-moons' },
      seconds: { type: 'string', default: '0' },
      replicas: { type: 'string', default: '3' },
      clients: { type: 'string', default: '16' },
      baseline: { type: 'string', default: '5' },
      gap: { type: 'string', default: '3' },
      retries: { type: 'string', default: 'l7' },
      'no-restart': { type: 'boolean', default: false },
      'no-kill': { type: 'boolean', default: false },
      json: { type: 'string' },
      'haproxy-log': { type: 'string' },
    },
  });
  const models = values.model === 'all' ? readdirSync(MODEL_DIR).filter((d) => existsSync(join(MODEL_DIR, d, 'flow.json'))).sort() : values.model!.split(',');
  if (!['l7', 'conn', 'none'].includes(values.retries!)) throw new Error('--retries is l7, conn or none');
  const onSignal = (sig: NodeJS.Signals) => {
    for (const c of running) c();
    console.error(`\n${sig}: every process started was killed, temporary folders removed`);
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', () => running.forEach((c) => c()));
  const report = await runDrill({
    models,
    minSeconds: Number(values.seconds),
    replicas: Number(values.replicas),
    clients: Number(values.clients),
    baselineS: Number(values.baseline),
    gapS: Number(values.gap),
    retries: values.retries as RetryPolicy,
    rollingRestart: !values['no-restart'],
    kill: !values['no-kill'],
    haproxyLog: values['haproxy-log'],
  });
  report.command = `node --import tsx tools/drills/replicas.ts ${process.argv.slice(2).join(' ')}`.trim();
  printReport(report);
  if (values.json) {
    writeFileSync(values.json, JSON.stringify(report, null, 2) + '\n');
    console.log(`wrote ${values.json}`);
  }
  if (report.cleanup.leftoverGroups.length) console.error(`process groups still alive after clean-up: ${report.cleanup.leftoverGroups.join(', ')}`);
  process.exitCode = report.problems.length || report.cleanup.leftoverGroups.length ? 1 : 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
