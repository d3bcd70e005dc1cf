// PNG decoding and encoding for small images on the event loop, without sharp. A sharp call costs
// ~0.9 ms of CPU for a 28×28 PNG (the libuv hand-off and sharp's per-call setup), more than the
// flow spends on the image; this codec takes ~10–20 µs (tools/bench-imaging.ts).
//
// The decoder is a fast path, never a second opinion: it accepts only files it can prove sharp
// decodes to the same pixels (test/imaging/small-png.test.ts checks bit-identity against sharp),
// and answers null for anything else (an unknown or misplaced chunk, a bad CRC, an odd zlib stream,
// trailing bytes), so that sharp, as before, decides about every unusual or broken file and words
// the refusal. What sharp does with the accepted formats (libvips 8.18, libpng), checked
// exhaustively: alpha is flattened onto black as ⌊v·a/255⌋; 16-bit samples become v >> 8 for
// 3-channel output; 1-, 2- and 4-bit grey scale to 0..255; grey goes to RGB by copying; RGB goes
// to grey through a luminance formula that leaves r = g = b unchanged (other colours: sharp).
import zlib from 'node:zlib';

/**
 * Largest image (width × height) decoded or encoded inline. Inline decoding beats sharp's CPU at
 * every size measured (64×64 RGB: ~50 µs against ~500 µs; 128×128: ~140 µs against ~1 ms), but it
 * holds the event loop: with a yield every 32 images, 64×64 keeps each stall near 1.6 ms, while
 * 128×128 would reach ~4.5 ms. The served models are 28×28 and 32×32.
 */
export const SMALL_PNG_MAX_PIXELS = 64 * 64;

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const type = (name: string) => name.charCodeAt(0) * 2 ** 24 + ((name.charCodeAt(1) << 16) | (name.charCodeAt(2) << 8) | name.charCodeAt(3));
const IHDR = type('IHDR'), PLTE = type('PLTE'), IDAT = type('IDAT'), IEND = type('IEND'), TRNS = type('tRNS');
const GAMA = type('gAMA'), CHRM = type('cHRM'), SRGB = type('sRGB'), SBIT = type('sBIT'), PHYS = type('pHYs'), TEXT = type('tEXt'), TIME = type('tIME');

/** Samples per pixel by colour type (0 grey, 2 RGB, 3 palette, 4 grey + alpha, 6 RGBA). */
const SAMPLES: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/** What a clean PNG header promises; from readPngLayout, for decodeSmallPng. */
export interface PngLayout {
  width: number;
  height: number;
  bitDepth: number;
  colorType: number;
  interlaced: boolean;
  /** PLTE as RGB triples (colour type 3). */
  palette: Uint8Array | null;
  /** tRNS of a palette image: alpha per palette entry, the rest opaque. */
  paletteAlpha: Uint8Array | null;
  /** tRNS of a grey or RGB image: the sample values that are transparent. */
  key: number[] | null;
  /** Offset of the first IDAT chunk. */
  firstIdat: number;
}

const crcTable = Int32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c;
});

/** CRC-32 for Node before 20.15, which has no zlib.crc32 (package.json allows 20.9). */
export function tableCrc32(data: Uint8Array): number {
  let c = -1;
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]) & 255] ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

const crc32: (data: Uint8Array) => number = (zlib as { crc32?: (data: Uint8Array) => number }).crc32 ?? tableCrc32;

const chunkCrcOk = (buf: Buffer, at: number, length: number) => crc32(buf.subarray(at + 4, at + 8 + length)) === buf.readUInt32BE(at + 8 + length);

/** tEXt as libpng takes it without complaint: a 1–79 byte Latin-1 keyword, then NUL. */
function textOk(buf: Buffer, start: number, length: number): boolean {
  const nul = buf.subarray(start, start + Math.min(length, 80)).indexOf(0);
  return nul >= 1;
}

