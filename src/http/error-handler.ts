// Every failure leaves as {error: {code, message, details?}} with the status from STATUS_BY_CODE.
// Fastify's own errors (validation, body parsing, size and media-type limits) are translated into
// the same vocabulary; anything unexpected is a 500 whose body says nothing about internals.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, ValidationError } from '../errors.js';
import type { Config } from '../config/config.js';
import type { Metrics } from '../service/metrics.js';

export const MAX_PARAM_LENGTH = 100;

interface AjvLikeError {
  instancePath?: string;
  keyword?: string;
  message?: string;
  params?: Record<string, unknown>;
}

/** /inputs/0/3 → inputs[0][3] */
function fieldPath(context: string, instancePath = ''): string {
  const parts = instancePath.split('/').filter(Boolean);
  let out = context;
  for (const p of parts) out += /^\d+$/.test(p) ? `[${p}]` : out ? `.${p}` : p;
  return out;
}

function fromValidation(err: FastifyError): AppError {
  const first = (err.validation?.[0] ?? {}) as AjvLikeError;
  const context = (err.validationContext as string | undefined) ?? 'body';
  let field = fieldPath(context, first.instancePath);
  let rule = first.message ?? 'is invalid';
  if (first.keyword === 'additionalProperties') {
    field = fieldPath(field, `/${String(first.params?.additionalProperty)}`);
    rule = 'is not a known field';
  } else if (first.keyword === 'type' && (first.params?.type === 'number' || first.params?.type === 'integer')) {
    // ajv also refuses Infinity (JSON overflow such as 1e400) here
    rule = `must be a finite ${first.params.type}`;
  } else if (first.keyword === 'required') {
    field = fieldPath(field, `/${String(first.params?.missingProperty)}`);
    rule = 'is required';
  }
  return new ValidationError(`${field}: ${rule}`, { field, rule: first.keyword ?? 'schema', ...(first.params ? { params: first.params } : {}) });
}

export function toAppError(err: FastifyError | Error, config: Config): AppError {
  if (err instanceof AppError) return err;
  const fe = err as FastifyError;
  if (fe.validation) return fromValidation(fe);
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
    case 'FST_REQ_FILE_TOO_LARGE':
      return new AppError('PAYLOAD_TOO_LARGE', `body: larger than BODY_LIMIT_BYTES=${config.bodyLimitBytes}`, { field: 'body', limit: 'BODY_LIMIT_BYTES', max: config.bodyLimitBytes });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_INVALID_MULTIPART_CONTENT_TYPE':
      return new AppError('UNSUPPORTED_MEDIA_TYPE', 'content-type: send application/json (or multipart/form-data with images for /encode and /likelihood)', { field: 'content-type' });
    case 'FST_ERR_BAD_URL':
      return new ValidationError('path: malformed URL', { field: 'path', rule: 'url' });
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new ValidationError(`path: a path parameter is longer than ${MAX_PARAM_LENGTH} characters`, { field: 'path', rule: 'maxLength' });
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ValidationError('body: must not be empty', { field: 'body', rule: 'required' });
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new ValidationError(`body: not valid JSON (${fe.message})`, { field: 'body', rule: 'json' });
    case 'FST_FILES_LIMIT':
    case 'FST_PARTS_LIMIT':
    case 'FST_FIELDS_LIMIT':
      return new AppError('LIMIT_EXCEEDED', `images: at most ${config.maxItemsPerRequest} files allowed (MAX_ITEMS_PER_REQUEST)`, { field: 'images', limit: 'MAX_ITEMS_PER_REQUEST', max: config.maxItemsPerRequest });
  }
  const status = fe.statusCode ?? 500;
  if (err instanceof SyntaxError && status === 400) return new ValidationError(`body: not valid JSON (${err.message})`, { field: 'body', rule: 'json' });
  if (status === 404) return new AppError('ROUTE_NOT_FOUND', 'no such route');
  if (status === 413) return new AppError('PAYLOAD_TOO_LARGE', `body: larger than BODY_LIMIT_BYTES=${config.bodyLimitBytes}`);
  if (status === 415) return new AppError('UNSUPPORTED_MEDIA_TYPE', 'content-type: unsupported media type');
  if (status >= 400 && status < 500) return new ValidationError(`request: ${fe.message}`);
  return new AppError('INTERNAL', 'internal error', undefined, { cause: err });
}

export function sendError(reply: FastifyReply, err: AppError, metrics: Metrics): FastifyReply {
  metrics.errors.inc({ code: err.code });
  if (err.retryAfter !== undefined) reply.header('retry-after', String(err.retryAfter));
  return reply.code(err.statusCode).type('application/json').send({ error: { code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) } });
}

/** For Fastify's `frameworkErrors` option: router-level failures before any route runs. */
export function frameworkErrorHandler(config: Config, metrics: Metrics) {
  return (error: FastifyError, _request: FastifyRequest, reply: FastifyReply) => sendError(reply, toAppError(error, config), metrics);
}

export function registerErrorHandling(app: FastifyInstance, config: Config, metrics: Metrics): void {
  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const appErr = toAppError(error, config);
    // NOT_READY (warming up, shutting down) is a refusal by design, not a failure
    if (appErr.statusCode >= 500 && appErr.code !== 'NOT_READY') request.log.error({ err: error, cause: appErr.cause, code: appErr.code, url: request.url }, 'request failed');
    else request.log.info({ code: appErr.code, msg: appErr.message }, 'request refused');
    return sendError(reply, appErr, metrics);
  });
  app.setNotFoundHandler((request, reply) => sendError(reply, new AppError('ROUTE_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`), metrics));
}
