// Images ↔ pixel arrays (channel-major, CHW). The only module that touches sharp. Decoding is
// bounded before any pixel buffer is allocated: every image's header (format, size, aspect ratio)
// and the request's pixel budget are checked first, and sharp's own pixel limit backs that up.
// Small PNGs that are clean and of a format proven bit-identical are read and decoded on the
// event loop (small-png.ts): a sharp call costs more CPU than the flow spends on a 28×28 image.
// Everything else goes to sharp, shared fairly between requests (decode-scheduler.ts).
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import sharp, { type Metadata } from 'sharp';
import charlsFactory, { type CharLSModule } from '@cornerstonejs/codec-charls/wasmjs';
import { InvalidImageError, LimitExceededError } from '../errors.js';
import { decodeScheduler, type FairScheduler } from './decode-scheduler.js';
import { SMALL_PNG_MAX_PIXELS, decodeSmallPng, readPngLayout, smallPngStats, writePng8, type PngLayout } from './small-png.js';

export { SMALL_PNG_MAX_PIXELS, smallPngStats };

export const IMAGE_FORMATS = ['png', 'jpeg', 'webp'] as const;

export interface ImageSpec {
  channels: number;
  height: number;
  width: number;
  maxPixels: number;
  /** Resize to height×width instead of refusing other sizes. */
  resize: boolean;
}

/**
 * With resize, the most an image's aspect ratio (width/height) may differ from the model's, as a
 * factor either way. A resize to the model's size with fit 'fill' stretches the image; past 4× the
 * content is distorted beyond recognition (a 112×28 strip squeezed into 28×28), so nothing useful
 * is lost by refusing it, while extreme claims are the cheap image bombs: a 69-byte PNG whose
 * header says 16,777,216×1 passed the pixel limit and cost ~45 ms of a decode thread each.
 */
export const MAX_RESIZE_ASPECT_FACTOR = 4;

export interface ImageHeader {
  format: string;
  width: number;
  height: number;
}

const sharpOptions = (spec: ImageSpec) => ({ limitInputPixels: spec.maxPixels, failOn: 'error' as const, sequentialRead: true });

/** Reads only the header (format, size) and applies every per-image rule; allocates no pixels. */
export async function probeImage(buf: Buffer, spec: ImageSpec, field: string): Promise<ImageHeader> {
  const layout = inlineLayout(buf, spec);
  return layout ? checkHeader('png', layout.width, layout.height, spec, field) : probeWithSharp(buf, spec, field);
}

/**
 * The layout of a small clean PNG that sharp would read the same way, else null. Past the pixel
 * limit sharp's own refusal stands, worded as before.
 */
function inlineLayout(buf: Buffer, spec: ImageSpec): PngLayout | null {
  const layout = readPngLayout(buf, spec.channels);
  return layout && layout.width * layout.height <= spec.maxPixels ? layout : null;
}

async function probeWithSharp(buf: Buffer, spec: ImageSpec, field: string): Promise<ImageHeader> {
  if (buf.length === 0) throw new InvalidImageError(field, 'image is empty');
  let meta: Metadata;
  try {
    meta = await sharp(buf, sharpOptions(spec)).metadata();
  } catch (err) {
    throw new InvalidImageError(field, `not a decodable PNG, JPEG or WebP image (${shortReason(err)})`);
  }
  return checkHeader(meta.format, meta.width ?? 0, meta.height ?? 0, spec, field);
}

function checkHeader(format: string | undefined, width: number, height: number, spec: ImageSpec, field: string): ImageHeader {
  if (!format || !(IMAGE_FORMATS as readonly string[]).includes(format))
    throw new InvalidImageError(field, `format '${format ?? 'unknown'}' is not supported; send PNG, JPEG or WebP`, { allowed: IMAGE_FORMATS });
  if (width < 1 || height < 1) throw new InvalidImageError(field, `image is ${width}×${height}: it has no pixels`);
  if (width * height > spec.maxPixels)
    throw new InvalidImageError(field, `image is ${width}×${height}; at most ${spec.maxPixels} pixels allowed (MAX_IMAGE_PIXELS)`);
  if (!spec.resize && (width !== spec.width || height !== spec.height))
    throw new InvalidImageError(field, `image is ${width}×${height}, the model takes ${spec.width}×${spec.height}; resize it or send "resize": true`);
  if (spec.resize) {
    const factor = width / height / (spec.width / spec.height);
    if (factor > MAX_RESIZE_ASPECT_FACTOR || factor < 1 / MAX_RESIZE_ASPECT_FACTOR)
      throw new InvalidImageError(
        field,
        `image is ${width}×${height}: its aspect ratio differs from the model's ${spec.width}×${spec.height} by more than ${MAX_RESIZE_ASPECT_FACTOR}×, too far to resize; crop it first`,
        { maxAspectFactor: MAX_RESIZE_ASPECT_FACTOR },
      );
  }
  return { format, width, height };
}

