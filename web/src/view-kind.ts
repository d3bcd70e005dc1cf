// How a model's data is shown, from its card: images as images, 2-D vectors on the plane, other
// vectors whose length is a perfect square as grey tiles (maf-digits: 8×8), anything else as numbers.
import type { ModelCard } from './types.js';

export type ViewKind = 'image' | 'plane' | 'tiles' | 'table';

export function dataSize(card: ModelCard): number {
  return card.input?.size ?? (card.dataShape ?? []).reduce((a, b) => a * b, 1);
}

export function viewKind(card: ModelCard): ViewKind {
  if (card.input?.images) return 'image';
  const d = dataSize(card);
  if (d === 2) return 'plane';
  const side = Math.round(Math.sqrt(d));
  return side * side === d && d > 1 ? 'tiles' : 'table';
}
