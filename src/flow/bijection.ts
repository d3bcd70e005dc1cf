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
