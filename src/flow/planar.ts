// Planar flows (Rezende & Mohamed 2015), generative direction z → x, layer 0 first:
//   x = z + u·tanh(wᵀz + b),   log|det ∂x/∂z| = log(1 + (1 − tanh²(wᵀz + b))·uᵀw).
// Inverse (data → latent, last layer first): with α = wᵀz, taking wᵀ of the layer gives the scalar
//   g(α) = α + (uᵀw)·tanh(α + b) − wᵀx = 0,
// strictly increasing when uᵀw > −1 (g' = 1 + uᵀw·sech² > 0), so it has exactly one root, and since
// |tanh| < 1 the root lies in [wᵀx − |uᵀw|, wᵀx + |uᵀw|]. We solve it by Newton kept inside that
// bracket (bisection when a step leaves it), then z = x − u·tanh(α + b).
// Log-det of the data → latent direction: −Σ_layers log(1 + sech²(α + b)·uᵀw).

export interface PlanarLayer {
  u: ArrayLike<number>;
  w: ArrayLike<number>;
  b: number;
}

export interface PlanarForwardResult {
  values: Float64Array;
  logDet: Float64Array;
  /** Newton + bisection iterations per row, summed over layers. */
  iterations: Int32Array;
}

// Hard cap on iterations per scalar solve. Pure bisection from a bracket of width 2|uᵀw| reaches
// machine precision in ≲ 1100 halvings for any finite double, so this never ends a solve early.
const MAX_ITER = 1100;
const EPS = Number.EPSILON;

/** Checks shapes and invertibility; returns uᵀw per layer. Throws naming the offending layer. */
function prepare(layers: readonly PlanarLayer[], n: number, d: number, data: ArrayLike<number>): Float64Array {
  if (!Number.isInteger(n) || n < 0 || !Number.isInteger(d) || d < 1) throw new RangeError(`bad shape n=${n}, d=${d}`);
  if (data.length !== n * d) throw new RangeError(`input has ${data.length} values, expected ${n}×${d}`);
  const uw = new Float64Array(layers.length);
  layers.forEach((l, k) => {
    if (l.u.length !== d || l.w.length !== d) throw new RangeError(`planar layer ${k}: u and w must have ${d} entries`);
    let s = 0;
    for (let j = 0; j < d; j++) {
      if (!Number.isFinite(l.u[j]) || !Number.isFinite(l.w[j])) throw new RangeError(`planar layer ${k}: u and w must be finite`);
      s += l.u[j] * l.w[j];
    }
    if (!Number.isFinite(l.b)) throw new RangeError(`planar layer ${k}: b must be finite`);
    if (!(s > -1)) throw new RangeError(`planar layer ${k} is not invertible: uᵀw = ${s} ≤ −1`);
    uw[k] = s;
  });
  return uw;
}

/**
 * Root of α + c·tanh(α + b) = y for c > −1 (monotone). Returns [α, iterations].
 * Stops when |g| ≤ 1e-12·max(1, |y|) — then applies one more Newton step, which in the quadratic
 * regime brings α to rounding level; that matters when g' is small (c near −1), where a residual of
 * 1e-12 alone would still leave α wrong by 1e-12/g' — or when the bracket is at machine precision.
 */
export function solvePlanarScalar(c: number, b: number, y: number): [number, number] {
  if (c === 0) return [y, 0];
  let lo = y - Math.abs(c);
  let hi = y + Math.abs(c);
  const tol = 1e-12 * Math.max(1, Math.abs(y));
  // Start from one fixed-point step α = y − c·tanh(y + b): inside the bracket, exact when tanh is flat.
  let a = y - c * Math.tanh(y + b);
  // Newton can cycle inside the bracket (tanh's inflection: steps alternate sides without
  // converging), so as in Numerical Recipes' rtsafe we also bisect when a Newton step is not at
  // most half the step before last — each two iterations then at least halve the uncertainty.
  let stepOld = hi - lo;
  let step = stepOld;
  for (let it = 1; it <= MAX_ITER; it++) {
    const th = Math.tanh(a + b);
    const g = a + c * th - y;
    if (g === 0) return [a, it];
    // The root sits on the side where g changes sign, so shrink the bracket toward it.
    if (g < 0) lo = a;
    else hi = a;
    const gp = 1 + c * (1 - th * th);
    const newton = a - g / gp;
    const converged = Math.abs(g) <= tol;
    const inside = newton > lo && newton < hi;
    if (converged) return [inside ? newton : a, it]; // polish step, unless it would leave the bracket
    const next = !inside || Math.abs(2 * g) > Math.abs(stepOld * gp) ? 0.5 * (lo + hi) : newton;
    stepOld = step;
    step = next - a;
    if (hi - lo <= 4 * EPS * Math.max(1, Math.abs(lo), Math.abs(hi))) return [0.5 * (lo + hi), it];
    a = next;
  }
  return [a, MAX_ITER];
}

/** Data → latent: invert the layers from last to first. */
export function planarForward(layers: readonly PlanarLayer[], x: ArrayLike<number>, n: number, d: number): PlanarForwardResult {
  const uw = prepare(layers, n, d, x);
  const values = Float64Array.from(x);
  const logDet = new Float64Array(n);
  const iterations = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    const off = r * d;
    for (let k = layers.length - 1; k >= 0; k--) {
      const { u, w, b } = layers[k];
      let wx = 0;
      for (let j = 0; j < d; j++) wx += w[j] * values[off + j];
      const [alpha, it] = solvePlanarScalar(uw[k], b, wx);
      iterations[r] += it;
      const th = Math.tanh(alpha + b);
      for (let j = 0; j < d; j++) values[off + j] -= u[j] * th;
      // log1p keeps precision when sech²·uᵀw is small; the argument is > −1 since uᵀw > −1.
      logDet[r] -= Math.log1p((1 - th * th) * uw[k]);
    }
  }
  return { values, logDet, iterations };
}

/** Latent → data in closed form, layer 0 first. */
export function planarInverse(layers: readonly PlanarLayer[], z: ArrayLike<number>, n: number, d: number): { values: Float64Array; logDet: Float64Array } {
  const uw = prepare(layers, n, d, z);
  const values = Float64Array.from(z);
  const logDet = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    const off = r * d;
    for (let k = 0; k < layers.length; k++) {
      const { u, w, b } = layers[k];
      let wz = 0;
      for (let j = 0; j < d; j++) wz += w[j] * values[off + j];
      const th = Math.tanh(wz + b);
      for (let j = 0; j < d; j++) values[off + j] += u[j] * th;
      logDet[r] += Math.log1p((1 - th * th) * uw[k]);
    }
  }
  return { values, logDet };
}
