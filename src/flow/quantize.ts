// Quantized data ↔ data space, for a bit depth b and L = 2^b levels:
//   pixel k ↦ (k + 0.5)/L, the centre of its dequantization bin [k/L, (k + 1)/L);
//   x ↦ k = ⌊x·L⌋ clamped to 0 … L − 1 (the bin x falls in);
//   uniform dequantization: x = (k + u)/L, u ~ U[0, 1).
// The discrete probability of pixels k is P(k) = ∫_bin p(x) dx = L^−D · E_u[p((k + u)/L)], so
// log-mean-exp over K draws of log p((k + u)/L), minus D·b·ln 2, is the importance-weighted
// (stochastic lower) bound on log P(k) that tightens as K grows.
import type { Rng } from './random.js';

export function pixelsToData(pixels: ArrayLike<number>, bitDepth: number): Float32Array {
  const levels = 2 ** bitDepth;
  const out = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) out[i] = (pixels[i] + 0.5) / levels;
  return out;
}

export function dataToPixels(values: ArrayLike<number>, bitDepth: number): Uint8Array | Uint16Array {
  const levels = 2 ** bitDepth;
  const out = bitDepth <= 8 ? new Uint8Array(values.length) : new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const k = Math.floor(values[i] * levels);
    out[i] = Number.isNaN(k) ? 0 : Math.min(levels - 1, Math.max(0, k));
  }
  return out;
}

/** Each value moved to the centre of its bin (the value a PNG of it decodes to). */
export function quantizeToCentres(values: ArrayLike<number>, bitDepth: number): Float64Array {
  const levels = 2 ** bitDepth;
  const pixels = dataToPixels(values, bitDepth);
  const out = new Float64Array(values.length);
  for (let i = 0; i < out.length; i++) out[i] = (pixels[i] + 0.5) / levels;
  return out;
}

/** Each value clamped into [lo, hi]. */
export function clampTo(values: ArrayLike<number>, lo: number, hi: number): Float64Array {
  const out = new Float64Array(values.length);
  for (let i = 0; i < out.length; i++) out[i] = Math.min(hi, Math.max(lo, values[i]));
  return out;
}

/**
 * `draws` uniformly dequantized copies of each of the n rows of `values` (data space, taken to
 * their bins): row-major [n, draws, d], the copies of row i at rows i·draws … i·draws + draws − 1.
 * The noise comes from `rng` in that order, so a seed fixes the answer.
 */
export function dequantizeUniform(values: ArrayLike<number>, n: number, d: number, bitDepth: number, draws: number, rng: Rng): Float64Array {
  const levels = 2 ** bitDepth;
  const pixels = dataToPixels(values, bitDepth);
  const out = new Float64Array(n * draws * d);
  for (let i = 0; i < n; i++)
    for (let k = 0; k < draws; k++) {
      const o = (i * draws + k) * d;
      for (let j = 0; j < d; j++) out[o + j] = (pixels[i * d + j] + rng.nextUint32() / 4294967296) / levels;
    }
  return out;
}
