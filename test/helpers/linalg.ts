// Test-only numerics: a finite-difference Jacobian and log|det| by Gaussian elimination.
import type { Bijection } from '../../src/flow/bijection.js';

/** log|det A| of a row-major d×d matrix (partial pivoting). */
export function logAbsDet(a: Float64Array, d: number): number {
  const m = Float64Array.from(a);
  let logDet = 0;
  for (let col = 0; col < d; col++) {
    let piv = col;
    for (let r = col + 1; r < d; r++) if (Math.abs(m[r * d + col]) > Math.abs(m[piv * d + col])) piv = r;
    if (piv !== col) for (let k = 0; k < d; k++) [m[col * d + k], m[piv * d + k]] = [m[piv * d + k], m[col * d + k]];
    const p = m[col * d + col];
    logDet += Math.log(Math.abs(p));
    for (let r = col + 1; r < d; r++) {
      const f = m[r * d + col] / p;
      for (let k = col; k < d; k++) m[r * d + k] -= f * m[col * d + k];
    }
  }
  return logDet;
}

/** Central-difference Jacobian of one row through the forward direction. */
export function numericJacobian(b: Bijection, x: Float64Array, h = 1e-6): Float64Array {
  const d = b.dim;
  const jac = new Float64Array(d * d);
  for (let j = 0; j < d; j++) {
    const plus = Float64Array.from(x);
    const minus = Float64Array.from(x);
    plus[j] += h;
    minus[j] -= h;
    const yp = b.forward(plus, 1).values;
    const ym = b.forward(minus, 1).values;
    for (let i = 0; i < d; i++) jac[i * d + j] = (yp[i] - ym[i]) / (2 * h);
  }
  return jac;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
