// 8-bit images ↔ data space: pixel k ↦ (k + 0.5)/2^b, the centre of its dequantization bin; the
// way back takes the bin x falls in, clamped to the valid range.

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
