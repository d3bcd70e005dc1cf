// What an inference worker does, whichever way it is isolated (child process or worker thread):
// create the sessions from the bytes it is sent, run feeds through them, close on request.
// onnxruntime-node's session.run() is a native call that blocks the worker, so it runs here and
// never on the event loop that answers probes and metrics.
import { createSession, runSession, type LoadedSession } from './session.js';
import type { SessionReport, WorkerRequest, WorkerResponse } from './protocol.js';
import type { TensorData } from '../tensor/tensor.js';

/** The worker's side of its channel to the pool. */
export interface HostChannel {
  /** `transfer` moves the buffers instead of copying them, where the channel can (threads). */
  send(m: WorkerResponse, transfer?: ArrayBuffer[]): void;
  /** Whether send() moves `transfer` buffers (threads) rather than serializing a copy (processes). */
  readonly transfers: boolean;
  onMessage(handler: (m: WorkerRequest) => void): void;
  /** Leave once every message sent so far has gone out. */
  exit(code: number): void;
}

export function serveInference(channel: HostChannel): void {
  const sessions = new Map<string, LoadedSession>();
  const constFeeds = new Map<string, Record<string, TensorData>>();
  const running = new Set<Promise<void>>();

  async function init(msg: Extract<WorkerRequest, { type: 'init' }>): Promise<void> {
    if (msg.fault === 'exit-during-init') {
      channel.exit(70);
      return;
    }
    const reports: Record<string, SessionReport> = {};
    let options = msg.options;
    let cudaFailure: string | undefined;
    for (const spec of msg.sessions) {
      try {
        const s = await createSession(spec, options);
        // Once CUDA fails to load in `auto`, don't retry (and re-log) it for every other session.
        if (s.fallbackReason && !cudaFailure) {
          cudaFailure = s.fallbackReason;
          options = { ...options, provider: 'cpu' };
        }
        s.fallbackReason ??= cudaFailure;
        sessions.set(spec.key, s);
        if (spec.constFeeds) constFeeds.set(spec.key, spec.constFeeds);
        reports[spec.key] = { ok: true, provider: s.provider, inputs: s.inputs, outputs: s.outputs, fallbackReason: s.fallbackReason };
      } catch (err) {
        reports[spec.key] = { ok: false, error: err instanceof Error ? err.message : String(err) };
      }
    }
    channel.send({ type: 'ready', reports });
  }

  async function run(msg: Extract<WorkerRequest, { type: 'run' }>): Promise<void> {
    const s = sessions.get(msg.key);
    if (!s) {
      channel.send({ type: 'failed', id: msg.id, error: `no session '${msg.key}' in this worker` });
      return;
    }
    const started = performance.now();
    try {
      const fixed = constFeeds.get(msg.key);
      const outputs = await runSession(s, fixed ? { ...msg.feeds, ...fixed } : msg.feeds, msg.key);
      // A thread moves the outputs (copied out of ORT-owned memory first); a process's channel
      // serializes them, which is the copy already.
      const transfer: ArrayBuffer[] = [];
      if (channel.transfers)
        for (const t of Object.values(outputs)) {
          t.data = t.data.slice();
          transfer.push(t.data.buffer as ArrayBuffer);
        }
      channel.send({ type: 'result', id: msg.id, outputs, ms: performance.now() - started }, transfer);
    } catch (err) {
      channel.send({ type: 'failed', id: msg.id, error: err instanceof Error ? err.message : String(err) });
    }
  }

  channel.onMessage(async (msg) => {
    if (msg.type === 'init') return init(msg);
    if (msg.type === 'close') {
      // Ending a worker while ORT runs or owns sessions can abort it (Napi::Error in teardown):
      // drain and release first, then leave.
      await Promise.allSettled([...running]);
      await Promise.allSettled([...sessions.values()].map((s) => s.session.release()));
      sessions.clear();
      channel.exit(0);
      return;
    }
    if (msg.type === 'run') {
      const job = run(msg);
      running.add(job);
      await job;
      running.delete(job);
    }
  });
}
