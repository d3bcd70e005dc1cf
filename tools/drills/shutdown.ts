// Shutdown drill: how many requests does a signal drop? For each way of stopping the server
// (SIGINT or SIGTERM to the `npm start` process group, as Ctrl-C and `kill -- -PGID` do; SIGTERM to
// the npm process alone; SIGINT or SIGTERM to node alone), DRILL_RUNS runs of: start on the shipped
// models with the default settings, 32 clients posting /sample {nice-mnist, 16 samples, array} back
// to back, the signal once every client has had 2 answers, clients going on until the server
// refuses them (a 503 or a refused connection). Counted per run: requests in flight at the signal,
// how many of those were dropped (reset or cut off, i.e. anything but a full 200), requests started
// after the signal by outcome, exit code, and signal-to-exit time.
//   DRILL_RUNS=10 npm run drill:shutdown            (writes bench/shutdown-drill-<date>.json)
import { mkdir, writeFile } from 'node:fs/promises';
import { killGroup, startServer, type ServerProcess } from '../lib/server-process.js';

const RUNS = Number(process.env.DRILL_RUNS ?? 10);
const CLIENTS = 32;
const BODY = JSON.stringify({ model: 'nice-mnist', count: 16, format: 'array' });

type Kind = 'ok' | 'not-ready' | 'refused' | 'dropped';
interface RunResult {
  inFlightAtSignal: number;
  droppedInFlight: number;
  after: Record<Kind, number>;
  exitCode: number | null;
  exitMs: number;
  drops: string[];
}

async function once_(base: string): Promise<{ kind: Kind; detail: string }> {
  try {
    const r = await fetch(`${base}/sample`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: BODY });
    const json = (await r.json()) as { outputs?: unknown[]; error?: { code: string } };
    if (r.status === 200 && json.outputs?.length === 16) return { kind: 'ok', detail: '' };
    if (r.status === 503 && json.error?.code === 'NOT_READY') return { kind: 'not-ready', detail: '' };
    return { kind: 'dropped', detail: `${r.status} ${json.error?.code}` };
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    if (cause?.code === 'ECONNREFUSED') return { kind: 'refused', detail: '' };
    return { kind: 'dropped', detail: cause?.code ?? cause?.message ?? String(err) };
  }
}

async function drill(how: string, signal: (s: ServerProcess) => void, via: 'npm' | 'node'): Promise<RunResult> {
  const server = await startServer({ via, env: { INTRA_OP_THREADS: '0' } });
  try {
    let signalledAt = 0;
    let answered = 0;
    const inFlightAt = new Set<number>();
    const pending = new Set<number>();
    let id = 0;
    const result: RunResult = { inFlightAtSignal: 0, droppedInFlight: 0, after: { ok: 0, 'not-ready': 0, refused: 0, dropped: 0 }, exitCode: null, exitMs: 0, drops: [] };
    const client = async () => {
      for (;;) {
        const me = id++;
        pending.add(me);
        const o = await once_(server.base);
        pending.delete(me);
        answered++;
        if (inFlightAt.has(me)) {
          if (o.kind !== 'ok') {
            result.droppedInFlight++;
            result.drops.push(o.detail || o.kind);
          }
        } else if (signalledAt) {
          result.after[o.kind]++;
          if (o.kind === 'dropped') result.drops.push(o.detail);
        }
        if (o.kind !== 'ok') return;
        // clients that honour Retry-After: nothing new once refused
      }
    };
    const clients = Array.from({ length: CLIENTS }, client);
    while (answered < CLIENTS * 2) await new Promise((r) => setTimeout(r, 2));
    for (const p of pending) inFlightAt.add(p);
    result.inFlightAtSignal = inFlightAt.size;
    signalledAt = performance.now();
    signal(server);
    await Promise.all(clients);
    const [code] = await server.exited;
    result.exitCode = code;
    result.exitMs = Math.round(performance.now() - signalledAt);
    console.log(`${how}: in flight ${result.inFlightAtSignal}, dropped ${result.droppedInFlight}; after the signal ${JSON.stringify(result.after)}; exit ${code} after ${result.exitMs} ms`);
    return result;
  } finally {
    killGroup(server);
  }
}

const ways: [string, 'npm' | 'node', (s: ServerProcess) => void][] = [
  ['SIGINT to the npm start process group', 'npm', (s) => s.signalGroup('SIGINT')],
  ['SIGTERM to the npm start process group', 'npm', (s) => s.signalGroup('SIGTERM')],
  ['SIGTERM to the npm process alone', 'npm', (s) => s.child.kill('SIGTERM')],
  ['SIGINT to node alone', 'node', (s) => s.child.kill('SIGINT')],
  ['SIGTERM to node alone', 'node', (s) => s.child.kill('SIGTERM')],
];

const summary: Record<string, unknown>[] = [];
for (const [how, via, signal] of ways) {
  const runs: RunResult[] = [];
  for (let i = 0; i < RUNS; i++) runs.push(await drill(how, signal, via));
  const sum = (f: (r: RunResult) => number) => runs.reduce((a, r) => a + f(r), 0);
  const exitMs = runs.map((r) => r.exitMs).sort((a, b) => a - b);
  summary.push({
    how,
    runs: RUNS,
    inFlightAtSignal: sum((r) => r.inFlightAtSignal),
    droppedInFlight: sum((r) => r.droppedInFlight),
    afterSignal: { ok: sum((r) => r.after.ok), notReady503: sum((r) => r.after['not-ready']), refused: sum((r) => r.after.refused), dropped: sum((r) => r.after.dropped) },
    exitCodes: [...new Set(runs.map((r) => r.exitCode))],
    exitMsMedian: exitMs[Math.floor(exitMs.length / 2)],
    exitMsMax: exitMs.at(-1),
    drops: runs.flatMap((r) => r.drops),
  });
}
console.table(summary.map(({ drops: _d, afterSignal, ...s }) => ({ ...s, ...(afterSignal as object) })));
await mkdir(new URL('../../bench/', import.meta.url), { recursive: true });
const out = new URL(`../../bench/shutdown-drill-${new Date().toISOString().slice(0, 10)}.json`, import.meta.url);
await writeFile(out, JSON.stringify({ command: `DRILL_RUNS=${RUNS} npm run drill:shutdown`, machine: '2-core VM, CPU', summary }, null, 2) + '\n');
console.log(`wrote ${out.pathname}`);
