import type { LuFactors } from '../../src/flow/lu.js';
import type { Rng } from '../../src/flow/random.js';

/** Random well-conditioned LU factors (as Glow initializes them: a random rotation's LU). */
export function randomLuFactors(rng: Rng, c: number, spatial: number): LuFactors {
  const perm = Array.from({ length: c }, (_, i) => i);
  for (let i = c - 1; i > 0; i--) {
    const j = rng.nextUint32() % (i + 1);
    [perm[i], perm[j]] = [perm[j], perm[i]];
  }
  const m = () => Array.from({ length: c }, () => Array.from({ length: c }, () => 0.3 * rng.nextNormal()));
  return {
    channels: c,
    spatial,
    perm,
    lower: m(),
    upper: m(),
    signS: Array.from({ length: c }, () => (rng.nextUint32() % 2 ? 1 : -1)),
    logS: Array.from({ length: c }, () => 0.2 * rng.nextNormal()),
  };
}
