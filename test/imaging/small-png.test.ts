// The inline PNG codec (src/imaging/small-png.ts): every file it accepts decodes to exactly the
// pixels the sharp path gives, and every file it declines, broken or not, gets the sharp path's
// answer (pixels or the same refusal). Its writer gives pngjs's bytes for the complexity score.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { PNG } from 'pngjs';
import { decodeImages, encodePng, encodePngs, losslessPng, SMALL_PNG_MAX_PIXELS, smallPngStats, type ImageSpec } from '../../src/imaging/image-codec.js';
import { decodeSmallPng, readPngLayout, tableCrc32, writePng8 } from '../../src/imaging/small-png.js';
import { AppError } from '../../src/errors.js';
import { Rng } from '../../src/flow/random.js';
import { mnistTestImages } from '../helpers/packages.js';
import { SAMPLES_PER_PIXEL, SIGNATURE, chunk, chunksOf, ihdr, makePng, patterns, rawImageData, withChunkData, type PngPlan } from './png-corpus.js';

type Outcome = { pixels: Uint8Array } | { error: string };

const specFor = (png: Buffer, channels: number, extra: Partial<ImageSpec> = {}): ImageSpec => {
  const sized = png.length >= 24 && png.subarray(0, 8).equals(SIGNATURE);
  return { channels, width: sized ? png.readUInt32BE(16) : 28, height: sized ? png.readUInt32BE(20) : 28, maxPixels: 1 << 24, resize: false, ...extra };
};

/** decodeImages' answer for one request: its pixels, or its error (code, message, details). */
async function outcome(images: Buffer[], spec: ImageSpec, inlinePng: boolean, maxRequestPixels = Infinity): Promise<Outcome[] | { error: string }> {
  try {
    return (await decodeImages(images, spec, 'images', maxRequestPixels, undefined, { inlinePng })).map((pixels) => ({ pixels }));
  } catch (err) {
    if (!(err instanceof AppError)) throw err;
    return { error: `${err.code} ${err.statusCode}: ${err.message} ${JSON.stringify(err.details)}` };
  }
}

/** The old path: sharp only. */
async function viaSharp(png: Buffer, spec: ImageSpec): Promise<Outcome> {
  const out = await outcome([png], spec, false);
  return 'error' in out ? out : out[0];
}

/** The inline decoder alone, with no size cut-off when `unbounded` (the exhaustive images are 256×256). */
function inline(png: Buffer, channels: number, unbounded = false): Uint8Array | null {
  const layout = readPngLayout(png, channels, unbounded ? Infinity : undefined);
  return layout ? decodeSmallPng(png, layout, channels) : null;
}

/**
 * Asserts the inline decoder's answer is sharp's; returns whether it accepted the file. A decline
 * is always allowed (sharp then decodes it, as the request tests below check).
 */
async function sameAsSharp(png: Buffer, channels: number, what: string, unbounded = false): Promise<boolean> {
  const mine = inline(png, channels, unbounded);
  if (!mine) return false;
  const theirs = await viaSharp(png, specFor(png, channels));
  assert.ok('pixels' in theirs, `${what}: inline decoded it, sharp refused it (${'error' in theirs ? theirs.error : ''})`);
  if (!Buffer.from(mine).equals(Buffer.from(theirs.pixels))) {
    const i = mine.findIndex((v, k) => v !== theirs.pixels[k]);
    assert.fail(`${what} (${channels} ch): pixel value ${i} is ${mine[i]} inline, ${theirs.pixels[i]} by sharp`);
  }
  return true;
}

const FORMATS: [PngPlan['colorType'], PngPlan['bitDepth']][] = [
  [0, 1], [0, 2], [0, 4], [0, 8], [0, 16], [2, 8], [2, 16], [3, 1], [3, 2], [3, 4], [3, 8], [4, 8], [4, 16], [6, 8], [6, 16],
];

/** Whether the inline decoder must accept the format for this output (content allowing: colour into one channel needs r = g = b). */
const expectAccepted = (ct: number, bd: number, ch: number) => (bd === 16 ? ch === 3 && (ct === 0 || ct === 2) : true);

function randomPalette(rng: Rng, entries: number, grey: boolean): Uint8Array {
  const p = new Uint8Array(entries * 3);
  for (let i = 0; i < entries; i++) {
    const v = rng.nextUint32() & 255;
    p.set(grey ? [v, v, v] : [v, rng.nextUint32() & 255, rng.nextUint32() & 255], 3 * i);
  }
  return p;
}