/** Full decode of an image that passed probeImage → CHW pixels at the model's size. */
async function decodeProbed(buf: Buffer, spec: ImageSpec, field: string): Promise<Uint8Array> {
  try {
    let img = sharp(buf, sharpOptions(spec)).flatten({ background: '#000000' });
    if (spec.resize) img = img.resize(spec.width, spec.height, { fit: 'fill' });
    img = spec.channels === 1 ? img.toColourspace('b-w') : img.toColourspace('srgb');
    const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== spec.channels || info.width !== spec.width || info.height !== spec.height)
      throw new Error(`decoded to ${info.width}×${info.height}×${info.channels}`);
    return hwcToChw(data, spec.channels, spec.height * spec.width);
  } catch (err) {
    throw new InvalidImageError(field, `image could not be decoded (${shortReason(err)})`);
  }
}

/** Settles every task, then throws the first failure in request order (the client fixes images in order). */
async function inOrder<T>(tasks: ((skip: () => boolean) => Promise<T>)[]): Promise<T[]> {
  let firstBad = Infinity;
  const results = await Promise.allSettled(
    tasks.map((task, i) =>
      task(() => i > firstBad).catch((err) => {
        firstBad = Math.min(firstBad, i);
        throw err;
      }),
    ),
  );
  const bad = results.find((r) => r.status === 'rejected');
  if (bad) throw (bad as PromiseRejectedResult).reason;
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}

/**
 * Synchronous work on the event loop, one piece at a time in call order, letting other work in
 * every `every` pieces so that probes and other requests stay responsive during a large request.
 */
function inlineQueue(every: number) {
  let tail: Promise<unknown> = Promise.resolve();
  let count = 0;
  return <T>(work: () => T): Promise<T> => {
    const n = count++;
    const result = tail.then(async () => {
      if (n > 0 && n % every === 0) await yieldToLoop();
      return work();
    });
    tail = result.catch(() => undefined);
    return result;
  };
}

export interface DecodeOptions {
  /** Read and decode small clean PNGs on the event loop (default); false: sharp for every image. */
  inlinePng?: boolean;
}

/**
 * A request's images → CHW pixels. Every header is read and checked first (per image, then the
 * request's decode budget: width × height summed ≤ maxRequestPixels) before any full decode, so a
 * refused request costs header reads only. Small clean PNGs at the model's size are decoded inline
 * (a file the inline decoder declines goes to sharp, which words any refusal as before); all sharp
 * work goes through the request's own lane of the fair scheduler. Images after a failed one are
 * not decoded.
 */
export async function decodeImages(images: readonly Buffer[], spec: ImageSpec, field: string, maxRequestPixels: number, scheduler: FairScheduler = decodeScheduler, options: DecodeOptions = {}): Promise<Uint8Array[]> {
  const lane = scheduler.lane();
  const inline = options.inlinePng ?? true;
  const layouts: (PngLayout | null)[] = images.map(() => null);
  const probeInline = inlineQueue(64);
  const headers = await inOrder(
    images.map((buf, i) => async (skip: () => boolean) => {
      const name = `${field}[${i}]`;
      const layout = inline ? await probeInline(() => (skip() ? null : inlineLayout(buf, spec))) : null;
      if (layout) {
        layouts[i] = layout;
        return checkHeader('png', layout.width, layout.height, spec, name);
      }
      return lane.run(async () => (skip() ? null : probeWithSharp(buf, spec, name)));
    }),
  );
  const total = headers.reduce((sum, h) => sum + h!.width * h!.height, 0);
  if (total > maxRequestPixels) throw new LimitExceededError(field, 'MAX_REQUEST_PIXELS', maxRequestPixels, total, 'pixels (width × height summed over the images)');
  const decodeInline = inlineQueue(32);
  return inOrder(
    images.map((buf, i) => async (skip: () => boolean) => {
      const layout = layouts[i];
      if (layout && !spec.resize) {
        const pixels = await decodeInline(() => (skip() ? new Uint8Array(0) : decodeSmallPng(buf, layout, spec.channels)));
        if (pixels) return pixels;
      }
      return lane.run(async () => (skip() ? new Uint8Array(0) : decodeProbed(buf, spec, `${field}[${i}]`)));
    }),
  );
}

