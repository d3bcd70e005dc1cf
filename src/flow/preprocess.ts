// Data space ↔ model input space (docs/model-package.md), with the log-det of each direction.
//   affine: y = a·x + b,                          log|dy/dx| = log|a|
//   logit:  s = α + (1 − 2α)·x,  y = log s − log(1 − s),
//           log|dy/dx| = log(1 − 2α) − log s − log(1 − s)
import type { Transform } from '../config/manifest-schema.js';
import type { Bijection } from './bijection.js';

/**
 * Each transform is written out as its own loops rather than through a generic elementwise
 * bijection with per-element closures: this runs on the event loop for every row of every request (50,176 values for a
 * 64-image batch), and the generic version cost ~20 ns per value (profile of the binary
 * /likelihood path); identity and affine have a constant log-derivative, and logit's value and
 * log-derivative share their two logarithms.
 */
export function preprocessing(transform: Transform, dim: number): Bijection {
  switch (transform.kind) {
    case 'identity':
      return {
        name: 'identity',
        dim,
        forward: (x, n) => ({ values: copyRows(x, n * dim), logDet: new Float64Array(n) }),
        inverse: (y, n) => ({ values: copyRows(y, n * dim), logDet: new Float64Array(n) }),
      };
    case 'affine': {
      const { scale: a, shift: b } = transform;
      const ld = dim * Math.log(Math.abs(a));
      return {
        name: `affine(${a},${b})`,
        dim,
        forward: (x, n) => {
          const values = new Float64Array(n * dim);
          for (let j = 0; j < values.length; j++) values[j] = a * x[j] + b;
          return { values, logDet: new Float64Array(n).fill(ld) };
        },
        inverse: (y, n) => {
          const values = new Float64Array(n * dim);
          for (let j = 0; j < values.length; j++) values[j] = (y[j] - b) / a;
          return { values, logDet: new Float64Array(n).fill(-ld) };
        },
      };
    }
    case 'logit': {
      const alpha = transform.alpha;
      const k = 1 - 2 * alpha;
      const logK = Math.log(k);
      return {
        name: `logit(${alpha})`,
        dim,
        forward: (x, n) => {
          const values = new Float64Array(n * dim);
          const logDet = new Float64Array(n);
          for (let i = 0; i < n; i++) {
            let ld = 0;
            for (let j = i * dim, end = j + dim; j < end; j++) {
              const s = alpha + k * x[j];
              const ls = Math.log(s);
              const l1 = Math.log1p(-s);
              values[j] = ls - l1;
              ld += logK - ls - l1;
            }
            logDet[i] = ld;
          }
          return { values, logDet };
        },
        inverse: (y, n) => {
          const values = new Float64Array(n * dim);
          const logDet = new Float64Array(n);
          for (let i = 0; i < n; i++) {
            let ld = 0;
            for (let j = i * dim, end = j + dim; j < end; j++) {
              const v = y[j];
              // sigmoid written to stay finite for large |y|
              const e = Math.exp(-Math.abs(v));
              const sig = v >= 0 ? 1 / (1 + e) : e / (1 + e);
              const out = (sig - alpha) / k;
              values[j] = out;
              const s = alpha + k * out;
              ld += logK - Math.log(s) - Math.log1p(-s);
            }
            logDet[i] = -ld;
          }
          return { values, logDet };
        },
      };
    }
  }
}

function copyRows(src: ArrayLike<number>, count: number): Float64Array {
  if (src instanceof Float64Array || src instanceof Float32Array) return Float64Array.from(src.subarray(0, count));
  const out = new Float64Array(count);
  for (let j = 0; j < count; j++) out[j] = src[j];
  return out;
}

/**
 * The support of the data density: the open interval of data values the transform maps to finite
 * model inputs (±Infinity where unbounded). logit needs 0 < α + (1 − 2α)·x < 1, that is
 * −α/(1 − 2α) < x < (1 − α)/(1 − 2α); identity and affine accept every real.
 */
export interface Support {
  min: number;
  max: number;
}

export function support(transform: Transform): Support {
  if (transform.kind !== 'logit') return { min: -Infinity, max: Infinity };
  const k = 1 - 2 * transform.alpha;
  return { min: -transform.alpha / k, max: (1 - transform.alpha) / k };
}

/** Whether a data value lies in the (open) support. */
export const inSupport = (s: Support, v: number): boolean => v > s.min && v < s.max;
