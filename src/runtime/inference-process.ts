// Inference child process (INFERENCE_ISOLATION=process, the default): the host over the IPC
// channel (advanced serialization, so typed arrays cross as bytes). A native abort or a SIGKILL
// here ends this process only; the pool in the server replaces it.
// This file is its own program, so it may use `process`:
//   - SIGINT and SIGTERM are ignored: a terminal's Ctrl-C or `kill -- -PGID` reaches the whole
//     process group, but the server owns shutdown and sends 'close' once its requests are done;
//   - when the IPC channel goes (the server died), there is no one to answer: exit;
//   - stdout and stderr are pipes the server reads into its own log, never its stdout.
import { serveInference } from './inference-host.js';
import type { WorkerRequest, WorkerResponse } from './protocol.js';

if (!process.send) throw new Error('inference-process must be started with an IPC channel (child_process.fork)');
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => {});
process.on('disconnect', () => process.exit(0));

let unsent = 0;
let exitCode: number | null = null;
const leaveIfFlushed = () => {
  if (exitCode !== null && unsent === 0) process.exit(exitCode);
};
serveInference({
  // advanced serialization copies the outputs as it sends them (synchronously)
  transfers: false,
  send: (m: WorkerResponse) => {
    unsent++;
    process.send!(m, undefined, {}, () => {
      unsent--;
      leaveIfFlushed();
    });
  },
  onMessage: (handler) => process.on('message', (m) => handler(m as WorkerRequest)),
  // process.send() is asynchronous: exiting at once could drop the last results.
  exit: (code) => {
    exitCode = code;
    leaveIfFlushed();
  },
});