function timeOk(buf: Buffer, s: number): boolean {
  const [month, day, hour, minute, second] = [buf[s + 2], buf[s + 3], buf[s + 4], buf[s + 5], buf[s + 6]];
  return month >= 1 && month <= 12 && day >= 1 && day <= 31 && hour <= 23 && minute <= 59 && second <= 60;
}

/**
 * The layout of a small PNG whose every chunk up to the first IDAT is known, well-formed, in
 * order and intact, and that `channels`-channel output can be decoded from inline; else null
 * (let sharp look at it). Allocates nothing in proportion to the image.
 */
export function readPngLayout(buf: Buffer, channels: number, maxPixels = SMALL_PNG_MAX_PIXELS): PngLayout | null {
  if (buf.length < 8 + 25 + 12 || !buf.subarray(0, 8).equals(SIGNATURE)) return null;
  if (buf.readUInt32BE(8) !== 13 || buf.readUInt32BE(12) !== IHDR || !chunkCrcOk(buf, 8, 13)) return null;
  const width = buf.readUInt32BE(16), height = buf.readUInt32BE(20);
  const [bitDepth, colorType, compression, filter, interlace] = [buf[24], buf[25], buf[26], buf[27], buf[28]];
  if (width < 1 || height < 1 || width * height > maxPixels) return null;
  if (compression !== 0 || filter !== 0 || interlace > 1) return null;
  if (!formatSupported(colorType, bitDepth, channels)) return null;

  let palette: Uint8Array | null = null, paletteAlpha: Uint8Array | null = null, key: number[] | null = null;
  const seen = new Set<number>();
  for (let at = 33; ; ) {
    if (at + 12 > buf.length) return null;
    const length = buf.readUInt32BE(at), kind = buf.readUInt32BE(at + 4), data = at + 8;
    if (length > buf.length - at - 12 || !chunkCrcOk(buf, at, length)) return null;
    if (kind === IDAT) {
      if (colorType === 3 && !palette) return null;
      return { width, height, bitDepth, colorType, interlaced: interlace === 1, palette, paletteAlpha, key, firstIdat: at };
    }
    // once each, and in libpng's order: colour-space chunks before PLTE, tRNS after it
    if (seen.has(kind) && kind !== TEXT) return null;
    seen.add(kind);
    switch (kind) {
      case PLTE:
        if (colorType !== 3 || length % 3 !== 0 || length === 0 || length / 3 > 1 << bitDepth) return null;
        palette = buf.subarray(data, data + length);
        break;
      case TRNS:
        if (colorType === 3) {
          if (!palette || length === 0 || length > palette.length / 3) return null;
          paletteAlpha = buf.subarray(data, data + length);
        } else if (colorType === 0 && bitDepth <= 8 && length === 2) {
          key = [buf.readUInt16BE(data)];
        } else if (colorType === 2 && bitDepth === 8 && length === 6) {
          key = [buf.readUInt16BE(data), buf.readUInt16BE(data + 2), buf.readUInt16BE(data + 4)];
        } else return null;
        if (key && key.some((k) => k >= 1 << bitDepth)) return null;
        break;
      case GAMA:
      case CHRM:
      case SRGB:
      case SBIT:
        if (palette) return null;
        if (kind === GAMA && length !== 4) return null;
        if (kind === CHRM && length !== 32) return null;
        if (kind === SRGB && (length !== 1 || buf[data] > 3)) return null;
        if (kind === SBIT) {
          const depth = colorType === 3 ? 8 : bitDepth;
          if (length !== (colorType === 3 ? 3 : SAMPLES[colorType])) return null;
          for (let i = 0; i < length; i++) if (buf[data + i] < 1 || buf[data + i] > depth) return null;
        }
        break;
      case PHYS:
        if (length !== 9 || buf[data + 8] > 1) return null;
        break;
      case TEXT:
        if (!textOk(buf, data, length)) return null;
        break;
      case TIME:
        if (length !== 7 || !timeOk(buf, data)) return null;
        break;
      default:
        return null;
    }
    at = data + length + 4;
  }
}

/**
 * Formats whose sharp output is proven for this many output channels. 16-bit grey or RGB into one
 * channel goes through a libvips conversion that is not v >> 8, and 16-bit alpha and 16-bit tRNS
 * are untested: sharp does those.
 */
