// The measurements behind the manifests' numbers (docs/deploy.md, "Measurements"): run on the
// machine you want to size for, with nothing else running.
//   npx tsx tools/deploy/measure.ts warmup [runs] [modelDir]   start → /readyz 200 (`npm start`, fresh tsx cache each run)
//   npx tsx tools/deploy/measure.ts rss [clients] [seconds]     peak RSS of the process tree under mixed load, every shipped model
//   npx tsx tools/deploy/measure.ts signals                     in-flight requests and queue depth as /metrics shows them
// The server runs with the image's environment (Dockerfile ENV: NODE_ENV=production, MALLOC_ARENA_MAX=2, …).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dockerfileEnv, ROOT } from './validate.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sum of VmRSS over a process and its descendants (MiB). */
function treeRssMiB(pid: number): number {
  const children = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(d)]);
    } catch {
      /* gone */
    }
  }
  let kib = 0;
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop()!;
    try {
      kib += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      /* gone */
    }
    stack.push(...(children.get(p) ?? []));
  }
  return kib / 1024;
}

function start(env: Record<string, string>, viaNpm = false): { child: ChildProcess; base: string; tmp: string } {
  const port = 18000 + Math.floor(Math.random() * 2000);
  const tmp = mkdtempSync(join(tmpdir(), 'flowserve-measure-'));
  const [cmd, args] = viaNpm ? ['npm', ['start', '--silent']] : [process.execPath, ['--import', 'tsx', 'src/server.ts']];
  const child = spawn(cmd, args, {
    cwd: ROOT,
    env: { ...process.env, ...dockerfileEnv(), MODEL_DIR: join(ROOT, 'models'), HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'warn', TMPDIR: tmp, ...env },
    stdio: 'ignore',
    detached: true,
  });
  return { child, base: `http://127.0.0.1:${port}`, tmp };
}

async function untilReady(base: string): Promise<void> {
  for (let i = 0; i < 1200; i++) {
    if ((await fetch(`${base}/readyz`).then((r) => r.status, () => 0)) === 200) return;
    await sleep(20);
  }
  throw new Error('not ready after 24 s');
}

function stop(s: { child: ChildProcess; tmp: string }) {
  try {
    process.kill(-s.child.pid!, 'SIGKILL');
  } catch {
    /* gone */
  }
  rmSync(s.tmp, { recursive: true, force: true });
}

async function warmup(runs: number, modelDir: string) {
  for (let r = 1; r <= runs; r++) {
    const t0 = performance.now();
    const s = start({ MODEL_DIR: modelDir }, true);
    await untilReady(s.base);
    const ready = (performance.now() - t0) / 1000;
    console.log(`run ${r}: /readyz 200 after ${ready.toFixed(2)} s; tree RSS ${treeRssMiB(s.child.pid!).toFixed(0)} MiB`);
    stop(s);
    await sleep(500);
  }
}

async function rss(clients: number, seconds: number) {
  const s = start({});
  await untilReady(s.base);
  const atReady = treeRssMiB(s.child.pid!);
  const png = readFileSync(join(ROOT, 'docs/examples/ankle-boot.png')).toString('base64');
  const digit = readFileSync(join(ROOT, 'docs/examples/digit-7.png')).toString('base64');
  const work: Array<[string, unknown]> = [
    ['/likelihood', { model: 'glow-fashion', images: Array(64).fill(png) }],
    ['/likelihood', { model: 'realnvp-mnist', images: Array(64).fill(digit) }],
    ['/likelihood', { model: 'nice-mnist', images: Array(64).fill(digit) }],
    ['/sample', { model: 'glow-fashion', count: 64 }],
    ['/sample', { model: 'nice-mnist', count: 64 }],
    ['/sample', { model: 'realnvp-mnist', count: 256, format: 'array' }],
    ['/sample', { model: 'maf-digits', count: 16 }],
    ['/sample', { model: 'ffjord-checker', count: 64 }],
    ['/likelihood', { model: 'realnvp-moons', inputs: Array(256).fill([0.5, -0.3]) }],
    ['/interpolate', { model: 'glow-fashion', steps: 16, images: [png, digit] }],
  ];
  let peak = atReady;
  let ok = 0;
  let shed = 0;
  let other = 0;
  const timer = setInterval(() => (peak = Math.max(peak, treeRssMiB(s.child.pid!))), 100);
  const end = Date.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: clients }, async (_, i) => {
      for (let k = i; Date.now() < end; k++) {
        const [path, body] = work[k % work.length];
        const r = await fetch(s.base + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).catch(() => null);
        await r?.arrayBuffer().catch(() => undefined);
        if (r?.ok) ok++;
        else if (r?.status === 429) shed++;
        else other++;
      }
    }),
  );
  clearInterval(timer);
  console.log(`${clients} clients, ${seconds} s, every shipped model: ${ok} answered, ${shed} shed (429), ${other} other failures; tree RSS ${atReady.toFixed(0)} MiB at ready, peak ${peak.toFixed(0)} MiB`);
  stop(s);
}

async function signals() {
  const s = start({ MODEL_DIR: join(ROOT, 'models/glow-fashion'), INTRA_OP_THREADS: '2' });
  await untilReady(s.base);
  const png = readFileSync(join(ROOT, 'docs/examples/ankle-boot.png')).toString('base64');
  const sum = (text: string, prefix: string) =>
    text
      .split('\n')
      .filter((l) => l.startsWith(prefix))
      .reduce((a, l) => a + Number(l.split(' ').pop()), 0);
  const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
  for (const [n, c] of [[1, 8], [1, 16], [1, 32], [1, 64], [64, 4]] as const) {
    const body = JSON.stringify({ model: 'glow-fashion', scores: ['nll'], images: Array(n).fill(png) });
    const depth: number[] = [];
    const inFlight: number[] = [];
    const poll = setInterval(async () => {
      const text = await fetch(`${s.base}/metrics`).then((r) => r.text(), () => null);
      if (text === null) return;
      depth.push(sum(text, 'flowserve_queue_depth{'));
      inFlight.push(sum(text, 'flowserve_http_requests_in_flight ') - 1); // minus this scrape
    }, 250);
    let samples = 0;
    const end = Date.now() + 8000;
    await Promise.all(
      Array.from({ length: c }, async () => {
        while (Date.now() < end) {
          const r = await fetch(`${s.base}/likelihood`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
          await r.arrayBuffer();
          if (r.ok) samples += n;
        }
      }),
    );
    clearInterval(poll);
    console.log(`${n}/req × c${c}: ${(samples / 8).toFixed(0)} samples/s; in flight (minus the scrape) mean ${mean(inFlight).toFixed(1)}; queue depth mean ${mean(depth).toFixed(1)}, max ${Math.max(...depth)}`);
  }
  stop(s);
}

const [mode, a, b] = process.argv.slice(2);
if (mode === 'warmup') await warmup(Number(a ?? 5), b ?? join(ROOT, 'models'));
else if (mode === 'rss') await rss(Number(a ?? 32), Number(b ?? 30));
else if (mode === 'signals') await signals();
else {
  console.error('usage: npx tsx tools/deploy/measure.ts warmup [runs] [modelDir] | rss [clients] [seconds] | signals');
  process.exitCode = 2;
}
