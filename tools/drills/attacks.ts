// Attack drill (not CI): starts the real server and, for each hostile payload kind, runs
// ATTACK_CONCURRENCY (8) concurrent worst-case requests in a loop for ATTACK_SECONDS (10), while a
// prober in a separate process hits /healthz every 50 ms and sends a normal one-image /likelihood
// every 250 ms. Reports per attack: the statuses received, the server's peak RSS (VmHWM, reset
// before each attack, and VmRSS polled every 100 ms), /healthz p50/p99/max, the normal request's
// latency, and any 5xx. Goals (docs/reliability.md, "Request budgets under attack"): peak RSS
// < 1 GiB, /healthz p99 < 1 s, no 5xx.
//   npm run drill:attacks
//   ATTACKS=a,d,i ATTACK_SECONDS=10 ATTACK_CONCURRENCY=8 SLOWLORIS_CONNECTIONS=1000 npm run drill:attacks
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { loadConfig } from '../../src/config/config.js';
import { pngBomb } from '../../test/helpers/images.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const SELF = fileURLToPath(import.meta.url);
const SECONDS = Number(process.env.ATTACK_SECONDS ?? 10);
const CONCURRENCY = Number(process.env.ATTACK_CONCURRENCY ?? 8);
const SLOWLORIS = Number(process.env.SLOWLORIS_CONNECTIONS ?? 1000);
const ONLY = process.env.ATTACKS?.split(',').map((s) => s.trim());
/** An attack request not answered in this long counts as "timeout" (the old server never answered some). */
const REQUEST_TIMEOUT_MS = 60_000;
const MODEL = 'glow-fashion';
/** The server's limits, from the same environment it gets: the "largest legal" payloads follow them. */
const config = loadConfig(process.env);
const MiB = 1024 * 1024;

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Sample {
  at: number;
  ms: number;
  status: number;
}

// ---------------------------------------------------------------- the attacks

interface Target {
  host: string;
  port: number;
}

/**
 * One request whose body comes from `next()` (null: end it), written as fast as the socket takes
 * it, until the server answers; the answer's status, or "error:CODE" when the connection failed
 * before any answer.
 */
function streamed(t: Target, path: string, headers: Record<string, string | number>, next: () => Buffer | null, trickleMs = 0): Promise<string> {
  return new Promise((resolve) => {
    let done = false;
    const req = http.request({ host: t.host, port: t.port, path, method: 'POST', headers, agent: false });
    const finish = (s: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.destroy();
      resolve(s);
    };
    const timer = setTimeout(() => finish('timeout'), REQUEST_TIMEOUT_MS);
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => finish(String(res.statusCode)));
      res.on('error', () => finish(String(res.statusCode)));
    });
    // A refused upload is closed by the server while the client still writes: an answer may
    // still be on its way when the write fails.
    req.on('error', (err: NodeJS.ErrnoException) => setTimeout(() => finish(`error:${err.code ?? err.message}`), 500));
    const pump = () => {
      while (!done) {
        const chunk = next();
        if (chunk === null) {
          req.end();
          return;
        }
        if (trickleMs > 0) {
          req.write(chunk);
          setTimeout(pump, trickleMs);
          return;
        }
        if (!req.write(chunk)) {
          req.once('drain', pump);
          return;
        }
      }
    };
    pump();
  });
}

const post = (t: Target, path: string, contentType: string, body: Buffer) => {
  let sent = false;
  return streamed(t, path, { 'content-type': contentType, 'content-length': body.length }, () => (sent ? null : ((sent = true), body)));
};

const BOUNDARY = 'attack-boundary';
const MULTIPART = `multipart/form-data; boundary=${BOUNDARY}`;
const fieldPart = (name: string, value: string) => Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`);
const fileHeader = (i: number) => Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="${i}.png"\r\nContent-Type: image/png\r\n\r\n`);
const closing = Buffer.from(`--${BOUNDARY}--\r\n`);

interface Attack {
  key: string;
  name: string;
  one?: (t: Target) => Promise<string>;
  /** Attacks that are not request loops (slowloris) run themselves and say what they measured. */
  custom?: (t: Target) => Promise<{ statuses: Record<string, number>; note: string }>;
}

