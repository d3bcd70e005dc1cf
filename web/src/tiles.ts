// Vectors drawn as grey tiles (a √D×√D image per row), for vector models whose rows are small
// pictures (maf-digits: 8×8 digits as 64 values). The mapping is linear from [lo, hi] to black..white,
// clamped, and stated in a caption next to the tiles.
import type { ModelCard } from './types.js';

export interface GreyMapping {
  lo: number;
  hi: number;
  source: 'card' | 'samples';
}

/** The card's data range when it has one, else the rows' own min..max (the caption says which). */
export function greyMapping(card: ModelCard, rows: number[][]): GreyMapping {
  const range = card.input?.range;
  if (range) return { lo: range[0], hi: range[1], source: 'card' };
  let lo = Infinity;
  let hi = -Infinity;
  for (const r of rows)
    for (const v of r) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  if (!(hi > lo)) hi = lo + 1; // a constant set: any scale works, avoid dividing by zero
  return { lo, hi, source: 'samples' };
}

/** One row as a PNG data: URL (the CSP allows data: images; CSS scales it up, pixelated). */
export function tileUrl(row: number[], m: GreyMapping): string {
  const side = Math.round(Math.sqrt(row.length));
  const canvas = document.createElement('canvas');
  canvas.width = side;
  canvas.height = side;
  const ctx = canvas.getContext('2d')!;
  const img = ctx.createImageData(side, side);
  for (let i = 0; i < side * side; i++) {
    const g = Math.round(255 * Math.min(1, Math.max(0, (row[i] - m.lo) / (m.hi - m.lo))));
    img.data.set([g, g, g, 255], i * 4);
  }
  ctx.putImageData(img, 0, 0);
  return canvas.toDataURL('image/png');
}

export function mappingCaption(m: GreyMapping, d: number): string {
  const side = Math.round(Math.sqrt(d));
  const from = m.source === 'card' ? "the card's data range" : "this set's own min..max (the card gives no data range)";
  return `Each ${d}-value row is drawn as a ${side}×${side} tile, row-major; grey = (v − lo)/(hi − lo) clamped to [0, 1], black to white, with lo..hi = ${m.lo.toFixed(3)}..${m.hi.toFixed(3)}, ${from}.`;
}
