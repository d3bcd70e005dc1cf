// HAProxy for the multi-replica drill (tools/drills/replicas.ts): the health-check timing in one
// place, the replicas' SHUTDOWN_DELAY_MS derived from it, the config rendered from
// deploy/haproxy/haproxy.cfg.template, and the parsers for what HAProxy reports (stats CSV, log lines).
// Pure functions, except renderConfig's read of the template.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = new URL('../..', import.meta.url).pathname;
export const TEMPLATE = join(ROOT, 'deploy/haproxy/haproxy.cfg.template');

/** Active readiness checks (server keywords inter, fall, rise; `timeout check`). */
export const HEALTH_CHECK = { interMs: 500, fall: 2, rise: 1, timeoutMs: 1000 } as const;

/**
 * Longest time from /readyz turning 503 (or the port closing) to HAProxy marking the server DOWN:
 * checks start every `inter` (on a fixed schedule), so the first one started after the event begins
 * within `inter`, and `fall` failed checks in a row later the last one has failed, at most
 * `timeout check` after it started.
 */
export const markDownBoundMs = (h: { interMs: number; fall: number; timeoutMs: number } = HEALTH_CHECK): number => h.fall * h.interMs + h.timeoutMs;

/** Room for a replica's event loop and HAProxy's scheduler on a shared 2-core machine. */
export const DRAIN_MARGIN_MS = 1000;

/**
 * The replicas' SHUTDOWN_DELAY_MS (the time a draining replica keeps serving while /readyz is 503):
 * HAProxy must have marked it DOWN before it starts refusing (503) new requests. The default is
 * 5000 ms; the drill uses the least that is safe, so that a rolling restart of 3 is quick.
 */
export const SHUTDOWN_DELAY_MS = markDownBoundMs() + DRAIN_MARGIN_MS;

/** Throws when a shutdown delay leaves HAProxy too little time to route around a draining replica. */
export function checkDrainFitsHealthCheck(shutdownDelayMs: number, h: { interMs: number; fall: number; timeoutMs: number } = HEALTH_CHECK): void {
  const need = markDownBoundMs(h) + DRAIN_MARGIN_MS;
  if (!(shutdownDelayMs >= need))
    throw new Error(
      `SHUTDOWN_DELAY_MS=${shutdownDelayMs} is shorter than HAProxy needs to mark a draining replica DOWN: ` +
        `fall ${h.fall} x inter ${h.interMs} ms + timeout check ${h.timeoutMs} ms + margin ${DRAIN_MARGIN_MS} ms = ${need} ms`,
    );
}
checkDrainFitsHealthCheck(SHUTDOWN_DELAY_MS);

/** tune.bufsize; a request longer than this minus tune.maxrewrite (1024) is never retried at L7. */
export const BUFSIZE = 65536;
export const RETRYABLE_REQUEST_BYTES = BUFSIZE - 1024;

export type RetryPolicy = 'l7' | 'conn' | 'none';

const RETRY_POLICIES: Record<RetryPolicy, string> = {
  l7: `    # L7 retries (HAProxy 2.6): up to 3 more attempts, each on another server (redispatch 1), when
    # the connection failed (conn-failure: refused by a replica that just died), when the server closed
    # the connection without a byte of response (empty-response: killed mid-request), or when timeout
    # server struck (response-timeout: a hung replica). A retry replays a copy of the request, so the
    # whole request is buffered before it is sent (http-buffer-request) and must fit in tune.bufsize.
    # Safe here because flowserve's POSTs compute a function of the body (likelihood; sample with its
    # seed): a replay has no side effect. Not true of every API: these retries also hide failures
    # (docs/replicas.md counts them).
    retries 3
    option redispatch 1
    option http-buffer-request
    retry-on conn-failure empty-response response-timeout`,
  conn: `    # HAProxy's default retry policy: a request is retried (on another server: redispatch 1) only
    # when the connection could not be made, i.e. before anything was sent. A request in flight on a
    # replica that dies fails (502).
    retries 3
    option redispatch 1
    retry-on conn-failure`,
  none: `    # No retry at all: every connection refused by a dead replica not yet marked DOWN is a 503.
    retries 0
    retry-on none`,
};

