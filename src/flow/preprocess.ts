// Data space ↔ model input space (docs/model-package.md), with the log-det of each direction.
//   affine: y = a·x + b,                          log|dy/dx| = log|a|
//   logit:  s = α + (1 − 2α)·x,  y = log s − log(1 − s),
//           log|dy/dx| = log(1 − 2α) − log s − log(1 − s)
import type { Transform } from '../config/manifest-schema.js';
import { elementwise, type Bijection } from './bijection.js';

export function preprocessing(transform: Transform, dim: number): Bijection {
  switch (transform.kind) {
    case 'identity':
      return elementwise('identity', dim, (x) => x, (y) => y, () => 0);
    case 'affine': {
      const { scale: a, shift: b } = transform;
      const ld = Math.log(Math.abs(a));
      return elementwise(`affine(${a},${b})`, dim, (x) => a * x + b, (y) => (y - b) / a, () => ld);
    }
    case 'logit': {
      const alpha = transform.alpha;
      const k = 1 - 2 * alpha;
      const logK = Math.log(k);
      return elementwise(
        `logit(${alpha})`,
        dim,
        (x) => {
          const s = alpha + k * x;
          return Math.log(s) - Math.log1p(-s);
        },
        // sigmoid written to stay finite for large |y|
        (y) => ((y >= 0 ? 1 / (1 + Math.exp(-y)) : Math.exp(y) / (1 + Math.exp(y))) - alpha) / k,
        (x) => {
          const s = alpha + k * x;
          return logK - Math.log(s) - Math.log1p(-s);
        },
      );
    }
  }
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
