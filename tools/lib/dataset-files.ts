// Calibration and evaluation data from the user's own files, as data-space rows for one model:
//   a folder of images (PNG, JPEG, WebP), decoded exactly as the service decodes uploads;
//   a .npy array (NPY format 1.0 to 3.0): float32/float64 values in data space, or uint8/uint16 pixels;
//   an IDX file (the MNIST format, optionally gzipped): uint8 pixels.
// Pixels become pixel centres (k + 0.5)/2^bitDepth, the inputs the service scores. Every refusal
// names the file and the rule, so a wrong file fails before any model runs.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { Manifest } from '../../src/config/manifest-schema.js';
import { decodeImages } from '../../src/imaging/image-codec.js';
import { pixelsToData } from '../../src/flow/quantize.js';

export class DatasetError extends Error {}

type Flat = Uint8Array | Uint16Array | Float32Array | Float64Array;

/** A file's array as read, before it is matched to a model. */
export interface RawArray {
  /** The file name (no folders), for messages and the calibration's `split`. */
  source: string;
  /** pixels: integers k in [0, 2^b); values: floats already in data space. */
  kind: 'pixels' | 'values';
  /** Shape of the whole array, count first. */
  shape: number[];
  data: Flat;
}

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.webp']);
const product = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);
const shapeText = (xs: readonly number[]) => `[${xs.join(', ')}]`;

function readBytes(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new DatasetError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

// ---- NPY -----------------------------------------------------------------------------------------

const NPY_MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY
const NPY_TYPES: Record<string, { bytes: number; kind: RawArray['kind']; make: (n: number) => Flat; get: (v: DataView, o: number, le: boolean) => number }> = {
  u1: { bytes: 1, kind: 'pixels', make: (n) => new Uint8Array(n), get: (v, o) => v.getUint8(o) },
  u2: { bytes: 2, kind: 'pixels', make: (n) => new Uint16Array(n), get: (v, o, le) => v.getUint16(o, le) },
  f4: { bytes: 4, kind: 'values', make: (n) => new Float32Array(n), get: (v, o, le) => v.getFloat32(o, le) },
  f8: { bytes: 8, kind: 'values', make: (n) => new Float64Array(n), get: (v, o, le) => v.getFloat64(o, le) },
};

/** Parses an NPY file (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html). */
export function parseNpy(buf: Buffer, source: string): RawArray {
  if (buf.length < 10 || !buf.subarray(0, 6).equals(NPY_MAGIC)) throw new DatasetError(`${source}: not an NPY file (no \\x93NUMPY magic)`);
  const major = buf[6];
  if (major < 1 || major > 3) throw new DatasetError(`${source}: NPY format version ${major}.${buf[7]} is not supported (1.0 to 3.0 are)`);
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 + headerLen : 12 + headerLen;
  if (start > buf.length) throw new DatasetError(`${source}: NPY header is truncated`);
  const header = buf.subarray(major === 1 ? 10 : 12, start).toString(major === 3 ? 'utf8' : 'latin1');
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText_ = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText_ === undefined) throw new DatasetError(`${source}: NPY header is not a format dictionary: ${header.trim()}`);
  if (fortran === 'True') throw new DatasetError(`${source}: Fortran-ordered arrays are not supported; save with np.ascontiguousarray(x)`);
  const shape = shapeText_.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  if (shape.length === 0 || shape.some((d) => !Number.isInteger(d) || d < 0)) throw new DatasetError(`${source}: NPY shape (${shapeText_}) must have a count first, e.g. [N, D]`);
  const m = /^([<>|=])([uf][1248])$/.exec(descr);
  const type = m && NPY_TYPES[m[2]];
  if (!m || !type) throw new DatasetError(`${source}: dtype '${descr}' is not supported: use float32 or float64 (data-space values) or uint8 or uint16 (pixels)`);
  const n = product(shape);
  if (start + n * type.bytes > buf.length) throw new DatasetError(`${source}: holds ${buf.length - start} data bytes, shape ${shapeText(shape)} of '${descr}' needs ${n * type.bytes}`);
  const little = m[1] !== '>';
  const view = new DataView(buf.buffer, buf.byteOffset + start, n * type.bytes);
  const data = type.make(n);
  for (let i = 0; i < n; i++) data[i] = type.get(view, i * type.bytes, little);
  return { source, kind: type.kind, shape, data };
}

