// Paths between two latents (Glow's latent mixing; the spherical path after White 2016, "Sampling
// Generative Networks"), at `steps` evenly spaced t = k/(steps − 1), k = 0 … steps − 1:
//   linear:     z(t) = (1 − t)·z₀ + t·z₁
//   spherical:  z(t) = sin((1 − t)·Ω)/sin Ω · z₀ + sin(t·Ω)/sin Ω · z₁,   cos Ω = z₀·z₁ / (|z₀|·|z₁|)
// Under a standard-normal prior a linear path between two typical latents cuts through the
// low-norm interior, where no sample lives (|z|² ≈ D); the spherical path follows the arc, and keeps
// |z| constant when |z₀| = |z₁|. The end frames are z₀ and z₁ exactly. When sin Ω is tiny the
// spherical path tends to the linear one and is computed as such; for opposite latents (Ω = π) no
// arc is singled out, so the caller refuses the request.
export const INTERPOLATION_METHODS = ['linear', 'spherical'] as const;
export type InterpolationMethod = (typeof INTERPOLATION_METHODS)[number];

/** Below this sin Ω (nearly parallel latents, or a zero latent) the spherical path is the linear one. */
const PARALLEL = 1e-7;

/** The evenly spaced t of `steps` frames, 0 and 1 included. */
export function interpolationTimes(steps: number): Float64Array {
  if (!Number.isInteger(steps) || steps < 2) throw new RangeError(`steps must be a whole number ≥ 2, got ${steps}`);
  return Float64Array.from({ length: steps }, (_, k) => (k === steps - 1 ? 1 : k / (steps - 1)));
}

/** The angle Ω between two latents, or null when one of them is zero. */
export function angleBetween(z0: ArrayLike<number>, z1: ArrayLike<number>): number | null {
  let dot = 0;
  let n0 = 0;
  let n1 = 0;
  for (let j = 0; j < z0.length; j++) {
    dot += z0[j] * z1[j];
    n0 += z0[j] * z0[j];
    n1 += z1[j] * z1[j];
  }
  if (n0 === 0 || n1 === 0) return null;
  return Math.acos(Math.min(1, Math.max(-1, dot / Math.sqrt(n0 * n1))));
}

/** Whether the spherical path between the two latents is undefined (they point in opposite directions). */
export function isAntipodal(z0: ArrayLike<number>, z1: ArrayLike<number>): boolean {
  const omega = angleBetween(z0, z1);
  return omega !== null && Math.sin(omega) < PARALLEL && omega > Math.PI / 2;
}

/** The path's frames, row-major: `t.length` rows of z₀.length values. */
export function interpolatePath(z0: ArrayLike<number>, z1: ArrayLike<number>, t: ArrayLike<number>, method: InterpolationMethod): Float64Array {
  const d = z0.length;
  if (z1.length !== d) throw new RangeError(`latents of different lengths: ${d} and ${z1.length}`);
  const out = new Float64Array(t.length * d);
  if (method === 'spherical' && isAntipodal(z0, z1)) throw new RangeError('opposite latents: the spherical path is not unique');
  const omega = method === 'spherical' ? angleBetween(z0, z1) : null;
  const sinOmega = omega === null ? 0 : Math.sin(omega);
  const arc = omega !== null && sinOmega >= PARALLEL;
  for (let k = 0; k < t.length; k++) {
    const row = out.subarray(k * d, (k + 1) * d);
    // the ends are copied, not computed: decode(z(0)) is decode(z₀) bit for bit
    if (t[k] === 0 || t[k] === 1) {
      row.set(t[k] === 0 ? z0 : z1);
      continue;
    }
    const a = arc ? Math.sin((1 - t[k]) * omega!) / sinOmega : 1 - t[k];
    const b = arc ? Math.sin(t[k] * omega!) / sinOmega : t[k];
    for (let j = 0; j < d; j++) row[j] = a * z0[j] + b * z1[j];
  }
  return out;
}
