// multipart/form-data bodies, read like JSON ones. Fastify reads the whole body under
// BODY_LIMIT_BYTES (413 at once for a larger Content-Length, 413 as soon as a chunked body passes
// it, the connection then closed), and only then is it split into parts, with @fastify/busboy and
// limits on every count. @fastify/multipart is not used: it pipes request.raw into busboy itself,
// so Fastify's body limit never applied and a request was bounded per file (16 MiB) and per count
// (256 files), not as a whole: 100 files of 15 MiB were all read (+900 MiB) before any answer.
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { Busboy, type BusboyHeaders, type BusboyInstance } from '@fastify/busboy';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Config } from '../config/config.js';
import { AppError, InvalidInputError, ValidationError, echo } from '../errors.js';

/** The non-file fields a multipart request may carry, each at most once. */
export const MULTIPART_FIELDS = ['model', 'resize', 'batchTest', 'scores', 'dequantization', 'draws', 'seed'] as const;
export type MultipartField = (typeof MULTIPART_FIELDS)[number];

/** Longest field value: the longest legal one (all score names, comma-separated) is ~45 bytes. */
export const MAX_FIELD_BYTES = 1024;
/** Longest part header (Content-Disposition with its names, Content-Type). */
const MAX_PART_HEADER_BYTES = 16 * 1024;
/**
 * Bytes handed to the parser at a time. The parser goes through a whole chunk before it can stop,
 * so this bounds the work done after the first refusal (16 KiB of 60-byte parts is ~270 parts, a
 * few ms; 256 KiB took ~90 ms); other requests get the event loop every YIELD_BYTES.
 */
const FEED_BYTES = 16 * 1024;
const YIELD_BYTES = 1024 * 1024;

const FIELD_LIST = MULTIPART_FIELDS.join(', ');

/** A parsed multipart body: the image files in order, and the fields by name. */
export class MultipartForm {
  constructor(
    readonly files: Buffer[],
    readonly fields: Partial<Record<MultipartField, string>>,
  ) {}
}

export interface MultipartLimits {
  /** MAX_ITEMS_PER_REQUEST */
  maxFiles: number;
}

const malformed = (rule: string) => new ValidationError(`body: malformed multipart/form-data (${rule})`, { field: 'body', rule: 'multipart' });

function refusal(err: unknown): AppError {
  const message = err instanceof Error ? err.message : String(err);
  if (/Unexpected end of multipart data/i.test(message))
    return new ValidationError('body: multipart/form-data ends without its closing boundary (--BOUNDARY--): the body is incomplete', { field: 'body', rule: 'multipartClosingBoundary' });
  if (/boundary not found/i.test(message)) return malformed('the Content-Type header has no boundary parameter');
  return malformed(echo(message.split('\n')[0], 160));
}

