// The evaluation page in a real browser (Debian's chromium through playwright-core) against the
// real service on loopback: every number and image the page shows is compared with what the API
// answers for the same request. One server, one browser and one page for the whole file.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { mnistTestImages } from '../helpers/packages.js';
import { dataUrlBase64, getJson, greyPng, launchBrowser, likelihoodMultipart, onlyRefusals, pngGrey, postJson, SHIPPED_MODELS, startServer, VIEWPORTS, watchPage, type PageWatch, type Server } from './helpers.js';

let server: Server;
let browser: Browser;
let page: Page;
let watch: PageWatch;
let origin: string;
const cards = new Map<string, any>();

before(async () => {
  [server, browser] = await Promise.all([startServer(), launchBrowser()]);
  origin = server.origin;
  for (const c of (await getJson(origin, '/models')).models) cards.set(c.name, c);
  page = await browser.newPage({ viewport: VIEWPORTS.desktop });
  watch = watchPage(page, origin);
  await page.goto(`${origin}/`);
  await page.waitForSelector('body[data-ready="true"]');
});

after(async () => {
  await browser?.close();
  await server?.app.close();
});

const run = async (selector: string) => Number((await page.getAttribute(selector, 'data-run')) ?? '0');
/** Waits until a view has rendered a result after `before` (its data-run counter moved). */
const nextRun = (selector: string, before: number) => page.waitForFunction(([s, b]) => Number(document.querySelector<HTMLElement>(s as string)?.dataset.run ?? '0') > (b as number), [selector, before] as const);

async function pickModel(name: string): Promise<void> {
  if ((await page.inputValue('#model-select')) !== name) await page.selectOption('#model-select', name);
  await page.waitForSelector(`#model-card[data-model="${name}"]`);
  await page.waitForSelector(`#sample-grid[data-state="done"][data-model="${name}"]`);
}

/** The sample grid's hooks (its data-* attributes) and the images it shows. */
interface Grid {
  model: string;
  seed: string;
  temperature: string;
  count: string;
  kind: string;
  loglik: string;
  outputs?: string;
  srcs: string[];
}

/** What the grid shows, and the /sample answer for the same model, count, seed and temperature. */
async function gridAndApi() {
  const grid = (await page.$eval('#sample-grid', (el) => ({ ...(el as HTMLElement).dataset, srcs: Array.from(el.querySelectorAll('img'), (i) => i.src) }))) as unknown as Grid;
  // What was asked for is what the controls say, not only what came back.
  assert.equal(Number(grid.temperature), Number(await page.inputValue('#temperature')), 'the temperature sent is the slider\'s');
  assert.equal(grid.seed, await page.inputValue('#seed'), 'the seed sent is the field\'s');
  assert.equal(grid.count, await page.inputValue('#sample-count'));
  const card = cards.get(grid.model!);
  const body: Record<string, unknown> = { model: grid.model, count: Number(grid.count), seed: Number(grid.seed), temperature: Number(grid.temperature) };
  if (card.input.images) body.format = 'png';
  const api = await postJson(origin, '/sample', body);
  assert.equal(api.status, 200, JSON.stringify(api.body));
  return { grid, api: api.body };
}

function assertGridIsApi(grid: Grid, api: any): void {
  if (api.images) {
    assert.equal(grid.srcs.length, api.images.length);
    assert.deepEqual(grid.srcs.map(dataUrlBase64), api.images, `${grid.model}: the PNGs shown are /sample's, unchanged`);
  } else assert.deepEqual(JSON.parse(grid.outputs!), api.outputs, `${grid.model}: the plotted values are /sample's`);
  assert.deepEqual(JSON.parse(grid.loglik), api.logLikelihood);
}

test('the page loads with no console or page errors, and requests only its own server', async () => {
  await page.waitForSelector('#sample-grid[data-state="done"]');
  const { defaultModel } = await getJson(origin, '/models');
  assert.equal(await page.inputValue('#model-select'), defaultModel);
  assert.deepEqual(watch.errors, []);
  assert.deepEqual(watch.foreign, []);
  const paths = watch.requests.map((r) => new URL(r.url).pathname);
  for (const p of ['/', '/ui/app.js', '/ui/style.css', '/models', '/sample']) assert.ok(paths.includes(p), `the page asked for ${p}`);
  const res = await fetch(`${origin}/`);
  assert.match(res.headers.get('content-security-policy') ?? '', /script-src 'self'/);
});

