// One served flow: the TypeScript glue around its two graphs.
//   encode:  y = pre(x);  (parts, ld_graph) = forward(y, W…);  ε = pack(parts)
//            logDet = ld_pre + ld_graph + Σ spatial·Σ log|s|            (log|det ∂ε/∂x|)
//   decode:  y = inverse(unpack(ε), W⁻¹…);  x = pre⁻¹(y);  logDet = log|det ∂x/∂ε| (= −forward's)
//   log p(x) = Σ log N(εᵢ; 0, 1) + logDet;  sample: ε ~ N(0, T²·I), then decode.
import type { Manifest } from '../config/manifest-schema.js';
import type { ScoreName } from '../flow/anomaly.js';
import { bitsPerDim, logProbability } from '../flow/density.js';
import { packLatents, product, unpackLatents } from '../flow/layout.js';
import { preprocessing, support, type Support } from '../flow/preprocess.js';
import { logStandardNormal, sampleStandardNormal } from '../flow/prior.js';
import { Rng } from '../flow/random.js';
import type { Bijection } from '../flow/bijection.js';
import type { Provider } from '../runtime/session.js';
import { toFloat32, type TensorData } from '../tensor/tensor.js';
import type { Batcher } from './batcher.js';
import type { LuLayer, ModelPackage } from './registry.js';

export interface Encoded {
  latents: Float64Array;
  logDet: Float64Array;
}

export interface Decoded {
  outputs: Float64Array;
  logDet: Float64Array;
}

export interface Likelihood {
  logLikelihood: number;
  bitsPerDim: number;
}

const MAX_REDRAW_ROUNDS = 8;
/** The request schema's bound on temperature, for packages that carry no measured range. */
export const MAX_API_TEMPERATURE = 2;

function nonFiniteRows(values: Float64Array, perRow: Float64Array, n: number, d: number): number[] {
  const bad: number[] = [];
  for (let i = 0; i < n; i++) {
    let ok = Number.isFinite(perRow[i]);
    for (let j = i * d, end = j + d; ok && j < end; j++) ok = Number.isFinite(values[j]);
    if (!ok) bad.push(i);
  }
  return bad;
}

export class FlowModel {
  readonly name: string;
  readonly manifest: Manifest;
  readonly dim: number;
  readonly pre: Bijection;
  readonly lu: LuLayer[];
  readonly luLogDet: number;
  readonly scores: readonly ScoreName[];
  /** The data values the density is defined on (the preprocessing's support). */
  readonly support: Support;
  /** Largest temperature /sample accepts: the package's measured range, or the API's 2 when it has none. */
  readonly maxTemperature: number;

  constructor(
    pkg: ModelPackage,
    readonly provider: Provider,
    private readonly forwardBatcher: Batcher,
    private readonly inverseBatcher: Batcher,
  ) {
    this.name = pkg.name;
    this.manifest = pkg.manifest;
    this.dim = product(pkg.manifest.data.shape);
    this.pre = preprocessing(pkg.manifest.preprocessing.transform, this.dim);
    this.lu = pkg.lu;
    this.luLogDet = pkg.lu.reduce((s, l) => s + l.logDet, 0);
    this.scores = pkg.scores;
    this.support = support(pkg.manifest.preprocessing.transform);
    this.maxTemperature = pkg.manifest.sampling?.maxTemperature ?? MAX_API_TEMPERATURE;
  }

  /** The LU matrices as graph inputs (float32), for the forward or inverse graph. */
  static luFeeds(lu: readonly LuLayer[], direction: 'forward' | 'inverse'): Record<string, TensorData> {
    const feeds: Record<string, TensorData> = {};
    for (const l of lu) {
      const name = direction === 'forward' ? l.forwardInput : l.inverseInput;
      feeds[name] = { dims: [l.channels, l.channels], data: toFloat32(direction === 'forward' ? l.w : l.wInv) };
    }
    return feeds;
  }

