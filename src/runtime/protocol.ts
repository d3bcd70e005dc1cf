// Messages between the event loop and inference threads.
import type { TensorData } from '../tensor/tensor.js';
import type { IoMeta, Provider, SessionOptions } from './session.js';

export interface SessionSpec {
  key: string;
  path: string;
}

export type SessionReport =
  | { ok: true; provider: Provider; inputs: IoMeta[]; outputs: IoMeta[]; fallbackReason?: string }
  | { ok: false; error: string };

export type WorkerRequest =
  | { type: 'init'; sessions: SessionSpec[]; options: SessionOptions }
  | { type: 'run'; id: number; key: string; feeds: Record<string, TensorData> }
  /** Finish the runs in hand, release every session, exit the thread. */
  | { type: 'close' };

export type WorkerResponse =
  | { type: 'ready'; reports: Record<string, SessionReport> }
  | { type: 'result'; id: number; outputs: Record<string, TensorData>; ms: number }
  | { type: 'failed'; id: number; error: string };