/** The whole body, already read, → files and fields; the first refusal stops the parse. */
export function parseMultipart(body: Buffer, headers: FastifyRequest['headers'], limits: MultipartLimits): Promise<MultipartForm> {
  const maxFiles = limits.maxFiles;
  return new Promise((resolve, reject) => {
    let failed = false;
    const fail = (err: AppError) => {
      if (failed) return;
      failed = true;
      reject(err);
    };
    let parser: BusboyInstance;
    try {
      parser = new Busboy({
        headers: headers as BusboyHeaders,
        limits: {
          files: maxFiles,
          fields: MULTIPART_FIELDS.length,
          parts: maxFiles + MULTIPART_FIELDS.length,
          fieldSize: MAX_FIELD_BYTES,
          headerSize: MAX_PART_HEADER_BYTES,
          headerPairs: 16,
        },
      });
    } catch (err) {
      reject(refusal(err));
      return;
    }
    const files: Buffer[] = [];
    const fields: Partial<Record<MultipartField, string>> = {};
    let openFiles = 0;
    let finished = false;
    const settle = () => {
      if (finished && openFiles === 0 && !failed) resolve(new MultipartForm(files, fields));
    };

    parser.on('file', (_name, stream) => {
      const index = files.length;
      files.push(Buffer.alloc(0));
      openFiles++;
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('error', () => {}); // the parser reports the same failure
      stream.on('end', () => {
        files[index] = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
        openFiles--;
        settle();
      });
    });
    parser.on('field', (name, value, _nameTruncated, valueTruncated) => {
      if (!(MULTIPART_FIELDS as readonly string[]).includes(name))
        return fail(new InvalidInputError(echo(name), `is not a known field (multipart takes the fields ${FIELD_LIST}, each at most once, and image files)`, { allowed: MULTIPART_FIELDS }));
      const field = name as MultipartField;
      if (fields[field] !== undefined) return fail(new InvalidInputError(field, `is sent more than once (multipart takes the fields ${FIELD_LIST}, each at most once)`));
      if (valueTruncated) return fail(new InvalidInputError(field, `is longer than ${MAX_FIELD_BYTES} bytes`, { max: MAX_FIELD_BYTES }));
      fields[field] = value;
    });
    parser.on('filesLimit', () =>
      fail(new AppError('LIMIT_EXCEEDED', `images: at most ${maxFiles} files (MAX_ITEMS_PER_REQUEST)`, { field: 'images', limit: 'MAX_ITEMS_PER_REQUEST', max: maxFiles })),
    );
    parser.on('fieldsLimit', () =>
      fail(new AppError('LIMIT_EXCEEDED', `body: at most ${MULTIPART_FIELDS.length} non-file fields (${FIELD_LIST})`, { field: 'body', limit: 'fields', max: MULTIPART_FIELDS.length, allowed: MULTIPART_FIELDS })),
    );
    parser.on('partsLimit', () => {
      const max = maxFiles + MULTIPART_FIELDS.length;
      fail(new AppError('LIMIT_EXCEEDED', `body: at most ${max} parts (MAX_ITEMS_PER_REQUEST=${maxFiles} image files and the fields ${FIELD_LIST})`, { field: 'body', limit: 'MAX_ITEMS_PER_REQUEST', max }));
    });
    parser.on('error', (err) => fail(refusal(err)));
    parser.on('finish', () => {
      finished = true;
      settle();
    });

    void (async () => {
      for (let offset = 0; offset < body.length && !failed; offset += FEED_BYTES) {
        await new Promise<void>((done) => parser.write(body.subarray(offset, offset + FEED_BYTES), () => done()));
        if ((offset + FEED_BYTES) % YIELD_BYTES === 0) await yieldToLoop();
      }
      if (!failed) parser.end();
    })();
  });
}

const isMultipart = (request: FastifyRequest) => /^multipart\/form-data(?:\s*;|$)/i.test(request.headers['content-type'] ?? '');

/**
 * The multipart/form-data parser, for the routes whose schema `consumes` it (/encode, /likelihood).
 * Other routes, and a Content-Type without a boundary, are refused before the body is read.
 */
export function registerMultipartParser(app: FastifyInstance, config: Config): void {
  const limits = { maxFiles: config.maxItemsPerRequest };
  app.addHook('preParsing', async (request, reply, payload) => {
    // only bodies a route would parse: not GET/HEAD, not unknown routes (their 404 comes first)
    if (!isMultipart(request) || request.method === 'GET' || request.method === 'HEAD' || request.is404) return payload;
    let refused: AppError | null = null;
    const consumes = (request.routeOptions.schema as { consumes?: string[] } | undefined)?.consumes;
    if (!consumes?.includes('multipart/form-data'))
      refused = new AppError('UNSUPPORTED_MEDIA_TYPE', `content-type: ${request.method} ${request.routeOptions.url ?? 'this route'} takes application/json only (multipart/form-data is for /encode and /likelihood)`, { field: 'content-type' });
    else if (!/;\s*boundary=/i.test(request.headers['content-type']!)) refused = malformed('the Content-Type header has no boundary parameter');
    if (refused) {
      // the body is never read: close the connection rather than drain it
      reply.header('connection', 'close');
      throw refused;
    }
    return payload;
  });
  app.addContentTypeParser('multipart/form-data', { parseAs: 'buffer' }, (request, body, done) => {
    parseMultipart(body as Buffer, request.headers, limits).then(
      (form) => done(null, form),
      (err: Error) => done(err, undefined),
    );
  });
}