test('inline decode: bit-identical to sharp over a generated corpus (every colour type and bit depth, filters, Adam7, sizes, zlib levels, split IDATs)', async () => {
  const sizes = [[1, 1], [5, 3], [3, 7], [28, 28], [33, 17], [64, 64]];
  const rng = new Rng(42);
  const accepted = new Map<string, number>();
  let files = 0;
  for (const [ct, bd] of FORMATS) {
    for (const interlace of [false, true]) {
      for (const [si, [width, height]] of sizes.entries()) {
        const max = ct === 3 ? (1 << bd) - 1 : 2 ** bd - 1;
        const names = Object.keys(patterns(max, 0));
        for (const grey of ct === 0 || ct === 4 ? [true] : [false, true]) {
          const pat = patterns(max, rng.nextUint32())[names[(si + files) % names.length]];
          // grey content in colour formats: the only colour one-channel output the inline decoder takes
          const sample = grey && ct !== 3 ? (x: number, y: number, c: number) => pat(x, y, ct === 6 || ct === 4 ? (c === SAMPLES_PER_PIXEL[ct] - 1 ? 1 : 0) : 0) : pat;
          const entries = Math.min(1 << bd, 256);
          const plan: PngPlan = {
            width, height, colorType: ct, bitDepth: bd, sample, interlace, seed: files,
            filter: files % 3 === 0 ? 'random' : (row) => (row + files) % 5,
            zlib: { level: [0, 1, 6, 9][files % 4] },
            idatChunks: 1 + (files % 3),
            ...(ct === 3 ? { palette: randomPalette(rng, entries, grey), trns: files % 2 ? Uint8Array.from({ length: entries >> 1 }, () => rng.nextUint32() & 255) : undefined } : {}),
          };
          const png = makePng(plan);
          files++;
          for (const ch of [1, 3]) {
            const ok = await sameAsSharp(png, ch, `ct ${ct} bd ${bd} ${width}×${height}${interlace ? ' interlaced' : ''}${grey ? ' grey content' : ''}`);
            const key = `${ct}/${bd}→${ch}`;
            accepted.set(key, (accepted.get(key) ?? 0) + (ok ? 1 : 0));
            const mustAccept = expectAccepted(ct, bd, ch) && (ch === 3 || ct === 0 || ct === 4 || grey);
            if (mustAccept) assert.ok(ok, `${key} ${width}×${height}${interlace ? ' interlaced' : ''}: the inline decoder declined a format it supports`);
            if (!expectAccepted(ct, bd, ch)) assert.ok(!ok, `${key}: accepted a format not proven against sharp`);
          }
        }
      }
    }
  }
  assert.ok(files > 200, `${files} files`);
});

test('inline decode: exhaustive over every sample value where sharp converts (alpha flattening, 16 bits, low bit depths, tRNS, palettes, grey from RGB)', async () => {
  const all = (width: number, height: number, ct: PngPlan['colorType'], bd: PngPlan['bitDepth'], sample: PngPlan['sample'], extra: Partial<PngPlan> = {}) =>
    makePng({ width, height, colorType: ct, bitDepth: bd, sample, filter: 'random', zlib: { level: 1 }, ...extra });
  const cases: [string, Buffer, number[], number[]][] = [
    // [what, file, channels it must be accepted for, channels it must be declined for]
    ['grey+alpha 8: every (v, a)', all(256, 256, 4, 8, (x, y, c) => (c === 0 ? x : y)), [1, 3], []],
    ['RGBA 8: every (v, a) in each channel', all(256, 256, 6, 8, (x, y, c) => (c === 3 ? y : c === 0 ? x : c === 1 ? 255 - x : (x * 7) & 255)), [3], [1]],
    ['RGBA 8 grey: every (v, a)', all(256, 256, 6, 8, (x, y, c) => (c === 3 ? y : x)), [1, 3], []],
    ['grey 16: every value', all(256, 256, 0, 16, (x, y) => y * 256 + x), [3], [1]],
    ['RGB 16: every value in each channel', all(256, 256, 2, 16, (x, y, c) => (c === 0 ? y * 256 + x : c === 1 ? 65535 - (y * 256 + x) : ((y * 256 + x) * 13) & 65535)), [3], [1]],
    ['RGB 8 grey: every value', all(256, 1, 2, 8, (x) => x), [1, 3], []],
    ['RGB 8 colour', all(256, 1, 2, 8, (x, _y, c) => (x + c) & 255), [3], [1]],
  ];
  for (const bd of [1, 2, 4, 8] as const) {
    const n = 1 << bd;
    cases.push([`grey ${bd}: every value`, all(n, 1, 0, bd, (x) => x), [1, 3], []]);
    for (const key of bd === 8 ? [0, 77, 255] : [0, n - 1])
      cases.push([`grey ${bd}, tRNS key ${key}`, all(n, 1, 0, bd, (x) => x, { trns: Uint8Array.from([key >> 8, key & 255]) }), [1, 3], []]);
  }
  cases.push(['RGB 8, tRNS key', all(16, 16, 2, 8, (x, y, c) => (x === y ? [10, 20, 30][c] : (x * 16 + y + c) & 255), { trns: Uint8Array.from([0, 10, 0, 20, 0, 30]) }), [3], [1]]);
  const rng = new Rng(9);
  for (const bd of [1, 2, 4, 8] as const) {
    const n = 1 << bd;
    const idx = (x: number, y: number) => (y * 16 + x) % n;
    const colour = randomPalette(rng, n, false), grey = randomPalette(rng, n, true);
    const alpha = Uint8Array.from({ length: Math.max(1, n - 3) }, () => rng.nextUint32() & 255);
    cases.push([`palette ${bd}`, all(16, 16, 3, bd, idx, { palette: colour }), [3], [1]]);
    cases.push([`palette ${bd} + tRNS`, all(16, 16, 3, bd, idx, { palette: colour, trns: alpha }), [3], [1]]);
    cases.push([`grey palette ${bd} + tRNS`, all(16, 16, 3, bd, idx, { palette: grey, trns: alpha }), [1, 3], []]);
  }
  for (const [what, png, yes, no] of cases) {
    for (const ch of yes) assert.ok(await sameAsSharp(png, ch, what, true), `${what} → ${ch} ch: declined`);
    for (const ch of no) assert.equal(inline(png, ch, true), null, `${what} → ${ch} ch: must go to sharp`);
  }
});

