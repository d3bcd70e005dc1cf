// Request payloads → validated flat rows in data space. Every refusal names the field and the rule.
import { decodeImages } from '../imaging/image-codec.js';
import { pixelsToData } from '../flow/quantize.js';
import { InvalidImageError, InvalidInputError, LimitExceededError } from '../errors.js';
import type { FlowModel } from './flow-model.js';
import { inSupport, type Support } from '../flow/preprocess.js';

/** Data-space (or latent) rows, flat and row-major: float64, or float32 as a binary body sent them. */
export type DataRows = Float64Array | Float32Array;

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const DATA_URL = /^data:image\/[a-z0-9.+-]+;base64,/i;

export function checkCount(field: string, count: number, max: number, limit: string): void {
  if (count > max) throw new LimitExceededError(field, limit, max, count);
  if (count < 1) throw new InvalidInputError(field, 'must hold at least one item');
}

/** Number rows (inputs in data space, checked against the support; or latents, null) → one flat Float64Array. */
export function rowsFromArrays(field: string, rows: number[][], model: FlowModel, support: Support | null): Float64Array {
  const d = model.dim;
  const out = new Float64Array(rows.length * d);
  rows.forEach((row, i) => {
    if (row.length !== d) throw new InvalidInputError(`${field}[${i}]`, `must have ${d} values (model ${model.name}, shape [${model.manifest.data.shape.join(', ')}]), got ${row.length}`, { expected: d, got: row.length });
    for (let j = 0; j < d; j++) {
      const v = row[j];
      if (!Number.isFinite(v)) throw new InvalidInputError(`${field}[${i}][${j}]`, 'must be a finite number (no NaN, Infinity or overflow)');
      if (support && !inSupport(support, v))
        throw new InvalidInputError(`${field}[${i}][${j}]`, `must lie in the model's support, the open interval (${support.min}, ${support.max}) its preprocessing is defined on (GET /models/${model.name}: input.support), got ${v}`, { support: [support.min, support.max] });
      out[i * d + j] = v;
    }
  });
  return out;
}

/**
 * A flat row-major tensor (binary or v2 data: n rows of the model's D values) → the rows, with
 * rowsFromArrays' rules. A Float32Array or Float64Array (a view of the request body) is used as it
 * is, not copied. One comparison per value on the way: (lo < v < hi) is false for NaN and ±Infinity
 * too, and the slow path only runs to word the refusal.
 */
export function rowsFromFlat(field: string, values: ArrayLike<number>, n: number, model: FlowModel, support: Support | null): DataRows {
  const d = model.dim;
  if (values.length !== n * d) throw new InvalidInputError(field, `must hold ${n} × ${d} values (model ${model.name}, shape [${model.manifest.data.shape.join(', ')}] per row), got ${values.length}`, { expected: n * d, got: values.length });
  const out = values instanceof Float64Array || values instanceof Float32Array ? values : Float64Array.from(values);
  const lo = support ? support.min : -Infinity;
  const hi = support ? support.max : Infinity;
  for (let k = 0; k < out.length; k++) {
    const v = out[k];
    if (v > lo && v < hi) continue;
    if (!Number.isFinite(v)) throw new InvalidInputError(`${field}[${Math.floor(k / d)}][${k % d}]`, 'must be a finite number (no NaN, Infinity or overflow)');
    throw new InvalidInputError(`${field}[${Math.floor(k / d)}][${k % d}]`, `must lie in the model's support, the open interval (${lo}, ${hi}) its preprocessing is defined on (GET /models/${model.name}: input.support), got ${v}`, { support: [lo, hi] });
  }
  return out;
}

/** Raw b-bit pixels (CHW per row, n rows) → data-space rows at the pixel centres, as decoded images give. */
export function rowsFromPixels(field: string, pixels: ArrayLike<number>, n: number, model: FlowModel): Float64Array {
  const { data } = model.manifest;
  if (data.kind !== 'image' || data.bitDepth === null) throw new InvalidInputError(field, `model ${model.name} takes vectors, not pixels`);
  const d = model.dim;
  if (pixels.length !== n * d) throw new InvalidInputError(field, `must hold ${n} × ${d} pixels (shape [${data.shape.join(', ')}] per image), got ${pixels.length}`);
  const max = 2 ** data.bitDepth - 1;
  for (let k = 0; k < pixels.length; k++)
    if (!(pixels[k] >= 0 && pixels[k] <= max && Number.isInteger(pixels[k]))) throw new InvalidInputError(`${field}[${Math.floor(k / d)}][${k % d}]`, `must be a whole number from 0 to ${max} (${data.bitDepth}-bit pixels), got ${pixels[k]}`);
  const out = new Float64Array(n * d);
  out.set(pixelsToData(pixels, data.bitDepth));
  return out;
}

export function decodeBase64(field: string, text: string): Buffer {
  const body = text.replace(DATA_URL, '');
  if (body.length === 0 || body.length % 4 !== 0 || !BASE64.test(body)) throw new InvalidImageError(field, 'must be base64 (standard alphabet, padded), optionally as a data: URL');
  return Buffer.from(body, 'base64');
}

/**
 * Encoded images → flat data-space rows at pixel centres (k + 0.5)/2^b. Every header is checked
 * (per image, and the request's MAX_REQUEST_PIXELS budget) before any image is decoded.
 */
export async function rowsFromImages(field: string, images: Buffer[], model: FlowModel, opts: { resize: boolean; maxPixels: number; maxRequestPixels: number }): Promise<Float64Array> {
  const { data } = model.manifest;
  if (data.kind !== 'image' || data.bitDepth === null) throw new InvalidInputError(field, `model ${model.name} takes vectors: send "inputs" instead of images`);
  const [channels, height, width] = data.shape;
  const decoded = await decodeImages(images, { channels, height, width, maxPixels: opts.maxPixels, resize: opts.resize }, field, opts.maxRequestPixels);
  const out = new Float64Array(images.length * model.dim);
  decoded.forEach((pixels, i) => out.set(pixelsToData(pixels, data.bitDepth!), i * model.dim));
  return out;
}

/** Float32 inference can overflow for extreme but finite inputs: refuse those rows by name. */
export function assertFiniteRows(field: string, values: ArrayLike<number>, perRow: ArrayLike<number> | null, n: number, d: number, what: string): void {
  for (let i = 0; i < n; i++) {
    let ok = perRow === null || Number.isFinite(perRow[i]);
    for (let j = i * d, end = j + d; ok && j < end; j++) ok = Number.isFinite(values[j]);
    if (!ok) throw new InvalidInputError(`${field}[${i}]`, `${what} non-finite values: it lies outside the range the model can represent in float32`);
  }
}