async function attacks(): Promise<Attack[]> {
  const filler = Buffer.alloc(MiB, 0x41);
  const bomb = pngBomb(16_777_216, 1);
  const bombBody = Buffer.concat([fieldPart('model', MODEL), fieldPart('resize', 'true'), ...Array.from({ length: 256 }, (_, i) => Buffer.concat([fileHeader(i), bomb, Buffer.from('\r\n')])), closing]);
  const big = await sharp({ create: { width: 4096, height: 4096, channels: 3, background: '#000' } }).grayscale().png({ compressionLevel: 9 }).toBuffer();
  const bigBody = Buffer.concat([fieldPart('model', MODEL), fieldPart('resize', 'true'), fileHeader(0), big, Buffer.from('\r\n'), closing]);
  const fourBigBody = Buffer.concat([fieldPart('model', MODEL), fieldPart('resize', 'true'), ...[0, 1, 2, 3].map((i) => Buffer.concat([fileHeader(i), big, Buffer.from('\r\n')])), closing]);
  const nested = Buffer.from(`{"model":"${MODEL}","latents":${'['.repeat(8_000_000)}${']'.repeat(8_000_000)}}`);
  const flat = Buffer.from(`{"model":"${MODEL}","latents":[${Array.from({ length: 1_000_000 }, () => '[]').join(',')}]}`);
  // The largest JSON within every shape limit: MAX_JSON_VALUES values (row arrays and numbers) in
  // up to BODY_LIMIT_BYTES, parsed and schema-checked in full, then refused for its row count
  // (MAX_ITEMS_PER_REQUEST). Each row `[n,n],` is 3 values in 37 bytes.
  const number = '0.12345678901234';
  const rows = Math.floor(Math.min((config.maxJsonValues - 8) / 3, (config.bodyLimitBytes - 100) / 37));
  const largest = Buffer.from(`{"model":"realnvp-moons","inputs":[${Array.from({ length: rows }, () => `[${number},${number}]`).join(',')}]}`);
  // The largest request that is served: 256 rows of 784 numbers through glow-fashion.
  const served = Buffer.from(JSON.stringify({ model: MODEL, inputs: Array.from({ length: 256 }, (_, i) => Array.from({ length: 784 }, (_, j) => ((i * 7 + j * 13) % 256 + 0.5) / 256)) }));
  console.error(`payloads: bombs ${bombBody.length} B, 4096² PNG ${big.length} B, nested ${nested.length} B, flat ${flat.length} B, largest legal JSON ${largest.length} B, largest served JSON ${served.length} B`);

  return [
    {
      key: 'a',
      name: 'multipart, 100 files × 15 MiB (1.5 GB), chunked',
      one: (t) => {
        let file = 0;
        let inFile = -1; // bytes of the current file written; -1: its header is next
        return streamed(t, '/likelihood', { 'content-type': MULTIPART }, () => {
          if (file === 100) return (file++, closing);
          if (file > 100) return null;
          if (inFile < 0) return (inFile = 0), fileHeader(file);
          if (inFile >= 15 * MiB) return (inFile = -1), file++, Buffer.from('\r\n');
          inFile += filler.length;
          return filler;
        });
      },
    },
    {
      key: 'b',
      name: 'multipart without a closing boundary, 300 MiB streamed',
      one: (t) => {
        let sent = -1;
        return streamed(t, '/likelihood', { 'content-type': MULTIPART }, () => {
          if (sent < 0) return (sent = 0), fileHeader(0);
          if (sent >= 300 * MiB) return null;
          sent += filler.length;
          return filler;
        });
      },
    },
    {
      key: 'c',
      name: 'multipart declaring Content-Length: 1073741824, 1 byte / 100 ms',
      one: (t) => {
        let header = true;
        return streamed(t, '/likelihood', { 'content-type': MULTIPART, 'content-length': 1073741824 }, () => (header ? ((header = false), fileHeader(0)) : Buffer.from('A')), 100);
      },
    },
    { key: 'd', name: '256 PNG bombs (16,777,216×1 claimed, 69 B each), resize=true', one: (t) => post(t, '/likelihood', MULTIPART, bombBody) },
    { key: 'e', name: `one 4096×4096 PNG (${Math.round(big.length / 1024)} KiB), resize=true: the largest legal decode`, one: (t) => post(t, '/likelihood', MULTIPART, bigBody) },
    { key: 'e2', name: 'four 4096×4096 PNGs in one request (4 × MAX_REQUEST_PIXELS), resize=true', one: (t) => post(t, '/likelihood', MULTIPART, fourBigBody) },
    { key: 'f', name: '16 MB JSON, 8 M nested arrays, to /decode', one: (t) => post(t, '/decode', 'application/json', nested) },
    { key: 'g', name: 'flat JSON, 10⁶ empty rows, to /decode', one: (t) => post(t, '/decode', 'application/json', flat) },
    { key: 'h', name: `largest JSON within the shape limits (${(largest.length / 1e6).toFixed(1)} MB, ${rows * 3} values) to /likelihood`, one: (t) => post(t, '/likelihood', 'application/json', largest) },
    { key: 'h2', name: `largest JSON served (256 × 784 numbers, ${(served.length / 1e6).toFixed(1)} MB) to /likelihood`, one: (t) => post(t, '/likelihood', 'application/json', served) },
    { key: 'i', name: `slowloris: ${SLOWLORIS} connections, one header byte every 5 s`, custom: slowloris },
  ];
}

