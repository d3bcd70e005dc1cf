// buildApp(config): the whole service as a Fastify instance, plugins registered explicitly and in
// order. Loading models starts when the app is ready and goes on in the background, so /healthz
// answers at once and /readyz turns ready when every model is warm. Nothing here touches process.
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Config } from './config/config.js';
import { registerAuth } from './http/auth.js';
import { MAX_PARAM_LENGTH, frameworkErrorHandler, registerErrorHandling } from './http/error-handler.js';
import { Lifecycle } from './http/lifecycle.js';
import { registerBinaryParser } from './http/binary-body.js';
import { registerJsonParser } from './http/json-body.js';
import { registerMultipartParser } from './http/multipart-body.js';
import { inferenceRoutes } from './http/routes/inference.js';
import { modelRoutes } from './http/routes/models.js';
import { openInferenceProtocol } from './http/protocols/v2/plugin.js';
import { webPage } from './http/web-page.js';
import { ErrorResponse, MultipartBody } from './http/schemas.js';
import { FlowService } from './service/flow-service.js';
import { createMetrics } from './service/metrics.js';

declare module 'fastify' {
  interface FastifyInstance {
    flowserve: FlowService;
    lifecycle: Lifecycle;
  }
}

export interface BuildOptions {
  logger?: FastifyServerOptions['logger'];
  /** Do not load models (e.g. to generate openapi.yaml). */
  skipModels?: boolean;
}

export const OPENAPI_INFO = {
  title: 'flowserve',
  description: 'Serve normalizing-flow models (NICE, RealNVP, Glow, MAF, IAF, planar and continuous flows): exact log-likelihoods, anomaly scores, sampling at a temperature, encode and decode.',
  version: '0.1.0',
};

/** Routes that take uploads (`consumes` lists multipart) get the multipart body in the OpenAPI document. */
function documentMultipart({ schema, url }: { schema: Record<string, any>; url: string }) {
  if (!schema?.consumes?.includes('multipart/form-data') || !schema.body?.content) return { schema, url };
  return { schema: { ...schema, body: { content: { ...schema.body.content, 'multipart/form-data': { schema: MultipartBody } } } }, url };
}

export async function buildApp(config: Config, options: BuildOptions = {}): Promise<FastifyInstance> {
  const metrics = createMetrics();
  const app = Fastify({
    // Slow or idle clients cannot hold connections (slowloris): Node checks these every second.
    http: { headersTimeout: config.headersTimeoutMs, connectionsCheckingInterval: 1000 },
    requestTimeout: config.readTimeoutMs,
    connectionTimeout: config.idleTimeoutMs,
    keepAliveTimeout: config.keepAliveTimeoutMs,
    logger: options.logger ?? { level: config.logLevel },
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    frameworkErrors: frameworkErrorHandler(config, metrics),
    bodyLimit: config.bodyLimitBytes,
    // Strict bodies: no type coercion, unknown fields refused rather than dropped.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    // our own 503 below (error format, Retry-After) instead of Fastify's bare one
    return503OnClosing: false,
  }).withTypeProvider<TypeBoxTypeProvider>();

  const service = new FlowService(config, metrics, app.log);
  app.decorate('flowserve', service);
  const lifecycle = new Lifecycle(app);
  app.decorate('lifecycle', lifecycle);
  // Past MAX_CONNECTIONS Node closes new connections at once, before any byte is read.
  app.server.maxConnections = config.maxConnections;
  app.decorateRequest('flowModel', '');
  app.decorateRequest('startedAt', 0);
  app.decorateRequest('operation', '');
  app.decorateRequest('apiProtocol', '');
  app.decorateRequest('timing', null);
  app.decorateRequest('failure', '');
  app.decorateRequest('metricsDone', false);

  // 1. errors and metrics hooks, 2. auth, 3. body parsers, 4. OpenAPI, 5. routes.
  registerErrorHandling(app, config, metrics);
  /** Metrics for a finished request: once, from onResponse or, for a client that left first, its connection's close (499). */
  const finished = (request: FastifyRequest, reply: FastifyReply) => {
    if (request.metricsDone) return;
    request.metricsDone = true;
    metrics.inFlight.dec();
    const status = reply.raw.writableFinished || reply.sent ? reply.statusCode : 499;
    const labels = { route: request.routeOptions.url ?? 'unmatched', model: request.flowModel, status: String(status) };
    metrics.requests.inc(labels);
    const now = performance.now();
    metrics.requestDuration.observe(labels, (now - request.startedAt) / 1000);
    if (!request.operation) return;
    const ok = status < 400;
    const inf = { model: request.flowModel, operation: request.operation, protocol: request.apiProtocol };
    metrics.inferenceRequests.inc({ ...inf, result: ok ? 'success' : 'failure', reason: ok ? '' : request.failure || (status === 499 ? 'CANCELLED' : String(status)) });
    const t = request.timing;
    if (ok && t?.finished !== undefined) {
      metrics.requestStage.observe({ ...inf, stage: 'parse' }, (t.called - request.startedAt) / 1000);
      metrics.requestStage.observe({ ...inf, stage: 'operation' }, (t.finished - t.called) / 1000);
      metrics.requestStage.observe({ ...inf, stage: 'render' }, (now - t.finished) / 1000);
    }
  };
  app.addHook('onRequest', async (request, reply) => {
    metrics.inFlight.inc();
    request.startedAt = performance.now();
    reply.raw.once('close', () => finished(request, reply));
  });
  app.addHook('onResponse', async (request, reply) => finished(request, reply));
  registerAuth(app, config.apiKey);
  // JSON (and multipart below) only: a text body is a 415, not a string to validate.
  app.removeContentTypeParser('text/plain');
  // Both read the whole body under BODY_LIMIT_BYTES before parsing it, and bound its shape
  // (JSON depth and values; multipart files, fields and parts): src/http/json-body.ts, multipart-body.ts.
  registerJsonParser(app, config);
  registerMultipartParser(app, config);
  registerBinaryParser(app);
  app.addSchema(ErrorResponse);
  await app.register(swagger, {
    transform: documentMultipart,
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
    openapi: {
      openapi: '3.0.3',
      info: OPENAPI_INFO,
      tags: [
        { name: 'inference', description: 'encode / decode / sample / likelihood' },
        { name: 'models', description: 'loaded model packages' },
        { name: 'health', description: 'probes and metrics' },
        { name: 'v2', description: 'Open Inference Protocol (KServe v2 / Triton): JSON and binary tensors (docs/open-inference-protocol.md)' },
      ],
      security: [],
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'Only when the server sets API_KEY.' } } },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  inferenceRoutes(app, service, config);
  modelRoutes(app, service, metrics, config);
  // The Open Inference Protocol (KServe v2): its own prefix, body parsing, compression and error shape.
  await app.register(openInferenceProtocol, { prefix: '/v2', version: OPENAPI_INFO.version, service, config, metrics });
  // The web page (web/): static files and a bundled script, no API of its own.
  await webPage(app);

  // app.close() without a drain (tests, errors at start) still refuses late requests cleanly.
  app.addHook('preClose', async () => {
    lifecycle.phase = 'closing';
  });

  if (!options.skipModels) app.addHook('onReady', async () => void service.start());
  app.addHook('onClose', async () => service.close());
  return app;
}