test('every shipped model can be picked: its card renders and its samples are /sample\'s', async () => {
  assert.equal(SHIPPED_MODELS.length, 10);
  for (const name of SHIPPED_MODELS) {
    await pickModel(name);
    const card = cards.get(name);
    const text = await page.textContent('#model-card');
    assert.ok(text!.includes(card.family), `${name}: family shown`);
    assert.ok(text!.includes(card.quality.label), `${name}: quality protocol label shown`);
    assert.equal(await page.getAttribute('#model-card [data-field="testLogLikelihood"]', 'data-value'), String(card.quality.testLogLikelihood));
    assert.equal(await page.textContent('#model-card [data-field="testLogLikelihood"]'), card.quality.testLogLikelihood.toFixed(2));
    assert.equal(await page.textContent('#model-card [data-field="status"]'), 'ready');
    const { grid, api } = await gridAndApi();
    assertGridIsApi(grid, api);
    const d = card.input.size;
    if (card.input.images) assert.equal(grid.kind, 'image');
    else if (d === 2) {
      assert.equal(grid.kind, 'plane');
      assert.equal(await page.isVisible('#plane'), true, `${name}: the 2-D view is shown`);
    } else {
      assert.equal(grid.kind, 'tiles', `${name}: ${d} values per row drawn as tiles`);
      assert.equal(grid.srcs.length, Number(grid.count));
      assert.match(await page.textContent('#sample-caption') ?? '', /8×8 tile/);
    }
    if (d !== 2) assert.equal(await page.isVisible('#plane'), false, `${name}: no 2-D view`);
    const max = card.sampling.temperature.max;
    assert.equal(Number(await page.getAttribute('#temperature', 'max')), max, `${name}: the slider stops at the measured maximum`);
  }
  assert.deepEqual(watch.take(), []);
});

test('moving the temperature slider resamples, and the new images equal /sample\'s', async () => {
  await pickModel('glow-fashion');
  const before = await gridAndApi();
  const previous = await run('#sample-grid');
  await page.focus('#temperature');
  await page.keyboard.press('ArrowLeft');
  await nextRun('#sample-grid', previous);
  const after = await gridAndApi();
  assert.ok(Number(after.grid.temperature) < Number(before.grid.temperature), `${after.grid.temperature} < ${before.grid.temperature}`);
  assert.equal(await page.textContent('#temperature-value'), Number(after.grid.temperature).toFixed(2));
  assertGridIsApi(after.grid, after.api);
  assert.notDeepEqual(after.grid.srcs, before.grid.srcs);

  // A 2-D model: the plotted points follow the slider too.
  await pickModel('maf-checker');
  const p = await run('#sample-grid');
  await page.focus('#temperature');
  await page.keyboard.press('ArrowLeft');
  await page.keyboard.press('ArrowLeft');
  await nextRun('#sample-grid', p);
  await page.waitForSelector('#sample-grid[data-state="done"]');
  const moved = await gridAndApi();
  assert.equal(Number(moved.grid.temperature), Math.round((cards.get('maf-checker').sampling.temperature.default - 0.1) * 1000) / 1000);
  assertGridIsApi(moved.grid, moved.api);
  assert.equal(await page.getAttribute('#plane-overlay', 'data-samples'), moved.grid.count);
});

test('a new seed gives new samples, equal to /sample\'s for that seed', async () => {
  await pickModel('nice-mnist');
  const seed = await page.getAttribute('#sample-grid', 'data-seed');
  const previous = await run('#sample-grid');
  await page.click('#new-seed');
  await nextRun('#sample-grid', previous);
  const { grid, api } = await gridAndApi();
  assert.notEqual(grid.seed, seed);
  assert.equal(grid.seed, await page.inputValue('#seed'));
  assertGridIsApi(grid, api);
});

test('switching models quickly: the latest model wins, the earlier requests are cancelled', async () => {
  await page.selectOption('#model-select', 'realnvp-mnist');
  await page.selectOption('#model-select', 'ffjord-checker');
  await page.selectOption('#model-select', 'glow-fashion');
  await pickModel('glow-fashion');
  const { grid, api } = await gridAndApi();
  assertGridIsApi(grid, api);
  assert.equal(await page.isVisible('#plane'), false);
  assert.equal(await page.isVisible('#error'), false);
  assert.deepEqual(watch.take(), []);
});

