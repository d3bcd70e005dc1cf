// Browser-test helpers: the real service listening on loopback, Debian's chromium driven by
// playwright-core (never a downloaded browser), and a watch on what the page logs and requests.
import { existsSync, readdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { chromium, type Browser, type Page } from 'playwright-core';
import { PNG } from 'pngjs';
import { buildApp } from '../../src/app.js';
import { loadConfig, type ConfigSchema } from '../../src/config/config.js';
import { MODEL_DIR } from '../helpers/app.js';

export const CHROMIUM = '/usr/bin/chromium';

export const BROWSER_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync', '--disable-quic'];

/** The page's views and the two screenshot sizes (tools/screenshots.ts writes one file per pair). */
export const VIEWPORTS = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } } as const;

export const SHIPPED_MODELS = readdirSync(MODEL_DIR)
  .filter((d) => existsSync(join(MODEL_DIR, d, 'flow.json')))
  .sort();

export interface Server {
  app: FastifyInstance;
  origin: string;
}

/** The service on 127.0.0.1 (a free port), every model warm. */
export async function startServer(overrides: Partial<Static<typeof ConfigSchema>> = {}): Promise<Server> {
  const config = loadConfig({}, { modelDir: MODEL_DIR, logLevel: 'silent', intraOpThreads: 1, ...overrides });
  const app = await buildApp(config);
  await app.listen({ host: '127.0.0.1', port: 0 });
  await app.flowserve.whenReady();
  const { port } = app.server.address() as AddressInfo;
  return { app, origin: `http://127.0.0.1:${port}` };
}

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: the browser tests need Debian's chromium (.ci/run installs it with apt: apt-get install -y chromium). No browser is ever downloaded.`);
  return chromium.launch({ executablePath: CHROMIUM, args: BROWSER_ARGS });
}

export interface PageWatch {
  /** Console errors and uncaught page errors, in order. */
  errors: string[];
  /** Requests to anything but the test server (data: and blob: URLs are not network requests). */
  foreign: string[];
  /** Every request: URL and Authorization header. */
  requests: { url: string; authorization?: string }[];
  /** The errors since the last call, then forgets them. */
  take(): string[];
}

export function watchPage(page: Page, origin: string): PageWatch {
  const w: PageWatch = {
    errors: [],
    foreign: [],
    requests: [],
    take() {
      return w.errors.splice(0);
    },
  };
  page.on('console', (m) => {
    if (m.type() === 'error') w.errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => w.errors.push(`pageerror: ${e.message}`));
  page.on('request', (r) => {
    const url = r.url();
    w.requests.push({ url, authorization: r.headers().authorization });
    if (!url.startsWith(`${origin}/`) && !url.startsWith('data:') && !url.startsWith('blob:')) w.foreign.push(url);
  });
  return w;
}

/** Chrome logs every 4xx answer as "Failed to load resource": expected in BAD CALL tests, nothing else is. */
export const onlyRefusals = (errors: string[], status: number) => errors.filter((e) => !e.includes(`the server responded with a status of ${status}`));

export async function postJson<T = any>(origin: string, path: string, body: unknown, key?: string): Promise<{ status: number; body: T }> {
  const res = await fetch(origin + path, { method: 'POST', headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as T };
}

export async function getJson<T = any>(origin: string, path: string, key?: string): Promise<T> {
  const res = await fetch(origin + path, { headers: key ? { authorization: `Bearer ${key}` } : {} });
  return (await res.json()) as T;
}

/** POST /likelihood as the page sends it: multipart, files in field "images". */
export async function likelihoodMultipart(origin: string, model: string, files: { name: string; bytes: Buffer }[], batchTest: boolean): Promise<{ status: number; body: any }> {
  const form = new FormData();
  form.append('model', model);
  if (batchTest) form.append('batchTest', 'true');
  for (const f of files) form.append('images', new Blob([new Uint8Array(f.bytes)], { type: 'image/png' }), f.name);
  const res = await fetch(`${origin}/likelihood`, { method: 'POST', body: form });
  return { status: res.status, body: await res.json() };
}

/** 8-bit grey pixels → PNG bytes (pngjs). */
export function greyPng(pixels: Uint8Array, width: number, height: number): Buffer {
  const png = new PNG({ width, height, colorType: 0, inputColorType: 0, inputHasAlpha: false });
  png.data = Buffer.from(pixels);
  return PNG.sync.write(png, { colorType: 0, inputColorType: 0, inputHasAlpha: false });
}

/** A PNG (base64 or bytes) → its grey pixels (the red channel of pngjs's RGBA). */
export function pngGrey(png: string | Buffer): Uint8Array {
  const img = PNG.sync.read(typeof png === 'string' ? Buffer.from(png, 'base64') : png);
  const out = new Uint8Array(img.width * img.height);
  for (let i = 0; i < out.length; i++) out[i] = img.data[i * 4];
  return out;
}

export const dataUrlBase64 = (src: string) => src.replace(/^data:image\/png;base64,/, '');
