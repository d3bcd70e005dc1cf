// Messages between the event loop and the inference workers (child processes or worker threads:
// the same messages over either channel).
import type { TensorData } from '../tensor/tensor.js';
import type { IoMeta, Provider, SessionOptions } from './session.js';

/** One graph to load. The bytes are the registry's verified bytes, never a path: a worker (or its
 *  replacement) cannot read a file that changed on disk after the sha256 check. */
export interface SessionSpec {
  key: string;
  graph: Uint8Array;
  /** External initializers by the file name the graph refers to (manifest.graphs.weights). */
  externalData?: { path: string; data: Uint8Array }[];
  /** Inputs that are the same for every run (Glow's W and W⁻¹): sent once here, not with every batch. */
  constFeeds?: Record<string, TensorData>;
}

export type SessionReport =
  | { ok: true; provider: Provider; inputs: IoMeta[]; outputs: IoMeta[]; fallbackReason?: string }
  | { ok: false; error: string };

/** Fault injection (tests, drills): the worker exits during init, before it reports ready. */
export type StartFault = 'exit-during-init';

export type WorkerRequest =
  | { type: 'init'; sessions: SessionSpec[]; options: SessionOptions; fault?: StartFault }
  | { type: 'run'; id: number; key: string; feeds: Record<string, TensorData> }
  /** Finish the runs in hand, release every session, exit. */
  | { type: 'close' };

export type WorkerResponse =
  | { type: 'ready'; reports: Record<string, SessionReport> }
  | { type: 'result'; id: number; outputs: Record<string, TensorData>; ms: number }
  | { type: 'failed'; id: number; error: string };
