// application/json bodies. Fastify reads the body (BODY_LIMIT_BYTES, counted while reading); then
// one linear pass over the raw bytes bounds its shape (nesting depth, number of values) before
// JSON.parse builds anything, so the cost of refusing a hostile body is bounded by the limits,
// not by the body: 8 M nested arrays are refused at the 17th '[' instead of being parsed (6.2 s of
// blocked event loop) and then walked by the schema validator.
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/config.js';
import { AppError, ValidationError } from '../errors.js';

export interface JsonShapeLimits {
  maxDepth: number;
  maxValues: number;
}

export type JsonShapeViolation = { rule: 'depth' | 'values'; offset: number } | null;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
// What each byte means outside strings; most bytes (digits, letters, spaces) mean nothing, and one
// table lookup per byte is ~30 % faster than comparing against each character.
const STRING = 1;
const OPEN = 2;
const COMMA = 3;
const CLOSE = 4;
const BYTE_CLASS = new Uint8Array(256);
BYTE_CLASS[QUOTE] = STRING;
BYTE_CLASS[0x5b] = OPEN; // [
BYTE_CLASS[0x7b] = OPEN; // {
BYTE_CLASS[0x2c] = COMMA;
BYTE_CLASS[0x5d] = CLOSE; // ]
BYTE_CLASS[0x7d] = CLOSE; // }

/**
 * One pass over UTF-8 JSON text, stopping at the first violation. Outside strings every '[' and
 * '{' opens a level and counts one value, every ',' starts one more value; the root is one more.
 * That count is an upper bound on the real number of values (numbers, strings, booleans, nulls,
 * arrays, objects; object keys are not values) that exceeds it only by the number of empty arrays
 * and objects, so `[[],[]]` counts 5 for its 3 values. Inside strings only '\' (skip the next
 * byte, so \" and \\ are handled; \uXXXX's hex digits are plain bytes) and '"' matter. Multi-byte
 * UTF-8 sequences never contain bytes below 0x80, so they cannot be mistaken for punctuation.
 * Malformed text is not judged here: JSON.parse refuses it afterwards, at or before the first
 * point where this count could go wrong (an unbalanced ']' or '}').
 */
export function scanJsonShape(bytes: Uint8Array, limits: JsonShapeLimits): JsonShapeViolation {
  const { maxDepth, maxValues } = limits;
  let depth = 0;
  let values = 1;
  const n = bytes.length;
  for (let i = 0; i < n; i++) {
    const kind = BYTE_CLASS[bytes[i]];
    if (kind === 0) continue;
    if (kind === STRING) {
      // skip the string in an inner loop: most of a body's bytes are numbers or inside strings
      for (i++; i < n; i++) {
        const s = bytes[i];
        if (s === BACKSLASH) i++;
        else if (s === QUOTE) break;
      }
    } else if (kind === OPEN) {
      if (++depth > maxDepth) return { rule: 'depth', offset: i };
      if (++values > maxValues) return { rule: 'values', offset: i };
    } else if (kind === COMMA) {
      if (++values > maxValues) return { rule: 'values', offset: i };
    } else {
      depth--;
    }
  }
  return null;
}

// Fastify's secure-json-parse semantics (onProtoPoisoning and onConstructorPoisoning 'error'): a
// key "__proto__", or a key "constructor" whose object has a "prototype" key, is refused, because
// code that later copies or merges the body could otherwise change Object.prototype. Keys may be
// written with \u escapes, hence the patterns; the object is only walked when the text matches.
const SUSPECT_PROTO = /"(?:_|\\u005[Ff])(?:_|\\u005[Ff])(?:p|\\u0070)(?:r|\\u0072)(?:o|\\u006[Ff])(?:t|\\u0074)(?:o|\\u006[Ff])(?:_|\\u005[Ff])(?:_|\\u005[Ff])"\s*:/;
const SUSPECT_CONSTRUCTOR = /"(?:c|\\u0063)(?:o|\\u006[Ff])(?:n|\\u006[Ee])(?:s|\\u0073)(?:t|\\u0074)(?:r|\\u0072)(?:u|\\u0075)(?:c|\\u0063)(?:t|\\u0074)(?:o|\\u006[Ff])(?:r|\\u0072)"\s*:/;

const has = (o: object, key: string) => Object.prototype.hasOwnProperty.call(o, key);

/** The first forbidden key in the parsed value, breadth first, or null. */
function poisonedKey(root: unknown): string | null {
  let level: object[] = [root as object];
  while (level.length > 0) {
    const next: object[] = [];
    for (const node of level) {
      if (has(node, '__proto__')) return '__proto__';
      const ctor = (node as Record<string, unknown>).constructor;
      if (has(node, 'constructor') && ctor !== null && typeof ctor === 'object' && has(ctor, 'prototype')) return 'constructor.prototype';
      for (const key of Object.keys(node)) {
        const value = (node as Record<string, unknown>)[key];
        if (value !== null && typeof value === 'object') next.push(value);
      }
    }
    level = next;
  }
  return null;
}

