// Optional API key: when API_KEY is set every route but the probes and /metrics requires
// `Authorization: Bearer <key>`. Digests are compared in constant time (equal lengths always).
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { UnauthorizedError } from '../errors.js';
import { PAGE_ROUTES } from './web-page.js';

// Probes (native and Open Inference Protocol) and metrics: what orchestrators call without a key.
// The web page's files hold no secret: the page loads without the key, then asks for it.
const OPEN_ROUTES = new Set<string>(['/healthz', '/readyz', '/metrics', '/v2/health/live', '/v2/health/ready', ...PAGE_ROUTES]);
const digest = (s: string) => createHash('sha256').update(s).digest();
/** The expected digest per HTTP server: every (encapsulated) Fastify context of one app shares it. */
const expectedBy = new WeakMap<object, Buffer>();

/** Whether the request carries the API key (always true when no API_KEY is set). Open routes use it
 *  to say less to anonymous callers. */
export function isAuthorized(request: FastifyRequest): boolean {
  const expected = expectedBy.get(request.server.server);
  if (!expected) return true;
  const header = request.headers.authorization ?? '';
  const token = header.startsWith('Bearer ') ? header.slice(7) : '';
  return timingSafeEqual(digest(token), expected);
}

export function registerAuth(app: FastifyInstance, apiKey: string): void {
  if (!apiKey) return;
  expectedBy.set(app.server, digest(apiKey));
  app.addHook('onRequest', async (request) => {
    if (OPEN_ROUTES.has(request.url.split('?')[0])) return;
    if (!isAuthorized(request)) {
      request.log.warn({ ip: request.ip, url: request.url.slice(0, 200) }, 'rejected request with missing or wrong API key');
      throw new UnauthorizedError();
    }
  });
}