test('inline decode: files written by sharp and pngjs, every option that changes the file', async () => {
  const { pixels } = mnistTestImages(2, 40);
  const grey = pixels[0];
  const rgb = Uint8Array.from({ length: 784 * 3 }, (_, i) => (pixels[i % 2][Math.floor(i / 3)] + i) & 255);
  const rgba = Uint8Array.from({ length: 784 * 4 }, (_, i) => (i % 4 === 3 ? pixels[1][i >> 2] : (pixels[0][i >> 2] * (1 + (i % 4))) & 255));
  const ga = Uint8Array.from({ length: 784 * 2 }, (_, i) => (i % 2 ? 255 - pixels[1][i >> 1] : pixels[0][i >> 1]));
  const sources = [
    ['grey', () => sharp(grey, { raw: { width: 28, height: 28, channels: 1 } }).toColourspace('b-w')],
    ['grey+alpha', () => sharp(ga, { raw: { width: 28, height: 28, channels: 2 } }).toColourspace('b-w')],
    ['rgb', () => sharp(rgb, { raw: { width: 28, height: 28, channels: 3 } })],
    ['rgba', () => sharp(rgba, { raw: { width: 28, height: 28, channels: 4 } })],
    ['rgb16', () => sharp(rgb, { raw: { width: 28, height: 28, channels: 3 } }).toColourspace('rgb16')],
  ] as const;
  let accepted = 0, files = 0;
  for (const [name, img] of sources)
    for (const compressionLevel of [0, 6, 9])
      for (const adaptiveFiltering of [false, true])
        for (const progressive of [false, true])
          for (const palette of [false, true]) {
            const png = await img().png({ compressionLevel, adaptiveFiltering, progressive, palette, ...(palette ? { colours: [2, 16, 256][files % 3] } : {}) }).toBuffer();
            files++;
            for (const ch of [1, 3]) {
              const ok = await sameAsSharp(png, ch, `sharp ${name} level ${compressionLevel} filter ${adaptiveFiltering} progressive ${progressive} palette ${palette}`);
              accepted += ok ? 1 : 0;
              if (name === 'grey' && !palette) assert.ok(ok, `sharp grey PNG → ${ch} ch declined`);
              if (name === 'rgb' && !palette && ch === 3) assert.ok(ok, 'sharp RGB PNG → 3 ch declined');
            }
          }
  for (const [colorType, data] of [[0, grey], [2, rgb], [4, ga], [6, rgba]] as const)
    for (const bitDepth of [8, 16] as const)
      for (const filterType of [-1, 0, 1, 2, 3, 4])
        for (const deflateLevel of [0, 9]) {
          const png = new PNG({ width: 28, height: 28, colorType, inputColorType: colorType, inputHasAlpha: colorType >= 4, bitDepth });
          png.data = bitDepth === 8 ? Buffer.from(data) : Buffer.from(new Uint16Array(Array.from(data, (v) => v * 257 + (v & 7))).buffer);
          const file = PNG.sync.write(png, { colorType, inputColorType: colorType, inputHasAlpha: colorType >= 4, bitDepth, filterType, deflateLevel });
          files++;
          for (const ch of [1, 3]) {
            const ok = await sameAsSharp(file, ch, `pngjs ct ${colorType} bd ${bitDepth} filter ${filterType} level ${deflateLevel}`);
            accepted += ok ? 1 : 0;
            if (bitDepth === 8 && (colorType === 0 || colorType === 4 || ch === 3)) assert.ok(ok, `pngjs ct ${colorType} → ${ch} ch declined`);
          }
        }
  assert.ok(accepted > files / 2, `${accepted} of ${2 * files} accepted`);
});