// Two real test images: a Fashion-MNIST-like sample from the model itself, and an MNIST digit.
async function testImages() {
  const sample = await postJson(origin, '/sample', { model: 'glow-fashion', count: 1, seed: 11, temperature: 0.6, format: 'png' });
  const digit = greyPng(mnistTestImages(1, 0).pixels[0], 28, 28);
  return [
    { name: 'glow-sample.png', bytes: Buffer.from(sample.body.images[0], 'base64') },
    { name: 'mnist-7.png', bytes: digit },
  ];
}

async function assertResultsAre(api: any): Promise<void> {
  const shown = await page.$$eval('#anomaly-results li.result', (items) =>
    items.map((li) => Object.fromEntries(Array.from(li.querySelectorAll<HTMLElement>('[data-field]'), (el) => [el.dataset.field, { text: el.textContent, value: el.dataset.value }]))),
  );
  assert.equal(shown.length, api.results.length);
  api.results.forEach((r: any, i: number) => {
    const s = shown[i];
    const same = (field: string, value: number, digits: number) => {
      assert.equal(s[field]?.value, String(value), `result ${i + 1} ${field}: data-value`);
      assert.equal(s[field]?.text, value.toFixed(digits), `result ${i + 1} ${field}: text`);
    };
    same('logLikelihood', r.logLikelihood, 2);
    same('bitsPerDim', r.bitsPerDim, 4);
    same('anomalyScore', r.anomalyScore, 3);
    for (const [name, v] of Object.entries(r.scores)) {
      if (v === null) assert.equal(s[`score-${name}`], undefined, `null score ${name} not shown`);
      else same(`score-${name}`, v as number, 3);
    }
    assert.equal(s.isAnomaly.value, String(r.isAnomaly));
    assert.equal(s.isAnomaly.text, r.isAnomaly ? 'anomalous' : 'in-distribution');
  });
  assert.equal(await page.getAttribute('#calibration-histogram', 'data-markers'), String(api.results.length));
}

test('dropping image files shows exactly /likelihood\'s numbers, with the batch test', async () => {
  await pickModel('glow-fashion');
  const files = await testImages();
  const previous = await run('#anomaly-results');
  // A real drop event carrying a DataTransfer built in the page from the files' bytes.
  const transfer = await page.evaluateHandle((fs) => {
    const dt = new DataTransfer();
    for (const f of fs) dt.items.add(new File([Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0))], f.name, { type: 'image/png' }));
    return dt;
  }, files.map((f) => ({ name: f.name, b64: f.bytes.toString('base64') })));
  await page.dispatchEvent('#drop-zone', 'drop', { dataTransfer: transfer });
  await nextRun('#anomaly-results', previous);
  const api = await likelihoodMultipart(origin, 'glow-fashion', files, true);
  assert.equal(api.status, 200);
  await assertResultsAre(api.body);
  assert.equal(await page.isVisible('#batch-test'), true);
  const batch = await page.$$eval('#batch-test [data-field]', (els) => Object.fromEntries(els.map((e) => [(e as HTMLElement).dataset.field, { text: e.textContent, value: (e as HTMLElement).dataset.value }])));
  for (const f of ['statistic', 'threshold', 'pValue'] as const) {
    assert.equal(batch[f].value, String(api.body.batchTest[f]));
    assert.equal(batch[f].text, api.body.batchTest[f].toFixed(3));
  }
  assert.equal(batch.isOutOfDistribution.value, String(api.body.batchTest.isOutOfDistribution));
  const thumbs = await page.$$eval('#anomaly-results img', (imgs) => imgs.map((i) => (i as HTMLImageElement).src));
  assert.equal(thumbs.length, 2);
  for (const t of thumbs) assert.match(t, /^blob:/);
});

test('choosing one file with the file input scores it the same way, without a batch test', async () => {
  const [, digit] = await testImages();
  const previous = await run('#anomaly-results');
  await page.setInputFiles('#anomaly-files', { name: digit.name, mimeType: 'image/png', buffer: digit.bytes });
  await nextRun('#anomaly-results', previous);
  const api = await likelihoodMultipart(origin, 'glow-fashion', [digit], false);
  await assertResultsAre(api.body);
  assert.equal(await page.isVisible('#batch-test'), false);
  assert.deepEqual(watch.take(), []);
});

