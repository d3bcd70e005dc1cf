// A bijection on batches of flat rows, in the project's vocabulary:
// forward = data → latent, inverse = latent → data, logDet = log|det J| of the direction computed,
// one value per row. Every bijection in src/flow satisfies inverse(forward(x)) = x and
// forward.logDet + inverse.logDet = 0 (test/flow/bijection.test.ts checks the table of them all).

export interface Transformed {
  values: Float64Array;
  logDet: Float64Array;
}

export interface Bijection {
  readonly name: string;
  /** Row length this bijection acts on. */
  readonly dim: number;
  forward(x: ArrayLike<number>, n: number): Transformed;
  inverse(y: ArrayLike<number>, n: number): Transformed;
}

/** Elementwise bijection y = f(x) with per-element log|f'(x)|. */
export function elementwise(
  name: string,
  dim: number,
  f: (x: number) => number,
  fInv: (y: number) => number,
  logAbsDf: (x: number) => number,
): Bijection {
  const apply = (src: ArrayLike<number>, n: number, fn: (v: number) => number, sign: number, ldAt: (v: number, out: number) => number): Transformed => {
    const values = new Float64Array(n * dim);
    const logDet = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let ld = 0;
      for (let j = i * dim, end = j + dim; j < end; j++) {
        const v = src[j];
        const out = fn(v);
        values[j] = out;
        ld += ldAt(v, out);
      }
      logDet[i] = sign * ld;
    }
    return { values, logDet };
  };
  return {
    name,
    dim,
    forward: (x, n) => apply(x, n, f, 1, (v) => logAbsDf(v)),
    inverse: (y, n) => apply(y, n, fInv, -1, (_v, out) => logAbsDf(out)),
  };
}
