// GET /models, /models/:name, /healthz, /readyz, /metrics.
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from '@sinclair/typebox';
import { ModelNotFoundError } from '../../errors.js';
import { isAuthorized } from '../auth.js';
import type { FlowService, ModelState } from '../../service/flow-service.js';
import type { Metrics } from '../../service/metrics.js';
import { ErrorRef, Health, ModelInfo, ModelList, Readiness } from '../schemas.js';

function info(s: ModelState): Static<typeof ModelInfo> {
  const m = s.pkg?.manifest;
  const base = { name: s.name, status: s.status, ...(s.reason ? { reason: s.reason } : {}) };
  if (!m) return base;
  return {
    ...base,
    family: m.family,
    description: m.description,
    dataKind: m.data.kind,
    dataShape: m.data.shape,
    latentSize: m.latent.size,
    latentParts: m.latent.parts,
    defaultTemperature: m.defaultTemperature,
    ...(s.provider ? { provider: s.provider } : {}),
    quality: {
      dataset: m.training.dataset,
      testLogLikelihood: m.training.test?.meanLogLikelihood ?? null,
      testBitsPerDim: m.training.test?.bitsPerDim ?? null,
      parameters: m.training.parameters ?? null,
    },
    scores: s.pkg!.scores,
    anomaly: m.calibration ? { defaultScore: m.calibration.defaultScore, targetFalsePositiveRate: m.calibration.targetFalsePositiveRate } : null,
  };
}

export function modelRoutes(app: FastifyInstance, service: FlowService, metrics: Metrics): void {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();

  r.get('/models', { schema: { summary: 'Every model package found, with status and provider.', tags: ['models'], response: { 200: ModelList } } }, async () => ({
    defaultModel: service.defaultModel,
    models: service.describe().map(info),
  }));

  r.get(
    '/models/:name',
    { schema: { summary: 'One model.', tags: ['models'], params: Type.Object({ name: Type.String({ maxLength: 200 }) }), response: { 200: ModelInfo, 404: ErrorRef } } },
    async (request) => {
      const s = service.states.get(request.params.name);
      if (!s) throw new ModelNotFoundError(request.params.name, [...service.states.keys()]);
      return info(s);
    },
  );

  // Liveness stays 200 while loading, while draining and through a quick worker replacement: only
  // a service that cannot start any inference worker asks to be restarted (FlowService.health()).
  r.get(
    '/healthz',
    { schema: { summary: 'Liveness: 503 only when no inference worker can be started (restarts keep failing).', tags: ['health'], response: { 200: Health, 503: Health } } },
    async (_req, reply) => {
      const health = service.health();
      if (health.live || app.lifecycle.phase !== 'serving') return { status: 'ok' as const };
      reply.code(503);
      return { status: 'unhealthy' as const, reason: health.reason };
    },
  );

  r.get(
    '/readyz',
    { schema: { summary: 'Readiness: every loadable model is warm and can be served now. Lists unavailable models.', tags: ['health'], response: { 200: Readiness, 503: Readiness } } },
    async (request, reply) => {
      const health = service.health();
      const status = app.lifecycle.phase !== 'serving' ? ('draining' as const) : health.status;
      if (status !== 'ready') reply.code(503).header('retry-after', '1');
      // Probes reach /readyz without the key; the model list is for authorized callers only.
      const reason = status === 'draining' ? undefined : health.reason;
      return isAuthorized(request) ? { status, ...(reason ? { reason } : {}), models: health.models } : { status };
    },
  );

  r.get('/metrics', { schema: { summary: 'Prometheus metrics (text exposition format).', tags: ['health'], produces: ['text/plain'] } }, async (_req, reply) => {
    metrics.workerRestarts.set(service.restarts);
    reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });
}