function formatSupported(colorType: number, bitDepth: number, channels: number): boolean {
  if (channels !== 1 && channels !== 3) return false;
  switch (colorType) {
    case 0:
      return bitDepth === 1 || bitDepth === 2 || bitDepth === 4 || bitDepth === 8 || (bitDepth === 16 && channels === 3);
    case 2:
      return bitDepth === 8 || (bitDepth === 16 && channels === 3);
    case 3:
      return bitDepth === 1 || bitDepth === 2 || bitDepth === 4 || bitDepth === 8;
    case 4:
    case 6:
      return bitDepth === 8;
    default:
      return false;
  }
}

/** Adam7 passes as [x0, y0, dx, dy]; a non-interlaced image is one pass. */
const ADAM7 = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]] as const;
const ONE_PASS = [[0, 0, 1, 1]] as const;

interface Pass {
  x0: number; y0: number; dx: number; dy: number;
  cols: number; rows: number; rowBytes: number;
  /** Offset of the pass's first filter byte in the inflated data. */
  start: number;
}

function passesOf(layout: PngLayout): { passes: Pass[]; size: number } {
  const bitsPerPixel = SAMPLES[layout.colorType] * layout.bitDepth;
  const passes: Pass[] = [];
  let size = 0;
  for (const [x0, y0, dx, dy] of layout.interlaced ? ADAM7 : ONE_PASS) {
    const cols = layout.width > x0 ? Math.ceil((layout.width - x0) / dx) : 0;
    const rows = layout.height > y0 ? Math.ceil((layout.height - y0) / dy) : 0;
    if (cols === 0 || rows === 0) continue;
    const rowBytes = Math.ceil((cols * bitsPerPixel) / 8);
    passes.push({ x0, y0, dx, dy, cols, rows, rowBytes, start: size });
    size += rows * (1 + rowBytes);
  }
  return { passes, size };
}

/**
 * The IDAT stream of a file whose chunks after the first IDAT are intact IDATs, then tEXt,
 * then an empty IEND that ends the file; else null.
 */
function idatData(buf: Buffer, firstIdat: number): Buffer | null {
  const parts: Buffer[] = [];
  let afterIdat = false;
  for (let at = firstIdat; ; ) {
    if (at + 12 > buf.length) return null;
    const length = buf.readUInt32BE(at), kind = buf.readUInt32BE(at + 4), data = at + 8;
    if (length > buf.length - at - 12 || !chunkCrcOk(buf, at, length)) return null;
    const next = data + length + 4;
    if (kind === IDAT) {
      if (afterIdat) return null;
      parts.push(buf.subarray(data, data + length));
    } else if (kind === IEND) {
      if (length !== 0 || next !== buf.length) return null;
      return parts.length === 1 ? parts[0] : Buffer.concat(parts);
    } else {
      afterIdat = true;
      // tIME here could repeat one before IDAT; only tEXt may repeat
      if (kind !== TEXT || !textOk(buf, data, length)) return null;
    }
    at = next;
  }
}