function refuseShape(violation: NonNullable<JsonShapeViolation>, limits: JsonShapeLimits): never {
  if (violation.rule === 'depth')
    throw new AppError('LIMIT_EXCEEDED', `body: nesting deeper than MAX_JSON_DEPTH=${limits.maxDepth} (arrays and objects inside each other)`, { field: 'body', limit: 'MAX_JSON_DEPTH', max: limits.maxDepth });
  throw new AppError('LIMIT_EXCEEDED', `body: more than MAX_JSON_VALUES=${limits.maxValues} values (numbers, strings, arrays, objects)`, { field: 'body', limit: 'MAX_JSON_VALUES', max: limits.maxValues });
}

/** Raw body bytes → parsed value, or a 400 naming the body and the rule it breaks. */
export function parseJsonBody(bytes: Buffer, limits: JsonShapeLimits): unknown {
  if (bytes.length === 0) throw new ValidationError('body: must not be empty', { field: 'body', rule: 'required' });
  const violation = scanJsonShape(bytes, limits);
  if (violation) refuseShape(violation, limits);
  let text = bytes.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // a BOM, as secure-json-parse allows
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    // V8 quotes a little of the text around the error; keep the reason short all the same.
    const reason = (err as Error).message.split('\n')[0].slice(0, 160);
    throw new ValidationError(`body: not valid JSON (${reason})`, { field: 'body', rule: 'json' });
  }
  if (value !== null && typeof value === 'object' && (SUSPECT_PROTO.test(text) || SUSPECT_CONSTRUCTOR.test(text))) {
    const key = poisonedKey(value);
    if (key) throw new ValidationError(`body: the key "${key}" is not allowed (prototype poisoning)`, { field: 'body', rule: 'prototypePoisoning', key });
  }
  return value;
}

/**
 * Bodies at least this large are parsed one at a time, and after each the event loop gets as much
 * time again for everything else. JSON.parse cannot be split and runs at ~40-90 MB/s on the
 * 2-core VM (plus its garbage collection): the largest legal body (16 MiB, ~1 M numbers) holds
 * the event loop for 150-400 ms. Eight of them in flight kept the loop saturated, and /healthz,
 * which needs a few loop turns (accept, read, answer), waited behind one parse per turn: p50 1.6 s.
 * Paced, large bodies get at most about half of the event loop and other requests the rest.
 */
export const LARGE_JSON_BYTES = 256 * 1024;
/** The longest pause between two large parses, whatever the last one cost. */
const MAX_PAUSE_MS = 1000;
let largeParses: Promise<unknown> = Promise.resolve();
/** When the next large parse may start: the last one's end plus as long as it took. */
let nextStart = 0;

function paced<T>(work: () => T): Promise<T> {
  // a timer, even of 0 ms, lets a poll phase (other requests' I/O) run before the next parse; an
  // idle server waits no longer than that
  const run = largeParses
    .then(() => sleep(Math.max(0, nextStart - performance.now())))
    .then(() => {
      const started = performance.now();
      try {
        return work();
      } finally {
        const ended = performance.now();
        nextStart = ended + Math.min(MAX_PAUSE_MS, ended - started);
      }
    });
  largeParses = run.catch(() => undefined);
  return run;
}

/** parseJsonBody, paced the same way for large bodies (the v2 protocol's JSON headers and bodies). */
export function parseJsonPaced(bytes: Buffer, limits: JsonShapeLimits): Promise<unknown> {
  if (bytes.length >= LARGE_JSON_BYTES) return paced(() => parseJsonBody(bytes, limits));
  try {
    return Promise.resolve(parseJsonBody(bytes, limits));
  } catch (err) {
    return Promise.reject(err);
  }
}

/**
 * Replaces Fastify's JSON parser. parseAs 'buffer' keeps Fastify's reading: BODY_LIMIT_BYTES
 * checked against Content-Length before reading and counted while reading (413 at once).
 */
export function registerJsonParser(app: FastifyInstance, config: Config): void {
  const limits = { maxDepth: config.maxJsonDepth, maxValues: config.maxJsonValues };
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, body, done) => {
    const bytes = body as Buffer;
    if (bytes.length >= LARGE_JSON_BYTES) {
      paced(() => parseJsonBody(bytes, limits)).then(
        (value) => done(null, value),
        (err: Error) => done(err, undefined),
      );
      return;
    }
    try {
      done(null, parseJsonBody(bytes, limits));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
}