test('inline decode: ancillary chunks that do not change sharp\'s pixels are accepted; anything else goes to sharp', async () => {
  const u32 = (...vs: number[]) => Buffer.concat(vs.map((v) => Buffer.from([v >>> 24, (v >> 16) & 255, (v >> 8) & 255, v & 255])));
  const text = chunk('tEXt', Buffer.from('Comment\0made by a test'));
  const time = chunk('tIME', Buffer.from([7, 233, 5, 17, 12, 30, 0]));
  const inert: [string, Partial<PngPlan>][] = [
    ['gAMA 1.0', { beforePlte: [chunk('gAMA', u32(100000))] }],
    ['gAMA 0 (invalid, ignored by libpng)', { beforePlte: [chunk('gAMA', u32(0))] }],
    ['cHRM', { beforePlte: [chunk('cHRM', u32(31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000))] }],
    ['sRGB', { beforePlte: [chunk('sRGB', Buffer.from([0]))] }],
    ['gAMA + sRGB', { beforePlte: [chunk('gAMA', u32(45455)), chunk('sRGB', Buffer.from([1]))] }],
    ['sBIT', { beforePlte: [chunk('sBIT', Buffer.from([5, 6, 5]))] }],
    ['pHYs', { beforeIdat: [chunk('pHYs', Buffer.from([0, 0, 11, 19, 0, 0, 11, 19, 1]))] }],
    ['tEXt and tIME before IDAT, tEXt after', { beforeIdat: [text, time], afterIdat: [text] }],
  ];
  const declined: [string, Partial<PngPlan>][] = [
    ['zTXt', { beforeIdat: [chunk('zTXt', Buffer.concat([Buffer.from('Comment\0\0'), deflateSync(Buffer.from('hello'))]))] }],
    ['iTXt', { beforeIdat: [chunk('iTXt', Buffer.from('Comment\0\0\0\0\0hello'))] }],
    ['bKGD', { beforeIdat: [chunk('bKGD', Buffer.from([0, 255, 0, 0, 0, 0]))] }],
    ['eXIf', { beforeIdat: [chunk('eXIf', Buffer.from('MM\0*\0\0\0\x08\0\0', 'latin1'))] }],
    ['a private chunk', { beforeIdat: [chunk('prVt', Buffer.from('x'))] }],
    ['a suggested palette in an RGB file', { beforeIdat: [chunk('PLTE', Buffer.from([1, 2, 3]))] }],
    ['gAMA after IDAT', { afterIdat: [chunk('gAMA', u32(45455))] }],
    ['tIME after IDAT', { afterIdat: [time] }],
    ['two pHYs', { beforeIdat: [chunk('pHYs', Buffer.alloc(9)), chunk('pHYs', Buffer.alloc(9))] }],
    ['a tEXt with an empty keyword', { beforeIdat: [chunk('tEXt', Buffer.from('\0x'))] }],
    ['a tIME in month 13', { beforeIdat: [chunk('tIME', Buffer.from([7, 233, 13, 1, 0, 0, 0]))] }],
    ['sRGB intent 7', { beforePlte: [chunk('sRGB', Buffer.from([7]))] }],
  ];
  const base: PngPlan = { width: 9, height: 7, colorType: 2, bitDepth: 8, sample: (x, y, c) => (x * 29 + y * 7 + c * 50) & 255, filter: 'random' };
  for (const [what, extra] of inert) assert.ok(await sameAsSharp(makePng({ ...base, ...extra }), 3, what), `${what}: declined`);
  for (const [what, extra] of declined) {
    const png = makePng({ ...base, ...extra });
    assert.equal(inline(png, 3), null, `${what}: accepted`);
    assert.deepEqual(await outcome([png], specFor(png, 3), true), await outcome([png], specFor(png, 3), false), what);
  }
  // an embedded ICC profile: sharp converts through it
  const icc = await sharp(Buffer.alloc(9 * 7 * 3, 200), { raw: { width: 9, height: 7, channels: 3 } }).withIccProfile('p3').png().toBuffer();
  assert.ok(chunksOf(icc).some((c) => c.type === 'iCCP'));
  assert.equal(inline(icc, 3), null);
});