/** Undoes the row filters in place; false on a filter type PNG does not define. */
function unfilter(raw: Buffer, pass: Pass, bpp: number): boolean {
  const { rowBytes } = pass;
  let row = pass.start + 1;
  for (let y = 0; y < pass.rows; y++, row += rowBytes + 1) {
    const filterType = raw[row - 1];
    const up = row - rowBytes - 1;
    const hasUp = y > 0;
    switch (filterType) {
      case 0:
        break;
      case 1:
        for (let i = bpp; i < rowBytes; i++) raw[row + i] = (raw[row + i] + raw[row + i - bpp]) & 255;
        break;
      case 2:
        if (hasUp) for (let i = 0; i < rowBytes; i++) raw[row + i] = (raw[row + i] + raw[up + i]) & 255;
        break;
      case 3:
        if (hasUp) {
          for (let i = 0; i < bpp; i++) raw[row + i] = (raw[row + i] + (raw[up + i] >> 1)) & 255;
          for (let i = bpp; i < rowBytes; i++) raw[row + i] = (raw[row + i] + ((raw[row + i - bpp] + raw[up + i]) >> 1)) & 255;
        } else for (let i = bpp; i < rowBytes; i++) raw[row + i] = (raw[row + i] + (raw[row + i - bpp] >> 1)) & 255;
        break;
      case 4:
        if (hasUp) {
          for (let i = 0; i < bpp; i++) raw[row + i] = (raw[row + i] + raw[up + i]) & 255;
          for (let i = bpp; i < rowBytes; i++) {
            const a = raw[row + i - bpp], b = raw[up + i], c = raw[up + i - bpp];
            const pa = Math.abs(b - c), pb = Math.abs(a - c), pc = Math.abs(a + b - 2 * c);
            raw[row + i] = (raw[row + i] + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c)) & 255;
          }
        } else for (let i = bpp; i < rowBytes; i++) raw[row + i] = (raw[row + i] + raw[row + i - bpp]) & 255;
        break;
      default:
        return false;
    }
  }
  return true;
}

/** Counts of inline work, for tests and benchmarks: proof that the fast path was taken. */
export const smallPngStats = { decoded: 0, declined: 0, encoded: 0 };

/**
 * The CHW pixels sharp would give for a file readPngLayout accepted (flattened onto black, in
 * `channels` channels), or null when the rest of the file is not clean (sharp then decides). The
 * inflate output is bounded by the size the header implies, so a decompression bomb costs at most
 * that much memory; a stream that is short, long, corrupt or followed by extra bytes is declined.
 */
export function decodeSmallPng(buf: Buffer, layout: PngLayout, channels: number): Uint8Array | null {
  const pixels = decodeClean(buf, layout, channels);
  if (pixels) smallPngStats.decoded++;
  else smallPngStats.declined++;
  return pixels;
}

function decodeClean(buf: Buffer, layout: PngLayout, channels: number): Uint8Array | null {
  const stream = idatData(buf, layout.firstIdat);
  if (!stream) return null;
  const { passes, size } = passesOf(layout);
  let raw: Buffer;
  try {
    const { buffer, engine } = zlib.inflateSync(stream, { maxOutputLength: size, info: true }) as unknown as { buffer: Buffer; engine: zlib.Inflate };
    if (buffer.length !== size || engine.bytesWritten !== stream.length) return null;
    raw = buffer;
  } catch {
    return null;
  }
  const bpp = Math.max(1, (SAMPLES[layout.colorType] * layout.bitDepth) >> 3);
  for (const pass of passes) if (!unfilter(raw, pass, bpp)) return null;

  const { width, height, colorType, bitDepth } = layout;
  const plane = width * height;
  if (!layout.interlaced && bitDepth === 8 && !layout.key) {
    // the common cases, without the per-sample indirection below
    if (colorType === 0) return spread(rowsCopy(raw, width, height), channels, plane);
    if (colorType === 2 && channels === 3) {
      const out = new Uint8Array(3 * plane);
      for (let y = 0, p = 0; y < height; y++) {
        let s = y * (3 * width + 1) + 1;
        for (let x = 0; x < width; x++, p++, s += 3) {
          out[p] = raw[s];
          out[plane + p] = raw[s + 1];
          out[2 * plane + p] = raw[s + 2];
        }
      }
      return out;
    }
  }
  const grey = colorType === 0 || colorType === 4;
  const out = new Uint8Array((grey ? 1 : 3) * plane);
  if (!convert(raw, layout, passes, out, plane)) return null;
  if (grey) return spread(out, channels, plane);
  if (channels === 3) return out;
  // RGB into one channel: sharp's luminance formula is proven only where r = g = b
  for (let p = 0; p < plane; p++) if (out[p] !== out[plane + p] || out[p] !== out[2 * plane + p]) return null;
  return out.slice(0, plane);
}

