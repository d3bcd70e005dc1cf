// Invertible 1×1 convolution from its LU factors (Glow):
//   W = P · L · (U + diag(sign·exp(logS))),   W⁻¹ = (U + diag)⁻¹ · L⁻¹ · Pᵀ (triangular solves),
//   log|det W| = Σ logS, so a conv over `spatial` positions has log-det spatial·Σ logS.
// P[i][perm[i]] = 1; L is unit lower (strict part of `lower` used), U strictly upper.
import type { Bijection } from './bijection.js';

export interface LuFactors {
  channels: number;
  spatial: number;
  perm: number[];
  lower: number[][];
  upper: number[][];
  signS: number[];
  logS: number[];
}

export interface LuConv {
  channels: number;
  spatial: number;
  /** Row-major c×c. */
  w: Float64Array;
  wInv: Float64Array;
  /** log|det| of the forward convolution over all spatial positions of one sample. */
  logDet: number;
  /** ‖W·W⁻¹ − I‖∞ (max row sum of absolute values). */
  residual: number;
}

export function validateLuFactors(f: LuFactors): string | null {
  const c = f.channels;
  if (f.perm.length !== c || f.signS.length !== c || f.logS.length !== c) return `perm, signS and logS must have ${c} entries`;
  if (new Set(f.perm).size !== c || f.perm.some((p) => !Number.isInteger(p) || p < 0 || p >= c)) return 'perm must be a permutation of 0..c-1';
  for (const m of [f.lower, f.upper]) if (m.length !== c || m.some((r) => r.length !== c)) return `lower and upper must be ${c}×${c}`;
  if (f.signS.some((s) => s !== 1 && s !== -1)) return 'signS entries must be ±1';
  if ([...f.logS, ...f.lower.flat(), ...f.upper.flat()].some((v) => !Number.isFinite(v))) return 'factors must be finite';
  return null;
}

export function buildLuConv(f: LuFactors): LuConv {
  const c = f.channels;
  const diag = f.logS.map((ls, i) => f.signS[i] * Math.exp(ls));
  const lAt = (i: number, j: number) => (i === j ? 1 : i > j ? f.lower[i][j] : 0);
  const uAt = (i: number, j: number) => (i === j ? diag[i] : i < j ? f.upper[i][j] : 0);

  // M = L·(U + D), then W row i = M row perm[i].
  const m = new Float64Array(c * c);
  for (let i = 0; i < c; i++)
    for (let j = 0; j < c; j++) {
      let s = 0;
      for (let k = 0; k <= Math.min(i, j); k++) s += lAt(i, k) * uAt(k, j);
      m[i * c + j] = s;
    }
  const w = new Float64Array(c * c);
  for (let i = 0; i < c; i++) w.set(m.subarray(f.perm[i] * c, f.perm[i] * c + c), i * c);

  // Column j of W⁻¹ solves W v = e_j:  Pᵀe_j = e_perm[j], then L⁻¹ (forward), then (U+D)⁻¹ (back).
  const wInv = new Float64Array(c * c);
  const v = new Float64Array(c);
  for (let j = 0; j < c; j++) {
    v.fill(0);
    v[f.perm[j]] = 1;
    for (let i = 0; i < c; i++) {
      let s = v[i];
      for (let k = 0; k < i; k++) s -= lAt(i, k) * v[k];
      v[i] = s;
    }
    for (let i = c - 1; i >= 0; i--) {
      let s = v[i];
      for (let k = i + 1; k < c; k++) s -= uAt(i, k) * v[k];
      v[i] = s / diag[i];
    }
    for (let i = 0; i < c; i++) wInv[i * c + j] = v[i];
  }

  let residual = 0;
  for (let i = 0; i < c; i++) {
    let row = 0;
    for (let j = 0; j < c; j++) {
      let s = 0;
      for (let k = 0; k < c; k++) s += w[i * c + k] * wInv[k * c + j];
      row += Math.abs(s - (i === j ? 1 : 0));
    }
    residual = Math.max(residual, row);
  }
  const logDet = f.spatial * f.logS.reduce((a, b) => a + b, 0);
  return { channels: c, spatial: f.spatial, w, wInv, logDet, residual };
}

/** The convolution as a bijection on rows laid out [c, spatial] (for tests and for reference use). */
export function luBijection(conv: LuConv): Bijection {
  const { channels: c, spatial: s } = conv;
  const dim = c * s;
  const mix = (mat: Float64Array, src: ArrayLike<number>, n: number, ld: number) => {
    const values = new Float64Array(n * dim);
    for (let b = 0; b < n; b++) {
      const o = b * dim;
      for (let i = 0; i < c; i++)
        for (let j = 0; j < c; j++) {
          const wij = mat[i * c + j];
          for (let p = 0; p < s; p++) values[o + i * s + p] += wij * src[o + j * s + p];
        }
    }
    return { values, logDet: new Float64Array(n).fill(ld) };
  };
  return {
    name: `lu-conv(${c}x${s})`,
    dim,
    forward: (x, n) => mix(conv.w, x, n, conv.logDet),
    inverse: (y, n) => mix(conv.wInv, y, n, -conv.logDet),
  };
}
