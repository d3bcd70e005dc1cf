// Every failure leaves as {error: {code, message, details?}} with the status from STATUS_BY_CODE.
// Fastify's own errors (validation, body parsing, size and media-type limits) are translated into
// the same vocabulary; anything unexpected is a 500 whose body says nothing about internals.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, ValidationError } from '../errors.js';
import type { Config } from '../config/config.js';
import type { Metrics } from '../service/metrics.js';
import { LogLimiter } from '../log-limiter.js';

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

/** /inputs/3 or /latents/3: a row; /inputs/3/7: a value in a row. */
const ROW = /^\/(inputs|latents)\/\d+$/;
const ROW_VALUE = /^\/(inputs|latents)\/\d+\/\d+$/;

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
    // a nested [C][H][W] image (or any non-number) inside a row
    if (ROW_VALUE.test(first.instancePath ?? '')) rule += '; each row is one flat array of numbers: flatten nested arrays row-major (GET /models/{name}: input.layout)';
  } else if (first.keyword === 'type' && first.params?.type === 'array' && ROW.test(first.instancePath ?? '')) {
    rule = 'must be an array: send a list of rows, [[x1, …, xD], …], even for one input';
  } else if (first.keyword === 'enum' && Array.isArray(first.params?.allowedValues)) {
    rule = `must be one of ${(first.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
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
      return new AppError('PAYLOAD_TOO_LARGE', `body: larger than BODY_LIMIT_BYTES=${config.bodyLimitBytes}`, { field: 'body', limit: 'BODY_LIMIT_BYTES', max: config.bodyLimitBytes });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new AppError('UNSUPPORTED_MEDIA_TYPE', 'content-type: send application/json (or multipart/form-data with images for /encode and /likelihood)', { field: 'content-type' });
    case 'FST_ERR_BAD_URL':
      return new ValidationError('path: malformed URL', { field: 'path', rule: 'url' });
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new ValidationError(`path: a path parameter is longer than ${MAX_PARAM_LENGTH} characters`, { field: 'path', rule: 'maxLength' });
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ValidationError('body: must not be empty', { field: 'body', rule: 'required' });
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new ValidationError(`body: not valid JSON (${fe.message})`, { field: 'body', rule: 'json' });
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      // the connection ended (or sent more) before Content-Length bytes
      return new ValidationError('body: its length differs from the Content-Length header', { field: 'body', rule: 'contentLength' });
  }
  // @fastify/compress (the v2 protocol's request decompression) marks zlib's failures this way
  if ((fe as { decompressError?: unknown }).decompressError)
    return new ValidationError(`body: not valid gzip or deflate data, as its Content-Encoding says (${fe.message.split('\n')[0].slice(0, 120)})`, { field: 'body', rule: 'contentEncoding' });
  const status = fe.statusCode ?? 500;
  if (err instanceof SyntaxError && status === 400) return new ValidationError(`body: not valid JSON (${err.message})`, { field: 'body', rule: 'json' });
  if (status === 404) return new AppError('ROUTE_NOT_FOUND', 'no such route');
  if (status === 413) return new AppError('PAYLOAD_TOO_LARGE', `body: larger than BODY_LIMIT_BYTES=${config.bodyLimitBytes}`);
  if (status === 415) return new AppError('UNSUPPORTED_MEDIA_TYPE', 'content-type: unsupported media type');
  if (status >= 400 && status < 500) return new ValidationError(`request: ${fe.message}`);
  return new AppError('INTERNAL', 'internal error', undefined, { cause: err });
}

/** How a protocol writes a failure: the native API's {error: {code, message, details}}, or another shape (v2). */
export type ErrorRenderer = (reply: FastifyReply, err: AppError) => FastifyReply;

export const renderNativeError: ErrorRenderer = (reply, err) =>
  reply.code(err.statusCode).type('application/json').send({ error: { code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) } });

export function sendError(reply: FastifyReply, err: AppError, metrics: Metrics, render: ErrorRenderer = renderNativeError): FastifyReply {
  metrics.errors.inc({ code: err.code });
  reply.request.failure = err.code;
  if (err.retryAfter !== undefined) reply.header('retry-after', String(err.retryAfter));
  return render(reply, err);
}

/** For Fastify's `frameworkErrors` option: router-level failures before any route runs. */
export function frameworkErrorHandler(config: Config, metrics: Metrics) {
  return (error: FastifyError, _request: FastifyRequest, reply: FastifyReply) => sendError(reply, toAppError(error, config), metrics);
}

/** Refusals by design: the service works as documented, so no stack trace and no error level. */
const EXPECTED_5XX = new Set(['NOT_READY', 'MODEL_UNAVAILABLE', 'TIMEOUT']);

/** What makes two failures "the same cause" for the log limiter: never the request's values. */
function causeKey(err: AppError, model: string): string {
  const d = err.details ?? {};
  if (err.statusCode >= 500 && !EXPECTED_5XX.has(err.code)) {
    const cause = err.cause instanceof Error ? err.cause.message : String(err.cause ?? '');
    return `${err.code}|${model}|${cause.slice(0, 200)}`;
  }
  if (err.statusCode >= 500) return `${err.code}|${model}|${err.message.slice(0, 200)}`;
  return `${err.code}|${model}|${String(d.field ?? '').replace(/\[\d+\]/g, '[]')}|${String(d.rule ?? d.limit ?? '')}`;
}

export function registerErrorHandling(app: FastifyInstance, config: Config, metrics: Metrics, limiter = new LogLimiter(), render: ErrorRenderer = renderNativeError): void {
  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const appErr = toAppError(error, config);
    const model = request.flowModel || String(appErr.details?.model ?? '');
    limiter.log(causeKey(appErr, model), (suppressed) => {
      const entry = { code: appErr.code, reason: appErr.message, model: model || undefined, url: request.url.slice(0, 200), ...(suppressed ? { suppressed } : {}) };
      if (appErr.statusCode < 500) request.log.info(entry, 'request refused');
      else if (EXPECTED_5XX.has(appErr.code)) request.log.warn(entry, 'request refused');
      else request.log.error({ ...entry, err: error, cause: appErr.cause }, 'request failed');
    });
    return sendError(reply, appErr, metrics, render);
  });
  app.setNotFoundHandler((request, reply) => sendError(reply, new AppError('ROUTE_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0].slice(0, 200)}`), metrics, render));
}
