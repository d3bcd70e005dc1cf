// Swagger UI's "Try it out" sends the OpenAPI document's examples: every request example must
// succeed, and every error example must be what the service answers with that status.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { testApp } from '../helpers/app.js';
import { STATUS_BY_CODE } from '../../src/errors.js';
import { toAppError } from '../../src/http/error-handler.js';
import { loadConfig } from '../../src/config/config.js';

let app: FastifyInstance;
before(async () => {
  app = await testApp();
});
after(() => app.close());

type Doc = { paths: Record<string, Record<string, { requestBody?: { content: Record<string, { example?: unknown }> }; responses: Record<string, { content?: Record<string, { example?: { error: { code: string; message: string } } }> }> }>> };

test('every request example in the OpenAPI document succeeds', async () => {
  const doc = app.swagger() as unknown as Doc;
  let tried = 0;
  for (const [path, ops] of Object.entries(doc.paths))
    for (const [method, op] of Object.entries(ops)) {
      const ex = op.requestBody?.content['application/json']?.example;
      if (ex === undefined) continue;
      const res = await app.inject({ method: method.toUpperCase() as 'POST', url: path, payload: ex as object });
      assert.equal(res.statusCode, 200, `${method} ${path} example: ${res.body.slice(0, 300)}`);
      tried++;
    }
  assert.ok(tried >= 4, `examples for /encode, /decode, /sample, /likelihood (tried ${tried})`);
});

test('every error example carries a code of its status, with the message the service sends', async () => {
  const doc = app.swagger() as unknown as Doc;
  const examples = new Map<string, { code: string; message: string }>();
  for (const ops of Object.values(doc.paths))
    for (const op of Object.values(ops))
      for (const [status, r] of Object.entries(op.responses ?? {})) {
        const ex = r.content?.['application/json']?.example;
        if (!ex || status === '200') continue;
        assert.equal(String(STATUS_BY_CODE[ex.error.code as keyof typeof STATUS_BY_CODE]), status, `${ex.error.code} under ${status}`);
        examples.set(status, ex.error);
      }
  for (const s of ['400', '401', '404', '413', '415', '429', '500', '503', '504']) assert.ok(examples.has(s), `an example for ${s}`);

  // the ones a request can trigger here, triggered
  const bad = await app.inject({ method: 'POST', url: '/encode', payload: { model: 'glow-fashion', inputs: [new Array(783).fill(0.5)] } });
  assert.equal(bad.json().error.message, examples.get('400')!.message);
  const missing = await app.inject({ method: 'POST', url: '/sample', payload: { model: 'glow-fashoin', count: 1 } });
  assert.equal(missing.json().error.message, examples.get('404')!.message);
  const text = await app.inject({ method: 'POST', url: '/sample', headers: { 'content-type': 'text/plain' }, payload: 'hi' });
  assert.equal(text.statusCode, 415);
  assert.equal(text.json().error.code, examples.get('415')!.code);
  const config = loadConfig({}, {});
  assert.equal(toAppError(Object.assign(new Error('x'), { code: 'FST_ERR_CTP_BODY_TOO_LARGE', statusCode: 413 }), config).message, examples.get('413')!.message);
  const keyed = await testApp({ apiKey: 'k'.repeat(32) });
  try {
    const denied = await keyed.inject({ method: 'POST', url: '/sample', payload: { count: 1 } });
    assert.equal(denied.statusCode, 401);
    assert.equal(denied.json().error.message, examples.get('401')!.message);
  } finally {
    await keyed.close();
  }
});
