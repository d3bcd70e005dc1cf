// The page against a server with API_KEY set (and a package that fails to load): it asks for the
// key once, sends it on every call, keeps it in memory only, asks again after a wrong key, and shows
// unavailable models with their reason.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { MODEL_DIR } from '../helpers/app.js';
import { getJson, launchBrowser, onlyRefusals, startServer, VIEWPORTS, watchPage, type PageWatch, type Server } from './helpers.js';

const KEY = 'secret';
let server: Server;
let browser: Browser;
let modelDir: string;

before(async () => {
  // Two working models and one refused at load (its manifest names another folder).
  modelDir = mkdtempSync(join(tmpdir(), 'flowserve-web-'));
  for (const m of ['glow-fashion', 'realnvp-moons']) symlinkSync(join(MODEL_DIR, m), join(modelDir, m));
  cpSync(join(MODEL_DIR, 'realnvp-checker'), join(modelDir, 'misnamed-flow'), { recursive: true });
  [server, browser] = await Promise.all([startServer({ modelDir, apiKey: KEY }), launchBrowser()]);
});

after(async () => {
  await browser?.close();
  await server?.app.close();
  rmSync(modelDir, { recursive: true, force: true });
});

async function open(): Promise<{ context: BrowserContext; page: Page; watch: PageWatch }> {
  const context = await browser.newContext({ viewport: VIEWPORTS.desktop });
  const page = await context.newPage();
  const watch = watchPage(page, server.origin);
  await page.goto(`${server.origin}/`);
  return { context, page, watch };
}

async function enterKey(page: Page, key: string): Promise<void> {
  await page.waitForSelector('#key-dialog[open]');
  await page.fill('#key-input', key);
  await page.press('#key-input', 'Enter');
}

test('with API_KEY set the page asks for the key once, then works, and stores it nowhere', async () => {
  const { context, page, watch } = await open();
  await enterKey(page, KEY);
  await page.waitForSelector('#sample-grid[data-state="done"][data-model="glow-fashion"]');
  await page.selectOption('#model-select', 'realnvp-moons');
  await page.waitForSelector('#sample-grid[data-state="done"][data-model="realnvp-moons"]');
  await page.waitForSelector('#heatmap[data-state="done"]');
  assert.equal(await page.getAttribute('#key-dialog', 'data-prompts'), '1', 'asked once');
  assert.equal(await page.isVisible('#key-dialog'), false);
  const api = watch.requests.filter((r) => !['/', '/ui/app.js', '/ui/style.css', '/ui/icon.svg'].includes(new URL(r.url).pathname));
  assert.ok(api.length > 5);
  assert.equal(api[0].authorization, undefined, 'the first call goes without a key and is refused');
  for (const r of api.slice(1)) assert.equal(r.authorization, `Bearer ${KEY}`, r.url);
  for (const r of watch.requests) assert.ok(!r.url.includes(KEY), `no key in ${r.url}`);
  const stored = await page.evaluate(async () => ({
    local: localStorage.length,
    session: sessionStorage.length,
    cookie: document.cookie,
    idb: (await indexedDB.databases()).length,
    url: location.href,
  }));
  assert.deepEqual(stored, { local: 0, session: 0, cookie: '', idb: 0, url: `${server.origin}/` });
  assert.deepEqual(await context.cookies(), []);
  assert.deepEqual(onlyRefusals(watch.errors, 401), []);
  assert.deepEqual(watch.foreign, []);
  await context.close();
});

test('BAD CALL - a wrong key shows the refusal and asks again; the right key then works', async () => {
  const { context, page, watch } = await open();
  await enterKey(page, 'wrong');
  await page.waitForSelector('#key-dialog[open][data-prompts="2"]');
  assert.match((await page.textContent('#key-message'))!, /refused.*missing or invalid API key/);
  assert.equal(await page.getAttribute('#key-input', 'type'), 'password');
  await enterKey(page, KEY);
  await page.waitForSelector('#sample-grid[data-state="done"][data-model="glow-fashion"]');
  assert.equal(await page.isVisible('#error'), false);
  assert.deepEqual(onlyRefusals(watch.errors, 401), []);
  await context.close();
});

test('BAD CALL - cancelling the key dialog shows the error; Retry asks again and then works', async () => {
  const { context, page } = await open();
  await page.waitForSelector('#key-dialog[open]');
  await page.click('#key-cancel');
  await page.waitForSelector('#error:not([hidden])');
  assert.equal(await page.textContent('#error-code'), 'UNAUTHORIZED');
  assert.equal(await page.getAttribute('body', 'data-ready'), 'true');
  await page.click('#retry-models');
  await enterKey(page, KEY);
  await page.waitForSelector('#sample-grid[data-state="done"][data-model="glow-fashion"]');
  assert.equal(await page.getAttribute('#key-dialog', 'data-prompts'), '2');
  assert.equal(await page.isVisible('#error'), false);
  await context.close();
});

test('a model that failed to load is listed as unavailable with its reason, and nothing is asked of it', async () => {
  const card = (await getJson(server.origin, '/models/misnamed-flow', KEY)) as { status: string; reason: string };
  assert.equal(card.status, 'unavailable');
  const { context, page, watch } = await open();
  await enterKey(page, KEY);
  await page.waitForSelector('#sample-grid[data-state="done"]');
  assert.equal(await page.textContent('#model-select option[value="misnamed-flow"]'), 'misnamed-flow (unavailable)');
  const calls = watch.requests.length;
  await page.selectOption('#model-select', 'misnamed-flow');
  await page.waitForSelector('#model-card[data-model="misnamed-flow"]');
  assert.equal(await page.textContent('#model-card [data-field="status"]'), 'unavailable');
  assert.ok((await page.textContent('#model-card [data-field="reason"]'))!.includes(card.reason));
  for (const id of ['#sample-button', '#new-seed', '#temperature', '#interp-button']) assert.equal(await page.isDisabled(id), true, `${id} disabled`);
  assert.equal(watch.requests.length, calls, 'no API call for an unavailable model');
  await context.close();
});