test('BAD CALL - an image of the wrong size shows the API\'s message in the alert area; the page keeps working', async () => {
  const small = greyPng(new Uint8Array(100).fill(128), 10, 10);
  const api = await likelihoodMultipart(origin, 'glow-fashion', [{ name: 'small.png', bytes: small }], false);
  assert.equal(api.status, 400);
  await page.setInputFiles('#anomaly-files', { name: 'small.png', mimeType: 'image/png', buffer: small });
  await page.waitForSelector('#anomaly-results[data-state="error"]');
  await page.waitForSelector('#error[role="alert"]:not([hidden])');
  assert.equal(await page.textContent('#error-message'), api.body.error.message);
  assert.equal(await page.textContent('#error-code'), api.body.error.code);
  assert.deepEqual(onlyRefusals(watch.take(), 400), [], 'nothing but the refused request is logged');
  // Still usable: a good file is scored, and the alert can be dismissed.
  await page.click('#error-close');
  assert.equal(await page.isVisible('#error'), false);
  const [, digit] = await testImages();
  const previous = await run('#anomaly-results');
  await page.setInputFiles('#anomaly-files', { name: digit.name, mimeType: 'image/png', buffer: digit.bytes });
  await nextRun('#anomaly-results', previous);
});

for (const model of ['glow-fashion', 'realnvp-mnist', 'nice-mnist']) {
  test(`interpolating between two samples (${model}): the end frames are the samples' pixels, the frames /interpolate's`, async () => {
    await pickModel(model);
    const { grid } = await gridAndApi();
    await page.click('#sample-grid [data-index="0"]');
    await page.click('#sample-grid [data-index="3"]');
    assert.equal(await page.getAttribute('#sample-grid [data-index="0"]', 'data-end'), 'A');
    assert.equal(await page.getAttribute('#sample-grid [data-index="3"]', 'data-end'), 'B');
    await page.fill('#interp-steps', '5');
    await page.selectOption('#interp-method', 'spherical');
    const previous = await run('#interp-frames');
    await page.click('#interp-button');
    await nextRun('#interp-frames', previous);
    const frames = await page.$$eval('#interp-frames img', (imgs) => imgs.map((i) => (i as HTMLImageElement).src));
    assert.equal(frames.length, 5);
    const ends = [dataUrlBase64(grid.srcs[0]), dataUrlBase64(grid.srcs[3])];
    assert.deepEqual(pngGrey(dataUrlBase64(frames[0])), pngGrey(ends[0]), 'frame 0 decodes to sample A');
    assert.deepEqual(pngGrey(dataUrlBase64(frames[4])), pngGrey(ends[1]), 'the last frame decodes to sample B');
    const api = await postJson(origin, '/interpolate', { model, images: ends, steps: 5, method: 'spherical', format: 'png' });
    assert.equal(api.status, 200, JSON.stringify(api.body));
    assert.deepEqual(frames.map(dataUrlBase64), api.body.images);
    const shown = await page.$$eval('#interp-frames [data-field="logLikelihood"]', (els) => els.map((e) => ({ text: e.textContent, value: (e as HTMLElement).dataset.value })));
    assert.deepEqual(shown, api.body.logLikelihood.map((v: number) => ({ text: v.toFixed(2), value: String(v) })));
  });
}

test('interpolating between two uploaded images: the end frames decode to the uploads', async () => {
  await pickModel('realnvp-mnist');
  const { pixels } = mnistTestImages(2, 30);
  const files = pixels.map((p) => greyPng(p, 28, 28));
  await page.setInputFiles('#interp-file-a', { name: 'a.png', mimeType: 'image/png', buffer: files[0] });
  await page.setInputFiles('#interp-file-b', { name: 'b.png', mimeType: 'image/png', buffer: files[1] });
  await page.waitForSelector('#interp-preview-b img');
  await page.fill('#interp-steps', '4');
  const previous = await run('#interp-frames');
  await page.click('#interp-button');
  await nextRun('#interp-frames', previous);
  const frames = await page.$$eval('#interp-frames img', (imgs) => imgs.map((i) => (i as HTMLImageElement).src));
  assert.equal(frames.length, 4);
  assert.deepEqual(pngGrey(dataUrlBase64(frames[0])), pixels[0]);
  assert.deepEqual(pngGrey(dataUrlBase64(frames[3])), pixels[1]);
});

test('BAD CALL - interpolating before both ends are chosen says so and sends nothing', async () => {
  await pickModel('glow-fashion');
  const interpolations = () => watch.requests.filter((r) => r.url.endsWith('/interpolate')).length;
  const asked = interpolations();
  await page.click('#interp-button');
  await page.waitForSelector('#error:not([hidden])');
  assert.match(await page.textContent('#error-message') ?? '', /Choose both ends/);
  assert.equal(interpolations(), asked);
  await page.click('#error-close');
});

