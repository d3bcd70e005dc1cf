// Prometheus metrics (prom-client), one registry per app so tests can build many apps.
// Names follow Prometheus conventions with the flowserve_ prefix; Node process defaults included.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // prom-client names these gauges *_total, which promtool rejects; the per-type gauges without the
  // suffix (nodejs_active_handles, …) carry the same numbers.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(name);
  const m = {
    registry,
    requests: new Counter({ name: 'flowserve_http_requests_total', help: 'HTTP requests by route, model and status code.', labelNames: ['route', 'model', 'status'], registers: [registry] }),
    requestDuration: new Histogram({ name: 'flowserve_http_request_duration_seconds', help: 'HTTP request latency by route, model and status code.', labelNames: ['route', 'model', 'status'], buckets: LATENCY_BUCKETS, registers: [registry] }),
    inFlight: new Gauge({ name: 'flowserve_http_requests_in_flight', help: 'HTTP requests being served.', registers: [registry] }),
    errors: new Counter({ name: 'flowserve_errors_total', help: 'Error responses by error code.', labelNames: ['code'], registers: [registry] }),
    inferenceDuration: new Histogram({ name: 'flowserve_inference_duration_seconds', help: 'ONNX Runtime run time per batch, by model and graph.', labelNames: ['model', 'graph'], buckets: LATENCY_BUCKETS, registers: [registry] }),
    batchSize: new Histogram({ name: 'flowserve_inference_batch_size', help: 'Samples per inference (after dynamic batching), by model and graph.', labelNames: ['model', 'graph'], buckets: BATCH_BUCKETS, registers: [registry] }),
    queueWait: new Histogram({ name: 'flowserve_queue_wait_seconds', help: 'Time a request waited in the batching queue.', labelNames: ['model', 'graph'], buckets: LATENCY_BUCKETS, registers: [registry] }),
    queueDepth: new Gauge({ name: 'flowserve_queue_depth', help: 'Samples waiting in the batching queue.', labelNames: ['model', 'graph'], registers: [registry] }),
    shed: new Counter({ name: 'flowserve_requests_shed_total', help: 'Requests refused because the queue was full.', labelNames: ['model', 'graph'], registers: [registry] }),
    timedOut: new Counter({ name: 'flowserve_requests_timed_out_total', help: 'Requests that passed REQUEST_TIMEOUT_MS.', labelNames: ['model', 'graph'], registers: [registry] }),
    modelInfo: new Gauge({ name: 'flowserve_model_info', help: 'Loaded models (value 1) with family, execution provider and status.', labelNames: ['model', 'family', 'provider', 'status'], registers: [registry] }),
    solverEvaluations: new Histogram({
      name: 'flowserve_solver_evaluations',
      help: 'Dynamics evaluations (NFE) per row of a continuous flow\'s ODE solve, by model and direction.',
      labelNames: ['model', 'direction'],
      buckets: [6, 12, 24, 50, 100, 200, 400, 800, 1600, 3200],
      registers: [registry],
    }),
    solverIterations: new Histogram({
      name: 'flowserve_solver_iterations',
      help: 'Root-finding iterations per row of a planar flow\'s inverse, summed over its layers, by model and direction.',
      labelNames: ['model', 'direction'],
      buckets: [8, 16, 32, 64, 128, 256, 512, 1024],
      registers: [registry],
    }),
    cancelled: new Counter({ name: 'flowserve_requests_cancelled_total', help: 'Requests whose client left before the answer: their loops stopped and their queued work was dropped.', labelNames: ['model'], registers: [registry] }),
    // Per inference request, the counterparts of Triton's nv_inference_request_success / _failure{reason}
    // and nv_inference_compute_input / _infer / _output_duration_us (docs/operations.md, Metrics).
    inferenceRequests: new Counter({
      name: 'flowserve_inference_requests_total',
      help: 'Inference requests that reached a model, by model, operation, protocol (native, v2), result (success, failure) and reason (the error code; empty on success).',
      labelNames: ['model', 'operation', 'protocol', 'result', 'reason'],
      registers: [registry],
    }),
    inferenceSamples: new Counter({ name: 'flowserve_inference_samples_total', help: 'Rows (samples) answered by successful inference requests, by model and operation (Triton: nv_inference_count).', labelNames: ['model', 'operation'], registers: [registry] }),
    requestStage: new Histogram({
      name: 'flowserve_request_stage_seconds',
      help: 'Time per stage of a successful inference request on the event loop and in the service: parse (body, images, validation), operation (queue, inference, TypeScript glue), render (serialization), by model, operation and protocol.',
      labelNames: ['model', 'operation', 'protocol', 'stage'],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    workerRestarts: new Gauge({ name: 'flowserve_worker_restarts', help: 'Inference workers (processes or threads) replaced after a crash since start.', registers: [registry] }),
  };
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;
