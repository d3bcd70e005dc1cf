import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { decodeImage, encodePng, losslessPng } from '../../src/imaging/image-codec.js';
import { mnistTestImages } from '../helpers/packages.js';

const spec = { channels: 1, height: 28, width: 28, maxPixels: 1 << 20, resize: false };

test('losslessPng: valid PNGs that decode to the same pixels, within 10 % of sharp at maximum compression', async () => {
  const { pixels } = mnistTestImages(16);
  const pngs = await losslessPng(pixels, 1, 28, 28);
  let ours = 0, theirs = 0;
  for (let i = 0; i < pixels.length; i++) {
    assert.deepEqual(await decodeImage(pngs[i], spec, 'x'), pixels[i]);
    ours += pngs[i].length;
    theirs += (await sharp(pixels[i], { raw: { width: 28, height: 28, channels: 1 } }).toColourspace('b-w').png({ compressionLevel: 9, adaptiveFiltering: true }).toBuffer()).length;
  }
  assert.ok(Math.abs(ours / theirs - 1) < 0.1, `pngjs ${ours} vs sharp ${theirs} bytes`);
});

test('encodePng writes single-channel PNGs that round-trip', async () => {
  const { pixels } = mnistTestImages(1, 3);
  const png = await encodePng(pixels[0], 1, 28, 28);
  const meta = await sharp(png).metadata();
  assert.equal(meta.channels, 1);
  assert.deepEqual(await decodeImage(png, spec, 'x'), pixels[0]);
});

test('colour images: 3-channel round trip in CHW order', async () => {
  const chw = Uint8Array.from({ length: 3 * 4 * 5 }, (_, i) => (i * 37) % 256);
  const png = await encodePng(chw, 3, 4, 5);
  assert.deepEqual(await decodeImage(png, { channels: 3, height: 4, width: 5, maxPixels: 100, resize: false }, 'x'), chw);
  const [lossless] = await losslessPng([chw], 3, 4, 5);
  assert.deepEqual(await decodeImage(lossless, { channels: 3, height: 4, width: 5, maxPixels: 100, resize: false }, 'x'), chw);
});