/** An NPY file's bytes, for tests and for users who write arrays from JavaScript. */
export function encodeNpy(data: Flat, shape: number[]): Buffer {
  const descr = data instanceof Uint8Array ? '|u1' : data instanceof Uint16Array ? '<u2' : data instanceof Float32Array ? '<f4' : '<f8';
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${dims}), }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n'; // data starts on a 64-byte boundary
  const head = Buffer.alloc(10);
  NPY_MAGIC.copy(head);
  head[6] = 1;
  head.writeUInt16LE(header.length, 8);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

// ---- IDX -----------------------------------------------------------------------------------------

/** Parses an IDX file of unsigned bytes (MNIST's format: magic 0x0000 08 <ndims>, big-endian dims), gzipped or not. */
export function parseIdx(raw: Buffer, source: string): RawArray {
  let buf = raw;
  if (raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      buf = gunzipSync(raw);
    } catch (err) {
      throw new DatasetError(`${source}: gzip data is corrupt (${(err as Error).message})`);
    }
  }
  if (buf.length < 4 || buf[0] !== 0 || buf[1] !== 0) throw new DatasetError(`${source}: not an IDX file (magic must start with two zero bytes)`);
  if (buf[2] !== 0x08) throw new DatasetError(`${source}: IDX data type 0x${buf[2].toString(16).padStart(2, '0')} is not supported (unsigned bytes, 0x08, are)`);
  const ndims = buf[3];
  if (ndims < 1 || buf.length < 4 + 4 * ndims) throw new DatasetError(`${source}: IDX header is truncated`);
  const shape = Array.from({ length: ndims }, (_, i) => buf.readUInt32BE(4 + 4 * i));
  const start = 4 + 4 * ndims;
  const n = product(shape);
  if (start + n > buf.length) throw new DatasetError(`${source}: holds ${buf.length - start} data bytes, shape ${shapeText(shape)} needs ${n}`);
  return { source, kind: 'pixels', shape, data: new Uint8Array(buf.buffer, buf.byteOffset + start, n) };
}

// ---- image folders -------------------------------------------------------------------------------

