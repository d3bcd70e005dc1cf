// One vocabulary of failures: every error the service answers with is an AppError whose `code`
// maps to exactly one HTTP status in STATUS_BY_CODE (Triton habit). 5xx messages are generic;
// the full context goes to the log only.

export const STATUS_BY_CODE = {
  VALIDATION_ERROR: 400,
  INVALID_INPUT: 400,
  INVALID_IMAGE: 400,
  LIMIT_EXCEEDED: 400,
  UNAUTHORIZED: 401,
  MODEL_NOT_FOUND: 404,
  ROUTE_NOT_FOUND: 404,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  OVERLOADED: 429,
  /** The client closed the connection before the answer (nginx's 499): logged and counted, never received. */
  CANCELLED: 499,
  INFERENCE_FAILED: 500,
  INTERNAL: 500,
  MODEL_UNAVAILABLE: 503,
  NOT_READY: 503,
  TIMEOUT: 504,
} as const;

export type ErrorCode = keyof typeof STATUS_BY_CODE;
export const ERROR_CODES = Object.keys(STATUS_BY_CODE) as ErrorCode[];

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly statusCode: number;
  readonly details?: Record<string, unknown>;
  /** Seconds a client should wait before retrying (429/503). */
  readonly retryAfter?: number;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>, options?: { cause?: unknown; retryAfter?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.statusCode = STATUS_BY_CODE[code];
    this.details = details;
    this.retryAfter = options?.retryAfter;
  }
}

export class ValidationError extends AppError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('VALIDATION_ERROR', message, details);
  }
}

/** A well-formed request whose values break a rule (length, finiteness, range). */
export class InvalidInputError extends AppError {
  constructor(field: string, rule: string, details?: Record<string, unknown>) {
    super('INVALID_INPUT', `${field}: ${rule}`, { field, rule, ...details });
  }
}

export class InvalidImageError extends AppError {
  constructor(field: string, rule: string, details?: Record<string, unknown>) {
    super('INVALID_IMAGE', `${field}: ${rule}`, { field, rule, ...details });
  }
}

export class LimitExceededError extends AppError {
  /** `unit` says what is counted when it is not items ("pixels", "files"); `got` is left out when unknown. */
  constructor(field: string, limit: string, max: number, got?: number, unit?: string) {
    const what = unit ? `${max} ${unit}` : String(max);
    super('LIMIT_EXCEEDED', `${field}: at most ${what} allowed (${limit})${got === undefined ? '' : `, got ${got}`}`, { field, limit, max, ...(got === undefined ? {} : { got }) });
  }
}

/** Longest piece of client text an error message or log line repeats back. */
export const MAX_ECHO = 64;

/**
 * Client text quoted in a message: at most MAX_ECHO characters, then '…'. A refusal must not turn
 * a 900 KB model name into a 900 KB answer and log line.
 */
export function echo(text: string, max = MAX_ECHO): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}

export class ModelNotFoundError extends AppError {
  constructor(name: string, available: string[]) {
    super('MODEL_NOT_FOUND', `model '${echo(name)}' is not loaded`, { model: echo(name), available });
  }
}

export class ModelUnavailableError extends AppError {
  constructor(name: string, reason: string) {
    super('MODEL_UNAVAILABLE', `model '${name}' is unavailable: ${reason}`, { model: name }, { retryAfter: 5 });
  }
}

export class NotReadyError extends AppError {
  constructor(message = 'service is not ready yet') {
    super('NOT_READY', message, undefined, { retryAfter: 1 });
  }
}

export class OverloadedError extends AppError {
  constructor(model: string, graph: string, maxQueueSize: number) {
    super('OVERLOADED', `queue for ${model}/${graph} is full (MAX_QUEUE_SIZE=${maxQueueSize}); retry later`, { model, graph, maxQueueSize }, { retryAfter: 1 });
  }
}

/** The request's client is gone: its loops stop between steps and its queued work is dropped. */
export class CancelledError extends AppError {
  constructor() {
    super('CANCELLED', 'the client closed the connection; the work was stopped');
  }
}

export class TimeoutError extends AppError {
  constructor(model: string, timeoutMs: number) {
    super('TIMEOUT', `request did not complete within REQUEST_TIMEOUT_MS=${timeoutMs}`, { model, timeoutMs });
  }
}

/** ORT or a worker failed. The message stays generic; `cause` carries the internals to the log. */
export class InferenceError extends AppError {
  constructor(model: string, cause: unknown) {
    super('INFERENCE_FAILED', 'inference failed', { model }, { cause });
  }
}

export class UnauthorizedError extends AppError {
  constructor() {
    super('UNAUTHORIZED', 'missing or invalid API key (send Authorization: Bearer <key>)');
  }
}
