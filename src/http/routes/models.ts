// GET /models, /models/:name, /healthz, /readyz, /metrics.
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Config } from '../../config/config.js';
import { ModelNotFoundError } from '../../errors.js';
import { isAuthorized } from '../auth.js';
import type { FlowService } from '../../service/flow-service.js';
import { modelCard } from '../../service/model-card.js';
import type { Metrics } from '../../service/metrics.js';
import { Health, ModelInfo, ModelList, Readiness, notFoundError } from '../schemas.js';

export function modelRoutes(app: FastifyInstance, service: FlowService, metrics: Metrics, config: Config): void {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();

  r.get('/models', { schema: { summary: 'Every model package found, with status and provider.', tags: ['models'], response: { 200: ModelList } } }, async () => ({
    defaultModel: service.defaultModel,
    models: service.describe().map((s) => modelCard(s, config)),
  }));

  r.get(
    '/models/:name',
    { schema: { summary: 'One model: its input layout and support, limits, temperature range, output forms, likelihood protocols, calibration and quality figures (enough to build every request).', tags: ['models'], params: Type.Object({ name: Type.String({ maxLength: 200 }) }), response: { 200: ModelInfo, 404: notFoundError } } },
    async (request) => {
      const s = service.states.get(request.params.name);
      if (!s) throw new ModelNotFoundError(request.params.name, [...service.states.keys()]);
      return modelCard(s, config);
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