function rowsCopy(raw: Buffer, width: number, height: number): Uint8Array {
  const out = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) out.set(raw.subarray(y * (width + 1) + 1, (y + 1) * (width + 1)), y * width);
  return out;
}

/** Grey into `channels` channels: sharp's b-w → sRGB copies the grey into each channel. */
function spread(grey: Uint8Array, channels: number, plane: number): Uint8Array {
  if (channels === 1) return grey;
  const out = new Uint8Array(3 * plane);
  out.set(grey, 0);
  out.set(grey, plane);
  out.set(grey, 2 * plane);
  return out;
}

/**
 * Every pixel, any accepted format: grey formats into one plane, colour formats into three, alpha
 * flattened onto black. False on a palette index past the palette's end.
 */
function convert(raw: Buffer, layout: PngLayout, passes: Pass[], out: Uint8Array, plane: number): boolean {
  const { width, colorType, bitDepth, key, palette, paletteAlpha } = layout;
  const spp = SAMPLES[colorType];
  const mask = (1 << Math.min(bitDepth, 8)) - 1;
  const scale = bitDepth < 8 ? 255 / mask : 1; // 1-, 2-, 4-bit grey: libpng's expansion to 0..255
  const entries = palette ? palette.length / 3 : 0;
  const sample = (row: number, i: number): number => {
    if (bitDepth === 8) return raw[row + i];
    if (bitDepth === 16) return raw[row + 2 * i]; // the high byte: sharp's v >> 8
    const bit = i * bitDepth;
    return (raw[row + (bit >> 3)] >> (8 - bitDepth - (bit & 7))) & mask;
  };
  for (const pass of passes) {
    for (let y = 0; y < pass.rows; y++) {
      const row = pass.start + y * (pass.rowBytes + 1) + 1;
      let p = (pass.y0 + y * pass.dy) * width + pass.x0;
      for (let x = 0; x < pass.cols; x++, p += pass.dx) {
        const s = x * spp;
        switch (colorType) {
          case 0: {
            const v = sample(row, s);
            // the 16-bit key is refused in readPngLayout, so v is the full sample here
            out[p] = key && v === key[0] ? 0 : v * scale;
            break;
          }
          case 4:
            out[p] = ((raw[row + s] * raw[row + s + 1]) / 255) | 0;
            break;
          case 2: {
            const r = sample(row, s), g = sample(row, s + 1), b = sample(row, s + 2);
            const clear = key !== null && r === key[0] && g === key[1] && b === key[2];
            out[p] = clear ? 0 : r;
            out[plane + p] = clear ? 0 : g;
            out[2 * plane + p] = clear ? 0 : b;
            break;
          }
          case 3: {
            const i = sample(row, s);
            if (i >= entries) return false;
            const a = paletteAlpha && i < paletteAlpha.length ? paletteAlpha[i] : 255;
            out[p] = ((palette![3 * i] * a) / 255) | 0;
            out[plane + p] = ((palette![3 * i + 1] * a) / 255) | 0;
            out[2 * plane + p] = ((palette![3 * i + 2] * a) / 255) | 0;
            break;
          }
          case 6: {
            const a = raw[row + s + 3];
            out[p] = ((raw[row + s] * a) / 255) | 0;
            out[plane + p] = ((raw[row + s + 1] * a) / 255) | 0;
            out[2 * plane + p] = ((raw[row + s + 2] * a) / 255) | 0;
            break;
          }
        }
      }
    }
  }
  return true;
}

/**
 * pngjs's filter choice (packer filter-pack.js): per row, the filter whose residuals, taken as
 * integers in −255..255 (not mod 256), have the least absolute sum; ties go to the lower type.
 * Out-of-image neighbours are 0. One pass computes all five sums.
 */