/** SLOWLORIS connections that each send one byte of a request head every 5 s; how long until the server closed them all. */
async function slowloris(t: Target): Promise<{ statuses: Record<string, number>; note: string }> {
  const head = `POST /likelihood HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${'X-Pad: 0\r\n'.repeat(100)}\r\n`;
  const start = Date.now();
  const closedAfter: number[] = [];
  const statuses: Record<string, number> = {};
  let refused = 0;
  const sockets = await Promise.all(
    Array.from(
      { length: SLOWLORIS },
      () =>
        new Promise<net.Socket | null>((resolve) => {
          const s = net.connect(t.port, t.host, () => resolve(s));
          let reply = '';
          s.on('data', (d) => (reply += d.toString('latin1')));
          s.on('error', () => {});
          s.on('close', () => {
            closedAfter.push(Date.now() - start);
            const status = /^HTTP\/1\.1 (\d{3})/.exec(reply)?.[1] ?? 'closed without an answer';
            statuses[status] = (statuses[status] ?? 0) + 1;
            resolve(null);
          });
        }),
    ),
  );
  const open = sockets.filter((s): s is net.Socket => s !== null);
  refused = SLOWLORIS - open.length;
  let i = 0;
  const trickle = () => {
    for (const s of open) if (!s.destroyed) s.write(head[i % head.length]);
    i++;
  };
  trickle();
  const timer = setInterval(trickle, 5000);
  const deadline = start + 120_000;
  while (closedAfter.length < SLOWLORIS && Date.now() < deadline) await sleep(100);
  clearInterval(timer);
  const stillOpen = open.filter((s) => !s.destroyed).length;
  for (const s of open) s.destroy();
  return {
    statuses,
    note: `${open.length} connected${refused ? `, ${refused} refused at connect` : ''}; all closed by the server after ${(Math.max(...closedAfter) / 1000).toFixed(1)} s (first ${(Math.min(...closedAfter) / 1000).toFixed(1)} s)${stillOpen ? `; ${stillOpen} STILL OPEN after 120 s` : ''}`,
  };
}

// ---------------------------------------------------------------- the run