  /** x: n flat rows in data space (already validated). */
  async encode(x: ArrayLike<number>, n: number, timeoutMs?: number): Promise<Encoded> {
    const { values: y, logDet: preLd } = this.pre.forward(x, n);
    const out = await this.forwardBatcher.submit({ x: { dims: [n, ...this.manifest.data.shape], data: toFloat32(y) } }, n, timeoutMs);
    const parts = this.manifest.latent.parts;
    const latents = packLatents(parts, parts.map((p) => out[p.name].data), n);
    const graphLd = out.logDet.data;
    const logDet = new Float64Array(n);
    for (let i = 0; i < n; i++) logDet[i] = preLd[i] + graphLd[i] + this.luLogDet;
    return { latents, logDet };
  }

  /** latents: n flat standard-normal rows. Outputs are in data space, unclamped. */
  async decode(latents: ArrayLike<number>, n: number, timeoutMs?: number): Promise<Decoded> {
    const parts = this.manifest.latent.parts;
    const split = unpackLatents(parts, latents, n);
    const feeds: Record<string, TensorData> = {};
    parts.forEach((p, k) => (feeds[p.name] = { dims: [n, ...p.shape], data: split[k] }));
    const out = await this.inverseBatcher.submit(feeds, n, timeoutMs);
    const { values: outputs, logDet: preLd } = this.pre.inverse(out.x.data, n);
    const graphLd = out.logDet.data;
    const logDet = new Float64Array(n);
    for (let i = 0; i < n; i++) logDet[i] = graphLd[i] + preLd[i] - this.luLogDet;
    return { outputs, logDet };
  }

  /**
   * ε ~ N(0, T²·I) from the seeded stream, decoded; logLikelihood is the model density of each
   * (unquantized) sample. A draw whose inverse overflows float32 (possible far in the tails at high
   * T) is redrawn from the same stream, so the answer stays a function of the seed; `redrawn` counts them.
   */
  async sample(count: number, temperature: number, seed: number, timeoutMs?: number): Promise<Decoded & { latents: Float64Array; logLikelihood: Float64Array; redrawn: number }> {
    const rng = new Rng(seed);
    const d = this.dim;
    const eps = sampleStandardNormal(rng, count, d, temperature);
    const decoded = await this.decode(eps, count, timeoutMs);
    let redrawn = 0;
    for (let round = 0; round < MAX_REDRAW_ROUNDS; round++) {
      const bad = nonFiniteRows(decoded.outputs, decoded.logDet, count, d);
      if (bad.length === 0) break;
      redrawn += bad.length;
      const fresh = sampleStandardNormal(rng, bad.length, d, temperature);
      const again = await this.decode(fresh, bad.length, timeoutMs);
      bad.forEach((row, k) => {
        eps.set(fresh.subarray(k * d, (k + 1) * d), row * d);
        decoded.outputs.set(again.outputs.subarray(k * d, (k + 1) * d), row * d);
        decoded.logDet[row] = again.logDet[k];
      });
    }
    if (nonFiniteRows(decoded.outputs, decoded.logDet, count, d).length > 0)
      throw new Error(`${this.name}: samples stay non-finite after ${MAX_REDRAW_ROUNDS} redraws at temperature ${temperature}`);
    const logLikelihood = logStandardNormal(eps, count, d);
    for (let i = 0; i < count; i++) logLikelihood[i] -= decoded.logDet[i];
    return { ...decoded, latents: eps, logLikelihood, redrawn };
  }

  async likelihood(x: ArrayLike<number>, n: number, timeoutMs?: number): Promise<Likelihood[]> {
    const { latents, logDet } = await this.encode(x, n, timeoutMs);
    const logp = logProbability(latents, logDet, n, this.dim);
    return Array.from(logp, (lp) => ({ logLikelihood: lp, bitsPerDim: bitsPerDim(lp, this.dim, this.manifest.data.bitDepth) }));
  }
}
