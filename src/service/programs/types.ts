// A family is a program: encode (forward, data → latent) and decode (inverse, latent → data), each
// with its logDet, written as batched graph calls plus TypeScript glue. Programs work in model input
// space (after preprocessing) and never see HTTP, sessions or batchers: they get a GraphRunner that
// carries the request's deadline and cancellation signal into every call, so a loop stops between
// steps when its client is gone.
import type { TensorData } from '../../tensor/tensor.js';

/** One graph call for `rows` rows; merged with other requests' calls to the same graph. */
export type GraphRunner = (graph: string, feeds: Record<string, TensorData>, rows: number) => Promise<Record<string, TensorData>>;

/** The inputs and outputs a program expects of one of its graphs (checked against the session at load). */
export interface GraphSpec {
  name: string;
  inputs: string[];
  outputs: string[];
}

/** What a request's loop cost: sequential rounds of graph calls, and per-row solver work. */
export interface Cost {
  /** Sequential graph-call rounds of this request (1 for a coupling flow's one pass). */
  passes: number;
  /** Function evaluations per row (continuous flows). */
  evaluations?: Int32Array;
  /** Root-finding iterations per row (planar flows' inverse). */
  iterations?: Int32Array;
}

export interface Transformed {
  values: Float64Array;
  /** log|det J| of the direction computed, per row. */
  logDet: Float64Array;
  cost: Cost;
}

/** Per-request solver settings (continuous flows). */
/** The ODE tolerances a request may set, the same rule over every protocol. */
export const TOLERANCE_RANGE = [1e-12, 0.1] as const;

export interface SolverOptions {
  atol?: number;
  rtol?: number;
}

/** What a request carries into every loop: signal (client gone) and deadline (performance.now() ms). */
export interface LoopContext {
  signal?: AbortSignal;
  deadline?: number;
  solver?: SolverOptions;
  /** Filled by the service: when the operation was called and when its answer was finished (metrics). */
  timing?: { called: number; finished?: number };
}

/** The cost of one direction, for GET /models (static passes, or "adaptive" with measured evaluations). */
export interface LoopCost {
  kind: 'passes' | 'adaptive';
  /** Sequential graph calls per request (kind "passes"). */
  passes?: number;
  /** What one pass or evaluation is. */
  description: string;
}

export interface FlowProgram {
  readonly graphs: readonly GraphSpec[];
  /** Feeds every call of a graph shares (Glow's LU matrices). */
  constFeeds(graph: string): Record<string, TensorData>;
  /** y (model input space, n rows) → latents, logDet = log|det ∂ε/∂y|. */
  forward(y: Float64Array, n: number, run: GraphRunner, ctx: LoopContext): Promise<Transformed>;
  /** latents → y (model input space), logDet = log|det ∂y/∂ε|. */
  inverse(latents: Float64Array, n: number, run: GraphRunner, ctx: LoopContext): Promise<Transformed>;
  cost(): { forward: LoopCost; inverse: LoopCost };
}

/** A package the program cannot run: the model is refused with this reason. */
export class ProgramError extends Error {}

/** Stop a loop between steps: the request's client is gone. */
export function throwIfAborted(ctx: LoopContext): void {
  if (ctx.signal?.aborted) throw ctx.signal.reason ?? new Error('aborted');
}
