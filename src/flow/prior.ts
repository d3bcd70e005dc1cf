// Standard-normal prior and temperature.
// log N(z; 0, I) = −½ Σ zᵢ² − (D/2)·log 2π;  sampling at temperature T: ε ~ N(0, T²·I).
import type { Rng } from './random.js';

export const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

/** log N(z; 0, I) of each of the n rows of a row-major [n, d] array. */
export function logStandardNormal(z: ArrayLike<number>, n: number, d: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let sq = 0;
    for (let j = i * d, end = j + d; j < end; j++) sq += z[j] * z[j];
    out[i] = -0.5 * sq - d * HALF_LOG_2PI;
  }
  return out;
}

/** n·d draws of N(0, T²). */
export function sampleStandardNormal(rng: Rng, n: number, d: number, temperature: number): Float64Array {
  const out = new Float64Array(n * d);
  for (let i = 0; i < out.length; i++) out[i] = temperature * rng.nextNormal();
  return out;
}