test('2-D model: the heatmap renders, brighter where /likelihood says the density is higher', async () => {
  await pickModel('realnvp-moons');
  await page.waitForSelector('#heatmap[data-state="done"]');
  const info = await page.$eval('#heatmap', (c) => {
    const canvas = c as HTMLCanvasElement;
    const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
    const colours = new Set<number>();
    let opaque = 0;
    for (let i = 0; i < data.length; i += 4) {
      colours.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
      if (data[i + 3] === 255) opaque++;
    }
    return { size: canvas.width, colours: colours.size, opaque, window: JSON.parse(canvas.dataset.window!), grid: Number(canvas.dataset.grid), lo: Number(canvas.dataset.lo), hi: Number(canvas.dataset.hi) };
  });
  assert.equal(info.opaque, info.size * info.size, 'every pixel painted');
  assert.ok(info.colours > 100, `${info.colours} distinct colours`);
  assert.equal(info.grid, 64);
  // Score cell centres with the API, then compare the colours the page gave three cells far apart in density.
  const [x0, x1, y0, y1] = info.window;
  const cells: { i: number; j: number; point: number[] }[] = [];
  for (let j = 2; j < info.grid; j += 5) for (let i = 1; i < info.grid; i += 5) cells.push({ i, j, point: [x0 + ((i + 0.5) / info.grid) * (x1 - x0), y1 - ((j + 0.5) / info.grid) * (y1 - y0)] });
  const api = await postJson(origin, '/likelihood', { model: 'realnvp-moons', inputs: cells.map((c) => c.point), scores: ['nll'] });
  const scored = cells.map((c, k) => ({ ...c, logp: api.body.results[k].logLikelihood as number })).sort((a, b) => b.logp - a.logp);
  const top = scored[0];
  const mid = scored.reduce((best, c) => (Math.abs(c.logp - (info.hi - 5)) < Math.abs(best.logp - (info.hi - 5)) ? c : best));
  const bottom = scored[scored.length - 1];
  assert.ok(top.logp - mid.logp > 2 && mid.logp - bottom.logp > 2 && bottom.logp < info.lo, JSON.stringify([top.logp, mid.logp, bottom.logp, info.lo]));
  const lum = await page.$eval(
    '#heatmap',
    (c, probes) => {
      const canvas = c as HTMLCanvasElement;
      const ctx = canvas.getContext('2d')!;
      return (probes as { i: number; j: number }[]).map(({ i, j }) => {
        const px = ctx.getImageData(Math.floor(((i + 0.5) / 64) * canvas.width), Math.floor(((j + 0.5) / 64) * canvas.height), 1, 1).data;
        return 0.2126 * px[0] + 0.7152 * px[1] + 0.0722 * px[2];
      });
    },
    [top, mid, bottom].map(({ i, j }) => ({ i, j })),
  );
  assert.ok(lum[0] > lum[1] + 20 && lum[1] > lum[2] + 20, `luminance falls with density: ${lum.join(', ')}`);
  // The latent grid: 11 lines of constant z₁ and 11 of constant z₂, drawn on the overlay.
  await page.waitForSelector('#plane-overlay[data-lines="22"]');
  const drawn = await page.$eval('#plane-overlay', (c) => {
    const canvas = c as HTMLCanvasElement;
    const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
    let n = 0;
    for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n++;
    return n;
  });
  assert.ok(drawn > 5000, `${drawn} overlay pixels drawn`);
});

test('2-D model: typed points are interpolated and the path is /interpolate\'s', async () => {
  await pickModel('realnvp-moons');
  await page.fill('#interp-a-x', '-0.8');
  await page.fill('#interp-a-y', '0.4');
  await page.fill('#interp-b-x', '1.9');
  await page.fill('#interp-b-y', '0.2');
  await page.fill('#interp-steps', '6');
  await page.selectOption('#interp-method', 'linear');
  const previous = await run('#interp-frames');
  await page.click('#interp-button');
  await nextRun('#interp-frames', previous);
  const api = await postJson(origin, '/interpolate', { model: 'realnvp-moons', inputs: [[-0.8, 0.4], [1.9, 0.2]], steps: 6, method: 'linear' });
  assert.deepEqual(JSON.parse((await page.getAttribute('#interp-frames', 'data-outputs'))!), api.body.outputs);
  assert.deepEqual(JSON.parse((await page.getAttribute('#interp-frames', 'data-loglik'))!), api.body.logLikelihood);
  assert.equal(await page.getAttribute('#plane-overlay', 'data-path'), '6');
});