/** The image files of a folder (png, jpg, jpeg, webp; sorted by name); other files are left alone. */
export function listImages(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    throw new DatasetError(`cannot read folder ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return names.filter((n) => IMAGE_EXTENSIONS.has(extname(n).toLowerCase())).sort();
}

/**
 * A folder of images → CHW pixel rows at the model's size, through the service's own decoder
 * (decodeImages: same format, size and channel rules as an upload; no resizing).
 */
export async function readImageFolder(dir: string, manifest: Manifest, limit = Infinity): Promise<RawArray> {
  const { data } = manifest;
  if (data.kind !== 'image' || data.bitDepth === null) throw new DatasetError(`${basename(dir)}: a folder of images needs an image model; ${manifest.name} takes vectors (use a .npy file)`);
  if (data.bitDepth !== 8) throw new DatasetError(`${basename(dir)}: images decode to 8-bit pixels, ${manifest.name} takes ${data.bitDepth}-bit data (use a uint16 .npy file)`);
  const [channels, height, width] = data.shape;
  const files = listImages(dir).slice(0, limit);
  const d = channels * height * width;
  const out = new Uint8Array(files.length * d);
  for (const [i, file] of files.entries()) {
    let pixels: Uint8Array;
    try {
      [pixels] = await decodeImages([readBytes(join(dir, file))], { channels, height, width, maxPixels: 1 << 26, resize: false }, file, Infinity);
    } catch (err) {
      if (err instanceof DatasetError) throw err;
      throw new DatasetError(`${join(basename(dir), file)}: ${(err as Error).message}`);
    }
    out.set(pixels, i * d);
  }
  return { source: `${basename(dir)}/`, kind: 'pixels', shape: [files.length, channels, height, width], data: out };
}

/** Reads any supported data path: a folder of images, a .npy file, or an IDX file (anything else). */
export async function readDataset(path: string, manifest: Manifest, limit = Infinity): Promise<RawArray> {
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch (err) {
    throw new DatasetError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (isDir) return readImageFolder(path, manifest, limit);
  const buf = readBytes(path);
  if (buf.subarray(0, 6).equals(NPY_MAGIC)) return parseNpy(buf, basename(path));
  if (extname(path).toLowerCase() === '.npy') throw new DatasetError(`${basename(path)}: not an NPY file (no \\x93NUMPY magic)`);
  return parseIdx(buf, basename(path));
}

// ---- matching a model ----------------------------------------------------------------------------

export interface ModelRows {
  /** Flat data-space rows, count × D. */
  rows: Float64Array;
  count: number;
  /** How the rows were made, for the calibration's `method`. */
  method: string;
}

/**
 * The array → data-space rows for `manifest`: each item must be the model's data shape, D values
 * flat, or (images) H×W for one channel or H×W×C, which is transposed to the model's C×H×W.
 * Pixels must fit the model's bit depth; values must be finite and inside the data range.
 */
export function toModelRows(arr: RawArray, manifest: Manifest, limit = Infinity): ModelRows {
  const { data } = manifest;
  const d = product(data.shape);
  const item = arr.shape.slice(1);
  const count = Math.min(arr.shape[0], limit);
  const expected = `each item must be ${shapeText(data.shape)} (D = ${d} values${data.shape.length > 1 ? `, or [${d}] flat` : ''}) for ${manifest.name}`;
  if (arr.shape.length < 2) throw new DatasetError(`${arr.source}: shape ${shapeText(arr.shape)} has no item dimension: ${expected}, so the array must be [N, ...]`);
  const same = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((v, i) => v === b[i]);
  const [c, h, w] = data.shape;
  const hwc = data.kind === 'image' && data.shape.length === 3 && c > 1 && same(item, [h, w, c]) && !same(item, data.shape);
  const ok = same(item, data.shape) || same(item, [d]) || (data.kind === 'image' && c === 1 && same(item, [h, w])) || hwc;
  if (!ok) throw new DatasetError(`${arr.source}: items are ${shapeText(item)} (${product(item)} values); ${expected}`);
  if (count === 0) throw new DatasetError(`${arr.source}: the dataset is empty (no items)`);

  const rows = new Float64Array(count * d);
  // Index of value j (model order, CHW) within an item as stored.
  const at = hwc ? (j: number) => { const ch = Math.floor(j / (h * w)), p = j % (h * w); return p * c + ch; } : (j: number) => j;
  if (arr.kind === 'pixels') {
    if (data.kind !== 'image' || data.bitDepth === null) throw new DatasetError(`${arr.source}: holds integer pixels, but ${manifest.name} takes continuous vectors: save float32 or float64 values in data space`);
    const levels = 2 ** data.bitDepth;
    for (let i = 0; i < count; i++) {
      const pixels = new Float64Array(d);
      for (let j = 0; j < d; j++) {
        const k = arr.data[i * d + at(j)];
        if (k >= levels) throw new DatasetError(`${arr.source}: item ${i} value ${k} is outside ${manifest.name}'s support: ${data.bitDepth}-bit pixels lie in [0, ${levels - 1}]`);
        pixels[j] = k;
      }
      rows.set(pixelsToData(pixels, data.bitDepth), i * d);
    }
    return { rows, count, method: `pixel centres (k + 0.5)/${levels} of the ${data.bitDepth}-bit pixels in ${arr.source}, the same inputs the service scores` };
  }
  const range = data.range;
  for (let i = 0; i < count; i++)
    for (let j = 0; j < d; j++) {
      const v = arr.data[i * d + at(j)];
      if (!Number.isFinite(v)) throw new DatasetError(`${arr.source}: item ${i} value ${j} is ${v}: values must be finite`);
      if (range && (v < range[0] || v > range[1])) throw new DatasetError(`${arr.source}: item ${i} value ${j} is ${v}, outside ${manifest.name}'s support: the data range is [${range[0]}, ${range[1]}]`);
      rows[i * d + j] = v;
    }
  return {
    rows,
    count,
    method: data.bitDepth !== null
      ? `data-space values from ${arr.source} as given (pixel centres (k + 0.5)/${2 ** data.bitDepth} are what the service scores for images)`
      : `data-space vectors from ${arr.source} as given`,
  };
}
