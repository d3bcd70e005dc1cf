// log p(x) = log N(z; 0, I) + log|det ∂z/∂x|, in nats of the continuous density in data space.
// bits/dim with bit depth b: −(log p(x) − D·b·ln 2)/(D·ln 2); without one (vectors): −log p(x)/(D·ln 2).
import { logStandardNormal } from './prior.js';

export function logProbability(latents: ArrayLike<number>, logDet: ArrayLike<number>, n: number, d: number): Float64Array {
  const out = logStandardNormal(latents, n, d);
  for (let i = 0; i < n; i++) out[i] += logDet[i];
  return out;
}

export function bitsPerDim(logProb: number, dim: number, bitDepth: number | null): number {
  const discretization = bitDepth === null ? 0 : dim * bitDepth * Math.LN2;
  return -(logProb - discretization) / (dim * Math.LN2);
}

/** log((1/K)·Σ exp(aₖ)) for each group of K consecutive values, computed without overflow. */
export function logMeanExp(values: ArrayLike<number>, groups: number, k: number): Float64Array {
  const out = new Float64Array(groups);
  for (let g = 0; g < groups; g++) {
    let max = -Infinity;
    for (let j = g * k; j < (g + 1) * k; j++) max = Math.max(max, values[j]);
    if (!Number.isFinite(max)) {
      out[g] = max;
      continue;
    }
    let sum = 0;
    for (let j = g * k; j < (g + 1) * k; j++) sum += Math.exp(values[j] - max);
    out[g] = max + Math.log(sum / k);
  }
  return out;
}