test('decodeImages takes the inline path for small clean PNGs at the model size, and only then', async () => {
  const { pixels } = mnistTestImages(64);
  const pngs = await Promise.all(pixels.map((p) => sharp(p, { raw: { width: 28, height: 28, channels: 1 } }).toColourspace('b-w').png().toBuffer()));
  const spec: ImageSpec = { channels: 1, height: 28, width: 28, maxPixels: 1 << 20, resize: false };
  const before = { ...smallPngStats };
  const out = await decodeImages(pngs, spec, 'images', Infinity);
  assert.equal(smallPngStats.decoded - before.decoded, 64);
  assert.deepEqual(out, pixels.map((p) => new Uint8Array(p)));
  const taken = async (images: Buffer[], s: ImageSpec) => {
    const n = smallPngStats.decoded;
    await decodeImages(images, s, 'images', Infinity, undefined);
    return smallPngStats.decoded - n;
  };
  assert.equal(await taken(pngs.slice(0, 4), { ...spec, resize: true }), 0, 'resize: sharp');
  assert.equal(await taken(pngs.slice(0, 4), { ...spec, channels: 3 }), 4, 'grey file, 3-channel model');
  const n = smallPngStats.decoded;
  assert.deepEqual(await decodeImages(pngs.slice(0, 4), spec, 'images', Infinity, undefined, { inlinePng: false }), out.slice(0, 4));
  assert.equal(smallPngStats.decoded, n, 'inlinePng: false');
  const big = await sharp(Buffer.alloc(65 * 65, 9), { raw: { width: 65, height: 65, channels: 1 } }).toColourspace('b-w').png().toBuffer();
  assert.equal(65 * 65 > SMALL_PNG_MAX_PIXELS, true);
  assert.equal(await taken([big], { ...spec, width: 65, height: 65 }), 0, 'past the cut-off: sharp');
  const jpeg = await sharp(Buffer.alloc(784, 9), { raw: { width: 28, height: 28, channels: 1 } }).jpeg().toBuffer();
  assert.equal(await taken([jpeg], spec), 0, 'JPEG: sharp');
});

test('decodeImages lets the event loop in every few dozen inline images', async () => {
  const { pixels } = mnistTestImages(256);
  const pngs = await Promise.all(pixels.map((p) => sharp(p, { raw: { width: 28, height: 28, channels: 1 } }).toColourspace('b-w').png().toBuffer()));
  let turns = 0, running = true;
  const spin = () => {
    turns++;
    if (running) setImmediate(spin);
  };
  setImmediate(spin);
  await decodeImages(pngs, { channels: 1, height: 28, width: 28, maxPixels: 1 << 20, resize: false }, 'images', Infinity);
  running = false;
  assert.ok(turns >= 256 / 32, `${turns} event-loop turns during 256 inline decodes`);
});