async function main() {
  const server = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: ROOT,
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', EXECUTION_PROVIDER: 'cpu' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const keep = (d: Buffer) => {
    log = (log + d.toString()).slice(-20_000);
  };
  server.stdout!.on('data', keep);
  server.stderr!.on('data', keep);
  const exited = new Promise<number | null>((resolve) => server.once('exit', resolve));
  let port = 0;
  for (let i = 0; !port; i++) {
    port = Number(/Server listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(log)?.[1] ?? 0);
    if (i > 1200 || server.exitCode !== null) throw new Error(`server did not start: ${log.slice(-2000)}`);
    await sleep(50);
  }
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; (await fetch(`${base}/readyz`).catch(() => null))?.status !== 200; i++) {
    if (i > 1200) throw new Error('server did not become ready');
    await sleep(100);
  }
  const target = { host: '127.0.0.1', port };
  const pid = server.pid!;
  const status = () => readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status())?.[1] ?? NaN);
  // Writing 5 to clear_refs resets VmHWM to the current RSS (Linux ≥ 4.0), so each attack has its own peak.
  const resetPeak = () => {
    try {
      writeFileSync(`/proc/${pid}/clear_refs`, '5');
      return true;
    } catch {
      return false;
    }
  };

  const prober: ChildProcess = fork(SELF, ['--probe', base], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const png = await sharp({ create: { width: 28, height: 28, channels: 3, background: '#777' } }).grayscale().png().toBuffer();
  prober.send({ type: 'png', png: png.toString('base64') });

  const all = (await attacks()).filter((a) => !ONLY || ONLY.includes(a.key));
  const windows: { key: string; name: string; start: number; end: number; statuses: Record<string, number>; requests: number; latencies: number[]; rssStartMiB: number; peakMiB: number; note?: string }[] = [];

  // a quiet window first: the baseline for /healthz and the normal request
  await sleep(3000);
  {
    const start = Date.now();
    const rssStartMiB = kib('VmRSS') / 1024;
    resetPeak();
    await sleep(SECONDS * 1000);
    windows.push({ key: '-', name: 'baseline (no attack)', start, end: Date.now(), statuses: {}, requests: 0, latencies: [], rssStartMiB, peakMiB: kib('VmHWM') / 1024 });
  }
  for (const attack of all) {
    await sleep(2000);
    const rssStartMiB = kib('VmRSS') / 1024;
    const hwm = resetPeak();
    let polledPeak = 0;
    const poll = setInterval(() => (polledPeak = Math.max(polledPeak, kib('VmRSS'))), 100);
    const start = Date.now();
    const statuses: Record<string, number> = {};
    const latencies: number[] = [];
    let requests = 0;
    let note: string | undefined;
    console.error(`attack ${attack.key}: ${attack.name}`);
    if (attack.custom) {
      const r = await attack.custom(target);
      Object.assign(statuses, r.statuses);
      note = r.note;
      requests = Object.values(r.statuses).reduce((a, b) => a + b, 0);
    } else {
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (Date.now() - start < SECONDS * 1000) {
            const t0 = performance.now();
            const s = await attack.one!(target);
            latencies.push(performance.now() - t0);
            statuses[s] = (statuses[s] ?? 0) + 1;
            requests++;
          }
        }),
      );
    }
    const end = Date.now();
    clearInterval(poll);
    const peakMiB = Math.max(hwm ? kib('VmHWM') : 0, polledPeak) / 1024;
    windows.push({ key: attack.key, name: attack.name, start, end, statuses, requests, latencies, rssStartMiB, peakMiB, note });
    console.error(`  ${JSON.stringify(statuses)} peak ${peakMiB.toFixed(0)} MiB${note ? `; ${note}` : ''}`);
  }

  const report = await new Promise<{ healthz: Sample[]; normal: Sample[] }>((resolve) => {
    prober.once('message', (m) => resolve(m as { healthz: Sample[]; normal: Sample[] }));
    prober.send({ type: 'report' });
  });
  prober.kill();
  server.kill('SIGTERM');
  const exitCode = await exited;

  const fmt = (x: number) => (Number.isFinite(x) ? (x >= 100 ? x.toFixed(0) : x.toFixed(1)) : '–');
  const rowsOut = windows.map((w) => {
    const h = report.healthz.filter((s) => s.at >= w.start && s.at <= w.end);
    const n = report.normal.filter((s) => s.at >= w.start && s.at <= w.end);
    const hms = h.map((s) => s.ms);
    const nms = n.map((s) => s.ms);
    const fivexx = Object.entries(w.statuses).filter(([s]) => /^5/.test(s)).reduce((a, [, c]) => a + c, 0);
    return {
      attack: w.key,
      what: w.name,
      requests: w.requests,
      statuses: w.statuses,
      attack5xx: fivexx,
      attackLatencyMs: w.latencies.length ? { p50: fmt(pct(w.latencies, 50)), max: fmt(Math.max(...w.latencies)) } : null,
      rssStartMiB: Math.round(w.rssStartMiB),
      peakRssMiB: Math.round(w.peakMiB),
      healthz: { n: h.length, failed: h.filter((s) => s.status !== 200).length, p50: fmt(pct(hms, 50)), p99: fmt(pct(hms, 99)), max: fmt(Math.max(...hms)) },
      normalLikelihood: { n: n.length, non200: n.filter((s) => s.status !== 200).length, p50: fmt(pct(nms, 50)), max: fmt(Math.max(...nms)) },
      note: w.note,
    };
  });
  console.log(JSON.stringify({ seconds: SECONDS, concurrency: CONCURRENCY, serverExit: exitCode, attacks: rowsOut }, null, 1));
  console.log('\n| attack | statuses | 5xx | peak RSS MiB (at start) | /healthz p50 / p99 / max ms | normal /likelihood p50 / max ms | note |');
  console.log('|---|---|---:|---|---|---|---|');
  for (const r of rowsOut)
    console.log(
      `| (${r.attack}) ${r.what} | ${Object.entries(r.statuses).map(([s, c]) => `${s}×${c}`).join(', ') || '–'} | ${r.attack5xx} | ${r.peakRssMiB} (${r.rssStartMiB}) | ${r.healthz.p50} / ${r.healthz.p99} / ${r.healthz.max}${r.healthz.failed ? ` (${r.healthz.failed} failed)` : ''} | ${r.normalLikelihood.p50} / ${r.normalLikelihood.max}${r.normalLikelihood.non200 ? ` (${r.normalLikelihood.non200} non-200)` : ''} | ${r.attackLatencyMs ? `answer p50 ${r.attackLatencyMs.p50} ms, max ${r.attackLatencyMs.max} ms` : ''}${r.note ? ` ${r.note}` : ''} |`,
    );
  process.exit(0);
}

