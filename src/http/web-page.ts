// The web page (web/): GET / is its HTML, GET /ui/* its script and style sheet. The script is
// web/src/main.ts bundled by esbuild (the bundler tsx already runs on) the first time it is asked
// for, and kept in memory: nothing is fetched from the network, at build time or at run time, and
// the Content-Security-Policy lets the page talk to this server only. The page holds no secret, so
// these routes stay open when API_KEY is set; the page asks for the key and sends it on API calls.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../errors.js';

const WEB_DIR = fileURLToPath(new URL('../../web/', import.meta.url));

/** The page's own files only; images are data: or blob: URLs the page makes from API answers. */
export const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "form-action 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** The routes the page is served from (open without the API key: src/http/auth.ts). */
export const PAGE_ROUTES = ['/', '/ui/app.js', '/ui/style.css', '/ui/icon.svg'] as const;

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

const asset = (body: Buffer | string, type: string): Asset => {
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(body);
  return { body: buf, type, etag: `"${createHash('sha256').update(buf).digest('base64url').slice(0, 27)}"` };
};

async function bundle(): Promise<Asset> {
  // Imported here so that a service that never serves the page never loads the bundler.
  const { build } = await import('esbuild');
  const out = await build({
    entryPoints: [`${WEB_DIR}src/main.ts`],
    bundle: true,
    write: false,
    format: 'esm',
    target: 'es2020',
    platform: 'browser',
    minify: true,
    legalComments: 'none',
    logLevel: 'silent',
    tsconfig: `${WEB_DIR}tsconfig.json`,
  });
  return asset(Buffer.from(out.outputFiles[0].contents), 'text/javascript; charset=utf-8');
}

const LOADERS: Record<(typeof PAGE_ROUTES)[number], () => Promise<Asset>> = {
  '/': async () => asset(await readFile(`${WEB_DIR}index.html`), 'text/html; charset=utf-8'),
  '/ui/app.js': bundle,
  '/ui/style.css': async () => asset(await readFile(`${WEB_DIR}style.css`), 'text/css; charset=utf-8'),
  '/ui/icon.svg': async () => asset(await readFile(`${WEB_DIR}icon.svg`), 'image/svg+xml'),
};

/** Registers the page's routes on the app (not on a prefix: the page is the root). */
export async function webPage(app: FastifyInstance): Promise<void> {
  // Built once per process; a failure is logged and retried on the next request.
  const cache = new Map<string, Promise<Asset>>();
  const load = (route: (typeof PAGE_ROUTES)[number]): Promise<Asset> => {
    let p = cache.get(route);
    if (!p) {
      p = LOADERS[route]();
      cache.set(route, p);
      p.catch(() => cache.delete(route));
    }
    return p;
  };

  for (const route of PAGE_ROUTES) {
    app.get(route, { schema: { hide: true } }, async (request: FastifyRequest, reply: FastifyReply) => {
      let a: Asset;
      try {
        a = await load(route);
      } catch (err) {
        request.log.error({ err, route }, 'the web page could not be built');
        throw new AppError('INTERNAL', 'the web page could not be built; see the server log');
      }
      reply
        .header('content-security-policy', PAGE_CSP)
        .header('x-content-type-options', 'nosniff')
        .header('referrer-policy', 'no-referrer')
        .header('cache-control', 'no-cache')
        .header('etag', a.etag)
        .type(a.type);
      if (request.headers['if-none-match'] === a.etag) return reply.code(304).send();
      return reply.send(a.body);
    });
  }
}