function filterRows(src: Uint8Array, width: number, height: number, bpp: number): Buffer {
  const rowBytes = width * bpp;
  const out = Buffer.allocUnsafe((rowBytes + 1) * height);
  const zeros = new Uint8Array(rowBytes);
  for (let y = 0; y < height; y++) {
    const row = src.subarray(y * rowBytes, (y + 1) * rowBytes);
    const up = y > 0 ? src.subarray((y - 1) * rowBytes, y * rowBytes) : zeros;
    let sNone = 0, sSub = 0, sUp = 0, sAvg = 0, sPaeth = 0;
    for (let x = 0; x < rowBytes; x++) {
      const v = row[x], b = up[x];
      const a = x >= bpp ? row[x - bpp] : 0, c = x >= bpp ? up[x - bpp] : 0;
      sNone += v;
      sSub += Math.abs(v - a);
      sUp += Math.abs(v - b);
      sAvg += Math.abs(v - ((a + b) >> 1));
      const pa = Math.abs(b - c), pb = Math.abs(a - c), pc = Math.abs(a + b - 2 * c);
      sPaeth += Math.abs(v - (pa <= pb && pa <= pc ? a : pb <= pc ? b : c));
    }
    let sel = 0, min = sNone;
    if (sSub < min) (sel = 1), (min = sSub);
    if (sUp < min) (sel = 2), (min = sUp);
    if (sAvg < min) (sel = 3), (min = sAvg);
    if (sPaeth < min) sel = 4;
    const o = y * (rowBytes + 1) + 1;
    out[o - 1] = sel;
    switch (sel) {
      case 0:
        out.set(row, o);
        break;
      case 1:
        for (let x = 0; x < rowBytes; x++) out[o + x] = row[x] - (x >= bpp ? row[x - bpp] : 0);
        break;
      case 2:
        for (let x = 0; x < rowBytes; x++) out[o + x] = row[x] - up[x];
        break;
      case 3:
        for (let x = 0; x < rowBytes; x++) out[o + x] = row[x] - (((x >= bpp ? row[x - bpp] : 0) + up[x]) >> 1);
        break;
      default:
        for (let x = 0; x < rowBytes; x++) {
          const a = x >= bpp ? row[x - bpp] : 0, b = up[x], c = x >= bpp ? up[x - bpp] : 0;
          const pa = Math.abs(b - c), pb = Math.abs(a - c), pc = Math.abs(a + b - 2 * c);
          out[o + x] = row[x] - (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
        }
    }
  }
  return out;
}

function chunk(out: Buffer, at: number, kind: number, data: Uint8Array): number {
  out.writeUInt32BE(data.length, at);
  out.writeUInt32BE(kind, at + 4);
  out.set(data, at + 8);
  out.writeUInt32BE(crc32(out.subarray(at + 4, at + 8 + data.length)), at + 8 + data.length);
  return at + 12 + data.length;
}

/** pngjs 7's zlib call for PNG.sync.write at deflateLevel 9: strategy 3 is Z_RLE. */
const PNGJS_DEFLATE: zlib.ZlibOptions = { chunkSize: 32 * 1024, level: 9, strategy: 3 };

/**
 * An 8-bit grey (1 channel) or RGB (3 channels, HWC) PNG, byte for byte what pngjs 7 writes for
 * PNG.sync.write(png, { colorType, inputColorType: colorType, inputHasAlpha: false, bitDepth: 8,
 * deflateLevel: 9, filterType: -1 }): the same filter choice and the same zlib call in the same
 * process give the same bytes, without pngjs's stream objects and per-row dispatch. The complexity
 * score's L(x) is calibrated on its length. Other deflate options give a valid PNG of the same
 * pixels that is not pngjs's.
 */
export function writePng8(hwc: Uint8Array, channels: 1 | 3, height: number, width: number, deflate: zlib.ZlibOptions = PNGJS_DEFLATE): Buffer {
  const filtered = filterRows(hwc, width, height, channels);
  const idat = zlib.deflateSync(filtered, deflate);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = channels === 1 ? 0 : 2;
  const out = Buffer.allocUnsafe(8 + 25 + 12 + idat.length + 12);
  SIGNATURE.copy(out, 0);
  let at = chunk(out, 8, IHDR, ihdr);
  at = chunk(out, at, IDAT, idat);
  chunk(out, at, IEND, new Uint8Array(0));
  return out;
}
