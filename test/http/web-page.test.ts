// The web page's files (src/http/web-page.ts) over app.inject: served from this server only, with a
// policy that keeps the page on it, open without the API key, cached by ETag.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { testApp } from '../helpers/app.js';
import { PAGE_CSP, PAGE_ROUTES } from '../../src/http/web-page.js';

let app: FastifyInstance;
before(async () => {
  app = await testApp({ apiKey: 'page-test-key' });
});
after(() => app.close());

test('GET / is the page; its script and style sheet are served from this server, the script bundled from web/src', async () => {
  const page = await app.inject('/');
  assert.equal(page.statusCode, 200);
  assert.match(page.headers['content-type'] as string, /^text\/html/);
  assert.match(page.body, /<script type="module" src="\/ui\/app\.js"><\/script>/);
  assert.match(page.body, /<link rel="stylesheet" href="\/ui\/style\.css">/);
  const js = await app.inject('/ui/app.js');
  assert.equal(js.statusCode, 200);
  assert.match(js.headers['content-type'] as string, /^text\/javascript/);
  assert.doesNotMatch(js.body, /^\s*import\s.+from\s/m, 'the bundle imports nothing');
  assert.ok(js.body.length > 1000);
  const css = await app.inject('/ui/style.css');
  assert.equal(css.statusCode, 200);
  assert.match(css.headers['content-type'] as string, /^text\/css/);
});

test('nothing the page loads comes from another host, and the policy allows no other host', async () => {
  for (const route of PAGE_ROUTES) {
    const res = await app.inject(route);
    assert.equal(res.statusCode, 200, route);
    assert.equal(res.headers['content-security-policy'], PAGE_CSP);
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    // URLs the code could fetch; XML namespaces (w3.org) name, never load
    const urls = res.body.match(/(?:https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}[^\s"'`)]*/gi) ?? [];
    assert.deepEqual(urls.filter((u) => !/^http:\/\/www\.w3\.org\//.test(u)), [], `${route} names outside URLs`);
  }
  assert.doesNotMatch(PAGE_CSP, /\*|https?:|unsafe/);
  assert.match(PAGE_CSP, /connect-src 'self'/);
});

test('the page loads without the API key; the API behind it still needs it', async () => {
  assert.equal((await app.inject('/')).statusCode, 200);
  assert.equal((await app.inject('/models')).statusCode, 401);
  const ok = await app.inject({ url: '/models', headers: { authorization: 'Bearer page-test-key' } });
  assert.equal(ok.statusCode, 200);
});

test('an unchanged file answers 304 to its ETag', async () => {
  for (const route of ['/', '/ui/app.js']) {
    const first = await app.inject(route);
    const etag = first.headers.etag as string;
    assert.match(etag, /^"[A-Za-z0-9_-]+"$/);
    assert.equal(first.headers['cache-control'], 'no-cache');
    const again = await app.inject({ url: route, headers: { 'if-none-match': etag } });
    assert.equal(again.statusCode, 304);
    assert.equal(again.body, '');
  }
});

test('BAD CALL - files that are not the page\'s are not served (no path traversal, no listing)', async () => {
  for (const url of ['/ui/', '/ui/../package.json', '/ui/%2e%2e/package.json', '/ui/main.ts', '/web/index.html', '/ui/app.js.map']) {
    const res = await app.inject({ url, headers: { authorization: 'Bearer page-test-key' } });
    assert.equal(res.statusCode, 404, url);
    assert.doesNotMatch(res.body, /flowserve@|"dependencies"/);
  }
});

test('BAD CALL - POST to the page is not a route', async () => {
  const res = await app.inject({ method: 'POST', url: '/', headers: { authorization: 'Bearer page-test-key' }, payload: {} });
  assert.equal(res.statusCode, 404);
});
