// Builds the app without listening, on the shipped models (or a given folder), and waits until
// every model is warm.
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { loadConfig, type ConfigSchema } from '../../src/config/config.js';
import type { Static } from '@sinclair/typebox';

export const MODEL_DIR = new URL('../../models/', import.meta.url).pathname;

export async function testApp(overrides: Partial<Static<typeof ConfigSchema>> = {}): Promise<FastifyInstance> {
  const config = loadConfig({}, { modelDir: MODEL_DIR, logLevel: 'silent', intraOpThreads: 1, ...overrides });
  const app = await buildApp(config);
  await app.ready();
  await app.flowserve.whenReady();
  return app;
}

export async function post(app: FastifyInstance, url: string, payload: unknown) {
  const res = await app.inject({ method: 'POST', url, payload: payload as object });
  return { status: res.statusCode, body: res.json(), headers: res.headers };
}