// ---------------------------------------------------------------- the prober (its own process)

function probe(baseUrl: string): void {
  const base = new URL(baseUrl);
  const healthz: Sample[] = [];
  const normal: Sample[] = [];
  let png: Buffer | null = null;
  const get = (path: string, out: Sample[]) => {
    const at = Date.now();
    const t0 = performance.now();
    const req = http.get({ host: base.hostname, port: base.port, path, agent: false, timeout: 30_000 }, (res) => {
      res.resume();
      res.on('end', () => out.push({ at, ms: performance.now() - t0, status: res.statusCode! }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => out.push({ at, ms: performance.now() - t0, status: 0 }));
  };
  setInterval(() => get('/healthz', healthz), 50);
  // a normal client: one 28×28 image, multipart, one request at a time
  const boundary = 'probe-boundary';
  const likelihood = () =>
    new Promise<void>((resolve) => {
      const body = Buffer.concat([
        Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\n${MODEL}\r\n--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n`),
        png!,
        Buffer.from(`\r\n--${boundary}--\r\n`),
      ]);
      const at = Date.now();
      const t0 = performance.now();
      const req = http.request(
        { host: base.hostname, port: base.port, path: '/likelihood', method: 'POST', agent: false, timeout: 60_000, headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': body.length } },
        (res) => {
          res.resume();
          res.on('end', () => {
            normal.push({ at, ms: performance.now() - t0, status: res.statusCode! });
            resolve();
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => {
        normal.push({ at, ms: performance.now() - t0, status: 0 });
        resolve();
      });
      req.end(body);
    });
  void (async () => {
    for (;;) {
      if (png) await likelihood();
      await sleep(250);
    }
  })();
  process.on('message', (msg: { type: string; png?: string }) => {
    if (msg.type === 'png') png = Buffer.from(msg.png!, 'base64');
    if (msg.type === 'report') process.send!({ healthz, normal });
  });
}

if (process.argv[2] === '--probe') probe(process.argv[3]);
else await main();
