// The real server as a child process (tests and drills): `npm start` (npm → node, as a user runs it) or node alone,
// in a process group of its own so a test can signal the group as a terminal's Ctrl-C does.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { cp, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ROOT = new URL('../..', import.meta.url).pathname;
export const MODEL_DIR = join(ROOT, 'models');

export interface ServerProcess {
  child: ChildProcess;
  base: string;
  port: number;
  /** Everything the process group wrote so far. */
  log(): string;
  exited: Promise<[number | null, NodeJS.Signals | null]>;
  /** Signal the whole process group (what Ctrl-C in a terminal does). */
  signalGroup(signal: NodeJS.Signals): void;
}

/** A MODEL_DIR holding copies of some shipped packages (a smaller folder starts faster). */
export async function modelDirWith(names: string[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'flowserve-models-'));
  for (const name of names) await cp(join(MODEL_DIR, name), join(dir, name), { recursive: true });
  return dir;
}

export async function startServer(opts: { via: 'npm' | 'node'; env?: Record<string, string>; waitReady?: boolean; args?: string[] }): Promise<ServerProcess> {
  const env = { ...process.env, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', INTRA_OP_THREADS: '1', EXECUTION_PROVIDER: 'cpu', ...opts.env };
  const [cmd, args] = opts.via === 'npm' ? ['npm', ['start', '--silent', ...(opts.args?.length ? ['--', ...opts.args] : [])]] : [process.execPath, ['--import', 'tsx', 'src/server.ts', ...(opts.args ?? [])]];
  const child = spawn(cmd, args as string[], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let log = '';
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setInterval(() => {
      const m = /Server listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(log);
      if (m) {
        clearInterval(timer);
        resolve(Number(m[1]));
      }
    }, 20);
    void exited.then(([code]) => {
      clearInterval(timer);
      reject(new Error(`server exited early (${code}): ${log.slice(-3000)}`));
    });
  });
  const base = `http://127.0.0.1:${port}`;
  const server: ServerProcess = {
    child,
    base,
    port,
    log: () => log,
    exited,
    signalGroup: (signal) => process.kill(-child.pid!, signal),
  };
  if (opts.waitReady !== false) {
    for (let i = 0; ; i++) {
      const r = await fetch(`${base}/readyz`).catch(() => null);
      if (r?.status === 200) break;
      if (i > 600) throw new Error(`not ready after 60 s: ${log.slice(-2000)}`);
      await new Promise((res) => setTimeout(res, 100));
    }
  }
  return server;
}

/** Kill what is left of the group (after a failed assertion). */
export function killGroup(server: ServerProcess | undefined): void {
  if (!server || server.child.exitCode !== null || server.child.signalCode !== null) return;
  try {
    process.kill(-server.child.pid!, 'SIGKILL');
  } catch {
    /* already gone */
  }
}