/** A 28×28 grey PNG and its variants with one defect each. */
function brokenFiles(): [string, Buffer][] {
  const rng = new Rng(5);
  const plan: PngPlan = { width: 28, height: 28, colorType: 0, bitDepth: 8, sample: (x, y) => (x * y + rng.nextUint32()) & 255, filter: 'random', zlib: { level: 6 } };
  const good = makePng(plan);
  const raw = rawImageData(plan);
  const parts = chunksOf(good);
  const idat = parts.find((c) => c.type === 'IDAT')!;
  const stream = good.subarray(idat.at + 8, idat.at + 8 + idat.length);
  const flipped = (at: number) => {
    const b = Buffer.from(good);
    b[at] ^= 0x20;
    return b;
  };
  const zeros = Buffer.alloc(16 << 20);
  const adler = Buffer.from(stream);
  adler[adler.length - 1] ^= 1;
  const badFilter = Buffer.from(raw);
  badFilter[29 * 5] = 5;
  const out: [string, Buffer][] = [
    ['empty', Buffer.alloc(0)],
    ['not an image', Buffer.from('hello world, not an image')],
    ['a PNG signature only', SIGNATURE],
    ['IHDR only', Buffer.concat([SIGNATURE, ihdr(28, 28, 8, 0)])],
    ['no IEND', good.subarray(0, good.length - 12)],
    ['bytes after IEND', Buffer.concat([good, Buffer.from([0, 0, 0, 0])])],
    ['a chunk after IEND', Buffer.concat([good, chunk('tEXt', Buffer.from('a\0b'))])],
    ['bad IHDR CRC', flipped(8 + 8 + 13 + 1)],
    ['bad IDAT CRC', flipped(idat.at + 8 + idat.length + 1)],
    ['bad IEND CRC', flipped(good.length - 1)],
    ['corrupt zlib data', withChunkData(good, 'IDAT', Buffer.from(stream).fill(0xa5, 10, 30))],
    ['wrong zlib header', withChunkData(good, 'IDAT', Buffer.concat([Buffer.from([0x78, 0x00]), stream.subarray(2)]))],
    ['wrong Adler-32', withChunkData(good, 'IDAT', adler)],
    ['IDAT data short by a row', withChunkData(good, 'IDAT', deflateSync(raw.subarray(0, raw.length - 29)))],
    ['IDAT data short by a byte', withChunkData(good, 'IDAT', deflateSync(raw.subarray(0, raw.length - 1)))],
    ['IDAT data a row too long', withChunkData(good, 'IDAT', deflateSync(Buffer.concat([raw, raw.subarray(0, 29)])))],
    ['bytes after the zlib stream in IDAT', withChunkData(good, 'IDAT', Buffer.concat([stream, Buffer.from([1, 2, 3])]))],
    ['zlib stream cut short', withChunkData(good, 'IDAT', stream.subarray(0, stream.length - 9))],
    ['decompression bomb: 16 MiB of zeros behind a 28×28 header', withChunkData(good, 'IDAT', deflateSync(zeros))],
    ['filter type 5', withChunkData(good, 'IDAT', deflateSync(badFilter))],
    ['no IDAT', Buffer.concat([good.subarray(0, idat.at), chunk('IEND')])],
    ['IDATs not consecutive', Buffer.concat([SIGNATURE, ihdr(28, 28, 8, 0), chunk('IDAT', stream.subarray(0, 20)), chunk('tEXt', Buffer.from('a\0b')), chunk('IDAT', stream.subarray(20)), chunk('IEND')])],
    ['bit depth 3', Buffer.concat([SIGNATURE, ihdr(28, 28, 3, 0), ...parts.slice(1).map((c) => good.subarray(c.at, c.at + 12 + c.length))])],
    ['colour type 5', Buffer.concat([SIGNATURE, ihdr(28, 28, 8, 5), ...parts.slice(1).map((c) => good.subarray(c.at, c.at + 12 + c.length))])],
    ['interlace method 2', Buffer.concat([SIGNATURE, ihdr(28, 28, 8, 0, 2), ...parts.slice(1).map((c) => good.subarray(c.at, c.at + 12 + c.length))])],
    ['palette image without PLTE', makePng({ ...plan, colorType: 3, sample: () => 0 }).subarray(0)],
    ['palette index past the palette', makePng({ ...plan, colorType: 3, sample: (x) => x % 4, palette: Buffer.from([1, 2, 3, 4, 5, 6]) })],
    ['tRNS longer than the palette', makePng({ ...plan, colorType: 3, sample: () => 0, palette: Buffer.from([1, 2, 3]), trns: Buffer.from([1, 2]) })],
    ['PLTE in a grey image', makePng({ ...plan, palette: Buffer.from([1, 2, 3]) })],
    ['tRNS in an RGBA image', makePng({ ...plan, colorType: 6, sample: () => 9, trns: Buffer.alloc(6) })],
  ];
  for (const at of [8, 20, 33, 40, idat.at + 20, good.length - 20, good.length - 5]) out.push([`truncated to ${at} bytes`, good.subarray(0, at)]);
  return out;
}

test('BAD CALL - broken PNGs: the same refusal (or the same pixels) as the sharp path, never a crash, bounded memory', async () => {
  const spec: ImageSpec = { channels: 1, height: 28, width: 28, maxPixels: 1 << 20, resize: false };
  let refused = 0;
  for (const [what, png] of brokenFiles()) {
    const started = process.hrtime.bigint();
    const mine = inline(png, 1);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    assert.equal(mine, null, `${what}: the inline decoder accepted it`);
    assert.ok(ms < 50, `${what}: the inline decoder took ${ms} ms (the bomb must stop at the expected size)`);
    const fast = await outcome([png], spec, true), slow = await outcome([png], spec, false);
    assert.deepEqual(fast, slow, what);
    if ('error' in fast) {
      refused++;
      assert.match(fast.error, /^INVALID_IMAGE 400: images\[0\]: /, what);
    }
  }
  assert.ok(refused >= 20, `${refused} refused`);
});

