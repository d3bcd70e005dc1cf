import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import charlsFactory from '@cornerstonejs/codec-charls/wasmjs';
import { decodeImages, encodePng, losslessJpegLs, losslessPng } from '../../src/imaging/image-codec.js';

const decodeOne = async (buf: Buffer, spec: Parameters<typeof decodeImages>[1], field: string) => (await decodeImages([buf], spec, field, Infinity))[0];
import { mnistTestImages } from '../helpers/packages.js';
import { Rng } from '../../src/flow/random.js';

const spec = { channels: 1, height: 28, width: 28, maxPixels: 1 << 20, resize: false };

test('losslessPng: valid PNGs that decode to the same pixels, within 10 % of sharp at maximum compression', async () => {
  const { pixels } = mnistTestImages(16);
  const pngs = await losslessPng(pixels, 1, 28, 28);
  let ours = 0, theirs = 0;
  for (let i = 0; i < pixels.length; i++) {
    assert.deepEqual(await decodeOne(pngs[i], spec, 'x'), pixels[i]);
    ours += pngs[i].length;
    theirs += (await sharp(pixels[i], { raw: { width: 28, height: 28, channels: 1 } }).toColourspace('b-w').png({ compressionLevel: 9, adaptiveFiltering: true }).toBuffer()).length;
  }
  assert.ok(Math.abs(ours / theirs - 1) < 0.1, `pngjs ${ours} vs sharp ${theirs} bytes`);
});

/** Decode a JPEG-LS stream with CharLS's own decoder: planar pixels and the frame it declares. */
async function decodeJpegLs(code: Uint8Array): Promise<{ pixels: Uint8Array; frame: { width: number; height: number; componentCount: number } }> {
  const charls = await charlsFactory();
  const decoder = new charls.JpegLSDecoder();
  try {
    decoder.getEncodedBuffer(code.length).set(code);
    decoder.decode();
    return { pixels: new Uint8Array(decoder.getDecodedBuffer()), frame: decoder.getFrameInfo() };
  } finally {
    decoder.delete();
  }
}

test('losslessJpegLs: decodes to the same pixels, and a flat image codes far shorter than noise', async () => {
  const { pixels } = mnistTestImages(16);
  const flat = new Uint8Array(784);
  const rng = new Rng(11);
  const noise = Uint8Array.from({ length: 784 }, () => rng.nextUint32() & 255);
  const codes = await losslessJpegLs([...pixels, flat, noise], 1, 28, 28);
  for (let i = 0; i < pixels.length; i++) {
    const { pixels: back, frame } = await decodeJpegLs(codes[i]);
    assert.deepEqual(back, pixels[i]);
    assert.equal(frame.width, 28);
    assert.equal(frame.componentCount, 1);
  }
  const [flatCode, noiseCode] = codes.slice(-2);
  // JPEG-LS has no stored mode: noise costs more than its 784 raw bytes (hence the two-part code in flow/anomaly)
  assert.ok(flatCode.length < 60 && noiseCode.length > 784, `flat ${flatCode.length} B, noise ${noiseCode.length} B`);
  // A better image code than PNG on digits: that is why its complexity score separates better.
  const png = await losslessPng(pixels, 1, 28, 28);
  const sum = (xs: Uint8Array[]) => xs.reduce((a, b) => a + b.length, 0);
  assert.ok(sum(codes.slice(0, 16)) < sum(png), `JPEG-LS ${sum(codes.slice(0, 16))} B vs PNG ${sum(png)} B`);
});

test('encodePng writes single-channel PNGs that round-trip', async () => {
  const { pixels } = mnistTestImages(1, 3);
  const png = await encodePng(pixels[0], 1, 28, 28);
  const meta = await sharp(png).metadata();
  assert.equal(meta.channels, 1);
  assert.deepEqual(await decodeOne(png, spec, 'x'), pixels[0]);
});

test('colour images: 3-channel round trip in CHW order', async () => {
  const chw = Uint8Array.from({ length: 3 * 4 * 5 }, (_, i) => (i * 37) % 256);
  const png = await encodePng(chw, 3, 4, 5);
  assert.deepEqual(await decodeOne(png, { channels: 3, height: 4, width: 5, maxPixels: 100, resize: false }, 'x'), chw);
  const [lossless] = await losslessPng([chw], 3, 4, 5);
  assert.deepEqual(await decodeOne(lossless, { channels: 3, height: 4, width: 5, maxPixels: 100, resize: false }, 'x'), chw);
  const [jls] = await losslessJpegLs([chw], 3, 4, 5);
  const { pixels, frame } = await decodeJpegLs(jls);
  assert.equal(frame.componentCount, 3);
  assert.deepEqual(pixels, chw, 'planes in CHW order');
});