/**
 * Lossless PNG of an 8-bit image at maximum compression (deflate level 9, per-row adaptive filter
 * choice), for the complexity score's L(x): byte for byte what pngjs's PNG.sync.write gave, which
 * the calibrations were made with (small-png.ts writePng8), at a fraction of its cost. On the
 * event loop, yielding every few dozen images so probes stay responsive.
 */
export async function losslessPng(images: readonly Uint8Array[], channels: number, height: number, width: number): Promise<Buffer[]> {
  if (channels !== 1 && channels !== 3) throw new Error(`PNG takes 1 or 3 channels, not ${channels}`);
  const out: Buffer[] = [];
  for (let i = 0; i < images.length; i++) {
    if (i > 0 && i % 32 === 0) await yieldToLoop();
    out.push(writePng8(chwToHwc(images[i], channels, height * width), channels, height, width));
  }
  return out;
}

// One CharLS (the JPEG-LS reference codec, as WebAssembly) per thread, created on first use. At
// ~29 µs per 28×28 image it is ~20× cheaper than a sharp call, so it runs inline on the event loop.
let charls: Promise<CharLSModule> | null = null;

/**
 * Lossless JPEG-LS (ISO 14495-1: LOCO-I median-edge predictor, context-adaptive Golomb coding, run
 * mode on flat areas) of 8-bit images, for the complexity score's L(x). Channels are coded as
 * separate planes (interleave mode none), which is the CHW layout the service keeps.
 */
export async function losslessJpegLs(images: readonly Uint8Array[], channels: number, height: number, width: number): Promise<Uint8Array[]> {
  let module: CharLSModule;
  try {
    module = await (charls ??= charlsFactory());
  } catch (err) {
    charls = null;
    throw err;
  }
  const encoder = new module.JpegLSEncoder();
  try {
    const out: Uint8Array[] = [];
    for (let i = 0; i < images.length; i++) {
      if (i > 0 && i % 64 === 0) await yieldToLoop();
      // Both buffers are views into WASM memory, which may grow: fetch them anew for every image.
      encoder.getDecodedBuffer({ width, height, bitsPerSample: 8, componentCount: channels }).set(images[i]);
      if (channels > 1) encoder.setInterleaveMode(0);
      encoder.encode();
      out.push(new Uint8Array(encoder.getEncodedBuffer()));
    }
    return out;
  } catch (err) {
    // A WASM abort leaves the module unusable: start a fresh one next time.
    charls = null;
    throw err;
  } finally {
    encoder.delete();
  }
}

/**
 * Deflate for client PNGs: zlib's default strategy at level 6 comes within ~4 % of sharp's size
 * (pngjs's Z_RLE is ~25 % cheaper but ~50 % larger on colour images) at ~1/10 of sharp's CPU.
 */
const CLIENT_DEFLATE = { level: 6 };

/** PNG for clients (sampled and decoded images): small ones written inline, larger ones by sharp. */
export async function encodePng(pixels: Uint8Array, channels: number, height: number, width: number): Promise<Buffer> {
  if ((channels === 1 || channels === 3) && height * width <= SMALL_PNG_MAX_PIXELS) {
    smallPngStats.encoded++;
    return writePng8(chwToHwc(pixels, channels, height * width), channels, height, width, CLIENT_DEFLATE);
  }
  const img = sharp(chwToHwc(pixels, channels, height * width), { raw: { width, height, channels: channels as 1 | 3 } });
  // without an explicit colourspace sharp writes single-channel input as 3-channel sRGB
  return (channels === 1 ? img.toColourspace('b-w') : img)
    .png({ compressionLevel: 9, adaptiveFiltering: true, palette: false })
    .toBuffer();
}

/** encodePng for many images, yielding to the event loop every few dozen small ones. */
export async function encodePngs(images: readonly Uint8Array[], channels: number, height: number, width: number): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (let i = 0; i < images.length; i++) {
    if (i > 0 && i % 32 === 0) await yieldToLoop();
    out.push(await encodePng(images[i], channels, height, width));
  }
  return out;
}

function chwToHwc(pixels: Uint8Array, channels: number, plane: number): Uint8Array {
  if (channels === 1) return pixels;
  const hwc = new Uint8Array(pixels.length);
  for (let c = 0; c < channels; c++) for (let p = 0; p < plane; p++) hwc[p * channels + c] = pixels[c * plane + p];
  return hwc;
}

function hwcToChw(data: Buffer, channels: number, plane: number): Uint8Array {
  if (channels === 1) return new Uint8Array(data.buffer, data.byteOffset, plane).slice();
  const out = new Uint8Array(channels * plane);
  for (let p = 0; p < plane; p++) for (let c = 0; c < channels; c++) out[c * plane + p] = data[p * channels + c];
  return out;
}

function shortReason(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.split('\n')[0].slice(0, 160);
}
