// A request's loop context, for every protocol: its REQUEST_TIMEOUT_MS deadline from arrival, and
// a signal that aborts when the client goes away before the answer, so loops stop between steps
// and its queued work is dropped from the batchers.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { CancelledError } from '../errors.js';
import type { FlowService } from '../service/flow-service.js';
import type { LoopContext, SolverOptions } from '../service/programs/types.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** performance.now() when the request arrived (onRequest): the deadline counts from here. */
    startedAt: number;
    /** The operation this request called ('likelihood', …) and through which protocol: metrics labels. */
    operation: string;
    apiProtocol: string;
    /** When the operation was called and finished (set by the service through the loop context). */
    timing: { called: number; finished?: number } | null;
    /** The error code it failed with, if any (metrics reason). */
    failure: string;
    /** Its metrics are recorded (once: onResponse, or the connection's close for a client that left). */
    metricsDone: boolean;
  }
}

export function loopContext(service: FlowService, request: FastifyRequest, reply: FastifyReply, solver?: SolverOptions): LoopContext {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort(new CancelledError());
  });
  request.timing = { called: performance.now() };
  return { ...service.context(controller.signal, request.startedAt), ...(solver ? { solver } : {}), timing: request.timing };
}
