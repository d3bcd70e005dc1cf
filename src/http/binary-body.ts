// application/octet-stream bodies: a tensor's raw little-endian bytes, for the routes whose schema
// `consumes` it (/encode, /likelihood, /decode). Read whole under BODY_LIMIT_BYTES like JSON; a
// route that does not take binary bodies answers 415 before its handler runs.
import type { FastifyInstance } from 'fastify';
import { AppError } from '../errors.js';

export const OCTET_STREAM = 'application/octet-stream';

export function registerBinaryParser(app: FastifyInstance): void {
  app.addContentTypeParser(OCTET_STREAM, { parseAs: 'buffer' }, (request, body, done) => {
    const consumes = (request.routeOptions.schema as { consumes?: string[] } | undefined)?.consumes;
    if (!consumes?.includes(OCTET_STREAM)) {
      done(new AppError('UNSUPPORTED_MEDIA_TYPE', `content-type: ${request.method} ${request.routeOptions.url ?? 'this route'} takes application/json only (binary bodies are for /encode, /decode and /likelihood)`, { field: 'content-type' }), undefined);
      return;
    }
    done(null, body);
  });
}