test('2-D model: a sample picked on the plane with the keyboard becomes an interpolation end', async () => {
  await page.focus('#plane-overlay');
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('Enter');
  const outputs = JSON.parse((await page.getAttribute('#sample-grid', 'data-outputs'))!);
  assert.equal(Number(await page.inputValue('#interp-a-x')), outputs[1][0]);
  assert.equal(Number(await page.inputValue('#interp-a-y')), outputs[1][1]);
  const ll = JSON.parse((await page.getAttribute('#sample-grid', 'data-loglik'))!);
  assert.equal(await page.getAttribute('#plane-readout', 'data-value'), String(ll[1]));
});

test('2-D model: typed points are scored like /likelihood scores them', async () => {
  await page.fill('#points-input', '0.5, -0.3\n4 4');
  const previous = await run('#anomaly-results');
  await page.click('#points-button');
  await nextRun('#anomaly-results', previous);
  const api = await postJson(origin, '/likelihood', { model: 'realnvp-moons', inputs: [[0.5, -0.3], [4, 4]], batchTest: true });
  await assertResultsAre(api.body);
  assert.deepEqual(watch.take(), []);
});

test('at 390 px wide nothing scrolls sideways (image and 2-D models, with results shown)', async () => {
  await page.setViewportSize(VIEWPORTS.phone);
  try {
    for (const model of ['realnvp-moons', 'glow-fashion', 'maf-digits']) {
      await pickModel(model);
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(width <= 390, `${model}: scrollWidth ${width}`);
    }
  } finally {
    await page.setViewportSize(VIEWPORTS.desktop);
  }
});

test('every input, select, button and textarea has an accessible name', async () => {
  await pickModel('glow-fashion');
  for (const model of ['glow-fashion', 'realnvp-moons']) {
    await pickModel(model);
    const unnamed = await page.evaluate(() =>
      Array.from(document.querySelectorAll<HTMLElement>('input, select, button, textarea'))
        .filter((el) => {
          const labels = (el as HTMLInputElement).labels;
          const labelled = labels && Array.from(labels).some((l) => l.textContent!.trim() !== '');
          const aria = el.getAttribute('aria-label') || el.getAttribute('aria-labelledby');
          const text = el.tagName === 'BUTTON' && el.textContent!.trim() !== '';
          return !(labelled || aria || text);
        })
        .map((el) => el.outerHTML.slice(0, 120)),
    );
    assert.deepEqual(unnamed, [], `${model}: controls without a name`);
  }
});

test('Tab reaches the main controls, with a visible focus ring', async () => {
  await pickModel('glow-fashion');
  await page.evaluate(() => {
    (document.activeElement as HTMLElement | null)?.blur();
    window.scrollTo(0, 0);
  });
  const reached = new Set<string>();
  let ring = '';
  for (let i = 0; i < 80; i++) {
    await page.keyboard.press('Tab');
    const [id, outline] = await page.evaluate(() => {
      const el = document.activeElement as HTMLElement;
      return [el?.id ?? '', getComputedStyle(el).outlineStyle];
    });
    if (id) reached.add(id);
    if (id === 'seed') ring = outline;
  }
  for (const id of ['model-select', 'temperature', 'seed', 'sample-count', 'new-seed', 'sample-button', 'interp-file-a', 'interp-file-b', 'interp-steps', 'interp-method', 'interp-button', 'anomaly-files', 'anomaly-resize']) assert.ok(reached.has(id), `Tab reaches #${id}`);
  assert.equal(ring, 'solid', 'focused controls show an outline');
});

test('every view has its desktop and phone screenshots in docs/screenshots', async () => {
  const views = await page.$$eval('section[data-view]', (els) => els.map((e) => (e as HTMLElement).dataset.view!));
  assert.ok(views.length >= 5, views.join());
  for (const v of views)
    for (const size of Object.keys(VIEWPORTS)) {
      const file = new URL(`../../docs/screenshots/${v}-${size}.png`, import.meta.url);
      assert.ok(existsSync(file), `docs/screenshots/${v}-${size}.png is missing: run npx tsx tools/screenshots.ts`);
    }
});

test('no console errors, page errors or foreign requests over the whole session', () => {
  assert.deepEqual(watch.errors, []);
  assert.deepEqual(watch.foreign, []);
});
