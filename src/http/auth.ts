// Optional API key: when API_KEY is set every route but the probes and /metrics requires
// `Authorization: Bearer <key>`. Digests are compared in constant time (equal lengths always).
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { UnauthorizedError } from '../errors.js';

const OPEN_ROUTES = new Set(['/healthz', '/readyz', '/metrics']);
const digest = (s: string) => createHash('sha256').update(s).digest();

export function registerAuth(app: FastifyInstance, apiKey: string): void {
  if (!apiKey) return;
  const expected = digest(apiKey);
  app.addHook('onRequest', async (request) => {
    if (OPEN_ROUTES.has(request.url.split('?')[0])) return;
    const header = request.headers.authorization ?? '';
    const token = header.startsWith('Bearer ') ? header.slice(7) : '';
    if (!timingSafeEqual(digest(token), expected)) {
      request.log.warn({ ip: request.ip, url: request.url.slice(0, 200) }, 'rejected request with missing or wrong API key');
      throw new UnauthorizedError();
    }
  });
}