test('BAD CALL - per-image and request rules: the same refusals and messages inline as through sharp', async () => {
  const png28 = makePng({ width: 28, height: 28, colorType: 0, bitDepth: 8, sample: (x, y) => x ^ y });
  const png27 = makePng({ width: 27, height: 28, colorType: 0, bitDepth: 8, sample: (x, y) => x ^ y });
  const wide = makePng({ width: 64, height: 8, colorType: 2, bitDepth: 8, sample: (x, y, c) => x + y + c });
  const gif = await sharp({ create: { width: 28, height: 28, channels: 3, background: '#000' } }).gif().toBuffer();
  const spec: ImageSpec = { channels: 1, height: 28, width: 28, maxPixels: 1 << 20, resize: false };
  const cases: [string, Buffer[], ImageSpec, number][] = [
    ['empty', [Buffer.alloc(0)], spec, Infinity],
    ['GIF', [gif], spec, Infinity],
    ['wrong size', [png28, png27], spec, Infinity],
    ['over MAX_IMAGE_PIXELS', [png28], { ...spec, maxPixels: 700 }, Infinity],
    ['aspect ratio too far to resize', [wide], { ...spec, resize: true }, Infinity],
    ['over MAX_REQUEST_PIXELS', [png28, png28, png28], spec, 2 * 784],
    ['the first failure in request order is the one reported', [png28, png27, Buffer.alloc(0)], spec, Infinity],
  ];
  for (const [what, images, s, budget] of cases) {
    const decoded = smallPngStats.decoded;
    const fast = await outcome(images, s, true, budget), slow = await outcome(images, s, false, budget);
    assert.ok('error' in fast, `${what}: accepted`);
    assert.deepEqual(fast, slow, what);
    if (what === 'over MAX_REQUEST_PIXELS') {
      assert.match(fast.error, /^LIMIT_EXCEEDED 400: images: at most 1568 pixels .*MAX_REQUEST_PIXELS/);
      assert.equal(smallPngStats.decoded, decoded, 'the request budget is checked before any decode');
    }
  }
  // resize: the header is read inline, the decode (with its resize) stays with sharp
  const ok = await outcome([wide.subarray(0)], { ...spec, width: 64, height: 16, resize: true }, true);
  assert.ok(!('error' in ok));
});

test('BAD CALL - fuzzed PNGs: the inline path answers exactly as the sharp path', async () => {
  const rng = new Rng(2024);
  const plans: PngPlan[] = [
    { width: 28, height: 28, colorType: 0, bitDepth: 8, sample: (x, y) => (x * 9 + y * 3) & 255, filter: 'random' },
    { width: 12, height: 10, colorType: 2, bitDepth: 8, sample: (x, y, c) => (x * y + c * 40) & 255, filter: 'random', interlace: true, idatChunks: 3 },
    { width: 28, height: 28, colorType: 4, bitDepth: 8, sample: (x, y, c) => (c ? y * 9 : x * 9) & 255, filter: 'random', zlib: { level: 0 } },
    { width: 9, height: 9, colorType: 3, bitDepth: 4, sample: (x, y) => (x + y) % 12, palette: Buffer.from(Array.from({ length: 36 }, (_, i) => (i * 37) & 255)), trns: Buffer.from([0, 128, 255]), filter: 'random' },
  ];
  const fixCrcs = (png: Buffer) => {
    const out = Buffer.from(png);
    for (const c of chunksOf(out)) if (c.at + 12 + c.length <= out.length) out.writeUInt32BE(chunk(out.toString('latin1', c.at + 4, c.at + 8), out.subarray(c.at + 8, c.at + 8 + c.length)).readUInt32BE(8 + c.length), c.at + 8 + c.length);
    return out;
  };
  const flip = (buf: Buffer, from: number, times: number) => {
    for (let k = 0; k < times; k++) buf[from + (rng.nextUint32() % (buf.length - from))] ^= 1 << rng.nextUint32() % 8;
    return buf;
  };
  let accepted = 0;
  for (let i = 0; i < 320; i++) {
    const plan = plans[(i + (i >> 2)) % plans.length];
    let png: Buffer;
    if (i % 4 === 3) {
      // valid zlib around damaged image data: odd filter types, odd palette indices, odd samples
      const raw = flip(rawImageData(plan), 0, 1 + (rng.nextUint32() % 4));
      png = withChunkData(makePng({ ...plan, idatChunks: 1 }), 'IDAT', deflateSync(raw));
    } else {
      png = flip(makePng(plan), 8, 1 + (rng.nextUint32() % 3));
      if (i % 2) png = fixCrcs(png);
      if (i % 7 === 0) png = png.subarray(0, rng.nextUint32() % png.length);
    }
    const spec: ImageSpec = { channels: i % 3 === 1 ? 3 : 1, width: plan.width, height: plan.height, maxPixels: 1 << 20, resize: false };
    const fast = await outcome([png], spec, true), slow = await outcome([png], spec, false);
    assert.deepEqual(fast, slow, `mutation ${i}`);
    if (inline(png, spec.channels)) accepted++;
  }
  assert.ok(accepted > 40, `${accepted} mutated files still decoded inline`);
});

