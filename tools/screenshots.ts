// Screenshots of every view of the web page (web/), at 1280×800 and 390×844, into
// docs/screenshots/<view>-<desktop|phone>.png. The service runs in-process on loopback on the
// shipped models, as in the browser tests; the browser is Debian's chromium (never downloaded).
//   npx tsx tools/screenshots.ts [--out docs/screenshots]
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Page } from 'playwright-core';
import { mnistTestImages } from '../test/helpers/packages.js';
import { greyPng, launchBrowser, postJson, startServer, VIEWPORTS } from '../test/web/helpers.js';

const ROOT = new URL('..', import.meta.url).pathname;
const { values: args } = parseArgs({ options: { out: { type: 'string' } } });
const OUT = resolve(args.out ?? join(ROOT, 'docs', 'screenshots'));

/** The views (the page's section[data-view] ids): a browser test checks each has both files. */
const VIEWS = ['model', 'samples', 'plane', 'interpolation', 'anomaly'] as const;

async function pick(page: Page, model: string): Promise<void> {
  if ((await page.inputValue('#model-select')) !== model) await page.selectOption('#model-select', model);
  await page.waitForSelector(`#sample-grid[data-state="done"][data-model="${model}"]`);
}

async function nextRun(page: Page, selector: string, act: () => Promise<unknown>): Promise<void> {
  const before = Number((await page.getAttribute(selector, 'data-run')) ?? '0');
  await act();
  await page.waitForFunction(([s, b]) => Number(document.querySelector<HTMLElement>(s as string)?.dataset.run ?? '0') > (b as number), [selector, before] as const);
}

async function shoot(page: Page, view: (typeof VIEWS)[number], size: string): Promise<void> {
  const file = join(OUT, `${view}-${size}.png`);
  await page.locator(`section[data-view="${view}"]`).screenshot({ path: file, animations: 'disabled' });
  console.log(`wrote ${file}`);
}

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  const [server, browser] = await Promise.all([startServer(), launchBrowser()]);
  try {
    // Scored images: two of the model's own samples (in distribution) and two MNIST digits (not).
    const fashion = await postJson(server.origin, '/sample', { model: 'glow-fashion', count: 2, seed: 5, temperature: 0.6, format: 'png' });
    const files = [
      ...fashion.body.images.map((b64: string, i: number) => ({ name: `fashion-sample-${i + 1}.png`, b64 })),
      ...mnistTestImages(2, 0).pixels.map((p, i) => ({ name: `mnist-digit-${i + 1}.png`, b64: greyPng(p, 28, 28).toString('base64') })),
    ];
    for (const [size, viewport] of Object.entries(VIEWPORTS)) {
      const page = await browser.newPage({ viewport });
      page.on('pageerror', (e) => console.error('page error:', e.message));
      await page.goto(`${server.origin}/`);
      await page.waitForSelector('body[data-ready="true"]');
      // The sticky header would be drawn over the top of tall sections in element screenshots.
      await page.evaluate(() => ((document.querySelector('.top') as HTMLElement).style.position = 'static'));

      await pick(page, 'glow-fashion');
      await shoot(page, 'model', size);
      await page.hover('#sample-grid [data-index="2"]');
      await shoot(page, 'samples', size);

      await page.click('#sample-grid [data-index="1"]');
      await page.click('#sample-grid [data-index="6"]');
      await page.fill('#interp-steps', '10');
      await nextRun(page, '#interp-frames', () => page.click('#interp-button'));
      await shoot(page, 'interpolation', size);

      await nextRun(page, '#anomaly-results', async () => {
        const transfer = await page.evaluateHandle((fs) => {
          const dt = new DataTransfer();
          for (const f of fs) dt.items.add(new File([Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0))], f.name, { type: 'image/png' }));
          return dt;
        }, files);
        await page.dispatchEvent('#drop-zone', 'drop', { dataTransfer: transfer });
      });
      await shoot(page, 'anomaly', size);

      await pick(page, 'realnvp-moons');
      await page.waitForSelector('#plane-overlay[data-lines="22"]');
      for (const [id, v] of [['#interp-a-x', '-0.9'], ['#interp-a-y', '0.3'], ['#interp-b-x', '1.9'], ['#interp-b-y', '0.1']]) await page.fill(id, v);
      await nextRun(page, '#interp-frames', () => page.click('#interp-button'));
      await page.locator('#plane-overlay').hover({ position: { x: 120, y: 120 } });
      await shoot(page, 'plane', size);
      await page.close();
    }
  } finally {
    await browser.close();
    await server.app.close();
  }
}

await main();
