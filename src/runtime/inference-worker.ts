// Inference thread: onnxruntime-node's session.run() is a synchronous native call, so it runs here
// and never on the event loop that answers health checks and metrics.
import { parentPort } from 'node:worker_threads';
import { createSession, runSession, type LoadedSession } from './session.js';
import type { WorkerRequest, WorkerResponse, SessionReport } from './protocol.js';

const port = parentPort;
if (!port) throw new Error('inference-worker must run in a worker thread');
const sessions = new Map<string, LoadedSession>();
const send = (m: WorkerResponse, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);
const running = new Set<Promise<void>>();

port.on('message', async (msg: WorkerRequest) => {
  if (msg.type === 'init') {
    const reports: Record<string, SessionReport> = {};
    let options = msg.options;
    let cudaFailure: string | undefined;
    for (const spec of msg.sessions) {
      try {
        const s = await createSession(spec.path, options);
        // Once CUDA fails to load in `auto`, don't retry (and re-log) it for every other session.
        if (s.fallbackReason && !cudaFailure) {
          cudaFailure = s.fallbackReason;
          options = { ...options, provider: 'cpu' };
        }
        s.fallbackReason ??= cudaFailure;
        sessions.set(spec.key, s);
        reports[spec.key] = { ok: true, provider: s.provider, inputs: s.inputs, outputs: s.outputs, fallbackReason: s.fallbackReason };
      } catch (err) {
        reports[spec.key] = { ok: false, error: err instanceof Error ? err.message : String(err) };
      }
    }
    send({ type: 'ready', reports });
    return;
  }
  if (msg.type === 'close') {
    // Terminating a thread while ORT runs or owns sessions aborts the whole process
    // (Napi::Error in teardown): drain and release first, then leave.
    await Promise.allSettled([...running]);
    await Promise.allSettled([...sessions.values()].map((s) => s.session.release()));
    sessions.clear();
    process.exit(0);
  }
  if (msg.type === 'run') {
    const job = run(msg);
    running.add(job);
    await job;
    running.delete(job);
  }
});

async function run(msg: Extract<WorkerRequest, { type: 'run' }>): Promise<void> {
  const s = sessions.get(msg.key);
  if (!s) {
    send({ type: 'failed', id: msg.id, error: `no session '${msg.key}' in this worker` });
    return;
  }
  const started = performance.now();
  try {
    const outputs = await runSession(s, msg.feeds, msg.key);
    // Copy out of ORT-owned memory into transferable buffers.
    const transfer: ArrayBuffer[] = [];
    for (const t of Object.values(outputs)) {
      t.data = t.data.slice();
      transfer.push(t.data.buffer as ArrayBuffer);
    }
    send({ type: 'result', id: msg.id, outputs, ms: performance.now() - started }, transfer);
  } catch (err) {
    send({ type: 'failed', id: msg.id, error: err instanceof Error ? err.message : String(err) });
  }
}