export interface ConfigInput {
  frontendPort: number;
  statsPort: number;
  servers: { name: string; port: number }[];
  retries: RetryPolicy;
}

/** Fill every {{NAME}} of the template; an unknown or unfilled placeholder is an error. */
export function fillTemplate(template: string, values: Record<string, string | number>): string {
  const out = template.replace(/\{\{([A-Z_]+)\}\}/g, (_m, name: string) => {
    if (!(name in values)) throw new Error(`haproxy template: no value for {{${name}}}`);
    return String(values[name]);
  });
  if (/\{\{|\}\}/.test(out)) throw new Error('haproxy template: malformed placeholder left');
  return out;
}

export function renderConfig(input: ConfigInput, template = readFileSync(TEMPLATE, 'utf8')): string {
  return fillTemplate(template, {
    BUFSIZE,
    CHECK_TIMEOUT_MS: HEALTH_CHECK.timeoutMs,
    INTER_MS: HEALTH_CHECK.interMs,
    FALL: HEALTH_CHECK.fall,
    RISE: HEALTH_CHECK.rise,
    FRONTEND_PORT: input.frontendPort,
    STATS_PORT: input.statsPort,
    RETRY_POLICY: RETRY_POLICIES[input.retries],
    SERVERS: input.servers.map((s) => `    server ${s.name} 127.0.0.1:${s.port}`).join('\n'),
  });
}

export interface StatRow {
  pxname: string;
  svname: string;
  /** "UP", "DOWN", "UP 1/2" (up, going down), "DOWN 1/2" (down, going up), "MAINT", "no check", … */
  status: string;
  /** Sessions (requests being handled) right now. */
  scur: number;
  stot: number;
  /** Retries and redispatches (servers and backend). */
  wretr: number;
  wredis: number;
  checkStatus: string;
}

/** HAProxy's `show stat` CSV (GET /stats;csv): header "# pxname,svname,…". */
export function parseStatsCsv(text: string): StatRow[] {
  const lines = text.split('\n').filter((l) => l.trim());
  if (!lines[0]?.startsWith('# ')) throw new Error(`not a HAProxy stats CSV: ${text.slice(0, 200)}`);
  const header = lines[0].slice(2).split(',');
  const col = (name: string) => {
    const i = header.indexOf(name);
    if (i < 0) throw new Error(`stats CSV has no column ${name}`);
    return i;
  };
  const [px, sv, st, sc, tot, retr, redis, chk] = ['pxname', 'svname', 'status', 'scur', 'stot', 'wretr', 'wredis', 'check_status'].map(col);
  return lines.slice(1).map((l) => {
    const f = l.split(',');
    return { pxname: f[px], svname: f[sv], status: f[st], scur: Number(f[sc] || 0), stot: Number(f[tot] || 0), wretr: Number(f[retr] || 0), wredis: Number(f[redis] || 0), checkStatus: f[chk] };
  });
}

/** Routed to: UP, or UP and going down after a failed check. */
export const isUp = (status: string | undefined): boolean => status === 'UP' || /^UP \d+\/\d+$/.test(status ?? '');
/** Not routed to: DOWN, or DOWN and going up. */
export const isDown = (status: string | undefined): boolean => status === 'DOWN' || /^DOWN \d+\/\d+$/.test(status ?? '');

export interface RequestLogLine {
  /** Accept time, epoch ms. */
  at: number;
  id: string;
  server: string;
  status: number;
  /** Retries; redispatched when the log shows "+". */
  retries: number;
  redispatched: boolean;
  termination: string;
  line: string;
}

/** One line of the log-format in the template; null for anything else (state changes, alerts). */
export function parseRequestLog(line: string): RequestLogLine | null {
  const m = /^(\d+)\.(\d{3}) \{?([^ }]*)\}? [^/ ]+\/(\S+) (-?\d+) (\+?)(\d+) (\S+) /.exec(line);
  if (!m) return null;
  return { at: Number(m[1]) * 1000 + Number(m[2]), id: m[3], server: m[4], status: Number(m[5]), redispatched: m[6] === '+', retries: Number(m[7]), termination: m[8], line };
}