test('encodePng: small images written inline decode to the same pixels by sharp and by the inline decoder; larger ones by sharp', async () => {
  const rng = new Rng(3);
  for (const channels of [1, 3] as const)
    for (const [h, w] of [[1, 1], [28, 28], [7, 13], [64, 64], [32, 32]])
      for (const pat of ['noise', 'flat', 'gradient']) {
        const f = patterns(255, rng.nextUint32())[pat];
        const plane = h * w;
        const chw = Uint8Array.from({ length: channels * plane }, (_, i) => f(i % plane % w, Math.floor((i % plane) / w), Math.floor(i / plane)));
        const encoded = smallPngStats.encoded;
        const png = await encodePng(chw, channels, h, w);
        assert.equal(smallPngStats.encoded, encoded + 1);
        const spec: ImageSpec = { channels, height: h, width: w, maxPixels: 1 << 20, resize: false };
        assert.deepEqual(await viaSharp(png, spec), { pixels: chw }, `sharp reads back ${channels}×${h}×${w} ${pat}`);
        assert.deepEqual(inline(png, channels), chw, `inline reads back ${channels}×${h}×${w} ${pat}`);
        assert.equal((await sharp(png).metadata()).channels, channels);
      }
  const chw = Uint8Array.from({ length: 3 * 65 * 65 }, (_, i) => (i * 7) & 255);
  const encoded = smallPngStats.encoded;
  const png = await encodePng(chw, 3, 65, 65);
  assert.equal(smallPngStats.encoded, encoded, 'past the cut-off: sharp');
  assert.deepEqual(await viaSharp(png, { channels: 3, height: 65, width: 65, maxPixels: 1 << 20, resize: false }), { pixels: chw });
  const many = Array.from({ length: 70 }, (_, k) => Uint8Array.from({ length: 784 }, (_, i) => (i * k) & 255));
  const batch = await encodePngs(many, 1, 28, 28);
  for (let k = 0; k < many.length; k++) assert.ok(batch[k].equals(await encodePng(many[k], 1, 28, 28)));
});

test('losslessPng: byte for byte what pngjs wrote (the complexity score is calibrated on its length)', async () => {
  const pngjs = (hwc: Uint8Array, channels: 1 | 3, h: number, w: number) => {
    const colorType = channels === 1 ? 0 : 2;
    const png = new PNG({ width: w, height: h, colorType, inputColorType: colorType, inputHasAlpha: false, bitDepth: 8 });
    png.data = Buffer.from(hwc);
    return PNG.sync.write(png, { colorType, inputColorType: colorType, inputHasAlpha: false, bitDepth: 8, deflateLevel: 9, filterType: -1 });
  };
  const toChw = (hwc: Uint8Array, channels: number, plane: number) => {
    const out = new Uint8Array(hwc.length);
    for (let p = 0; p < plane; p++) for (let c = 0; c < channels; c++) out[c * plane + p] = hwc[p * channels + c];
    return out;
  };
  const rng = new Rng(77);
  let compared = 0;
  const { pixels } = mnistTestImages(200, 500);
  const ours = await losslessPng(pixels, 1, 28, 28);
  for (let i = 0; i < pixels.length; i++, compared++) assert.ok(ours[i].equals(pngjs(pixels[i], 1, 28, 28)), `MNIST ${i}`);
  for (const channels of [1, 3] as const)
    for (const [h, w] of [[1, 1], [28, 28], [32, 32], [5, 40], [64, 64], [100, 37]])
      for (const [name, f] of Object.entries(patterns(255, rng.nextUint32()))) {
        for (const variant of [0, 1, 2]) {
          // variant 1: sparse noise on a flat field, 2: runs (where Z_RLE and the filter choice matter)
          const hwc = Uint8Array.from({ length: h * w * channels }, (_, i) => {
            const p = Math.floor(i / channels), x = p % w, y = Math.floor(p / w), c = i % channels;
            const v = f(x, y, c);
            return variant === 0 ? v : variant === 1 ? (rng.nextUint32() % 17 === 0 ? v : 40) : (Math.floor(x / 5) * 50 + y) & 255;
          });
          const [mine] = await losslessPng([toChw(hwc, channels, h * w)], channels, h, w);
          assert.ok(mine.equals(pngjs(hwc, channels, h, w)), `${channels}×${h}×${w} ${name} variant ${variant}`);
          assert.ok(writePng8(hwc, channels, h, w).equals(mine));
          compared++;
        }
      }
  assert.ok(compared > 300, `${compared} images compared`);
});

test('the CRC-32 used where zlib.crc32 is missing (Node < 20.15) is zlib\'s', () => {
  const rng = new Rng(8);
  for (const n of [0, 1, 13, 100, 4097]) {
    const data = Uint8Array.from({ length: n }, () => rng.nextUint32() & 255);
    assert.equal(tableCrc32(data), crc32(data) >>> 0, `${n} bytes`);
  }
});
