// The one difference between the two isolation designs, behind one small adapter: how a worker is
// started, how messages reach it, how its end is noticed and how it is killed. The pool above it
// is the same for both.
//   process: child_process.fork with an IPC channel ('advanced' serialization: typed arrays cross
//            as bytes). A native abort or a kill ends the child only.
//   thread:  a worker_threads Worker (messages by postMessage, outputs transferred, not copied).
//            Cheaper, but ORT's native aborts take the whole process down (docs/reliability.md).
import { fork } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import type { WorkerRequest, WorkerResponse } from './protocol.js';

export type Isolation = 'process' | 'thread';

export interface WorkerHandle {
  readonly isolation: Isolation;
  /** The child's pid (process) or the thread id (thread), for logs and drills. */
  readonly id: number;
  send(m: WorkerRequest): void;
  onMessage(handler: (m: WorkerResponse) => void): void;
  /** Settles when the worker is gone and every message it sent has been delivered: how it ended. */
  readonly exited: Promise<string>;
  /** Lines the worker wrote to stdout or stderr (process only: a thread shares the server's). */
  onOutput(handler: (stream: 'stdout' | 'stderr', text: string) => void): void;
  /** End it at once, as a crash would: SIGKILL (process) or terminate() (thread). */
  kill(): void;
}

const BOOT = new URL('./worker-boot.mjs', import.meta.url);

export function spawnWorker(isolation: Isolation, name: string): WorkerHandle {
  return isolation === 'process' ? spawnProcess() : spawnThread(name);
}

function spawnProcess(): WorkerHandle {
  // execArgv [] : the server's own flags (--import tsx, a test runner's) are not the worker's;
  // worker-boot.mjs registers tsx itself.
  const child = fork(BOOT, [], { execArgv: [], serialization: 'advanced', stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  // 'exit' can come before the last IPC messages are emitted; 'disconnect' comes after them.
  const exit = new Promise<string>((resolve) => child.once('exit', (code, signal) => resolve(signal ? `signal ${signal}` : `exit code ${code}`)));
  const disconnect = new Promise<void>((resolve) => (child.connected ? child.once('disconnect', () => resolve()) : resolve()));
  // A send to a child that just died fails here; its exit tells the pool.
  child.on('error', () => {});
  return {
    isolation: 'process',
    id: child.pid ?? -1,
    exited: Promise.all([exit, disconnect]).then(([how]) => how),
    send: (m) => {
      if (child.connected) child.send(m, undefined, {}, () => {});
    },
    onMessage: (handler) => void child.on('message', (m) => handler(m as WorkerResponse)),
    onOutput: (handler) => {
      for (const stream of ['stdout', 'stderr'] as const) {
        child[stream]!.setEncoding('utf8');
        child[stream]!.on('data', (text: string) => {
          for (const line of text.split('\n')) if (line.trim()) handler(stream, line);
        });
      }
    },
    kill: () => void child.kill('SIGKILL'),
  };
}

function spawnThread(name: string): WorkerHandle {
  const worker = new Worker(BOOT, { name });
  let error: string | undefined;
  // 'error' (an uncaught exception in the thread) is followed by 'exit': the first says why.
  worker.on('error', (err) => (error ??= `error: ${err.message}`));
  return {
    isolation: 'thread',
    id: worker.threadId,
    exited: new Promise<string>((resolve) => worker.once('exit', (code) => resolve(error ?? `exit code ${code}`))),
    send: (m) => worker.postMessage(m),
    onMessage: (handler) => void worker.on('message', handler),
    onOutput: () => {},
    kill: () => void worker.terminate(),
  };
}
