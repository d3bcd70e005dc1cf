// Load generator of the multi-replica drill (tools/drills/replicas.ts), in a process of its own so
// that the drill's event loop (signals, restarts, stats polling) neither slows the load nor skews its
// timings. A fixed number of clients, each with its own keep-alive connection to HAProxy, send the
// prebuilt requests of --bodies back to back until told to stop (a line "stop" on stdin, SIGTERM,
// stdin closing because the drill died) or --max-seconds have passed. After a failed request a
// client waits 100 ms (as a client honouring Retry-After would, shortened), so an outage is not
// counted as thousands of instant failures.
//
// Every request is recorded: start (epoch ms, performance.timeOrigin + now(), the same clock as the
// drill's), latency, status or error kind, and the replica that answered (X-Served-By, set by
// HAProxy). Written as JSON to --out when the load stops.
//   node --import tsx tools/drills/replicas-load.ts --url http://127.0.0.1:PORT --bodies FILE --out FILE [--clients 16] [--max-seconds 600] [--timeout-ms 20000]
import { writeFileSync, readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { parseArgs } from 'node:util';

export interface LoadBody {
  path: string;
  body: string;
}

export type ErrorKind = 'reset' | 'refused' | 'timeout' | 'error';

export interface LoadRecord {
  /** x-request-id (also in HAProxy's log). */
  id: string;
  path: string;
  /** Start, epoch ms. */
  t0: number;
  ms: number;
  /** HTTP status; 0 when no response came. */
  status: number;
  error?: ErrorKind;
  detail?: string;
  /** The replica HAProxy sent it to (X-Served-By), when a replica answered. */
  server?: string;
}

export const now = (): number => performance.timeOrigin + performance.now();

export function errorKind(err: NodeJS.ErrnoException): ErrorKind {
  if (err.code === 'ECONNRESET' || err.code === 'EPIPE' || /socket hang up/.test(err.message)) return 'reset';
  if (err.code === 'ECONNREFUSED') return 'refused';
  if (err.code === 'ETIMEDOUT' || err.name === 'TimeoutError') return 'timeout';
  return 'error';
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      bodies: { type: 'string' },
      out: { type: 'string' },
      clients: { type: 'string', default: '16' },
      'max-seconds': { type: 'string', default: '600' },
      'timeout-ms': { type: 'string', default: '20000' },
    },
  });
  if (!values.url || !values.bodies || !values.out) throw new Error('--url, --bodies and --out are required');
  const target = new URL(values.url);
  const bodies = JSON.parse(readFileSync(values.bodies, 'utf8')) as LoadBody[];
  const clients = Number(values.clients);
  const timeoutMs = Number(values['timeout-ms']);
  const maxMs = Number(values['max-seconds']) * 1000;
  // One socket per client, kept alive (maxSockets = clients: no request waits for a socket).
  const agent = new Agent({ keepAlive: true, maxSockets: clients, maxFreeSockets: clients });
  const records: LoadRecord[] = [];
  let stopping = false;
  const stop = () => (stopping = true);
  process.on('SIGTERM', stop);
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (d: string) => d.includes('stop') && stop());
  process.stdin.on('end', stop);
  const started = now();
  const hardStop = setTimeout(stop, maxMs);

  const once = (client: number, n: number): Promise<LoadRecord> => {
    const { path, body } = bodies[(client + n * clients) % bodies.length];
    const id = `c${client}-${n}`;
    const t0 = now();
    return new Promise((resolve) => {
      let done = false;
      const finish = (r: Omit<LoadRecord, 'id' | 'path' | 't0' | 'ms'>) => {
        if (done) return;
        done = true;
        resolve({ id, path, t0, ms: now() - t0, ...r });
      };
      const req = request(
        { host: target.hostname, port: target.port, path, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-request-id': id } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const server = res.headers['x-served-by'] as string | undefined;
            const status = res.statusCode ?? 0;
            if (status !== 200) return finish({ status, server, detail: Buffer.concat(chunks).toString('utf8').slice(0, 200) });
            try {
              JSON.parse(Buffer.concat(chunks).toString('utf8'));
              finish({ status, server });
            } catch {
              finish({ status, server, error: 'error', detail: 'truncated body' });
            }
          });
          res.on('error', (err) => finish({ status: 0, server: res.headers['x-served-by'] as string | undefined, error: errorKind(err), detail: err.message }));
          // a response cut off mid-body (the connection closed before its end)
          res.on('close', () => !res.complete && finish({ status: 0, server: res.headers['x-served-by'] as string | undefined, error: 'reset', detail: 'response cut off' }));
        },
      );
      req.setTimeout(timeoutMs, () => {
        finish({ status: 0, error: 'timeout', detail: `no answer in ${timeoutMs} ms` });
        req.destroy();
      });
      req.on('error', (err: NodeJS.ErrnoException) => finish({ status: 0, error: errorKind(err), detail: `${err.code ?? ''} ${err.message}`.trim() }));
      req.end(body);
    });
  };

  const client = async (k: number) => {
    for (let n = 0; !stopping; n++) {
      const r = await once(k, n);
      records.push(r);
      if (r.status !== 200 || r.error) await new Promise((res) => setTimeout(res, 100));
    }
  };
  console.log(`LOAD_STARTED ${started.toFixed(1)}`);
  await Promise.all(Array.from({ length: clients }, (_, k) => client(k)));
  clearTimeout(hardStop);
  agent.destroy();
  writeFileSync(values.out, JSON.stringify({ started, stopped: now(), clients, records }));
  console.log(`LOAD_DONE ${records.length}`);
  process.exit(0);
}

if (process.argv[1]?.endsWith('replicas-load.ts')) await main();
