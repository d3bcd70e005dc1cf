// Multi-scale latent layout: the API's flat latent row is the concatenation of the graph's latent
// parts in manifest order, each flattened row-major. Pure index bookkeeping.

export interface LatentPart {
  name: string;
  shape: number[];
}

export const product = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Interleave per-part arrays [n, ...shape_k] into flat rows [n, Σ size_k]. */
export function packLatents(parts: readonly LatentPart[], values: ArrayLike<number>[], n: number): Float64Array {
  const sizes = parts.map((p) => product(p.shape));
  const total = sizes.reduce((a, b) => a + b, 0);
  const out = new Float64Array(n * total);
  let offset = 0;
  parts.forEach((_, k) => {
    const size = sizes[k];
    const src = values[k];
    for (let i = 0; i < n; i++) for (let j = 0; j < size; j++) out[i * total + offset + j] = src[i * size + j];
    offset += size;
  });
  return out;
}

/** Split flat rows [n, Σ size_k] into per-part float32 arrays [n, ...shape_k]. */
export function unpackLatents(parts: readonly LatentPart[], flat: ArrayLike<number>, n: number): Float32Array[] {
  const sizes = parts.map((p) => product(p.shape));
  const total = sizes.reduce((a, b) => a + b, 0);
  let offset = 0;
  return parts.map((_, k) => {
    const size = sizes[k];
    const out = new Float32Array(n * size);
    for (let i = 0; i < n; i++) for (let j = 0; j < size; j++) out[i * size + j] = flat[i * total + offset + j];
    offset += size;
    return out;
  });
}
