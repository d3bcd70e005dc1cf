// PNG files for the inline codec's tests, written here independently of src/imaging/small-png.ts
// (its own filters, bit packing and Adam7 split) so that a misreading of the specification would
// have to be made twice, and checked against sharp, to go unnoticed.
import { crc32, deflateSync, type ZlibOptions } from 'node:zlib';
import { Rng } from '../../src/flow/random.js';

export const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export function chunk(type: string, data: Uint8Array = new Uint8Array(0)): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)) >>> 0, 8 + data.length);
  return out;
}

export const SAMPLES_PER_PIXEL: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

export interface PngPlan {
  width: number;
  height: number;
  colorType: 0 | 2 | 3 | 4 | 6;
  bitDepth: 1 | 2 | 4 | 8 | 16;
  /** Sample c of pixel (x, y), in 0..2^bitDepth − 1 (a palette index for colour type 3). */
  sample: (x: number, y: number, c: number) => number;
  /** A filter type for every row, or 'random' (seeded), or a function of the row. */
  filter?: number | 'random' | ((row: number) => number);
  interlace?: boolean;
  zlib?: ZlibOptions;
  /** Split the IDAT stream into this many chunks (some may be empty). */
  idatChunks?: number;
  palette?: Uint8Array;
  trns?: Uint8Array;
  /** Chunks after IHDR (before PLTE), between PLTE/tRNS and IDAT, after the IDATs. */
  beforePlte?: Buffer[];
  beforeIdat?: Buffer[];
  afterIdat?: Buffer[];
  seed?: number;
}

const ADAM7 = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]];

/** The filtered, not yet compressed image data: passes of rows, each a filter byte and its packed samples. */
export function rawImageData(plan: PngPlan): Buffer {
  const { width, height, colorType, bitDepth } = plan;
  const spp = SAMPLES_PER_PIXEL[colorType];
  const rng = new Rng(plan.seed ?? 1);
  const bytesPerPixel = Math.max(1, (spp * bitDepth) / 8);
  const parts: Buffer[] = [];
  let rowIndex = 0;
  for (const [x0, y0, dx, dy] of plan.interlace ? ADAM7 : [[0, 0, 1, 1]]) {
    const cols = width > x0 ? Math.ceil((width - x0) / dx) : 0;
    const rows = height > y0 ? Math.ceil((height - y0) / dy) : 0;
    if (cols === 0 || rows === 0) continue;
    const rowBytes = Math.ceil((cols * spp * bitDepth) / 8);
    let prior = Buffer.alloc(rowBytes);
    for (let r = 0; r < rows; r++, rowIndex++) {
      const line = Buffer.alloc(rowBytes);
      let bit = 0;
      for (let i = 0; i < cols; i++)
        for (let c = 0; c < spp; c++) {
          const v = plan.sample(x0 + i * dx, y0 + r * dy, c);
          if (bitDepth === 16) line.writeUInt16BE(v, bit / 8);
          else if (bitDepth === 8) line[bit / 8] = v;
          else line[bit >> 3] |= v << (8 - bitDepth - (bit & 7));
          bit += bitDepth;
        }
      const f = plan.filter === 'random' ? rng.nextUint32() % 5 : typeof plan.filter === 'function' ? plan.filter(rowIndex) : (plan.filter ?? 0);
      const out = Buffer.alloc(1 + rowBytes);
      out[0] = f;
      for (let i = 0; i < rowBytes; i++) {
        const a = i >= bytesPerPixel ? line[i - bytesPerPixel] : 0;
        const b = prior[i];
        const c = i >= bytesPerPixel ? prior[i - bytesPerPixel] : 0;
        const p = a + b - c;
        const paeth = Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c;
        out[1 + i] = line[i] - [0, a, b, Math.floor((a + b) / 2), paeth][f];
      }
      parts.push(out);
      prior = line;
    }
  }
  return Buffer.concat(parts);
}

export function ihdr(width: number, height: number, bitDepth: number, colorType: number, interlace = 0): Buffer {
  const data = Buffer.alloc(13);
  data.writeUInt32BE(width, 0);
  data.writeUInt32BE(height, 4);
  data[8] = bitDepth;
  data[9] = colorType;
  data[12] = interlace;
  return chunk('IHDR', data);
}

export function makePng(plan: PngPlan): Buffer {
  const stream = deflateSync(rawImageData(plan), plan.zlib ?? {});
  const pieces = plan.idatChunks ?? 1;
  const idats: Buffer[] = [];
  for (let i = 0; i < pieces; i++) idats.push(chunk('IDAT', stream.subarray(Math.floor((i * stream.length) / pieces), Math.floor(((i + 1) * stream.length) / pieces))));
  return Buffer.concat([
    SIGNATURE,
    ihdr(plan.width, plan.height, plan.bitDepth, plan.colorType, plan.interlace ? 1 : 0),
    ...(plan.beforePlte ?? []),
    ...(plan.palette ? [chunk('PLTE', plan.palette)] : []),
    ...(plan.trns ? [chunk('tRNS', plan.trns)] : []),
    ...(plan.beforeIdat ?? []),
    ...idats,
    ...(plan.afterIdat ?? []),
    chunk('IEND'),
  ]);
}

/** The chunks of a PNG as [type, offset], for surgery on a file. */
export function chunksOf(png: Buffer): { type: string; at: number; length: number }[] {
  const out: { type: string; at: number; length: number }[] = [];
  for (let at = 8; at + 8 <= png.length; ) {
    const length = png.readUInt32BE(at);
    out.push({ type: png.toString('latin1', at + 4, at + 8), at, length });
    at += 12 + length;
  }
  return out;
}

/** Replaces the data of the first chunk of a type (the CRC made right). */
export function withChunkData(png: Buffer, type: string, data: Uint8Array): Buffer {
  const c = chunksOf(png).find((k) => k.type === type)!;
  return Buffer.concat([png.subarray(0, c.at), chunk(type, data), png.subarray(c.at + 12 + c.length)]);
}

/** Pixel patterns, as sample functions over a maximum value. */
export function patterns(max: number, seed: number): Record<string, (x: number, y: number, c: number) => number> {
  const rng = new Rng(seed);
  const noise = new Map<string, number>();
  return {
    noise: (x, y, c) => {
      const k = `${x},${y},${c}`;
      if (!noise.has(k)) noise.set(k, rng.nextUint32() % (max + 1));
      return noise.get(k)!;
    },
    gradient: (x, y, c) => Math.floor((((x * 3 + y * 5 + c * 7) % 64) / 63) * max),
    flat: (_x, _y, c) => Math.floor(max / (c + 2)),
    checker: (x, y, c) => ((x >> 1) + (y >> 1) + c) % 2 === 0 ? max : 0,
  };
}
